"""The upgrade guard: goes back to the previous release when a new one does not prove healthy.

Standard library only, on purpose. The decision to roll back must not depend on the release
being judged: a release that crashes at import, or whose venv is broken, cannot be trusted to
undo itself. So the running (known good) release copies this file beside the releases before
it switches (`{releases}/upgrade-guard.py`), and systemd runs that copy with the system's
Python before every start of the gateway (`ExecStartPre`), and from a timer for a release that
hangs without crashing (docs/fleet.md, "Remote upgrade").

State, all in the releases folder (writable by the gateway's user):

    current -> releases/0.2.0-…   the release systemd starts (`current/venv/bin/dynamo`)
    previous -> …                 what a rollback returns to
    pending.json                  {version, release, previous, since_ms, deadline_ms, starts,
                                   max_starts}: switched, not yet confirmed healthy
    result.json                   {version, state, reason, ts}: the last upgrade's outcome

The new release, once healthy (online with its version, a poll that read a value), removes
`pending.json` and writes `done`. Before each start the guard counts the start; if the new
release was started `max_starts` times or its deadline passed without confirming, the guard
switches `current` back to `previous` and writes `rolled-back` with why; the gateway's status
shows it at the next start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PENDING = "pending.json"
RESULT = "result.json"


def now_ms() -> int:
    return int(time.time() * 1000)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, or None if absent or unreadable (a half-written file is not state)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a power cut leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def point(link: Path, target: str) -> None:
    """Make `link` a symlink to `target` atomically (rename over the old link)."""
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def check(root: Path, *, count_start: bool = True, now: int | None = None) -> str:
    """Decide before a start (or from the timer, `count_start` False): `none` (no upgrade
    pending), `pending` (the new release may start again) or `rolled-back`."""
    pending = read_json(root / PENDING)
    if pending is None:
        return "none"
    current = root / "current"
    if not current.is_symlink() or os.readlink(current) != pending.get("release"):
        # `current` was changed by hand (install.sh run again): that installation wins.
        (root / PENDING).unlink(missing_ok=True)
        return "none"
    now = now_ms() if now is None else now
    starts = int(pending.get("starts", 0)) + (1 if count_start else 0)
    reason = None
    if now > int(pending.get("deadline_ms", 0)):
        reason = (f"not healthy within {(now - int(pending.get('since_ms', now))) / 1000:.0f} s"
                  f" ({starts} start(s))")
    elif starts > int(pending.get("max_starts", 3)):
        reason = f"did not become healthy in {starts - 1} start(s)"
    if reason is None:
        if count_start:
            write_json(root / PENDING, {**pending, "starts": starts})
        return "pending"
    rollback(root, pending, reason)
    return "rolled-back"


def rollback(root: Path, pending: dict[str, Any], reason: str) -> None:
    """Back to the release that ran before the switch, and say why in `result.json`."""
    previous = str(pending["previous"])
    point(root / "current", previous)
    write_json(root / RESULT, {"version": pending.get("version"), "state": "rolled-back",
                               "reason": f"rolled back to the previous release: {reason}",
                               "ts": now_ms()})
    (root / PENDING).unlink(missing_ok=True)
    print(f"upgrade to {pending.get('version')} rolled back ({reason}): current -> {previous}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the releases folder")
    parser.add_argument("--timer", action="store_true",
                        help="from the timer: do not count a start, only the deadline")
    parser.add_argument("--restart-unit", default=None,
                        help="after a rollback, `systemctl restart` this unit")
    args = parser.parse_args(argv)
    outcome = check(args.root, count_start=not args.timer)
    if outcome == "rolled-back" and args.restart_unit:
        subprocess.run(["systemctl", "restart", "--no-block", args.restart_unit], check=False)
    # Never fail the start: whatever happened here, the gateway must run (some release of it).
    return 0


if __name__ == "__main__":
    sys.exit(main())
