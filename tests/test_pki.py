"""`dynamo pki` and telemetry/pki.py: what the certificates say, read back with `cryptography`'s
parser and `openssl` (never with the module's own helpers), the files' modes, the CRL, and the
checks a gateway configuration's `tls` block goes through.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dynamo.cli import main
from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config
from telemetry.pki import Pki, certificate_expiry, check_client_files
from telemetry.site import Broker, TlsFiles

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["pki", *args])
    return result.exit_code, result.output


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.fail("openssl is not installed: run scripts/bootstrap")
    return found


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_issue_list_revoke(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    code, out = _cli("init", "--dir", str(d), "--host", "broker.example.org",
                     "--host", "192.0.2.10")
    assert code == 0, out
    code, out = _cli("issue", "--dir", str(d), "dryer-gw", "collector")
    assert code == 0, out

    # Private keys readable by their owner only; certificates and the CRL by anyone.
    for key in ("ca.key", "server/broker.key", "clients/dryer-gw.key", "clients/collector.key"):
        assert _mode(d / key) == 0o600, key
    for public in ("ca.pem", "crl.pem", "server/broker.pem", "clients/dryer-gw.pem"):
        assert _mode(d / public) == 0o644, public

    ca = _cert(d / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]

    server = _cert(d / "server" / "broker.pem")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in \
        server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # Defaults: 825 days for the broker, 397 for a client (docs/pki.md).
    assert server.not_valid_after_utc - server.not_valid_before_utc == dt.timedelta(days=825)

    client = _cert(d / "clients" / "dryer-gw.pem")
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dryer-gw"
    assert client.issuer == ca.subject
    assert client.not_valid_after_utc - client.not_valid_before_utc == dt.timedelta(days=397)
    assert ExtendedKeyUsageOID.CLIENT_AUTH in \
        client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # OpenSSL, which Mosquitto uses, agrees that the chain holds for a TLS client.
    subprocess.run([_openssl(), "verify", "-purpose", "sslclient", "-CAfile", d / "ca.pem",
                    d / "clients" / "dryer-gw.pem"], check=True, capture_output=True)

    code, out = _cli("list", "--dir", str(d))
    assert code == 0, out
    assert f"{client.serial_number:x}" in out
    lines = {line.split()[1]: line.split()[-1] for line in out.splitlines()[1:]}
    assert lines == {"DYNAMO": "valid", "broker.example.org": "valid", "dryer-gw": "valid",
                     "collector": "valid"}

    code, out = _cli("revoke", "--dir", str(d), "dryer-gw")
    assert code == 0, out
    crl = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert [r.serial_number for r in crl] == [client.serial_number]
    assert crl.next_update_utc is not None and crl.next_update_utc >= ca.not_valid_after_utc
    refused = subprocess.run(
        [_openssl(), "verify", "-crl_check", "-CAfile", d / "ca.pem", "-CRLfile", d / "crl.pem",
         d / "clients" / "dryer-gw.pem"], capture_output=True, text=True)
    assert refused.returncode != 0 and "revoked" in refused.stdout + refused.stderr
    code, out = _cli("list", "--dir", str(d))
    assert {line.split()[1]: line.split()[-1] for line in out.splitlines()[1:]}["dryer-gw"] \
        == "revoked"

    # Renewal: a new key and certificate under the same name; the revoked one stays listed.
    code, out = _cli("issue", "--dir", str(d), "dryer-gw")
    assert code == 0, out
    renewed = _cert(d / "clients" / "dryer-gw.pem")
    assert renewed.serial_number != client.serial_number
    assert renewed.public_key() != client.public_key()
    code, out = _cli("list", "--dir", str(d))
    states = [line.split()[-1] for line in out.splitlines() if " dryer-gw " in line]
    assert sorted(states) == ["revoked", "valid"]


def test_refusals_say_what_and_where(tmp_path: Path) -> None:
    d = str(tmp_path / "pki")
    code, out = _cli("issue", "--dir", d, "dryer-gw")
    assert code == 1 and "pki init" in out
    assert _cli("init", "--dir", d)[0] == 0
    code, out = _cli("init", "--dir", d)
    assert code == 1 and "already exists" in out and "existe déjà" in out
    code, out = _cli("issue", "--dir", d, "Dryer GW")
    assert code == 1 and "broker user name" in out
    code, out = _cli("revoke", "--dir", d, "--serial", "abc123")
    assert code == 1 and "abc123" in out
    code, out = _cli("revoke", "--dir", d, "nobody")
    assert code == 1 and "nobody" in out
    code, out = _cli("issue", "--dir", d, "x", "--days", "0")
    assert code == 1 and "at least one day" in out


def test_certificate_expiry_is_the_end_of_validity(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pki.init()
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    pki.issue_client("dryer-gw", days=30, not_before=start)
    # 2026-03-01 12:00 + 30 days = 2026-03-31 12:00 UTC
    assert certificate_expiry(pki.client_cert("dryer-gw")) == \
        dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)


def test_client_files_are_checked(tmp_path: Path) -> None:
    pki, other = Pki(tmp_path / "a"), Pki(tmp_path / "b")
    pki.init()
    other.init()
    pki.issue_client("dryer-gw")
    pki.issue_client("freezer-gw")
    other.issue_client("dryer-gw")
    ok = {"ca": pki.ca_cert, "cert": pki.client_cert("dryer-gw"),
          "key": pki.client_key("dryer-gw")}
    assert check_client_files(**ok) == []

    wrong_key = check_client_files(**{**ok, "key": pki.client_key("freezer-gw")})
    assert len(wrong_key) == 1 and "does not belong" in wrong_key[0] \
        and "n'est pas celle" in wrong_key[0]
    foreign = check_client_files(**{**ok, "ca": other.ca_cert})
    assert len(foreign) == 1 and "not issued by the CA" in foreign[0]
    missing = check_client_files(**{**ok, "cert": tmp_path / "nope.pem"})
    assert len(missing) == 1 and "nope.pem" in missing[0] and "illisible" in missing[0]

    # Valid 2026-01-01 .. 2026-01-11; checked on 2026-01-12 it has expired, on the 5th not.
    pki.issue_client("old-gw", days=10, not_before=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    old = {**ok, "cert": pki.client_cert("old-gw"), "key": pki.client_key("old-gw")}
    expired = check_client_files(**old, now=dt.datetime(2026, 1, 12, tzinfo=dt.UTC))
    assert len(expired) == 1 and "expired on 2026-01-11" in expired[0] \
        and "expiré le 11/01/2026" in expired[0]
    assert check_client_files(**old, now=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)) == []
    assert check_client_files(**old, expiry=False, now=dt.datetime(2027, 1, 1, tzinfo=dt.UTC)) \
        == []


def _gateway_config(path: Path, broker: dict[str, object]) -> Path:
    """A small gateway configuration (one meter) with this broker section, in `path`."""
    data = {
        "template_dirs": [str(REPO / "firmware-config" / "templates")],
        "site": "ariege", "gateway": "dryer-gw", "spool_dir": str(path.parent / "spool"),
        "broker": broker,
        "equipment": [{"id": "dryer", "kind": "dryer"}],
        "devices": [{"id": "meter", "template": "eastron-sdm120", "equipment": "dryer",
                     "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1502},
                     "sensors": [{"id": "dryer.energy", "point": "import_energy_kwh",
                                  "role": "electric_energy"}]}],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_gateway_configuration_names_its_tls_files(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "certs")
    pki.init()
    pki.issue_client("dryer-gw")
    tls = {"ca": "certs/ca.pem", "cert": "certs/clients/dryer-gw.pem",
           "key": "certs/clients/dryer-gw.key"}
    config = load_gateway_config(_gateway_config(tmp_path / "gw.yaml",
                                                 {"port": 8883, "tls": tls}))
    assert config.broker.tls == TlsFiles(ca=str(tmp_path / "certs/ca.pem"),
                                         cert=str(tmp_path / "certs/clients/dryer-gw.pem"),
                                         key=str(tmp_path / "certs/clients/dryer-gw.key"))

    wrong = _gateway_config(tmp_path / "wrong.yaml",
                            {"port": 8883, "tls": {**tls, "key": "certs/ca.key"}})
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(wrong)
    [issue] = refused.value.issues
    assert issue.path == "broker.tls" and issue.line is not None
    assert "certs/ca.key" in issue.message and "does not belong" in issue.message

    # Another gateway's certificate: the broker would take this gateway for that one.
    pki.issue_client("freezer-gw")
    other = _gateway_config(tmp_path / "other.yaml", {"port": 8883, "tls": {
        **tls, "cert": "certs/clients/freezer-gw.pem", "key": "certs/clients/freezer-gw.key"}})
    with pytest.raises(ConfigError) as refused:
        load_gateway_config(other)
    [issue] = refused.value.issues
    assert "certificate of 'freezer-gw', not of this gateway 'dryer-gw'" in issue.message

    half = _gateway_config(tmp_path / "half.yaml", {"tls": {"cert": "certs/x.pem"}})
    with pytest.raises(ConfigError, match="`cert` and `key` go together"):
        load_gateway_config(half)


def test_config_check_refuses_an_expired_certificate(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "certs")
    pki.init()
    pki.issue_client("dryer-gw", days=5,
                     not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=6))
    file = _gateway_config(tmp_path / "gw.yaml", {"port": 8883, "tls": {
        "ca": "certs/ca.pem", "cert": "certs/clients/dryer-gw.pem",
        "key": "certs/clients/dryer-gw.key"}})
    # The gateway itself still starts (it spools until it gets a new certificate)...
    assert load_gateway_config(file).broker.tls is not None
    # ...but `dynamo config check` says what is wrong.
    result = CliRunner().invoke(main, ["config", "check", str(file)])
    assert result.exit_code == 1
    assert "broker.tls" in result.output and "expired on" in result.output


def test_earlier_tls_settings_still_read() -> None:
    assert Broker.model_validate({"tls": True}).tls == TlsFiles()
    assert Broker.model_validate({"tls": True, "ca_file": "/ca.pem"}).tls == TlsFiles(
        ca="/ca.pem")
    assert Broker.model_validate({"tls": False}).tls is None
    assert Broker.model_validate({"ca_file": "/ca.pem"}).tls is None  # as before: no TLS
    assert Broker.model_validate({}).tls is None


def test_services_take_their_certificate_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from telemetry.settings import ServiceSettings

    monkeypatch.setenv("DYNAMO_MQTT_PORT", "8883")
    monkeypatch.setenv("DYNAMO_MQTT_CA_FILE", "/pki/ca.pem")
    assert ServiceSettings().broker().tls is None  # a CA alone does not turn TLS on
    monkeypatch.setenv("DYNAMO_MQTT_CERT_FILE", "/pki/collector.pem")
    monkeypatch.setenv("DYNAMO_MQTT_KEY_FILE", "/pki/collector.key")
    assert ServiceSettings().broker().tls == TlsFiles(
        ca="/pki/ca.pem", cert="/pki/collector.pem", key="/pki/collector.key")
