"""MQTT connection settings shared by every component: one place builds a paho client.

paho-mqtt 2.x with the VERSION2 callback API and MQTT 5 (needed for shared subscriptions).
"""

from __future__ import annotations

import logging
import os
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry.site import Broker, TlsFiles

log = logging.getLogger(__name__)


def make_client(
    *, broker: Broker, client_id: str, manual_ack: bool = False
) -> mqtt.Client:
    """A configured, not yet connected, paho client."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls is not None:
        context = tls_context(broker.tls)
        client.tls_set_context(context)
        if broker.tls.cert is not None:
            client.on_pre_connect = _CertificateReloader(context, broker.tls)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    # Unbounded in-flight/queue counts would let a long outage eat the memory; the gateway's
    # spool and the collector's backpressure are what bound the data, paho only relays it.
    client.max_inflight_messages_set(100)
    return client


def connect(client: mqtt.Client, broker: Broker, *, clean_start: bool = True,
            session_expiry_s: int = 0, receive_maximum: int = 0) -> None:
    """Start connecting in the background; paho reconnects by itself after a loss.

    `receive_maximum` (MQTT 5) caps the QoS 1 messages the broker sends before we acknowledge
    them: a consumer that acknowledges only once data is stored gets flow control from it.
    """
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
    if session_expiry_s:
        properties.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        properties.ReceiveMaximum = receive_maximum
    client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s,
                         clean_start=clean_start, properties=properties)
    client.loop_start()


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """A client TLS context: the broker verified against `tls.ca` (or the system's CAs), our
    certificate and key presented when given. TLS 1.2 at least, as the broker's listener."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.cert is not None:
            context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:  # a service's files come unchecked from its env
        raise ValueError(f"broker TLS files (ca {tls.ca}, cert {tls.cert}, key {tls.key}): "
                         f"{exc}") from exc
    return context


class _CertificateReloader:
    """paho's `on_pre_connect`: before each (re)connection, load the client certificate and
    key again if their files changed, so a renewed certificate is used from the next
    connection on without restarting the process (docs/pki.md, renewal).

    A pair that does not match (a renewal caught between its two writes) or is not the CA's
    is left for the next attempt; the context keeps the pair it had.
    """

    def __init__(self, context: ssl.SSLContext, tls: TlsFiles) -> None:
        self._context = context
        self._tls = tls
        self._stamp = self._files_stamp()

    def _files_stamp(self) -> tuple[float, ...]:
        try:
            return tuple(os.stat(p).st_mtime_ns for p in (self._tls.cert, self._tls.key) if p)
        except OSError:
            return ()

    def __call__(self, _client: mqtt.Client, _userdata: object) -> None:
        stamp = self._files_stamp()
        if not stamp or stamp == self._stamp:
            return
        from telemetry.pki import check_client_files  # cryptography, only when it is needed

        problems = check_client_files(ca=self._tls.ca, cert=self._tls.cert, key=self._tls.key,
                                      expiry=False)
        if problems:
            log.warning("new client certificate not loaded: %s", "; ".join(problems))
            return
        if self._tls.cert is not None:
            self._context.load_cert_chain(self._tls.cert, self._tls.key)
            self._stamp = stamp
            log.info("client certificate %s reloaded", self._tls.cert)
