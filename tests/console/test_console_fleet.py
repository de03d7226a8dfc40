"""The admins' fleet page in Debian's Chromium against the real console server and the suite's
mosquitto: a gateway's retained status (as the agent publishes it, with a pushed configuration,
a refused one and the numbers a power cut left void) shows in the table, in French and in
English; an operator is refused. With the fleet key set, an admin's click publishes the
gateway's configuration, signed, retained on its config topic (read back and verified here); a
gateway without a configuration is refused."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dynamo.devservices import MosquittoProcess, wait_until
from telemetry.mqtt import connect, make_client
from telemetry.payload import ConfigRefusal, Status, encode
from telemetry.signing import decode, generate_keys, load_public_key, verify
from telemetry.site import Broker
from telemetry.topics import fleet_config_topic, status_topic

REPO = Path(__file__).resolve().parents[2]

PASSWORD = "correct horse battery staple"


def publish_status(broker: Broker, status: Status) -> None:
    """As the gateway `test-gw` does: retained, on its own status topic (the ACL's rights)."""
    client = make_client(broker=broker, client_id=f"t-{secrets.token_hex(4)}")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    connect(client, broker)
    try:
        assert connected.wait(10), "no connection to the broker"
        client.publish(status_topic(status.site, status.gateway), encode(status), qos=1,
                       retain=True).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_admins_see_every_gateway_operators_do_not(
        page: Any, login: Callable[..., None], make_person: Callable[..., Any],
        mosquitto: MosquittoProcess, console_app: Any) -> None:
    site = f"fl{secrets.token_hex(3)}"
    gateway = Broker(host=mosquitto.host, port=mosquitto.port, username="test-gw",
                     password=mosquitto.users["test-gw"])
    publish_status(gateway, Status(
        site=site, gateway="test-gw", state="online", ts=int(time.time() * 1000) - 5000,
        version="0.1.0", config_hash="a1b2c3d4e5f6", buffer_depth=1234,
        config_version=1796619454181, cert_expires_ts=1_830_297_600_000,  # 2028-01-01 UTC
        buffer_void=(5000, 5999),  # after a power cut: 5999 − 5000 + 1 = 1000 numbers
        config_refused=ConfigRefusal(version=1796619454999, reason="bad signature: not signed "
                                     "by the centre's key")))
    monitor = console_app.state.broker
    wait_until(lambda: monitor.gateway(site=site, gateway="test-gw") is not None,
               timeout_s=20, what="the api to see the status")

    make_person("fleet-admin", PASSWORD, role="admin")
    login(page, "fleet-admin", PASSWORD)
    page.goto("/flotte")
    assert page.locator("nav a[href='/flotte']").get_attribute("aria-current") == "page"
    row = page.locator(f"tr#gw-{site}-test-gw")
    assert row.locator("td.state").inner_text() == "en ligne"
    assert row.locator("td.config").inner_text().startswith("1796619454181")
    assert row.locator("p.refused").inner_text() == \
        "Version 1796619454999 refusée : bad signature: not signed by the centre's key"
    assert row.locator("td.hash").inner_text() == "a1b2c3d4e5f6"
    # French thousands separator (a narrow no-break space or a no-break space).
    assert row.locator("td.spool").inner_text().replace("\u202f", " ").replace("\xa0", " ") \
        .startswith("1 234")
    assert row.locator("p.void").inner_text() == (
        "Coupure de courant : 1000 numéro(s) de message sans donnée (5000–5999 : perdus avec "
        "la coupure ou jamais utilisés)")
    assert "01/01/2028" in row.inner_text()
    age = row.locator("td.age").inner_text()
    assert age.startswith("il y a ") and age.endswith(" s")
    assert page.locator("form.push-form").count() == 0  # no fleet key on this server

    page.goto("/langue/en?next=/flotte")
    page.goto("/flotte")
    row = page.locator(f"tr#gw-{site}-test-gw")
    assert row.locator("td.state").inner_text() == "online"
    assert row.locator("p.refused").inner_text().startswith("Version 1796619454999 refused: ")
    assert row.locator("p.void").inner_text() == (
        "Power cut: 1000 message number(s) without data (5000–5999: lost with the cut or never "
        "used)")

    make_person("fleet-op", PASSWORD, role="operator", site="ariege")
    operator = page.context.browser.new_context(base_url=page.url.split("/flotte")[0])
    try:
        other = operator.new_page()
        login(other, "fleet-op", PASSWORD)
        assert other.locator("nav a[href='/flotte']").count() == 0
        assert other.request.get("/flotte", max_redirects=0).status == 403
    finally:
        operator.close()
    publish_status(gateway, Status(site=site, gateway="test-gw", state="offline"))


def retained(broker: Broker, topic: str) -> bytes | None:
    """The message the broker retains on `topic`, if any (it comes right after the SUBACK)."""
    got: list[bytes] = []
    subscribed = threading.Event()
    client = make_client(broker=broker, client_id=f"t-{secrets.token_hex(4)}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    connect(client, broker)
    try:
        assert subscribed.wait(10)
        deadline = time.monotonic() + 2
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[-1] if got else None


def test_an_admin_pushes_a_signed_configuration(
        page: Any, login: Callable[..., None], make_person: Callable[..., Any],
        mosquitto: MosquittoProcess, console_server: Any, tmp_path: Path) -> None:
    site = f"fl{secrets.token_hex(3)}"
    generate_keys(tmp_path / "fleet.key", tmp_path / "fleet.pub")
    config = tmp_path / "sites" / site / "rig.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]\n"
        f"site: {site}\ngateway: test-gw\nbroker: {{username: test-gw}}\n"
        "fleet: {public_key: /etc/dynamo/fleet.pub}\n"
        "equipment:\n  - {id: dryer, kind: dryer}\n"
        "devices:\n  - id: meter\n    template: eastron-sdm630\n    equipment: dryer\n"
        "    connection: {type: tcp, host: 127.0.0.1, port: 1502}\n    sensors:\n"
        "      - {id: dryer.power, point: total_power_w, role: grid_power}\n")
    gateway = Broker(host=mosquitto.host, port=mosquitto.port, username="test-gw",
                     password=mosquitto.users["test-gw"])
    publish_status(gateway, Status(site=site, gateway="test-gw", state="online",
                                   ts=int(time.time() * 1000)))
    wait_until(lambda: console_server.app.state.broker.gateway(site=site, gateway="test-gw")
               is not None, timeout_s=20, what="the api to see the status")
    make_person("fleet-pusher", PASSWORD, role="admin")
    login(page, "fleet-pusher", PASSWORD)
    with console_server.overridden(fleet_key=tmp_path / "fleet.key",
                                   site_configs=tmp_path / "sites"):
        page.goto("/flotte")
        with page.expect_navigation():
            page.locator(f"tr#gw-{site}-test-gw form.push-form button").click()
        notice = page.locator("#pushed").inner_text()
        assert notice.startswith(f"Configuration de {site}/test-gw envoyée : version ")
        version = int(notice.split("version ")[1].split(",")[0])

        # The gateway's own account reads what was published, and the public key verifies it.
        payload = retained(gateway, fleet_config_topic(site, "test-gw"))
        assert payload is not None
        envelope = decode(payload)
        verify(envelope, load_public_key(tmp_path / "fleet.pub"))
        assert (envelope.site, envelope.gateway, envelope.version) == (site, "test-gw", version)
        assert envelope.config == config.read_text()
        assert f"empreinte {envelope.sha256[:12]}" in notice

        # No configuration for that gateway below the site configurations: refused, said why.
        token = page.locator("form.push-form input[name=csrf_token]").first.get_attribute("value")
        refused = page.request.post(f"/flotte/{site}/ghost-gw/envoyer",
                                    form={"csrf_token": token or ""}, max_redirects=0)
        assert refused.status == 422
        assert "Configuration de ghost-gw non envoyée : no configuration of gateway " \
            "&#39;ghost-gw&#39;" in refused.text()
    publish_status(gateway, Status(site=site, gateway="test-gw", state="offline"))
