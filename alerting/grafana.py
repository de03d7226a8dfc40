"""Grafana alert webhooks (a "webhook" contact point) routed to SMS through the engine.

Grafana POSTs `{receiver, status, alerts[{status, labels, annotations, fingerprint, values…}]}`.
Each alert becomes an engine alert keyed by its fingerprint: the same SMS, repeats and
acknowledgement by reply as the rules' own. Labels may carry `equipment`, `severity` and
`contacts` (comma-separated contact ids); otherwise the rules file's `grafana` routing applies.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerting.engine import Engine
from alerting.rules import Notify
from telemetry.errors import first_error

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000


class GrafanaAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    fingerprint: str = Field(min_length=1, max_length=64)
    values: dict[str, float | None] | None = None


class GrafanaPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    receiver: str = ""
    status: str = ""
    alerts: list[GrafanaAlert] = Field(max_length=500)


class GrafanaReceiver:
    """A small HTTP endpoint (`POST /grafana`) on its own thread."""

    def __init__(self, *, engine: Engine, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        self.engine = engine
        self.accepted = 0
        self.refused = 0
        self._token = token
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, body = receiver.handle(path=self.path,
                                               authorization=self.headers.get("Authorization"),
                                               length=int(self.headers.get("Content-Length")
                                                          or 0),
                                               read=self.rfile.read)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="grafana-hook",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/grafana"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, *, path: str, authorization: str | None, length: int,
               read: Any) -> tuple[int, dict[str, Any]]:
        """One request: (HTTP status, JSON answer). Refusals are counted, never raised."""
        if path.rstrip("/") != "/grafana":
            return 404, {"error": "POST /grafana"}
        if self._token and not hmac.compare_digest(authorization or "",
                                                   f"Bearer {self._token}"):
            self.refused += 1
            return 401, {"error": "bad or missing bearer token"}
        if length <= 0 or length > MAX_BODY:
            self.refused += 1
            return 413 if length > MAX_BODY else 400, {"error": "body size"}
        try:
            payload = GrafanaPayload.model_validate_json(read(length))
        except ValidationError as exc:
            self.refused += 1
            return 400, {"error": first_error(exc)}
        alerts = []
        for alert in payload.alerts:
            self._route(alert)
            alerts.append(alert.fingerprint)
        self.accepted += len(alerts)
        return 200, {"accepted": alerts}

    def _route(self, alert: GrafanaAlert) -> None:
        config = self.engine.config
        routing = config.grafana
        known = {c.id for c in config.contacts}
        wanted = tuple(c.strip() for c in alert.labels.get("contacts", "").split(",")
                       if c.strip() in known)
        if wanted:
            notify = Notify(contacts=wanted, repeat_every_min=0, escalate_after_min=0)
        elif routing is not None:
            notify = routing.notify
        else:
            notify = config.defaults
        severity = alert.labels.get("severity", routing.severity if routing else "warning")
        if severity not in ("info", "warning", "critical"):
            severity = "warning"
        name = (alert.annotations.get("summary") or alert.labels.get("alertname")
                or "Alerte Grafana")[:80]
        values = [v for v in (alert.values or {}).values() if v is not None]
        self.engine.external(key=alert.fingerprint, firing=alert.status == "firing", name=name,
                             equipment=alert.labels.get("equipment", "grafana"),
                             severity=severity, notify=notify,
                             value=values[0] if values else None)
