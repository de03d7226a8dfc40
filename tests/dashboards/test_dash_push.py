"""`dynamo dashboards push`: grafana-client against Grafana's HTTP API.

The first tests run the real code and the real grafana-client against a small HTTP server of
the test's own on 127.0.0.1 that plays the few endpoints of Grafana's API the push uses and
records every request. The last runs against a real Grafana container where Docker is
available, and skips where it is not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from dashboards import Lang, PushError, build_dashboards, push_dashboards
from dynamo.cli import main
from dynamo.devservices import free_port

REPO = Path(__file__).resolve().parents[2]
SITES = REPO / "firmware-config" / "sites"
TOKEN = "glsa_test-token"


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class FakeGrafana:
    """Grafana's folder and dashboard endpoints, in memory."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization", "")
            state.requests.append(Recorded(self.command, self.path, auth, body))
            if auth != f"Bearer {TOKEN}":
                self._answer(401, {"message": "invalid API key"})
                return
            if self.command == "GET" and self.path.startswith("/api/folders/"):
                uid = self.path.removeprefix("/api/folders/")
                if uid in state.folders:
                    self._answer(200, {"uid": uid, "title": state.folders[uid]})
                else:
                    self._answer(404, {"message": "folder not found"})
            elif self.command == "POST" and self.path == "/api/folders":
                state.folders[body["uid"]] = body["title"]
                self._answer(200, {"uid": body["uid"], "title": body["title"]})
            elif self.command == "POST" and self.path == "/api/dashboards/db":
                dashboard = body["dashboard"]
                if body.get("folderUid") not in state.folders:
                    self._answer(400, {"message": "folder not found"})
                    return
                version = state.dashboards.get(dashboard["uid"], {}).get("version", 0) + 1
                state.dashboards[dashboard["uid"]] = {**dashboard, "version": version}
                self._answer(200, {"id": len(state.dashboards), "uid": dashboard["uid"],
                                   "url": f"/d/{dashboard['uid']}/x", "status": "success",
                                   "version": version})
            else:
                self._answer(404, {"message": "not found"})

        do_GET = do_POST = do_PUT = _handle

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_cli_push_creates_the_site_folder_then_every_dashboard(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(main, ["dashboards", "push", "--url", grafana.url,
                                       "--config-dir", str(SITES)],
                                env={"DYNAMO_GRAFANA_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert all(r.authorization == f"Bearer {TOKEN}" for r in grafana.requests)
    assert [(r.method, r.path) for r in grafana.requests[:2]] == [
        ("GET", "/api/folders/dynamo-ariege"), ("POST", "/api/folders")]
    posts = [r.body for r in grafana.requests if r.path == "/api/dashboards/db"]
    expected = build_dashboards(SITES, Lang.FR)
    assert [p["dashboard"] for p in posts] == [d.to_json() for d in expected]
    assert all(p["overwrite"] is True and p["folderUid"] == "dynamo-ariege" for p in posts)
    assert "dynamo-ariege-freezer → dynamo-ariege /d/dynamo-ariege-freezer/x (version 1)" \
        in result.output


def test_push_again_overwrites_and_reuses_the_folder(grafana: FakeGrafana) -> None:
    built = build_dashboards(SITES, Lang.EN)
    push_dashboards(built, url=grafana.url, token=TOKEN)
    before = len(grafana.requests)
    pushed = push_dashboards(built, url=grafana.url, token=TOKEN)
    again = grafana.requests[before:]
    assert [r.method for r in again if r.path.startswith("/api/folders")] == ["GET"]
    assert {p.version for p in pushed} == {2}
    assert grafana.dashboards["dynamo-ariege-overview"]["title"] == "Overview — ariege"


def test_a_refused_token_is_reported_with_its_status(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError) as caught:
        push_dashboards(build_dashboards(SITES), url=grafana.url, token="wrong")
    assert caught.value.status == 401
    result = CliRunner().invoke(main, ["dashboards", "push", "--url", grafana.url,
                                       "--token", "wrong"])
    assert result.exit_code == 1
    assert "refused" in result.output


def test_an_unreachable_grafana_is_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PushError) as caught:
        push_dashboards(build_dashboards(SITES), url=url, token=TOKEN, timeout_s=2)
    assert caught.value.status is None and "unreachable" in str(caught.value)


# -- a real Grafana, where Docker runs ----------------------------------------------------------

def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.mark.docker
@pytest.mark.skipif(not _docker_available(), reason="no Docker engine for testcontainers")
def test_push_to_a_real_grafana_container() -> None:
    from testcontainers.core.container import DockerContainer

    image = "grafana/grafana-oss:11.6.0"  # the tag docker-compose.yml pins
    with DockerContainer(image).with_exposed_ports(3000).with_env(
            "GF_SECURITY_ADMIN_PASSWORD", "test-admin") as container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(3000)}"
        admin = httpx.Client(base_url=url, auth=("admin", "test-admin"), timeout=10)
        deadline = time.monotonic() + 120
        while True:
            try:
                if admin.get("/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Grafana did not start"
            time.sleep(1)
        account = admin.post("/api/serviceaccounts", json={"name": "dynamo", "role": "Admin"})
        token = admin.post(f"/api/serviceaccounts/{account.json()['id']}/tokens",
                           json={"name": "push"}).json()["key"]
        built = build_dashboards(SITES)
        pushed = push_dashboards(built, url=url, token=token)
        assert [p.uid for p in pushed] == [d.uid for d in built]
        stored = admin.get("/api/dashboards/uid/dynamo-ariege-freezer").json()
        assert stored["meta"]["folderUid"] == "dynamo-ariege"
        assert len(stored["dashboard"]["panels"]) == len(built[2].to_json()["panels"])
