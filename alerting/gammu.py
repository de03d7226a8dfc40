"""SMS through a GSM modem driven by gammu-smsd (Debian's `gammu-smsd`, `files` service).

Sending writes the text to gammu-smsd's outbox; gammu-smsd hands it to the modem (long texts
as linked parts) and moves the file to `sentsmspath`. Replies land in `inboxpath` as
one UTF-16 file per received part, named `IN<date>_<time>_<serial>_<number>_<part>.txt`.
This is the path that works with no internet, on the server and on a gateway.
In tests the modem is gammu's `dummy` phone: real gammu code, messages as files.
"""

from __future__ import annotations

import configparser
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alerting.notifier import NotifierError

_INBOX_NAME = re.compile(r"^IN\d{8}_\d{6}_\d{2}_(?P<number>[^_]+)_(?P<part>\d+)\.txt$")


@dataclass(frozen=True, slots=True)
class SmsdPaths:
    """The folders of one gammu-smsd `files` service, and its configuration file."""

    config: Path
    inbox: Path
    outbox: Path
    sent: Path
    error: Path


def write_smsd_config(*, directory: Path, device: str, model: str = "at",
                      connection: str = "at115200", poll_s: int = 1) -> SmsdPaths:
    """Write a gammu-smsd configuration (files service) with its folders under `directory`.

    For gammu's dummy phone: `model="dummy", connection="none", device="<folder>/"`; for a USB
    modem: `device="/dev/ttyUSB0"` with the defaults.
    """
    paths = SmsdPaths(config=directory / "smsdrc", inbox=directory / "inbox",
                      outbox=directory / "outbox", sent=directory / "sent",
                      error=directory / "error")
    for folder in (paths.inbox, paths.outbox, paths.sent, paths.error):
        folder.mkdir(parents=True, exist_ok=True)
    if model == "dummy":
        for box in range(1, 6):
            (Path(device) / "sms" / str(box)).mkdir(parents=True, exist_ok=True)
    # checksecurity/battery/signal off: a dummy phone or a data-only SIM has none to report.
    paths.config.write_text(f"""[gammu]
model = {model}
connection = {connection}
device = {device}

[smsd]
service = files
inboxpath = {paths.inbox}/
outboxpath = {paths.outbox}/
sentsmspath = {paths.sent}/
errorsmspath = {paths.error}/
inboxformat = unicode
outboxformat = unicode
transmitformat = auto
commtimeout = {poll_s}
sendtimeout = 10
receivefrequency = {poll_s}
loopsleep = {poll_s}
statusfrequency = 0
checksecurity = 0
checkbattery = 0
checksignal = 0
logfile = {directory}/smsd.log
debuglevel = 0
""", encoding="utf-8")
    return paths


class GammuNotifier:
    """Queues SMS for gammu-smsd: one UTF-16 file per message in its outbox.

    gammu-smsd reads the number from the file name and splits a long text into linked parts
    itself (`gammu-smsd-inject` would write one unlinked file per part instead).
    """

    name = "gammu"

    def __init__(self, *, config: Path) -> None:
        self.config = config
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(config.read_text(encoding="utf-8"))
            self.outbox = Path(parser["smsd"]["outboxpath"])
            self.sent = Path(parser["smsd"]["sentsmspath"])
            self.error = Path(parser["smsd"]["errorsmspath"])
        except (OSError, KeyError, configparser.Error) as exc:
            raise ValueError(f"{config}: not a gammu-smsd configuration with outbox, sent and "
                             f"error paths ({exc})") from exc

    def send(self, *, to: str, text: str) -> str:
        """Returns the outbox file name gammu-smsd will send."""
        now = datetime.now(UTC)
        # A = highest priority; the random tail keeps two SMS of one second apart.
        name = f"OUTA{now:%Y%m%d_%H%M%S}_00_{to}_{secrets.token_hex(4)}.txt"
        staging = self.outbox / f".{name}.part"  # gammu only picks up OUT*.txt
        try:
            staging.write_bytes("\ufeff".encode("utf-16-le") + text.encode("utf-16-le"))
            staging.replace(self.outbox / name)
        except OSError as exc:
            raise NotifierError(self.name, f"cannot write to the outbox {self.outbox}: "
                                f"{exc.strerror}") from exc
        return name

    def outcome(self, reference: str) -> str | None:
        """`sent_by_modem`, `modem_error`, or None while gammu-smsd still holds the message."""
        if (self.sent / reference).exists():
            return "sent_by_modem"
        if (self.error / reference).exists():
            return "modem_error"
        return None


@dataclass(frozen=True, slots=True)
class InboundSms:
    number: str
    text: str
    file: str


class GammuInbox:
    """Reads replies that gammu-smsd saved, then moves them to `done` so each is read once."""

    def __init__(self, *, inbox: Path, done: Path | None = None) -> None:
        self.inbox = inbox
        self.done = done or inbox.parent / "inbox-done"
        self.done.mkdir(parents=True, exist_ok=True)

    def take(self, *, limit: int = 100) -> list[InboundSms]:
        messages: list[InboundSms] = []
        for file in sorted(self.inbox.glob("IN*.txt"))[:limit]:
            match = _INBOX_NAME.match(file.name)
            try:
                raw = file.read_bytes()
            except OSError:
                continue  # gammu-smsd may still be writing it: next round
            file.replace(self.done / file.name)
            if match is None:
                continue
            messages.append(InboundSms(number=match.group("number"), text=_decode(raw),
                                       file=file.name))
        return messages


def _decode(raw: bytes) -> str:
    # `inboxformat = unicode` writes UTF-16 with a BOM; tolerate a plain UTF-8 file too.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8", errors="replace")


def read_sent(folder: Path) -> dict[str, str]:
    """Texts in a gammu-smsd folder (sent, outbox, error) by file name: for checks and tests."""
    return {file.name: _decode(file.read_bytes()) for file in sorted(folder.glob("OUT*.txt"))}


def drop_inbound_sms(*, phone_dir: Path, number: str, text: str, sent_utc: str) -> Path:
    """Put an SMS in the dummy phone's inbox, as a modem receiving it would (tests, demo).

    `sent_utc` is `YYYYMMDDTHHMMSSZ`; gammu-smsd picks the file up at its next poll.
    """
    folder = phone_dir / "sms" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    location = 1 + max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0)
    path = folder / str(location)
    staging = phone_dir / f".inbound-{location}"  # renamed in: gammu never reads half a file
    staging.write_text(f"""[SMSBackup000]
SMSC = "+33000000000"
State = UnRead
Number = "{number}"
Coding = Unicode
Folder = 1
Sent = {sent_utc}
Text00 = {text.encode("utf-16-be").hex().upper()}
""", encoding="ascii")
    staging.replace(path)
    return path
