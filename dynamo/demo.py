"""`dynamo demo`: the whole chain on one machine, each component in its own process.

simulators (Modbus TCP) → three gateways → Mosquitto → collector → InfluxDB → api
Everything listens on 127.0.0.1; broker and database are private instances in `workdir`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dynamo.devservices import InfluxdProcess, MosquittoProcess, free_port, stop_processes

REPO = Path(__file__).resolve().parents[1]
SITES = REPO / "firmware-config" / "sites"
GATEWAYS = {"dryer-gw": "ariege/dryer.yaml", "freezer-gw": "ariege/freezer.yaml",
            "packaging-gw": "ariege/packaging.yaml"}


def _free_base() -> int:
    """A port with its two successors free, for the three simulators."""
    for _ in range(50):
        base = free_port()
        if base < 65000 and all(_is_free(base + i) for i in range(3)):
            return base
    raise RuntimeError("no three consecutive free ports found")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_demo(*, api_port: int, speed: float, workdir: Path) -> None:
    """Start everything, print where to look, and run until Ctrl-C."""
    if not _is_free(api_port):
        raise SystemExit(f"port {api_port} is taken: pass --api-port")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    users = {u: secrets.token_urlsafe(16) for u in (*GATEWAYS, "collector", "api")}
    influxd = InfluxdProcess(workdir=workdir / "influxd")
    broker = MosquittoProcess(workdir=workdir / "mosquitto", users=users,
                              acl_file=REPO / "firmware-config" / "broker" / "acl")
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        influxd.start()
        broker.start()
        credentials = workdir / "credentials.txt"
        credentials.write_text("".join(f"{u} {p}\n" for u, p in users.items()))
        credentials.chmod(0o600)
        base = _free_base()
        env = {
            **os.environ,
            "DYNAMO_MQTT_HOST": broker.host, "DYNAMO_MQTT_PORT": str(broker.port),
            "DYNAMO_INFLUX_URL": influxd.url, "DYNAMO_INFLUX_DB": "dynamo",
            "DYNAMO_SIM_HOST": "127.0.0.1", "DYNAMO_DRYER_SIM_PORT": str(base),
            "DYNAMO_FREEZER_SIM_PORT": str(base + 1), "DYNAMO_PACKAGING_SIM_PORT": str(base + 2),
            "DYNAMO_SITE_CONFIGS": str(SITES), "DYNAMO_SPOOL_DIR": str(workdir / "spool"),
            "DYNAMO_API_DATABASE_URL": f"sqlite:///{workdir / 'api.sqlite3'}",
            **{f"DYNAMO_MQTT_PASSWORD_{gw.upper().replace('-', '_')}": users[gw]
               for gw in GATEWAYS},
        }
        dynamo = [sys.executable, "-m", "dynamo"]
        logs = workdir / "logs"
        logs.mkdir()

        def spawn(name: str, args: list[str], **extra: str) -> None:
            with (logs / f"{name}.log").open("ab") as log:
                children[name] = subprocess.Popen(
                    [*dynamo, *args], env={**env, **extra}, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)

        spawn("simulators", ["simulate", "--machine", "all", "--port-base", str(base),
                             "--speed", str(speed)])
        spawn("collector", ["collector", "run", "--dead-letters",
                            str(workdir / "collector" / "dead-letters.sqlite")],
              DYNAMO_MQTT_USERNAME="collector", DYNAMO_MQTT_PASSWORD=users["collector"])
        for gw, config in GATEWAYS.items():
            spawn(gw, ["gateway", "run", "--config", str(SITES / config)])
        # Every route but /health needs a token: make an admin one for the person at the demo.
        token = subprocess.run([*dynamo, "api", "token", "create", "--role", "admin",
                                "--name", "demo"], env=env, capture_output=True, text=True,
                               check=True, timeout=120).stdout.strip()
        spawn("api", ["api", "run", "--port", str(api_port)],
              DYNAMO_MQTT_USERNAME="api", DYNAMO_MQTT_PASSWORD=users["api"])
        _wait_api(api_port, children)
        _announce(api_port, influxd, broker, workdir, speed, token)
        _supervise(children)
    finally:
        stop_processes(children.values(), timeout_s=10)
        broker.stop()
        influxd.stop()


def _wait_api(port: int, children: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _check_alive(children)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the api did not become healthy within 60 s; see the logs")


def _check_alive(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, child in children.items():
        if child.poll() is not None:
            raise SystemExit(f"{name} exited with code {child.returncode}; see its log")


def _announce(port: int, influxd: InfluxdProcess, broker: MosquittoProcess, workdir: Path,
              speed: float, token: str) -> None:
    api = f"http://127.0.0.1:{port}"
    print(f"""
DYNAMO demo running (simulated time ×{speed:g}). Ctrl-C stops everything.

  api docs         {api}/docs   (Authorize with the token below)
  api token        {token}
                   e.g. curl -H "Authorization: Bearer {token}" {api}/api/v1/equipment
  health           {api}/api/v1/health
  equipment        {api}/api/v1/equipment
  latest readings  {api}/api/v1/sites/ariege/equipment/dryer/latest
  energy           {api}/api/v1/sites/ariege/equipment/freezer/energy?start=…&end=…
  InfluxDB (v1)    {influxd.url}  database "dynamo"
  Mosquitto        {broker.host}:{broker.port}  (users and passwords: {workdir}/credentials.txt)
  logs             {workdir}/logs/
""", flush=True)


def _supervise(children: dict[str, subprocess.Popen[bytes]]) -> None:
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.append(s))
    while not stop:
        _check_alive(children)
        time.sleep(1)
    print("stopping…", flush=True)
