"""Simulators of the DYNAMO machines: physics models served as Modbus devices.

Each machine (lucerne dryer, blast freezer, packaging line) is a plain-Python model on
simulated time; a Modbus server plays the devices of its gateway configuration from the same
device templates the gateway decodes with; the model's ground truth, stamped with the wall
clock, lets tests compare end-to-end figures with what really happened.
"""

from simulators.cli import build_parser, cli_main
from simulators.clock import SimClock, default_start
from simulators.dryer import DryerModel
from simulators.freezer import FreezerModel
from simulators.model import MachineModel
from simulators.packaging import PackagingModel
from simulators.pty_pair import PtyPair
from simulators.runner import (
    MACHINES,
    MODELS,
    RunningSimulators,
    run,
    run_in_thread,
    site_config_path,
)
from simulators.server import MachineServer, encode_point
from simulators.simulation import Simulation
from simulators.truth import Truth, TruthSample

__all__ = [
    "MACHINES",
    "MODELS",
    "DryerModel",
    "FreezerModel",
    "MachineModel",
    "MachineServer",
    "PackagingModel",
    "PtyPair",
    "RunningSimulators",
    "SimClock",
    "Simulation",
    "Truth",
    "TruthSample",
    "build_parser",
    "cli_main",
    "default_start",
    "encode_point",
    "run",
    "run_in_thread",
    "site_config_path",
]
