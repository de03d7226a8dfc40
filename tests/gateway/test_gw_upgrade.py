"""Remote upgrade with rollback (docs/fleet.md, "Remote upgrade"): the upgrade rollback test of
issue 16.

Real components: the suite's mosquitto with the generated ACL (the notice published as the `api`
user by `dynamo fleet publish-bundle`, the gateway's status read back), the api's bundle route
served by uvicorn over HTTP, a pymodbus device, and `dynamo gateway run` itself started from the
release's venv by a supervisor thread that plays systemd: before each start it runs the guard
copied beside the releases (`ExecStartPre`), and it starts `current/venv/bin/dynamo` again
whenever the process exits (`Restart=always`).

Releases are venvs installed by the gateway's own code (`pip --no-index` from the bundle's
wheelhouse) from tiny bundles: a stub `dynamo_monitoring` wheel of the release's version whose
`.pth` points at this checkout and its venv (so the real gateway runs, reporting the stub's
version), or, for the release that crashes at start, whose `dynamo` entry point exits at once.

Good upgrade 0.1.0 → 0.2.0: switched, online with 0.2.0 and polling, `done`. Crashing 0.3.0:
installed, switched, three failed starts, the guard goes back to 0.2.0, `rolled-back`. Bad
signature, another gateway's notice, tampered archive, archive not matching the signed
manifest: refused, reported, nothing switched, no restart.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI
from gwkit import REPO, ModbusTestServer, Subscriber, float_words, meter_device, write_config

from api.routes import fleet as fleet_route
from dynamo.cli import main
from dynamo.commands.fleet import format_table
from dynamo.devservices import MosquittoProcess, free_port
from gateway import upgrade_guard
from gateway.upgrade import RESTART_EXIT_CODE, adopt, machine
from telemetry.bundle_notice import archive_bundle, file_sha256, sign_notice
from telemetry.fleet import read_fleet
from telemetry.mqtt import connect, make_client
from telemetry.signing import generate_keys, load_private_key
from telemetry.site import Broker
from telemetry.topics import fleet_bundle_topic

pytestmark = pytest.mark.timeout(150)


def wait_for(what: Callable[[], Any], *, timeout: float = 45.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message or what}")


# -- tiny bundles ------------------------------------------------------------------------------


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def stub_wheel(out: Path, version: str, *, crash: bool = False) -> Path:
    """A `dynamo_monitoring` wheel of `version` that runs this checkout (a `.pth` naming it and
    its venv's site-packages), or whose `dynamo` command exits at once (`crash`)."""
    dist = f"dynamo_monitoring-{version}.dist-info"
    pth = f"{REPO}\n{sysconfig.get_path('purelib')}\n".encode()
    files: dict[str, bytes] = {"dynamo_release_checkout.pth": pth}
    entry = "dynamo.cli:main"
    if crash:
        entry = "dynamo_crash:main"
        files["dynamo_crash.py"] = (b"import sys\n\ndef main():\n"
                                    b"    sys.exit('test release: crashed at start')\n")
    files[f"{dist}/METADATA"] = (f"Metadata-Version: 2.1\nName: dynamo-monitoring\n"
                                 f"Version: {version}\n").encode()
    files[f"{dist}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    files[f"{dist}/entry_points.txt"] = f"[console_scripts]\ndynamo = {entry}\n".encode()
    record = [_record_line(name, data) for name, data in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = out / f"dynamo_monitoring-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def stub_bundle(out: Path, version: str, *, crash: bool = False) -> Path:
    """A bundle as `dynamo gateway bundle` lays it out: wheels/, a file beside, manifest.json."""
    (out / "wheels").mkdir(parents=True)
    stub_wheel(out / "wheels", version, crash=crash)
    (out / "README.txt").write_text(f"test release {version}\n")
    files = {p.relative_to(out).as_posix(): file_sha256(p)
             for p in sorted(out.rglob("*")) if p.is_file()}
    (out / "manifest.json").write_text(json.dumps({
        "distribution": "dynamo-monitoring", "platform": machine(), "python": "3.11",
        "debian_modules": [], "files": files}, indent=2))
    return out


# -- systemd, played by a thread ----------------------------------------------------------------


class Supervisor:
    """Runs the guard, then `current/venv/bin/dynamo gateway run`, again at every exit."""

    def __init__(self, root: Path, config: Path, logs: Path) -> None:
        self.root, self.config, self.logs = root, config, logs
        self.exits: list[int] = []
        self.started: list[str] = []  # the release each start ran
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _main(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMO_")}
        while not self._stopping.is_set():
            subprocess.run([sys.executable, "-I", str(self.root / "upgrade-guard.py"),
                            str(self.root)], check=False, timeout=30)
            release = os.readlink(self.root / "current")
            log = (self.logs / f"start-{len(self.started)}.log").open("wb")
            with self._lock:
                if self._stopping.is_set():
                    break
                self.started.append(release)
                self._process = subprocess.Popen(
                    [str(self.root / "current" / "venv" / "bin" / "dynamo"), "gateway", "run",
                     "--config", str(self.config), "--metrics-port", "0",
                     "--releases", str(self.root), "--upgrade-timeout", "90"],
                    stdout=log, stderr=subprocess.STDOUT, env=env)
            code = self._process.wait()
            log.close()
            self.exits.append(code)
            self._stopping.wait(0.3)  # RestartSec

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
        self._thread.join(30)


# -- the rig -----------------------------------------------------------------------------------


class Rig:
    def __init__(self, tmp: Path, mosquitto: MosquittoProcess) -> None:
        self.tmp = tmp
        self.site = f"up{secrets.token_hex(3)}"

        def broker(user: str) -> Broker:
            return Broker(host=mosquitto.host, port=mosquitto.port, username=user,
                          password=mosquitto.users[user], keepalive_s=5)

        self.broker = broker
        self.private, self.public = tmp / "centre" / "fleet.key", tmp / "etc" / "fleet.pub"
        generate_keys(self.private, self.public)
        self.root = tmp / "releases"
        self.store = tmp / "store"
        self.store.mkdir()
        self.sites = tmp / "sites"
        self.server = ModbusTestServer().start()
        # SDM120 input registers (Eastron's map): total power at 30013 (address 12), import
        # energy at 30073 (address 72).
        self.server.set_registers("input", 12, float_words(480.0))
        self.server.set_registers("input", 72, float_words(12.5))
        self.config = write_config(
            tmp / "etc" / "gateway.yaml", broker=broker("test-gw"), spool_dir=tmp / "spool",
            devices=[meter_device(self.server, interval=0.5)], site=self.site,
            extra={"fleet": {"public_key": "fleet.pub"},
                   "spool": {"acknowledgement": "broker"}})
        # `publish-bundle --gateway` finds the gateway's site in the site configurations.
        self.sites.mkdir()
        shutil.copy(self.config, self.sites / "gateway.yaml")
        self.http_port = free_port()
        app = FastAPI()
        app.state.settings = SimpleNamespace(fleet_bundles=self.store)
        app.include_router(fleet_route.router, prefix="/api/v1")
        self.http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.http_port,
                                                  log_level="warning"))
        threading.Thread(target=self.http.run, daemon=True).start()
        wait_for(lambda: self.http.started, timeout=20, message="uvicorn")
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.statuses = Subscriber(broker=broker("collector"),
                                   topic=f"dynamo/v1/{self.site}/test-gw/status")
        self.supervisor: Supervisor | None = None

    def publish(self, bundle: Path, *args: str) -> str:
        """`dynamo fleet publish-bundle` as an admin runs it at the centre."""
        api = self.broker("api")
        env = {"DYNAMO_MQTT_HOST": api.host, "DYNAMO_MQTT_PORT": str(api.port),
               "DYNAMO_MQTT_USERNAME": "api", "DYNAMO_MQTT_PASSWORD": api.password or "",
               "DYNAMO_FLEET_KEY": str(self.private), "DYNAMO_FLEET_BUNDLES": str(self.store),
               "DYNAMO_FLEET_BUNDLE_URL": self.url}
        result = CliRunner().invoke(main, ["fleet", "publish-bundle", str(bundle),
                                           "--sites", str(self.sites), *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """What an intruder holding the `api` password could put on the topic."""
        client = make_client(broker=self.broker("api"), client_id=f"t-{secrets.token_hex(4)}")
        connected = threading.Event()
        client.on_connect = lambda *_: connected.set()
        connect(client, self.broker("api"))
        try:
            assert connected.wait(10)
            client.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=10)
        finally:
            client.disconnect()
            client.loop_stop()

    def last_status(self) -> dict[str, Any]:
        found = self.statuses.statuses()
        return found[-1] if found else {}

    def status_where(self, check: Callable[[dict[str, Any]], bool], message: str,
                     timeout: float = 45.0) -> dict[str, Any]:
        return dict(wait_for(lambda: next((s for s in reversed(self.statuses.statuses())
                                           if check(s)), None), timeout=timeout,
                             message=f"{message}; last status: {self.last_status()}; "
                                     f"logs: {self.tail_logs()}"))

    def tail_logs(self) -> str:
        logs = sorted(self.tmp.glob("logs/start-*.log"), key=lambda p: p.stat().st_mtime)
        return "" if not logs else logs[-1].read_text(errors="replace")[-1500:]

    def current(self) -> str:
        return os.readlink(self.root / "current")

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        self.statuses.close()
        self.http.should_exit = True
        self.server.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory,
        mosquitto: MosquittoProcess) -> Iterator[Rig]:
    made = Rig(tmp_path_factory.mktemp("upgrade"), mosquitto)
    try:
        yield made
    finally:
        made.close()


def bundles(rig: Rig) -> Path:
    return rig.tmp / "bundles"


# -- the tests ---------------------------------------------------------------------------------


def test_good_upgrade_is_switched_to_and_confirmed(rig: Rig) -> None:
    # The Pi as install.sh leaves it: release 0.1.0 current, the guard beside it.
    first = adopt(rig.root, stub_bundle(bundles(rig) / "0.1.0", "0.1.0"))
    assert rig.current() == f"releases/{first.name}" and (rig.root / "upgrade-guard.py").is_file()
    (rig.tmp / "logs").mkdir()
    rig.supervisor = Supervisor(rig.root, rig.config, rig.tmp / "logs").start()
    rig.status_where(lambda s: s["state"] == "online" and s.get("version") == "0.1.0",
                     "0.1.0 online")

    out = rig.publish(stub_bundle(bundles(rig) / "0.2.0", "0.2.0"), "--gateway", "test-gw")
    assert f"{rig.site}/test-gw: release 0.2.0" in out

    healthy = rig.status_where(
        lambda s: s["state"] == "online" and s.get("version") == "0.2.0"
        and s.get("upgrade", {}).get("state") == "done", "0.2.0 online and confirmed", 60)
    assert healthy["upgrade"] == {"version": "0.2.0", "state": "done"}
    assert healthy["devices"] == {"meter": "ok"}
    assert rig.current().startswith("releases/0.2.0-")
    assert os.readlink(rig.root / "previous") == f"releases/{first.name}"
    assert not (rig.root / "pending.json").exists()
    # The old release stopped to be restarted (not crashed); the new one started once.
    assert rig.supervisor.exits == [RESTART_EXIT_CODE]
    assert rig.supervisor.started == [f"releases/{first.name}", rig.current()]
    # Its venv was installed by pip from the bundle: the stub's version, this checkout's code.
    probe = subprocess.run([str(rig.root / "current" / "venv" / "bin" / "python"), "-c",
                            "from importlib.metadata import version; import gateway; "
                            "print(version('dynamo-monitoring'), gateway.__file__)"],
                           capture_output=True, text=True, check=True, cwd=rig.tmp)
    assert probe.stdout.split() == ["0.2.0", str(REPO / "gateway" / "__init__.py")]


def test_release_that_crashes_at_start_is_rolled_back(rig: Rig) -> None:
    assert rig.supervisor is not None
    good = rig.current()
    starts_before = len(rig.supervisor.started)
    rig.publish(stub_bundle(bundles(rig) / "0.3.0", "0.3.0", crash=True), "--site", rig.site)

    back = rig.status_where(
        lambda s: s["state"] == "online" and s.get("upgrade", {}).get("state") == "rolled-back",
        "0.3.0 rolled back", 90)
    assert back["version"] == "0.2.0"
    assert back["upgrade"]["version"] == "0.3.0"
    # max_starts is 3: the guard let the new release start three times, then went back.
    assert back["upgrade"]["reason"] == \
        "rolled back to the previous release: did not become healthy in 3 start(s)"
    assert rig.current() == good
    started = rig.supervisor.started[starts_before:]
    crashed = [r for r in started if r.startswith("releases/0.3.0-")]
    assert len(crashed) == 3 and started[-1] == good, started
    # 0.2.0 stopped to be restarted, then three crashes (exit 1: SystemExit with a message).
    assert rig.supervisor.exits[-4:] == [RESTART_EXIT_CODE, 1, 1, 1]
    # `dynamo fleet status` says so under the gateway.
    lines = format_table(read_fleet(rig.broker("api"), site=rig.site, wait_s=1.0),
                         now_ms=int(time.time() * 1000))
    assert "  upgrade to 0.3.0: rolled-back: rolled back to the previous release: did not " \
           "become healthy in 3 start(s)" in lines, lines


def _refused(rig: Rig, expected: str) -> dict[str, Any]:
    return rig.status_where(lambda s: s.get("upgrade", {}).get("state") == "refused"
                            and expected in s["upgrade"].get("reason", ""),
                            f"refusal {expected!r}", 30)


def test_bad_signature_wrong_target_and_tampered_archives_are_refused(rig: Rig) -> None:
    assert rig.supervisor is not None
    running, exits = rig.current(), list(rig.supervisor.exits)
    bundle = stub_bundle(bundles(rig) / "0.4.0", "0.4.0")
    sha, size = archive_bundle(bundle, rig.store)  # as publish-bundle stores it
    key = load_private_key(rig.private)
    sequence = int(time.time() * 1000) + 10_000  # above every notice handled so far
    fields: dict[str, Any] = {
        "site": rig.site, "gateway": None, "version": "0.4.0", "sequence": sequence,
        "url": f"{rig.url}/api/v1/fleet/bundles/{sha}", "archive_sha256": sha,
        "archive_size": size, "manifest": json.loads((bundle / "manifest.json").read_text())}

    # 1. Signed by another key.
    other = rig.tmp / "other"
    generate_keys(other / "fleet.key", other / "fleet.pub")
    forged = sign_notice(load_private_key(other / "fleet.key"),
                         **{**fields, "version": "0.5.0", "sequence": fields["sequence"] + 1})
    rig.publish_raw(fleet_bundle_topic(rig.site), forged.encode())
    assert _refused(rig, "bad signature")["upgrade"]["version"] == "0.5.0"  # as it claims

    # 2. Signed, but for another gateway of the site.
    elsewhere = sign_notice(key, **{**fields, "gateway": "other-gw",
                                    "sequence": fields["sequence"] + 2})
    rig.publish_raw(fleet_bundle_topic(rig.site, "test-gw"), elsewhere.encode())
    _refused(rig, f"for {rig.site}/other-gw, not {rig.site}/test-gw")

    # 3. Signed, but the archive served was changed after publication (one byte of a file).
    archive = rig.store / f"{sha}.tar"
    data = bytearray(archive.read_bytes())
    data[data.index(b"test release 0.4.0")] ^= 0x01
    archive.write_bytes(bytes(data))
    replay = sign_notice(key, **{**fields, "sequence": fields["sequence"] + 3})
    rig.publish_raw(fleet_bundle_topic(rig.site), replay.encode())
    _refused(rig, "archive SHA-256")

    # 4. Signed with the archive's true hash, but a file differs from the signed manifest.
    changed = rig.store / "changed.tar"
    with tarfile.open(changed, "w") as tar:
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            content = path.read_bytes()
            if path.name == "README.txt":
                content = b"changed after the manifest\n"
            info = tarfile.TarInfo(path.relative_to(bundle).as_posix())
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    true_sha = file_sha256(changed)
    changed.rename(rig.store / f"{true_sha}.tar")
    mismatch = sign_notice(key, **{
        **fields, "version": "0.6.0", "sequence": fields["sequence"] + 4,
        "archive_sha256": true_sha,
        "archive_size": (rig.store / f"{true_sha}.tar").stat().st_size,
        "url": f"{rig.url}/api/v1/fleet/bundles/{true_sha}"})
    rig.publish_raw(fleet_bundle_topic(rig.site), mismatch.encode())
    _refused(rig, "tampered: README.txt")

    # Nothing switched, nothing restarted, and the gateway still polls.
    assert rig.current() == running and rig.supervisor.exits == exits
    assert not (rig.root / "pending.json").exists()
    assert not any(p.name.startswith(("0.4.0", "0.5.0", "0.6.0"))
                   for p in (rig.root / "releases").iterdir())
    assert rig.last_status()["devices"] == {"meter": "ok"}


def test_bundle_route_serves_only_published_archives(rig: Rig) -> None:
    unknown = "0" * 64
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{rig.url}/api/v1/fleet/bundles/{unknown}", timeout=10)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as traversal:
        urllib.request.urlopen(f"{rig.url}/api/v1/fleet/bundles/..%2Fetc%2Fpasswd", timeout=10)
    assert traversal.value.code in (404, 422)
    # The api serves it, without a token (gateways hold none; the notice's signature is what
    # they trust), unlike the data routes.
    from api.app import create_app

    paths = create_app().openapi()["paths"]
    assert "security" not in paths["/api/v1/fleet/bundles/{sha256}"]["get"]
    assert "security" in paths["/api/v1/equipment"]["get"]


def test_guard_rolls_back_a_release_past_its_deadline(tmp_path: Path) -> None:
    """The timer's path (a release that hangs without crashing): no start counted, only the
    deadline. since 1000 ms, deadline 1000 + 300 000 = 301 000 ms; at 301 001 it is past."""
    (tmp_path / "releases" / "a").mkdir(parents=True)
    (tmp_path / "releases" / "b").mkdir()
    upgrade_guard.point(tmp_path / "current", "releases/b")
    upgrade_guard.write_json(tmp_path / "pending.json", {
        "version": "2.0", "release": "releases/b", "previous": "releases/a", "since_ms": 1000,
        "deadline_ms": 301_000, "starts": 1, "max_starts": 3})
    assert upgrade_guard.check(tmp_path, count_start=False, now=301_000) == "pending"
    assert upgrade_guard.check(tmp_path, count_start=False, now=301_001) == "rolled-back"
    assert os.readlink(tmp_path / "current") == "releases/a"
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["state"] == "rolled-back" and "not healthy within 300 s" in result["reason"]


def test_an_installation_on_site_wins_over_a_pending_upgrade(tmp_path: Path) -> None:
    """install.sh runs `dynamo gateway releases-init`: its release becomes current, and an
    upgrade pending for another release is forgotten at the next start (not rolled back to an
    older `previous`)."""
    home = tmp_path / "opt-dynamo"
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "dynamo").write_text("#!/bin/sh\n")
    root = tmp_path / "releases"
    (root / "releases" / "new").mkdir(parents=True)
    upgrade_guard.point(root / "current", "releases/new")
    upgrade_guard.write_json(root / "pending.json", {
        "version": "9.9", "release": "releases/new", "previous": "releases/old", "since_ms": 0,
        "deadline_ms": 0, "starts": 5, "max_starts": 3})  # would roll back, were it current
    result = CliRunner().invoke(main, ["gateway", "releases-init", "--releases", str(root),
                                       "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert os.readlink(root / "current") == str(home.resolve())
    assert (root / "upgrade-guard.py").read_text() == Path(upgrade_guard.__file__).read_text()
    guard = subprocess.run([sys.executable, "-I", str(root / "upgrade-guard.py"), str(root)],
                           capture_output=True, text=True, timeout=30, check=False)
    assert guard.returncode == 0, guard.stderr
    assert os.readlink(root / "current") == str(home.resolve())
    assert not (root / "pending.json").exists() and not (root / "result.json").exists()
    # Without an installed gateway there: refused, with where.
    empty = CliRunner().invoke(main, ["gateway", "releases-init", "--releases", str(root),
                                      "--home", str(tmp_path)])
    assert empty.exit_code == 1 and f"{tmp_path}/venv/bin/dynamo" in empty.output
