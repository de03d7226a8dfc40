"""What several alerting tests share."""

from __future__ import annotations

from alerting.notifier import NotifierError


class Phone:
    """Records the SMS it is given, or refuses them while `down`: it stands in for the SMS
    network, never for the engine or the edge under test."""

    name = "phone"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (number, text)
        self.down = False

    def send(self, *, to: str, text: str) -> str:
        if self.down:
            raise NotifierError(self.name, "modem unplugged")
        self.sent.append((to, text))
        return f"ref-{len(self.sent)}"
