"""Shared model of the DYNAMO monitoring system: configuration, readings, topics, codecs, units.

Every component imports this package; it imports none of them.
"""

from telemetry.datatypes import ByteOrder, DataType, RegisterType
from telemetry.errors import ConfigError, ConfigIssue, PayloadError
from telemetry.loader import load_gateway_config, load_template, load_templates
from telemetry.payload import Quality, Reading, Status, Telemetry
from telemetry.roles import ROLES, Kind, Role
from telemetry.site import Device, Equipment, EquipmentKind, GatewayConfig, Sensor
from telemetry.template import DeviceTemplate, MqttField, RegisterPoint

__all__ = [
    "ROLES",
    "ByteOrder",
    "ConfigError",
    "ConfigIssue",
    "DataType",
    "Device",
    "DeviceTemplate",
    "Equipment",
    "EquipmentKind",
    "GatewayConfig",
    "Kind",
    "MqttField",
    "PayloadError",
    "Quality",
    "Reading",
    "RegisterPoint",
    "RegisterType",
    "Role",
    "Sensor",
    "Status",
    "Telemetry",
    "load_gateway_config",
    "load_template",
    "load_templates",
]
