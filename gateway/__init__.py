"""Edge gateway: polls Modbus devices and local MQTT sensors, spools every poll on disk and
forwards it to the central broker (docs/gateway.md)."""

from gateway.agent import Gateway
from gateway.bundle import Bundle, BundleError, build_bundle
from gateway.clock import clock_synced
from gateway.forwarder import Forwarder
from gateway.listener import LocalSensors
from gateway.plan import ReadRequest, plan_reads
from gateway.poller import DevicePoller, ModbusLine, PollResult
from gateway.publisher import Publisher
from gateway.reading import make_reading
from gateway.spool import Spool, SpoolCounters, SpoolError
from gateway.watchdog import SystemdNotifier

__all__ = [
    "Bundle",
    "BundleError",
    "DevicePoller",
    "Forwarder",
    "Gateway",
    "LocalSensors",
    "ModbusLine",
    "PollResult",
    "Publisher",
    "ReadRequest",
    "Spool",
    "SpoolCounters",
    "SpoolError",
    "SystemdNotifier",
    "build_bundle",
    "clock_synced",
    "make_reading",
    "plan_reads",
]
