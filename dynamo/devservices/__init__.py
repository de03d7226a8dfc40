"""Local InfluxDB and Mosquitto processes on loopback, for the demo and the test suite.

Each runs from Debian's binaries in its own temporary directory on a free port; nothing touches
the system-wide services.
"""

from dynamo.devservices.influxd import InfluxdProcess
from dynamo.devservices.mosquitto import BrokerTls, MosquittoProcess, generated_acl
from dynamo.devservices.ports import free_port
from dynamo.devservices.stop import stop_processes
from dynamo.devservices.wait import wait_until

__all__ = ["BrokerTls", "InfluxdProcess", "MosquittoProcess", "free_port", "generated_acl",
           "stop_processes", "wait_until"]
