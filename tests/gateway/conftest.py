"""Gateway test fixtures. Helpers live in `gwkit.py` (importable: see below)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib puts no test folder on sys.path; the gateway tests share helpers.
sys.path.insert(0, str(Path(__file__).parent))

from gwkit import REPO, modbus_server  # noqa: F401  (a fixture, shared with the crash tests)

from dynamo.devservices import MosquittoProcess, generated_acl


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A broker of this test's own, for tests that stop and restart it."""
    users = {u: secrets.token_urlsafe(12) for u in ("collector", "test-gw", "local-sensors")}
    acl = generated_acl(tmp_path / "broker", sites=REPO / "firmware-config" / "sites",
                        development_gateways=("test-gw",))
    process = MosquittoProcess(workdir=tmp_path / "broker", users=users, acl_file=acl)
    process.start()
    yield process
    process.stop()


