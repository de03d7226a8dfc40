"""MQTT connection settings shared by every component: one place builds a paho client.

paho-mqtt 2.x with the VERSION2 callback API and MQTT 5 (needed for shared subscriptions).
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry.site import Broker


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
    if broker.tls:
        client.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
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
