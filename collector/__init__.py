"""Collector: subscribes to every gateway's telemetry and writes it to InfluxDB."""

from collector.deadletters import DeadLetter, DeadLetterStore
from collector.metrics import registry_for, serve_metrics
from collector.replay import ReplayReport, replay
from collector.sequence import Observation, SequenceEvent, SequenceTracker
from collector.service import Collector, Counters
from collector.writer import Backoff, Writer, WriterStopped

__all__ = [
    "Backoff",
    "Collector",
    "Counters",
    "DeadLetter",
    "DeadLetterStore",
    "Observation",
    "ReplayReport",
    "SequenceEvent",
    "SequenceTracker",
    "Writer",
    "WriterStopped",
    "registry_for",
    "replay",
    "serve_metrics",
]
