"""The api's Prometheus metrics: requests by route template and status, and their latency.

Served at the api's own `GET /metrics`. Prometheus' convention is an unauthenticated scrape
on an internal interface, so by default only a loopback client that did not come through a
proxy (no `X-Forwarded-For`/`Forwarded` header) is answered; anyone else gets 404, as if the
route did not exist. A remote Prometheus sends `DYNAMO_API_METRICS_TOKEN` as a bearer token
instead (its scrape configuration's `authorization`). Settings in api/settings.py, reasons in
docs/operations.md.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import telemetry.metrics  # noqa: F401  (no `_created` series: the same for every service)

_PREFIX = "dynamo_api"
UNMATCHED = "<unmatched>"  # the route label of a path no route serves: scanners stay one series
# Seconds: the console's pages take tens of milliseconds, a report's PDF several seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """One app's registry (several apps may live in one process, in the tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(f"{_PREFIX}_requests", "HTTP requests answered, by route "
                                "template, method and status code",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(f"{_PREFIX}_request_duration_seconds",
                                 "Time from request to the end of the response, by route "
                                 "template and method", ["route", "method"],
                                 buckets=_BUCKETS, registry=self.registry)

    def observe(self, *, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route, method=method).observe(seconds)


class MetricsMiddleware:
    """Counts every HTTP request once its response has gone, under its route's template."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started is what the client sees

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(route=route_template(scope), method=scope["method"],
                                 status=status, seconds=time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """`/api/v1/sites/{site}/equipment`, never the concrete path: bounded label values.

    The matched route knows its own template, without the prefix of the router that included
    it (FastAPI keeps the original route): the prefix is the part of the request's path in
    front of what the route's pattern matches.
    """
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED
    pattern = getattr(route, "path_regex", None)
    path = str(scope.get("path", ""))
    if pattern is None or pattern.match(path):
        return template
    for cut in (i for i, char in enumerate(path) if char == "/" and i > 0):
        if pattern.match(path[cut:]):
            return path[:cut] + template
    return template


def may_scrape(request: Request, *, token: str | None) -> bool:
    """A loopback client not behind a proxy, or one that shows the metrics token."""
    if token:
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_response(request: Request, metrics: ApiMetrics, *, token: str | None) -> Response:
    """The exposition text, or a plain 404 for whoever may not scrape."""
    if not may_scrape(request, token=token):
        return Response(status_code=404, content=b'{"detail":"Not Found"}',
                        media_type="application/json")
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
