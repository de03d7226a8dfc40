"""A fault proxy between the collector and the real influxd, on loopback.

An HTTP/1.1 proxy (threads, keep-alive) that forwards each request to InfluxDB unchanged, or
misbehaves on `/write` as told:

- `Fault.ERROR_500`: answers 500 without forwarding;
- `Fault.UNAVAILABLE_503`: answers 503 with `Retry-After: N` without forwarding;
- `Fault.CLOSE_MID_RESPONSE`: forwards (InfluxDB stores the points), then sends the status line,
  headers and half the body, and closes: the client cannot know the write succeeded;
- `Fault.HANG`: forwards, then holds the connection without a word for `hang_s` and closes;
- `Fault.REFUSE`: an outage: the listening socket is closed (connections refused) and open
  connections are dropped, until `clear()` listens again on the same port.

The forwarding faults are the hard case for "none duplicated": the points are in InfluxDB and
the collector writes them again. Every `/write` is logged (`writes`) with its time, fault and
the status InfluxDB gave, so tests can check when the collector came back.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Fault(Enum):
    PASS = "pass"
    ERROR_500 = "500"
    UNAVAILABLE_503 = "503"
    CLOSE_MID_RESPONSE = "close"
    HANG = "hang"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class WriteSeen:
    at: float  # time.monotonic() when the request arrived
    fault: Fault
    forwarded_status: int | None  # InfluxDB's answer when the request was forwarded


class FaultProxy:
    """`url` is what the collector's InfluxClient gets; `upstream` the real influxd."""

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 8086)
        self._lock = threading.Lock()
        self._fault = Fault.PASS
        self._times: int | None = None  # faults left before PASS again (None: until cleared)
        self.retry_after_s = 2
        self.hang_s = 4.0
        self.writes: list[WriteSeen] = []
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = port
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control --------------------------------------------------------------------------------

    def set(self, fault: Fault, *, times: int | None = None) -> None:
        """Misbehave from now on, for the next `times` writes or until `clear()`."""
        with self._lock:
            self._fault, self._times = fault, times
        if fault is Fault.REFUSE:
            self._unlisten()

    def clear(self) -> None:
        """Forward everything again (and listen again after an outage)."""
        with self._lock:
            refusing = self._fault is Fault.REFUSE
            self._fault, self._times = Fault.PASS, None
        if refusing:
            self._listen()

    def close(self) -> None:
        self._closing.set()
        self._unlisten()

    def _take(self, path: str) -> Fault:
        """The fault for this request (writes only), counting down `times`."""
        if not path.startswith("/write"):
            return Fault.REFUSE if self._fault is Fault.REFUSE else Fault.PASS
        with self._lock:
            fault = self._fault
            if fault is not Fault.PASS and self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._fault, self._times = Fault.PASS, None
            return fault

    # -- listening ------------------------------------------------------------------------------

    def _listen(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="faultproxy").start()

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx uses InfluxDB

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        proxy = self.owner
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        fault = proxy._take(self.path)
        if fault is Fault.REFUSE:
            self._drop()
            return
        write = self.path.startswith("/write")
        status: int | None = None
        if fault in (Fault.ERROR_500, Fault.UNAVAILABLE_503):
            if write:
                proxy.writes.append(WriteSeen(time.monotonic(), fault, None))
            extra = {"Retry-After": str(proxy.retry_after_s)} \
                if fault is Fault.UNAVAILABLE_503 else {}
            self._answer(int(fault.value), b'{"error":"injected fault"}', extra)
            return
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "content-length")}
        status, out_headers, data = proxy.forward(self.command, self.path, headers, body)
        if write:
            proxy.writes.append(WriteSeen(time.monotonic(), fault, status))
        if fault is Fault.CLOSE_MID_RESPONSE:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"results":[')
            self.wfile.flush()
            self._drop()
            return
        if fault is Fault.HANG:
            proxy._closing.wait(proxy.hang_s)
            self._drop()
            return
        passed = {k: v for k, v in out_headers
                  if k.lower() not in ("connection", "transfer-encoding", "content-length")}
        self._answer(status, data, passed)

    def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection at once, without a (complete) response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
