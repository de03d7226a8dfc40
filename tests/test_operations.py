"""docs/operations.md against what runs: every metric it lists is served by a service's real
registry with the type it says, and none is served unlisted; the Prometheus alert rules and the
scrape configuration use only listed metrics (the fleet dashboard's: tests/dashboards/
test_dash_prometheus.py)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerting.engine import Engine
from alerting.metrics import registry_for as alerting_registry
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.service import AlertService
from alerting.store import AlertStore
from api.metrics import ApiMetrics
from collector import Collector, DeadLetterStore
from collector.metrics import registry_for as collector_registry
from gateway.agent import Gateway
from telemetry.influx.client import InfluxClient
from telemetry.loader import load_gateway_config
from telemetry.metrics import DEFAULT_PORTS, CertificateExpiry
from telemetry.pki import Pki
from telemetry.site import Broker, TlsFiles

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "operations.md"
PROMETHEUS = REPO / "firmware-config" / "prometheus"
_ROW = re.compile(r"^\| `(dynamo_[a-z_]+)` \| (counter|gauge|histogram) \|", re.MULTILINE)
_NAME = re.compile(r"\bdynamo_[a-z_]+\b")


def documented() -> dict[str, str]:
    return dict(_ROW.findall(DOC.read_text(encoding="utf-8")))


def served(registry: CollectorRegistry) -> dict[str, str]:
    """Metric names as PromQL sees them (a counter with `_total`), and their type."""
    text = generate_latest(registry).decode()
    return {family.name + ("_total" if family.type == "counter" else ""): family.type
            for family in text_string_to_metric_families(text)}


class _Phone:
    name = "phone"

    def send(self, *, to: str, text: str) -> str:
        return "ref"


def _registries(tmp_path: Path, broker: Broker, influx: InfluxClient) -> list[CollectorRegistry]:
    collector = Collector(broker=broker, influx=influx,
                          dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                          client_id=f"collector-{uuid.uuid4().hex[:6]}")
    rules = tmp_path / "alerts.yaml"
    rules.write_text("site: ariege\ncontacts: [{id: a, name: A, phone: \"+33600000003\"}]\n"
                     "defaults: {contacts: [a]}\nrules: []\n", encoding="utf-8")
    engine = Engine(config=load_alert_config(rules), store=AlertStore(tmp_path / "a.sqlite"),
                    notifier=FallbackNotifier(notifiers=[_Phone()]))
    alerting = AlertService(engine=engine, broker=broker)
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({
        "template_dirs": [str(REPO / "firmware-config" / "templates")],
        "site": "test", "gateway": "test-gw", "spool_dir": str(tmp_path / "spool"),
        "broker": {"host": broker.host, "port": broker.port},
        "equipment": [{"id": "rig", "kind": "other"}],
        "devices": [{"id": "meter", "template": "eastron-sdm120", "equipment": "rig",
                     "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1},
                     "sensors": [{"id": "rig.power", "point": "total_power_w",
                                  "role": "electric_power"}]}]}), encoding="utf-8")

    async def make_gateway() -> Gateway:  # pymodbus wants a running loop
        return Gateway(config=load_gateway_config(config))

    gateway = asyncio.run(make_gateway())
    return [collector_registry(collector, broker=broker), alerting_registry(alerting),
            gateway.metrics.registry, ApiMetrics().registry]


def test_every_metric_served_is_documented_with_its_type(
        tmp_path: Path, broker_for: Callable[[str], Broker], influx: InfluxClient) -> None:
    listed = documented()
    assert len(listed) > 40  # the tables were found
    out: dict[str, str] = {}
    for registry in _registries(tmp_path, broker_for("collector"), influx):
        out.update(served(registry))
    # Served only by a collector that checks the configuration (`--site-configs`).
    conditional = {"dynamo_collector_config_reloads_total",
                   "dynamo_collector_config_reload_failures_total"}
    assert out == {k: v for k, v in listed.items() if k not in conditional}


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load((PROMETHEUS / "dynamo-rules.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_use_listed_metrics_and_are_complete() -> None:
    listed = documented()
    rules = _rules()
    names = {str(rule["alert"]) for rule in rules}
    # The table of docs/operations.md is the list of the file's rules.
    table = set(re.findall(r"^\| `(Dynamo\w+)` \|", DOC.read_text(encoding="utf-8"),
                           re.MULTILINE))
    assert names == table
    for rule in rules:
        expr = str(rule["expr"])
        used = {re.sub(r"_(bucket|count|sum)$", "", n) for n in _NAME.findall(expr)}
        # Prometheus' own `up` of the DYNAMO jobs, or listed metrics.
        assert used or expr.startswith('up{job=~"dynamo-'), rule["alert"]
        assert used <= set(listed), (rule["alert"], used - set(listed))
        labels, annotations = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in {"critical", "warning"}
        assert isinstance(annotations, dict) and annotations["summary"] \
            and annotations["description"]
    # The rules the issue asks for: gateway offline, spool growing, lag, dead letters,
    # certificate expiry.
    assert {"DynamoGatewayOffline", "DynamoSpoolGrowing", "DynamoCollectorLag",
            "DynamoDeadLetters", "DynamoCertificateExpiry"} <= names


def _promtool() -> str:
    """Debian's promtool: installed, or unpacked from its package by scripts/bootstrap."""
    unpacked = REPO / ".venv" / "prometheus" / "usr" / "bin" / "promtool"
    found = shutil.which("promtool") or (str(unpacked) if unpacked.is_file() else None)
    if found is None:
        pytest.skip("no promtool (scripts/bootstrap unpacks Debian's prometheus package)")
    return found


def test_promtool_accepts_the_rules_and_the_scrape_configuration() -> None:
    promtool = _promtool()
    for args in (["check", "rules", "dynamo-rules.yml"], ["check", "config", "prometheus.yml"]):
        run = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True,
                             text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stdout + run.stderr


def test_alert_rules_fire_on_their_series_and_not_before() -> None:
    # tests/prometheus/dynamo-rules.test.yml: series, evaluation times and the alerts expected
    # there, with their labels and their French annotations as Prometheus renders them.
    run = subprocess.run([_promtool(), "test", "rules", "dynamo-rules.test.yml"],
                         cwd=REPO / "tests" / "prometheus", capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_scrape_configuration_matches_the_default_ports() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert all((PROMETHEUS / name).is_file() for name in config["rule_files"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service, port in DEFAULT_PORTS.items():
        targets = [t for c in jobs[f"dynamo-{service}"]["static_configs"] for t in c["targets"]]
        assert targets and all(t.endswith(f":{port}") for t in targets), service
    # Gateways' metrics get their site and gateway from the target.
    for group in jobs["dynamo-gateway"]["static_configs"]:
        assert {"site", "gateway"} <= set(group["labels"])
    assert jobs["dynamo-api"]["metrics_path"] == "/metrics"


def test_certificate_expiry_metric_reads_the_files(tmp_path: Path) -> None:
    # A CA for 3650 days and a client certificate for 20 days, made by the project's PKI.
    pki = Pki(tmp_path / "pki")
    pki.init(days=3650)
    pki.issue_client("test-gw", days=20)
    broker = Broker(tls=TlsFiles(ca=str(pki.ca_cert), cert=str(pki.client_cert("test-gw")),
                                 key=str(pki.client_key("test-gw"))))
    registry = CollectorRegistry()
    registry.register(CertificateExpiry(broker))
    text = generate_latest(registry).decode()
    values = {s.labels["role"]: s.value for family in text_string_to_metric_families(text)
              for s in family.samples}
    now = time.time()
    # Written out: 20 days = 1 728 000 s, 3650 days = 315 360 000 s from the start of validity,
    # which the PKI sets 5 minutes (300 s) before issuing (a clock slightly behind), issued a
    # minute ago at most; the alert rule fires under 30 days = 2 592 000 s.
    assert 1_728_000 - 300 - 60 <= values["client"] - now <= 1_728_000 - 300 + 1
    assert 315_360_000 - 300 - 60 <= values["ca"] - now <= 315_360_000 - 300 + 1
    assert values["client"] - now < 30 * 86400 < values["ca"] - now
    # No TLS: the family is there, empty.
    plain = CollectorRegistry()
    plain.register(CertificateExpiry(Broker()))
    assert [f.samples for f in text_string_to_metric_families(generate_latest(plain).decode())
            ] == [[]]
