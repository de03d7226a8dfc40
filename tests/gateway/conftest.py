"""Gateway test fixtures. Helpers live in `gwkit.py` (importable: see below)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test folder on sys.path; the gateway tests share helpers.
sys.path.insert(0, str(Path(__file__).parent))

from gwkit import REPO, ModbusTestServer

from dynamo.devservices import MosquittoProcess, generated_acl


@pytest.fixture
def modbus_server() -> Iterator[Callable[..., ModbusTestServer]]:
    servers: list[ModbusTestServer] = []

    def make(**kwargs: Any) -> ModbusTestServer:
        server = ModbusTestServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


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


