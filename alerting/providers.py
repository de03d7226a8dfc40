"""HTTP SMS providers: OVHcloud (ovh SDK), Twilio (twilio SDK), Free Mobile, a generic webhook.

Each `send` translates its library's errors (timeouts, 4xx, 5xx) into `NotifierError`, once,
here; `FallbackNotifier` then tries the next provider. `base_url` exists so that a test or a
relay can stand in for the provider's host; production leaves the default.
"""

from __future__ import annotations

from typing import Any

import httpx
import ovh
import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from alerting.notifier import NotifierError

DEFAULT_TIMEOUT_S = 10.0


class OvhNotifier:
    """OVHcloud SMS: `POST /sms/{serviceName}/jobs` through the `ovh` SDK (signed requests)."""

    name = "ovh"

    def __init__(self, *, service_name: str, application_key: str, application_secret: str,
                 consumer_key: str, sender: str | None = None, endpoint: str = "ovh-eu",
                 base_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.service_name = service_name
        self.sender = sender
        self._client = ovh.Client(endpoint=endpoint, application_key=application_key,
                                  application_secret=application_secret,
                                  consumer_key=consumer_key, timeout=timeout_s)
        if base_url is not None:
            # The SDK only knows its named regions; its requests all start from `_endpoint`.
            self._client._endpoint = base_url.rstrip("/")

    def send(self, *, to: str, text: str) -> str:
        body: dict[str, Any] = {"message": text, "receivers": [to], "noStopClause": True,
                                "priority": "high"}
        if self.sender:
            body["sender"] = self.sender
        else:
            # No registered sender: a short number that can receive replies.
            body["senderForResponse"] = True
        try:
            result = self._client.post(f"/sms/{self.service_name}/jobs", **body)
        except ovh.exceptions.APIError as exc:
            raise NotifierError(self.name, f"{type(exc).__name__}: {exc}") from exc
        invalid = result.get("invalidReceivers") or []
        if to in invalid:
            raise NotifierError(self.name, f"receiver {to} refused")
        return ",".join(str(i) for i in result.get("ids", [])) or "accepted"


class TwilioNotifier:
    """Twilio Programmable Messaging through the `twilio` SDK."""

    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str,
                 base_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.from_number = from_number
        self._client = TwilioClient(account_sid, auth_token,
                                    http_client=TwilioHttpClient(timeout=timeout_s))
        if base_url is not None:
            self._client.api.base_url = base_url.rstrip("/")

    def send(self, *, to: str, text: str) -> str:
        try:
            message = self._client.messages.create(to=to, from_=self.from_number, body=text)
        except TwilioException as exc:
            raise NotifierError(self.name, str(exc).splitlines()[0] or type(exc).__name__) \
                from exc
        except requests.RequestException as exc:
            raise NotifierError(self.name, f"{type(exc).__name__}: {exc}") from exc
        return str(message.sid)


# Free Mobile's documented status codes.
_FREE_MOBILE_ERRORS = {400: "missing parameter", 402: "too many SMS sent too quickly",
                       403: "service not enabled or wrong credentials", 500: "server error"}


class FreeMobileNotifier:
    """Free Mobile's notification API: free, but only to the account holder's own line."""

    name = "free_mobile"

    def __init__(self, *, user: str, password: str, phone: str,
                 base_url: str = "https://smsapi.free-mobile.fr",
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.phone = phone
        self._user = user
        self._password = password
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def send(self, *, to: str, text: str) -> str:
        if to != self.phone:
            raise NotifierError(self.name, f"sends only to its account's line, not to {to}")
        try:
            response = self._http.get("/sendmsg", params={"user": self._user,
                                                          "pass": self._password, "msg": text})
        except httpx.HTTPError as exc:
            raise NotifierError(self.name, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            reason = _FREE_MOBILE_ERRORS.get(response.status_code, "unexpected answer")
            raise NotifierError(self.name, f"HTTP {response.status_code}: {reason}")
        return "accepted"


class WebhookNotifier:
    """POSTs `{"to", "text"}` as JSON to a URL (an SMS relay, a chat bridge...)."""

    name = "webhook"

    def __init__(self, *, url: str, token: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(timeout=timeout_s, headers=headers)

    def send(self, *, to: str, text: str) -> str:
        try:
            response = self._http.post(self.url, json={"to": to, "text": text})
        except httpx.HTTPError as exc:
            raise NotifierError(self.name, f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise NotifierError(self.name, f"HTTP {response.status_code}")
        return str(response.headers.get("x-request-id", f"HTTP {response.status_code}"))
