"""Collector: subscribes to every gateway's telemetry and writes it to InfluxDB."""

from collector.deadletters import DeadLetter, DeadLetterStore
from collector.service import Collector, Counters

__all__ = ["Collector", "Counters", "DeadLetter", "DeadLetterStore"]
