"""Edge gateway: polls Modbus devices, normalises readings and publishes them over MQTT."""

from gateway.agent import Gateway
from gateway.plan import ReadRequest, plan_reads
from gateway.poller import DevicePoller, PollResult

__all__ = ["DevicePoller", "Gateway", "PollResult", "ReadRequest", "plan_reads"]
