"""Signed configuration push (docs/fleet.md): a real mosquitto with the generated ACL, a real
pymodbus device, the gateway agent and its remote-configuration follower in-process, and the
centre's `telemetry.fleet.push` / `dynamo fleet status`.

Good push: applied live (a sensor added appears, seq numbers go on without a gap, the status
reports the new version and hash). Bad signature, another gateway, invalid configuration, older
version: refused, reported, the running configuration still polling. A configuration that polls
nothing: applied, then rolled back after `rollback_cycles` poll cycles, and the status says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gwkit import (
    ModbusTestServer,
    Subscriber,
    float_words,
    in_loop_thread,
    meter_device,
    write_config,
)

from dynamo.cli import main
from dynamo.devservices import MosquittoProcess, free_port
from gateway.agent import Gateway
from gateway.remote import RemoteConfig
from telemetry.fleet import push
from telemetry.loader import load_gateway_config
from telemetry.mqtt import connect, make_client
from telemetry.signing import (
    Envelope,
    SigningError,
    generate_keys,
    load_private_key,
    load_public_key,
    sign,
    verify,
)
from telemetry.site import Broker
from telemetry.topics import fleet_config_topic

pytestmark = pytest.mark.timeout(120)


@contextmanager
def running_remote(base_file: Path) -> Iterator[tuple[Gateway, RemoteConfig]]:
    """The gateway as `dynamo gateway run` starts it with a `fleet` section, in a thread."""
    base = load_gateway_config(base_file)
    remote = RemoteConfig(base_file=base_file, base=base)
    config = remote.initial()

    def make() -> Gateway:
        agent = Gateway(config=config)
        remote.attach(agent)
        return agent

    async def run(agent: Gateway, stop: asyncio.Event) -> None:
        await asyncio.gather(agent.run(stop=stop), remote.run(agent, stop))

    with in_loop_thread(make, run) as agent:
        yield agent, remote


def wait_for(what: Callable[[], Any], *, timeout: float = 30.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message or what}")


def publish_retained(broker: Broker, topic: str, payload: bytes) -> None:
    """What an intruder with the `api` account (or a replayed message) would put there."""
    client = make_client(broker=broker, client_id=f"t-{secrets.token_hex(4)}")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    connect(client, broker)
    try:
        assert connected.wait(10), "no connection to the broker"
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


class Rig:
    """A site of its own (the suite's ACL lets `test-gw` use any site), keys, a device."""

    def __init__(self, tmp: Path, broker_for: Callable[[str], Broker],
                 server: ModbusTestServer) -> None:
        self.site = f"fl{secrets.token_hex(3)}"
        self.tmp = tmp
        self.server = server
        self.gateway_broker = broker_for("test-gw").model_copy(update={"keepalive_s": 5})
        self.api = broker_for("api")
        self.private, self.public = tmp / "centre" / "fleet.key", tmp / "etc" / "fleet.pub"
        generate_keys(self.private, self.public)
        # SDM120 input registers (Eastron's map, firmware-config/templates/eastron-sdm120.yaml):
        # total power at 30013 (address 12), import energy 30073 (72), export energy 30075 (74).
        server.set_registers("input", 12, float_words(480.0))
        server.set_registers("input", 72, float_words(12.5))
        server.set_registers("input", 74, float_words(3.25))

    def config(self, path: Path, devices: list[dict[str, Any]]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_config(path, broker=self.gateway_broker, spool_dir=self.tmp / "spool",
                            devices=devices, site=self.site, extra={
                                "fleet": {"public_key": "fleet.pub", "rollback_cycles": 3},
                                # no collector in these tests: the broker's PUBACK frees the spool
                                "spool": {"acknowledgement": "broker"}})

    def meter(self, **options: Any) -> dict[str, Any]:
        return meter_device(self.server, interval=0.3, **options)

    @property
    def topic(self) -> str:
        return fleet_config_topic(self.site, "test-gw")


@pytest.fixture
def rig(tmp_path: Path, broker_for: Callable[[str], Broker],
        modbus_server: Callable[..., ModbusTestServer]) -> Rig:
    return Rig(tmp_path, broker_for, modbus_server())


def seqs_are_contiguous(messages: list[dict[str, Any]]) -> bool:
    seqs = {m["seq"] for m in messages}
    return seqs == set(range(min(seqs), max(seqs) + 1))


def statuses_with(sub: Subscriber, **match: Any) -> list[dict[str, Any]]:
    return [s for s in sub.statuses() if all(s.get(k) == v for k, v in match.items())]


def refused(sub: Subscriber, version: int, reason: str) -> list[dict[str, Any]]:
    return [s for s in sub.statuses() if (s.get("config_refused") or {}).get("version") == version
            and reason in s["config_refused"]["reason"]]


def test_good_push_is_applied_live_and_bad_ones_are_refused(
        rig: Rig, mosquitto: MosquittoProcess) -> None:
    base = rig.config(rig.tmp / "etc" / "gateway.yaml", [rig.meter()])
    sub = Subscriber(broker=rig.api, topic=f"dynamo/v1/{rig.site}/#")
    assert sub.subscribed.wait(10)
    with running_remote(base) as (agent, _remote):
        wait_for(lambda: len(sub.telemetry()) >= 3, message="telemetry of the installed config")
        assert all(len(m["readings"]) == 2 for m in sub.telemetry())

        # The centre's file adds the export counter to the meter.
        centre_file = rig.config(rig.tmp / "centre" / rig.site / "test-gw.yaml", [rig.meter(
            sensors=[{"id": "rig.meter.energy", "point": "import_energy_kwh",
                      "role": "electric_energy"},
                     {"id": "rig.meter.power", "point": "total_power_w",
                      "role": "electric_power"},
                     {"id": "rig.meter.export", "point": "export_energy_kwh",
                      "role": "grid_export_energy"}])])
        pushed = push(gateway="test-gw", config_file=centre_file, key_file=rig.private,
                      broker=rig.api)
        assert pushed.topic == f"dynamo/v1/{rig.site}/fleet/config/test-gw"

        def exported() -> list[dict[str, Any]]:
            return [r for m in sub.telemetry() for r in m["readings"]
                    if r["sensor"] == "rig.meter.export"]

        found = wait_for(exported, message="the added sensor's readings")
        assert found[0]["value"] == 3.25 and found[0]["unit"] == "kWh"
        applied = wait_for(lambda: statuses_with(sub, config_version=pushed.version,
                                                 config_hash=pushed.sha256[:12]),
                           message="a status with the pushed version and hash")
        assert "config_refused" not in applied[-1]
        # Readings polled before and after the swap: one numbering, no hole.
        wait_for(lambda: len(exported()) >= 3)
        assert seqs_are_contiguous(sub.telemetry())
        assert (rig.tmp / "spool" / "fleet" / "current.yaml").read_text() == \
            centre_file.read_text()

        key = load_private_key(rig.private)
        good_text = centre_file.read_text()
        base_version = pushed.version

        # 1. Bad signature: the text of a configuration that polls nothing, with the hash made
        # to match and the signature of the previous one.
        closed = rig.config(rig.tmp / "other.yaml", [rig.meter(connection={
            "type": "tcp", "host": "127.0.0.1", "port": free_port()})]).read_text()
        tampered = sign(key, site=rig.site, gateway="test-gw", version=base_version + 10,
                        config=good_text)
        forged = Envelope(**{**tampered.model_dump(), "config": closed,
                             "sha256": hashlib.sha256(closed.encode()).hexdigest()})
        publish_retained(rig.api, rig.topic, forged.encode())
        wait_for(lambda: refused(sub, base_version + 10, "bad signature"),
                 message="the forged configuration refused")

        # 2. Signed, but for another gateway, replayed on this one's topic.
        other = sign(key, site=rig.site, gateway="other-gw", version=base_version + 20,
                     config=good_text)
        publish_retained(rig.api, rig.topic, other.encode())
        wait_for(lambda: refused(sub, base_version + 20, "not " + f"{rig.site}/test-gw"),
                 message="another gateway's configuration refused")

        # 3. Invalid: a sensor with a role that does not exist.
        invalid = good_text.replace("role: grid_export_energy", "role: grid_export_enrgy")
        assert invalid != good_text
        publish_retained(rig.api, rig.topic, sign(key, site=rig.site, gateway="test-gw",
                                                  version=base_version + 30,
                                                  config=invalid).encode())
        wait_for(lambda: refused(sub, base_version + 30, "unknown role 'grid_export_enrgy'"),
                 message="the invalid configuration refused")

        # 4. Older than the last one handled (30 above): an old message replayed.
        publish_retained(rig.api, rig.topic, sign(key, site=rig.site, gateway="test-gw",
                                                  version=base_version + 5,
                                                  config=good_text).encode())
        wait_for(lambda: refused(sub, base_version + 5, "not newer"),
                 message="the older configuration refused")

        # Through all this, the pushed configuration ran on: still its version, still polling.
        assert agent.config_version == base_version
        count = len(exported())
        wait_for(lambda: len(exported()) >= count + 3, message="polling after the refusals")
        assert seqs_are_contiguous(sub.telemetry())

        # `dynamo fleet status`, as the centre's admin runs it.
        result = CliRunner().invoke(main, ["fleet", "status", "--site", rig.site, "--wait", "1"],
                                    env=_mqtt_env(rig.api))
        assert result.exit_code == 0, result.output
        header, row, note = result.output.splitlines()[:3]
        assert header.split()[:4] == ["SITE", "GATEWAY", "STATE", "CONFIG"]
        assert row.split()[:5] == [rig.site, "test-gw", "online", str(base_version),
                                   pushed.sha256[:12]]
        assert row.endswith("s ago")
        assert note.strip().startswith(f"refused version {base_version + 5}: version")
    # Stopped: its clean `offline` status, which says nothing of configuration or age.
    result = CliRunner().invoke(main, ["fleet", "status", "--site", rig.site, "--wait", "1"],
                                env=_mqtt_env(rig.api))
    assert result.output.splitlines()[1].split() == [rig.site, "test-gw", "offline", "-", "-",
                                                     "-", "-", "-", "-", "-"]

    # A restart runs the configuration last applied, from the state directory...
    with running_remote(base) as (agent, _remote):
        assert agent.config_version == base_version
        assert "rig.meter.export" in {s.id for d in agent.config.devices for s in d.sensors}
        wait_for(lambda: agent.polled >= 2, message="polling after the restart")
    # ... unless a configuration was installed on site since: that one wins.
    text = base.read_text()
    assert "poll_interval_s: 0.3" in text
    base.write_text(text.replace("poll_interval_s: 0.3", "poll_interval_s: 0.4"))
    with running_remote(base) as (agent, remote):
        assert agent.config_version is None
        assert [d.poll_interval_s for d in agent.config.devices] == [0.4]
        assert remote.state.handled == base_version + 30  # the retained ones stay handled
    sub.close()


def test_a_config_that_polls_nothing_is_rolled_back(rig: Rig,
                                                    mosquitto: MosquittoProcess) -> None:
    base = rig.config(rig.tmp / "etc" / "gateway.yaml", [rig.meter()])
    sub = Subscriber(broker=rig.api, topic=f"dynamo/v1/{rig.site}/#")
    assert sub.subscribed.wait(10)
    # The meter moved to a port nobody listens on: every poll fails.
    dead_meter = rig.meter(connection={"type": "tcp", "host": "127.0.0.1", "port": free_port()})
    with running_remote(base) as (agent, remote):
        wait_for(lambda: len(sub.telemetry()) >= 2, message="telemetry of the installed config")
        dead = rig.config(rig.tmp / "centre" / "dead.yaml", [dead_meter])
        pushed = push(gateway="test-gw", config_file=dead, key_file=rig.private, broker=rig.api)
        started = time.monotonic()
        wait_for(lambda: statuses_with(sub, config_version=pushed.version),
                 message="the dead configuration applied")
        rolled = wait_for(lambda: refused(sub, pushed.version, "rolled back"),
                          message="the rollback reported")
        # Not before 3 cycles of 0.3 s (then the slowest poll, 0.5 s, and 2 s of slack).
        assert time.monotonic() - started >= 3 * 0.3
        assert "config_version" not in rolled[-1]  # back to the installed configuration
        assert agent.config_version is None
        after = len(sub.telemetry())
        wait_for(lambda: [m for m in sub.telemetry()[after:]
                          if m["readings"][0].get("quality", "good") == "good"],
                 message="good readings after the rollback")

        # A good one (a second meter on the same device), confirmed; then a dead one again:
        # the rollback returns to the good pushed one, not to the installed file.
        good = rig.config(rig.tmp / "centre" / "good.yaml",
                          [rig.meter(), rig.meter(device_id="second")])
        first = push(gateway="test-gw", config_file=good, key_file=rig.private, broker=rig.api)
        wait_for(lambda: remote.state.version == first.version and not remote.state.probation,
                 message="the good configuration confirmed")
        again = push(gateway="test-gw", config_file=dead, key_file=rig.private, broker=rig.api)
        assert again.version > first.version  # the same file, pushed again: a newer version
        rolled = wait_for(lambda: refused(sub, again.version, "rolled back"),
                          message="the second rollback reported")
        assert rolled[-1]["config_version"] == first.version
        assert rolled[-1]["config_hash"] == first.sha256[:12]
        assert [d.id for d in agent.config.devices] == ["meter", "second"]
        count = len([m for m in sub.telemetry() if m["device"] == "second"])
        wait_for(lambda: len([m for m in sub.telemetry() if m["device"] == "second"]) > count,
                 message="the good configuration polling again")
        assert seqs_are_contiguous(sub.telemetry())
    state = json.loads((rig.tmp / "spool" / "fleet" / "state.json").read_text())
    assert (state["version"], state["handled"]) == (first.version, again.version)
    assert state["refused"]["version"] == again.version
    # A restart runs the good one; the retained dead one is not taken again.
    with running_remote(base) as (agent, remote):
        wait_for(lambda: agent.polled >= 3, message="polling after the restart")
        assert agent.config_version == first.version
        assert remote.state.handled == again.version
    sub.close()


def test_signatures_keys_and_tampering(tmp_path: Path) -> None:
    generate_keys(tmp_path / "k" / "fleet.key", tmp_path / "k" / "fleet.pub")
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "fleet.key").st_mode) == 0o600
    with pytest.raises(SigningError, match="already exists"):
        generate_keys(tmp_path / "k" / "fleet.key", tmp_path / "k" / "other.pub")
    key, public = load_private_key(tmp_path / "k" / "fleet.key"), \
        load_public_key(tmp_path / "k" / "fleet.pub")
    envelope = sign(key, site="s", gateway="g", version=7, config="site: s\n")
    # sha256("site: s\n"), computed apart: printf 'site: s\n' | sha256sum
    assert envelope.sha256 == "c3e1f94e36b3965b954c39af1dd014fc529194804d1e8dacbc8a88f2cdac8a13"
    verify(envelope, public)
    for change in ({"version": 8}, {"gateway": "h"}, {"site": "t"}):
        with pytest.raises(SigningError, match="bad signature"):
            verify(envelope.model_copy(update=change), public)
    generate_keys(tmp_path / "x" / "fleet.key", tmp_path / "x" / "fleet.pub")
    with pytest.raises(SigningError, match="bad signature"):
        verify(envelope, load_public_key(tmp_path / "x" / "fleet.pub"))
    with pytest.raises(SigningError, match="not an Ed25519 public key"):
        load_public_key(tmp_path / "k" / "fleet.key")
    # A gateway whose key was never installed (the Ariège files have `fleet:` out of the box):
    # every push is refused, with where and why, never applied.
    with pytest.raises(SigningError, match=r"missing\.pub: cannot read: No such file"):
        load_public_key(tmp_path / "missing.pub")


def _mqtt_env(broker: Broker) -> dict[str, str]:
    return {"DYNAMO_MQTT_HOST": broker.host, "DYNAMO_MQTT_PORT": str(broker.port),
            "DYNAMO_MQTT_USERNAME": broker.username or "",
            "DYNAMO_MQTT_PASSWORD": broker.password or ""}
