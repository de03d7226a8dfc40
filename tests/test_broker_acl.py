"""`dynamo broker acl`: the broker's ACL generated from the site configurations.

The broker itself enforcing it is tests/collector/test_collector_broker_acl.py; here, what is
generated, what is refused, the committed file being up to date, and broker-init.sh using it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from dynamo.cli import main
from telemetry.acl import generate, load_gateways, render_acl
from telemetry.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
BROKER = REPO / "firmware-config" / "broker"


def _acl_rules(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_committed_acl_and_gateway_list_are_the_generated_ones() -> None:
    result = CliRunner().invoke(main, [
        "broker", "acl", str(REPO / "firmware-config" / "sites"),
        "--output", str(BROKER / "acl"), "--users", str(BROKER / "gateways.list"), "--check"])
    assert result.exit_code == 0, result.output


def test_each_ariege_gateway_gets_exactly_its_prefix_on_its_site() -> None:
    rules = _acl_rules((BROKER / "acl").read_text())
    # Written out by hand from firmware-config/sites/ariege/*.yaml (site: ariege, gateway: …).
    gateways = {"dryer-gw", "freezer-gw", "packaging-gw"}
    by_user: dict[str, list[list[str]]] = {}
    for rule in rules:
        if rule[0] == "user":
            current = by_user.setdefault(rule[1], [])
        else:
            current.append(rule)
    for gw in gateways:
        # Its prefix, and reading the end-to-end ack the collector writes for it and the signed
        # configuration the centre pushes to it, and the upgrade notices for its site and for
        # it (docs/fleet.md).
        assert by_user[gw] == [["topic", "readwrite", f"dynamo/v1/ariege/{gw}/#"],
                               ["topic", "read", f"dynamo/v1/ariege/ack/{gw}"],
                               ["topic", "read", f"dynamo/v1/ariege/fleet/config/{gw}"],
                               ["topic", "read", "dynamo/v1/ariege/fleet/bundle"],
                               ["topic", "read", f"dynamo/v1/ariege/fleet/bundle/{gw}"]]
    assert not any(rule[0] == "pattern" for rule in rules)
    assert rules[0][0] == "user"  # nothing before the first user: nothing for anonymous
    assert set(by_user) == gateways | {"collector", "api", "alerting", "healthcheck"}
    assert by_user["collector"] == [["topic", "read", "dynamo/v1/#"],
                                    ["topic", "write", "dynamo/v1/+/ack/+"]]
    assert ["topic", "write", "dynamo/v1/+/alerting/commands"] in by_user["api"]
    assert ["topic", "write", "dynamo/v1/+/fleet/config/+"] in by_user["api"]
    assert ["topic", "write", "dynamo/v1/+/fleet/bundle"] in by_user["api"]
    assert ["topic", "write", "dynamo/v1/+/fleet/bundle/+"] in by_user["api"]


def test_output_is_sorted_and_deterministic(tmp_path: Path,
                                            gateway_config: Callable[..., Path]) -> None:
    # Written in reverse order; the ACL lists sites then gateways alphabetically.
    for site, gw in (("south", "south-b"), ("south", "south-a"), ("north", "north-a")):
        gateway_config(tmp_path, site=site, gateway=gw)
    text = generate(tmp_path)
    assert text == generate(tmp_path)
    users = [rule[1] for rule in _acl_rules(text) if rule[0] == "user"]
    assert users[:3] == ["north-a", "south-a", "south-b"]
    assert "topic readwrite dynamo/v1/south/south-b/#\n" in text
    assert str(tmp_path) not in text  # sources are named relative to the folder
    assert "# south/south-b.yaml\n" in text


def test_a_gateway_id_used_on_two_sites_is_refused_with_both_places(
        tmp_path: Path, gateway_config: Callable[..., Path]) -> None:
    gateway_config(tmp_path, site="north", gateway="shared-gw")
    gateway_config(tmp_path, site="south", gateway="shared-gw")
    with pytest.raises(ConfigError) as caught:
        load_gateways(tmp_path)
    (issue,) = caught.value.issues
    # write_gateway_config puts `gateway:` on line 3 of each file.
    assert issue.file.endswith("south/shared-gw.yaml") and issue.line == 3
    assert "north/shared-gw.yaml:3" in issue.message and "unique across sites" in issue.message


@pytest.mark.parametrize("name", ["collector", "api", "alerting", "healthcheck", "ack"])
def test_reserved_names_are_refused(tmp_path: Path, gateway_config: Callable[..., Path],
                                    name: str) -> None:
    gateway_config(tmp_path, site="north", gateway=name)
    with pytest.raises(ConfigError) as caught:
        load_gateways(tmp_path)
    (issue,) = caught.value.issues
    assert issue.line == 3 and "reserved" in issue.message


def test_a_broker_user_other_than_the_gateway_id_is_refused(
        tmp_path: Path, gateway_config: Callable[..., Path]) -> None:
    gateway_config(tmp_path, site="north", gateway="north-a", username="someone-else")
    with pytest.raises(ConfigError) as caught:
        load_gateways(tmp_path)
    (issue,) = caught.value.issues
    assert issue.path == "broker.username" and issue.line == 4


def test_the_command_reports_every_error_with_its_place(
        tmp_path: Path, gateway_config: Callable[..., Path]) -> None:
    gateway_config(tmp_path, site="north", gateway="api")
    gateway_config(tmp_path, site="north", gateway="north-a")
    gateway_config(tmp_path, site="south", gateway="north-a")
    result = CliRunner().invoke(main, ["broker", "acl", str(tmp_path)])
    assert result.exit_code == 2
    assert "2 error(s)" in result.output
    assert f"{tmp_path / 'north' / 'api.yaml'}:3: gateway: 'api' is reserved" in result.output
    assert f"{tmp_path / 'south' / 'north-a.yaml'}:3: gateway:" in result.output


def test_development_gateways_are_marked_and_replace_a_declared_one(
        tmp_path: Path, gateway_config: Callable[..., Path]) -> None:
    gateway_config(tmp_path, site="north", gateway="north-a")
    text = render_acl(load_gateways(tmp_path), development_gateways=("north-a", "test-gw"))
    rules = _acl_rules(text)
    assert ["user", "north-a"] in rules and rules.count(["user", "north-a"]) == 1
    assert ["topic", "readwrite", "dynamo/v1/+/test-gw/#"] in rules
    assert "DEVELOPMENT ONLY" in text
    assert "DEVELOPMENT ONLY" not in generate(tmp_path)


# -- broker-init.sh, with Debian's mosquitto_passwd ---------------------------------------------

def _broker_init(tmp_path: Path, acl: Path, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed")
    secret = "a-long-enough-secret"
    return subprocess.run(
        ["sh", str(BROKER / "broker-init.sh")], capture_output=True, text=True, timeout=60,
        env={**os.environ, "MQTT_PASSWORD_FILE": str(tmp_path / "passwd"),
             "MQTT_GATEWAYS_FILE": str(tmp_path / "gateways.passwd"),
             "MQTT_ACL_SOURCE": str(acl), "MQTT_ACL_FILE": str(tmp_path / "acl.installed"),
             "MQTT_GATEWAY_LIST": str(BROKER / "gateways.list"),
             "MQTT_FILE_OWNER": f"{os.getuid()}:{os.getgid()}",
             "MQTT_COLLECTOR_PASSWORD": secret, "MQTT_API_PASSWORD": secret,
             "MQTT_HEALTHCHECK_PASSWORD": secret, **env})


def test_broker_init_installs_the_generated_acl(tmp_path: Path) -> None:
    (tmp_path / "gateways.passwd").write_text("dryer-gw:$7$hash\nstolen-gw:$7$hash\n")
    result = _broker_init(tmp_path, BROKER / "acl")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "acl.installed").read_text() == (BROKER / "acl").read_text()
    # A password for a gateway no configuration declares: warned, where and why.
    assert "gateways.passwd:2: no site configuration declares gateway 'stolen-gw'" in \
        result.stderr
    assert "dryer-gw" not in result.stderr


def test_broker_init_refuses_an_acl_with_patterns(tmp_path: Path) -> None:
    old = tmp_path / "old-acl"
    old.write_text("pattern write dynamo/v1/+/%u/#\nuser collector\ntopic read dynamo/v1/#\n")
    result = _broker_init(tmp_path, old)
    assert result.returncode == 1
    assert "has 'pattern' lines" in result.stderr and "dynamo broker acl" in result.stderr
    assert not (tmp_path / "acl.installed").exists()
