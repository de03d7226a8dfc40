"""Who gets in over TLS, on the real Mosquitto with the listener of
firmware-config/broker/conf.d/tls.conf.example (`require_certificate`, CN = user name, CRL):
a certificate of the site CA, valid and not revoked, and nothing else; then the generated
per-site ACL applies to the certificate's CN exactly as on the plain listener.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dynamo.devservices import wait_until
from telemetry.pki import Pki
from telemetry.site import Broker, TlsFiles
from telemetry.topics import status_topic, telemetry_topic

Attempts = Callable[..., Any]
REPO = Path(__file__).resolve().parents[2]


def test_a_certificate_of_the_site_ca_is_let_in(tls_site: Any, attempt: Attempts) -> None:
    assert attempt(tls_site.tls_broker("dryer-gw")).outcome() == "accepted"


def test_no_client_certificate_is_refused(tls_site: Any, attempt: Attempts) -> None:
    broker = Broker(host=tls_site.broker.host, port=tls_site.broker.tls_port,
                    tls=TlsFiles(ca=str(tls_site.pki.ca_cert)))
    # A password does not replace the certificate either: the listener requires one.
    outcome = attempt(broker, username="collector",
                      password=tls_site.passwords["collector"]).outcome()
    assert outcome != "accepted"


def test_a_certificate_of_another_ca_is_refused(tls_site: Any, attempt: Attempts,
                                                tmp_path: Path) -> None:
    other = Pki(tmp_path / "other")
    other.init(common_name="DYNAMO site CA")  # same name, another key: not ours
    other.issue_client("dryer-gw")
    broker = tls_site.tls_broker("dryer-gw", cert=other.client_cert("dryer-gw"),
                                 key=other.client_key("dryer-gw"))
    assert attempt(broker).outcome() != "accepted"


def test_an_expired_certificate_is_refused(tls_site: Any, attempt: Attempts,
                                           tmp_path: Path) -> None:
    # Valid from 400 days ago for 397 days: it ended 3 days ago.
    pki = Pki(tmp_path / "copy")
    _share_ca(tls_site.pki, pki)
    pki.issue_client("dryer-gw", days=397,
                     not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400))
    broker = tls_site.tls_broker("dryer-gw", cert=pki.client_cert("dryer-gw"),
                                 key=pki.client_key("dryer-gw"))
    assert attempt(broker).outcome() != "accepted"


def test_a_revoked_certificate_is_refused_once_the_broker_reloads(
        tls_site: Any, attempt: Attempts) -> None:
    pki: Pki = tls_site.pki
    first = attempt(tls_site.tls_broker("freezer-gw"))
    assert first.outcome() == "accepted"
    old = pki.client_cert("freezer-gw").read_bytes(), pki.client_key("freezer-gw").read_bytes()
    stolen_cert, stolen_key = pki.directory / "stolen.pem", pki.directory / "stolen.key"
    stolen_cert.write_bytes(old[0])
    stolen_key.write_bytes(old[1])
    stolen_key.chmod(0o600)
    pki.revoke(name="freezer-gw")
    pki.issue_client("freezer-gw")  # the gateway's replacement
    tls_site.broker.reload()
    # The reload is asynchronous: poll until the broker refuses the revoked certificate.
    deadline = time.monotonic() + 15
    while True:
        outcome = attempt(tls_site.tls_broker("freezer-gw", cert=stolen_cert,
                                              key=stolen_key)).outcome()
        if outcome != "accepted" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert outcome != "accepted"
    # Revocation is per certificate: the gateway's new one gets in.
    assert attempt(tls_site.tls_broker("freezer-gw")).outcome() == "accepted"


def _share_ca(source: Pki, target: Pki) -> None:
    """A second folder signing with the same CA (to issue certificates `source` won't list)."""
    target.directory.mkdir(parents=True)
    for path in (source.ca_cert, source.ca_key, source.crl):
        (target.directory / path.name).write_bytes(path.read_bytes())


# -- the ACL over TLS: the certificate's CN is the user name --------------------------------


def test_a_gateway_publishes_only_under_its_own_site_and_prefix(tls_site: Any,
                                                                attempt: Attempts) -> None:
    gateway = attempt(tls_site.tls_broker("dryer-gw"))
    assert gateway.outcome() == "accepted"
    mine = gateway.publish(telemetry_topic("ariege", "dryer-gw", "dryer"))
    other_site = gateway.publish(telemetry_topic("cantal", "dryer-gw", "dryer"))
    other_gateway = gateway.publish(telemetry_topic("ariege", "freezer-gw", "freezer"))
    # Overwriting another gateway's retained status (faking it online) is refused too.
    other_status = gateway.publish(status_topic("ariege", "freezer-gw"), retain=True)
    assert not mine.is_failure
    # 0x87 Not authorized, MQTT 5 §3.4.2.1
    assert (other_site.value, other_gateway.value, other_status.value) == (0x87, 0x87, 0x87)


def test_a_gateway_reads_nothing_of_another_gateway(tls_site: Any, attempt: Attempts) -> None:
    reader = attempt(tls_site.tls_broker("dryer-gw"))
    assert reader.outcome() == "accepted"
    reader.subscribe("dynamo/v1/#")
    writer = attempt(tls_site.tls_broker("freezer-gw"))
    assert writer.outcome() == "accepted"
    collector = attempt(tls_site.tls_broker("collector"))
    assert collector.outcome() == "accepted"
    collector.subscribe("dynamo/v1/ariege/#")
    topic = telemetry_topic("ariege", "freezer-gw", f"f{uuid.uuid4().hex[:6]}")
    assert not writer.publish(topic).is_failure
    # The collector reads it; by then the broker has dealt with the gateway's subscription too.
    wait_until(lambda: topic in collector.seen(), timeout_s=15, what="the collector's copy")
    time.sleep(0.3)
    assert topic not in reader.seen()


def test_the_certificate_not_the_mqtt_username_is_the_identity(tls_site: Any,
                                                              attempt: Attempts) -> None:
    # A gateway's certificate with the collector's name and password: still the gateway.
    client = attempt(tls_site.tls_broker("dryer-gw"), username="collector",
                     password=tls_site.passwords["collector"])
    assert client.outcome() == "accepted"
    refused = client.publish(telemetry_topic("ariege", "freezer-gw", "freezer"))
    assert refused.value == 0x87
    client.subscribe("dynamo/v1/#")
    writer = attempt(tls_site.tls_broker("freezer-gw"))
    assert writer.outcome() == "accepted"
    topic = telemetry_topic("ariege", "freezer-gw", f"f{uuid.uuid4().hex[:6]}")
    assert not writer.publish(topic).is_failure
    time.sleep(0.5)
    assert topic not in client.seen()


def test_the_plain_listener_still_takes_passwords(tls_site: Any, attempt: Attempts) -> None:
    plain = Broker(host=tls_site.broker.host, port=tls_site.broker.port)
    assert attempt(plain, username="collector",
                   password=tls_site.passwords["collector"]).outcome() == "accepted"
    assert attempt(plain, username="collector", password="wrong").outcome() != "accepted"


def _directives(lines: list[str]) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in lines if line.strip() and not line.startswith("#"))
    return {key: value.strip() for key, value in pairs}


def test_the_listener_tested_is_the_shipped_one(tls_site: Any) -> None:
    """The suite's TLS listener says what firmware-config/broker/conf.d/tls.conf.example says,
    only with the suite's port and files: these tests are about the shipped configuration."""
    shipped = _directives((REPO / "firmware-config/broker/conf.d/tls.conf.example")
                          .read_text().splitlines())
    config = tls_site.broker.config_file.read_text().splitlines()
    start = config.index(f"listener {tls_site.broker.tls_port} 127.0.0.1")
    tested = _directives(config[start:])
    assert shipped.pop("listener") == "8883" and shipped.pop("protocol") == "mqtt"
    tested.pop("listener")
    files = ("cafile", "certfile", "keyfile", "crlfile")
    assert {k: v for k, v in shipped.items() if k not in files} == \
        {k: v for k, v in tested.items() if k not in files}
    # The same files: the PKI folder's layout under /mosquitto/certs.
    assert {k: shipped[k].removeprefix("/mosquitto/certs/") for k in files} == \
        {k: str(Path(tested[k]).relative_to(tls_site.pki.directory)) for k in files}
