"""HTTP SMS providers against a local server that plays the provider and checks each request;
failures (timeout, 4xx, 5xx) fall back to the next notifier."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from alerting.notifier import FallbackNotifier, NotifierError
from alerting.providers import FreeMobileNotifier, OvhNotifier, TwilioNotifier, WebhookNotifier

TEXT = "[DYNAMO] Alerte n°7 – Cellule : porte ouverte. Répondez OK 7."
TO = "+33611223344"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Provider:
    """A loopback HTTP server: `answer(request) -> (status, json body)`, every request kept."""

    answer: Callable[[Request], tuple[int, Any]]
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def provider() -> Iterator[Callable[..., Provider]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[Request], tuple[int, Any]], delay_s: float = 0.0) -> Provider:
        state = Provider(answer=answer, delay_s=delay_s)

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length))
                state.requests.append(request)
                time.sleep(state.delay_s)
                status, body = state.answer(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_ovh_signs_and_posts_a_job(provider: Callable[..., Provider]) -> None:
    server_time = int(time.time()) + 5

    def answer(request: Request) -> tuple[int, Any]:
        if request.path == "/auth/time":
            return 200, server_time
        return 200, {"ids": [123456], "invalidReceivers": [], "validReceivers": [TO]}

    ovh = provider(answer)
    notifier = OvhNotifier(service_name="sms-ab12345-1", application_key="ak",
                           application_secret="as", consumer_key="ck", sender="DYNAMO",
                           base_url=ovh.url)
    assert notifier.send(to=TO, text=TEXT) == "123456"
    job = ovh.requests[-1]
    assert (job.method, job.path) == ("POST", "/sms/sms-ab12345-1/jobs")
    body = json.loads(job.body)
    assert body["receivers"] == [TO] and body["message"] == TEXT and body["sender"] == "DYNAMO"
    assert job.headers["x-ovh-application"] == "ak" and job.headers["x-ovh-consumer"] == "ck"
    # The signature OVHcloud checks: $1$ + SHA1(AS+CK+METHOD+URL+BODY+TIMESTAMP).
    timestamp = job.headers["x-ovh-timestamp"]
    url = f"{ovh.url}/sms/sms-ab12345-1/jobs"
    expected = hashlib.sha1("+".join(["as", "ck", "POST", url, job.body.decode(), timestamp])
                            .encode()).hexdigest()
    assert job.headers["x-ovh-signature"] == f"$1${expected}"
    assert abs(int(timestamp) - server_time) <= 2  # clock delta taken from /auth/time


def test_twilio_creates_a_message(provider: Callable[..., Provider]) -> None:
    twilio = provider(lambda request: (201, {"sid": "SM0123", "status": "queued"}))
    notifier = TwilioNotifier(account_sid="AC42", auth_token="secret", from_number="+33700000000",
                              base_url=twilio.url)
    assert notifier.send(to=TO, text=TEXT) == "SM0123"
    [request] = twilio.requests
    assert (request.method, request.path) == ("POST", "/2010-04-01/Accounts/AC42/Messages.json")
    form = parse_qs(request.body.decode())
    assert form == {"To": [TO], "From": ["+33700000000"], "Body": [TEXT]}
    assert request.headers["authorization"] == \
        "Basic " + base64.b64encode(b"AC42:secret").decode()


def test_free_mobile_sends_only_to_its_own_line(provider: Callable[..., Provider]) -> None:
    free = provider(lambda request: (200, {}))
    notifier = FreeMobileNotifier(user="12345678", password="key", phone=TO, base_url=free.url)
    notifier.send(to=TO, text=TEXT)
    [request] = free.requests
    assert request.path == "/sendmsg"
    assert request.query == {"user": ["12345678"], "pass": ["key"], "msg": [TEXT]}
    with pytest.raises(NotifierError, match="only to its account's line"):
        notifier.send(to="+33699999999", text=TEXT)
    assert len(free.requests) == 1


def test_webhook_posts_json_with_its_token(provider: Callable[..., Provider]) -> None:
    hook = provider(lambda request: (202, {}))
    WebhookNotifier(url=f"{hook.url}/sms", token="t0k").send(to=TO, text=TEXT)
    [request] = hook.requests
    assert request.path == "/sms" and request.headers["authorization"] == "Bearer t0k"
    assert json.loads(request.body) == {"to": TO, "text": TEXT}


@pytest.mark.parametrize("failure", ["timeout", "4xx", "5xx"])
def test_failure_falls_back_to_the_next_notifier(provider: Callable[..., Provider],
                                                 failure: str) -> None:
    status = {"timeout": 200, "4xx": 403, "5xx": 503}[failure]
    broken = provider(lambda request: (status, {"message": "nope"}),
                      delay_s=2.0 if failure == "timeout" else 0.0)
    backup = provider(lambda request: (200, {}))
    first = WebhookNotifier(url=f"{broken.url}/sms", timeout_s=0.5)
    second = FreeMobileNotifier(user="u", password="p", phone=TO, base_url=backup.url)
    delivery = FallbackNotifier(notifiers=[first, second]).deliver(to=TO, text=TEXT)
    assert delivery.ok and delivery.notifier == "free_mobile"
    assert delivery.detail.startswith("webhook: ")
    expected = {"timeout": "ReadTimeout", "4xx": "HTTP 403", "5xx": "HTTP 503"}[failure]
    assert expected in delivery.detail
    assert len(broken.requests) == 1 and len(backup.requests) == 1


def test_every_provider_failing_is_a_failed_delivery(provider: Callable[..., Provider]) -> None:
    down = provider(lambda request: (500, {"message": "Internal"}))
    notifiers = [TwilioNotifier(account_sid="AC1", auth_token="x", from_number="+33700000000",
                                base_url=down.url),
                 FreeMobileNotifier(user="u", password="p", phone=TO, base_url=down.url)]
    delivery = FallbackNotifier(notifiers=notifiers).deliver(to=TO, text=TEXT)
    assert not delivery.ok
    assert "twilio: " in delivery.detail
    assert "free_mobile: HTTP 500: server error" in delivery.detail
