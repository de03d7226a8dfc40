"""What the engine needs from a way of sending SMS, and the fallback chain across providers.

A notifier raises `NotifierError` (its own library's errors translated once, in its `send`);
`FallbackNotifier` turns those into the next provider's try and one `Delivery` for the record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class NotifierError(Exception):
    """A provider did not take the message: `notifier` says which, the message says why."""

    def __init__(self, notifier: str, reason: str) -> None:
        self.notifier = notifier
        self.reason = reason
        super().__init__(f"{notifier}: {reason}")


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    notifier: str  # who took it (or the last one tried)
    detail: str  # provider reference, or the failures in order
    reference: str = ""  # the provider's id of the message, when it took it


class Notifier(Protocol):
    name: str

    def send(self, *, to: str, text: str) -> str:
        """Hand one SMS over; returns the provider's reference, raises `NotifierError`."""
        ...


class FallbackNotifier:
    """Tries each notifier in order until one takes the message."""

    name = "fallback"

    def __init__(self, *, notifiers: list[Notifier]) -> None:
        if not notifiers:
            raise ValueError("at least one notifier is needed")
        self.notifiers = notifiers

    def deliver(self, *, to: str, text: str) -> Delivery:
        failures: list[str] = []
        for notifier in self.notifiers:
            try:
                reference = notifier.send(to=to, text=text)
            except NotifierError as exc:
                log.warning("SMS to %s not sent: %s", to, exc)
                failures.append(str(exc))
                continue
            detail = "; ".join([*failures, f"{notifier.name}: {reference}"])
            return Delivery(ok=True, notifier=notifier.name, detail=detail, reference=reference)
        return Delivery(ok=False, notifier=self.notifiers[-1].name, detail="; ".join(failures))
