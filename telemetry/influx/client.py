"""A small client for the InfluxDB v1 HTTP API (`/write`, `/query`, `/ping`).

InfluxDB 1.x serves this API natively; 2.x and 3 Core serve it for compatibility, with the token
in `Authorization: Token …`. The library's errors are translated into ours here, and only here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

try:  # ISA-L's gzip: the same format, several times less CPU than zlib at level 1
    from isal.igzip import compress as _gzip
except ImportError:  # a machine without the server extra (a Pi): the standard library's
    from gzip import compress as _gzip  # type: ignore[assignment]


# A server asking for more than this (a misconfigured proxy) is retried after this anyway.
MAX_RETRY_AFTER_S = 300.0


class InfluxError(Exception):
    """Base of InfluxDB errors."""


class InfluxUnavailable(InfluxError):
    """The server cannot be reached or failed (connection error, timeout, 5xx): retry later."""


class InfluxThrottled(InfluxUnavailable):
    """429: retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InfluxRejected(InfluxError):
    """400 and friends: the request itself is wrong; retrying the same request will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InfluxTooLarge(InfluxRejected):
    """413: the body is over the server's limit; split the batch."""


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    columns: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    tags: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


class InfluxClient:
    """Synchronous v1 API client. One instance per process; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        *,
        url: str,
        database: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        gzip_writes: bool = True,
    ) -> None:
        if token and (username or password):
            raise ValueError("give either a token (2.x/3.x) or username/password (1.x), not both")
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self.database = database
        self.url = url.rstrip("/")
        self._gzip = gzip_writes
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=auth,
                                  timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        if response.status_code < 300:
            return response
        text = response.text[:500]
        if response.status_code == 429:
            raise InfluxThrottled(f"InfluxDB throttled: {text}",
                                  retry_after(response.headers.get("Retry-After")))
        if response.status_code in (502, 503, 504) and "Retry-After" in response.headers:
            # Maintenance or an overloaded proxy saying when to come back (RFC 9110 §10.2.3).
            raise InfluxThrottled(f"InfluxDB {response.status_code}: {text}",
                                  retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise InfluxUnavailable(f"InfluxDB {response.status_code}: {text}")
        if response.status_code == 413:
            raise InfluxTooLarge(f"InfluxDB refused a too large body: {text}", 413)
        raise InfluxRejected(f"InfluxDB {response.status_code}: {text}", response.status_code)

    def ping(self) -> str:
        """The server's version; raises `InfluxUnavailable` when it does not answer."""
        response = self._request("GET", "/ping")
        return str(response.headers.get("X-Influxdb-Version", "unknown"))

    def write(self, lines: Iterable[str], *, precision: str = "ms") -> None:
        """Write line-protocol lines in one request (an item may hold several, newline-joined)."""
        body = "\n".join(lines).encode()  # no final newline: one copy less of a large batch
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._gzip:
            body = _gzip(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self._request("POST", "/write", params={"db": self.database, "precision": precision},
                      content=body, headers=headers)

    def query(self, influxql: str) -> list[Series]:
        """Run InfluxQL read statements; times come back as epoch milliseconds."""
        response = self._request("POST", "/query",
                                 data={"db": self.database, "q": influxql, "epoch": "ms"})
        return _parse_series(response.json(), influxql)

    def create_database(self) -> None:
        """1.x only (2.x creates the bucket at init, 3 Core on first write): see `setup`."""
        self._request("POST", "/query", data={"q": f'CREATE DATABASE "{self.database}"'})


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date
    (RFC 9110 §10.2.3); None when absent or unreadable; capped at `MAX_RETRY_AFTER_S`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)


def _parse_series(body: dict[str, Any], influxql: str) -> list[Series]:
    out: list[Series] = []
    for result in body.get("results", []):
        if "error" in result:
            raise InfluxRejected(f"query failed: {result['error']} in {influxql[:200]}", 400)
        for series in result.get("series", []):
            out.append(Series(
                name=series.get("name", ""),
                columns=tuple(series.get("columns", ())),
                values=tuple(tuple(v) for v in series.get("values", ())),
                tags=dict(series.get("tags", {})),
            ))
    if "error" in body:
        raise InfluxRejected(f"query failed: {body['error']}", 400)
    return out


def first_value(series: Sequence[Series], column: str) -> Any:
    """The value of `column` in the first row of the first series, or None."""
    for s in series:
        for row in s.rows():
            return row.get(column)
    return None
