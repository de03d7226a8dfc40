"""The site's own certificate authority, for MQTT over TLS with client certificates.

One folder holds a site CA (ECDSA P-256), the broker's server certificate, one client
certificate per gateway and per service user (CN = broker user name: the broker's
`use_identity_as_username` makes the CN the name its ACL sees), every certificate ever issued,
and the certificate revocation list the broker loads (`crlfile`). This module is the project's
one user of `cryptography`; `dynamo pki` (dynamo/commands/pki.py) is its command line, and the
MQTT clients call `check_client_files` before they trust a certificate and key pair.

Layout of a PKI folder (docs/pki.md):

    ca.pem  ca.key           the CA (the key never leaves the machine that runs `dynamo pki`)
    crl.pem                  revoked serial numbers, signed by the CA
    server/broker.pem .key   the broker's certificate (SAN: its DNS names and addresses)
    clients/{name}.pem .key  the current certificate of each broker user
    issued/{serial}.pem      every certificate issued, for `list` and `revoke --serial`

Private keys are written 0600, atomically (a reader sees the old file or the new one).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Validity defaults, in days (docs/pki.md and docs/sources.md say why):
# - the CA lives as long as the installation is expected to (ten years); replacing it means
#   touching every gateway, so it is not meant to happen in routine;
# - the broker's certificate: 825 days, the longest the CA/Browser Forum allowed for a TLS
#   server certificate until 2020 (and what Apple's platforms still accept for a private CA);
# - client certificates: 397 days, the CA/Browser Forum's current maximum, so that a stolen
#   gateway's key ages out within about a year even if nobody revokes it, while one renewal
#   a year (alerted 30 days ahead) keeps the work small.
CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 397
# The broker rejects every client once its CRL's nextUpdate is past (OpenSSL treats an expired
# CRL as an error), so the CRL is dated to the CA's own end: it is renewed at each revocation
# and at `dynamo pki init --crl`, never trusted for freshness by anyone but our own broker.
RENEW_BEFORE = dt.timedelta(days=30)
# A broker user name, as a gateway id (telemetry/site.py `Ident`) or a service user.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class PkiError(Exception):
    """A PKI operation refused: the message says what and where (English, then French)."""


@dataclass(frozen=True, slots=True)
class Issued:
    """One certificate issued by the site CA, as `dynamo pki list` shows it."""

    name: str  # the subject CN: a broker user name, or the broker's host
    kind: str  # ca, server or client
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    revoked: dt.datetime | None
    path: Path

    def state(self, now: dt.datetime | None = None) -> str:
        now = now or _now()
        if self.revoked is not None:
            return "revoked"
        if self.not_after <= now:
            return "expired"
        if self.not_after - now <= RENEW_BEFORE:
            return "renew"
        return "valid"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _both(english: str, french: str) -> str:
    return f"{english} / {french}"


def certificate_expiry(path: str | Path) -> dt.datetime:
    """When the (first) certificate of a PEM file stops being valid, in UTC.

    For the gateway's status (`cert_expires_ts`) and the services' metrics; raises `PkiError`
    when the file cannot be read or holds no certificate.
    """
    return _load_certificate(Path(path)).not_valid_after_utc


def certificate_name(path: str | Path) -> str:
    """The subject CN of a PEM certificate: the user name the broker gives its holder."""
    return _common_name(_load_certificate(Path(path)))


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(_both(f"{path}: cannot read the certificate: {exc.strerror}",
                             f"{path} : certificat illisible : {exc.strerror}")) from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(_both(f"{path}: not a PEM certificate",
                             f"{path} : ce n'est pas un certificat PEM")) from exc


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(_both(f"{path}: cannot read the private key: {exc.strerror}",
                             f"{path} : clé privée illisible : {exc.strerror}")) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(_both(f"{path}: not an unencrypted PEM private key",
                             f"{path} : ce n'est pas une clé privée PEM non chiffrée")) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(_both(f"{path}: not an EC private key", f"{path} : pas une clé EC"))
    return key


def check_client_files(*, ca: str | Path | None, cert: str | Path | None,
                       key: str | Path | None, expiry: bool = True,
                       now: dt.datetime | None = None) -> list[str]:
    """What is wrong with a client's TLS files, each problem once (English / French).

    Checks that each named file exists and is readable, that the key is the certificate's,
    that the certificate was issued by `ca` and, with `expiry`, that it is valid now. An
    empty list means the client may connect with them.
    """
    problems: list[str] = []
    loaded: dict[str, object] = {}
    for label, path, loader in (("ca", ca, _load_certificate), ("cert", cert, _load_certificate),
                                ("key", key, _load_key)):
        if path is None:
            continue
        try:
            loaded[label] = loader(Path(path))
        except PkiError as exc:
            problems.append(str(exc))
    certificate = loaded.get("cert")
    if not isinstance(certificate, x509.Certificate):
        return problems
    private = loaded.get("key")
    if isinstance(private, ec.EllipticCurvePrivateKey) and \
            private.public_key() != certificate.public_key():
        problems.append(_both(f"{key}: this key does not belong to the certificate {cert}",
                              f"{key} : cette clé n'est pas celle du certificat {cert}"))
    authority = loaded.get("ca")
    if isinstance(authority, x509.Certificate):
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            problems.append(_both(f"{cert}: not issued by the CA {ca}",
                                  f"{cert} : non émis par l'autorité {ca}"))
    if expiry:
        now = now or _now()
        end = certificate.not_valid_after_utc
        if end <= now:
            problems.append(_both(f"{cert}: certificate expired on {end:%Y-%m-%d %H:%M} UTC",
                                  f"{cert} : certificat expiré le {end:%d/%m/%Y %H:%M} UTC"))
        elif certificate.not_valid_before_utc > now:
            start = certificate.not_valid_before_utc
            problems.append(_both(f"{cert}: certificate not valid before {start:%Y-%m-%d} UTC",
                                  f"{cert} : certificat valide à partir du {start:%d/%m/%Y}"))
    return problems


def _write_private(path: Path, data: bytes) -> None:
    """Write a key 0600 and atomically: never a moment where it is readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; fchmod is not
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """A PKI folder (see the module's docstring): create the CA, issue, revoke, list."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    # -- paths ------------------------------------------------------------------------------

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server" / "broker.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server" / "broker.key"

    def client_cert(self, name: str) -> Path:
        return self.directory / "clients" / f"{name}.pem"

    def client_key(self, name: str) -> Path:
        return self.directory / "clients" / f"{name}.key"

    # -- operations -------------------------------------------------------------------------

    def init(self, *, common_name: str = "DYNAMO site CA", days: int = CA_DAYS,
             force: bool = False) -> x509.Certificate:
        """Create the CA and an empty CRL. Refuses to replace an existing CA unless `force`."""
        if self.ca_key.exists() and not force:
            raise PkiError(_both(f"{self.ca_key}: a CA already exists here (--force replaces "
                                 "it, and every certificate it issued stops working)",
                                 f"{self.ca_key} : une autorité existe déjà ici"))
        _positive(days)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = _now() - dt.timedelta(minutes=5)  # tolerate a clock slightly behind ours
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            # RFC 5280 §4.2.1.9 and §4.2.1.3: a CA that signs end entities only.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.ca_key, _key_pem(key))
        _write_public(self.ca_cert, _pem(certificate))
        self._archive(certificate)
        self.write_crl(revoked={})
        return certificate

    def issue_server(self, *, hosts: Sequence[str] = ("localhost", "127.0.0.1"),
                     days: int = SERVER_DAYS) -> x509.Certificate:
        """The broker's certificate: CN = the first host, every host in subjectAltName."""
        if not hosts:
            raise PkiError(_both("a server certificate needs at least one DNS name or address",
                                 "il faut au moins un nom DNS ou une adresse"))
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(common_name=hosts[0], kind="server", days=days,
                           cert_path=self.server_cert, key_path=self.server_key,
                           usage=ExtendedKeyUsageOID.SERVER_AUTH, alt_names=names)

    def issue_client(self, name: str, *, days: int = CLIENT_DAYS,
                     not_before: dt.datetime | None = None) -> x509.Certificate:
        """A broker user's certificate (CN = `name`), with a new key; replaces its current one.

        The previous certificate stays valid until it expires or is revoked: a gateway keeps
        working until it has the new files (renewal, docs/pki.md). `not_before` backdates
        the validity (tests make expired certificates with it).
        """
        if not _NAME.match(name):
            raise PkiError(_both(f"{name!r}: a client name is a broker user name "
                                 "([a-z0-9][a-z0-9_-]*, at most 63 characters)",
                                 f"{name!r} : nom d'utilisateur du broker invalide"))
        return self._issue(common_name=name, kind="client", days=days,
                           cert_path=self.client_cert(name), key_path=self.client_key(name),
                           usage=ExtendedKeyUsageOID.CLIENT_AUTH, not_before=not_before)

    def revoke(self, *, name: str | None = None, serial: int | None = None) -> list[Issued]:
        """Revoke by serial, or a name's current certificate; rewrite the CRL. Returns them.

        The broker reads the CRL at start and on SIGHUP; a connected client keeps its session
        until it reconnects, so revoke, then reload the broker (docs/pki.md).
        """
        known = {c.serial: c for c in self.certificates() if c.kind != "ca"}
        if serial is None and name is not None:
            if not self.client_cert(name).exists():
                raise PkiError(_both(f"no current certificate for {name!r}",
                                     f"aucun certificat en cours pour {name!r}"))
            serial = _load_certificate(self.client_cert(name)).serial_number
        if serial is None or serial not in known:
            raise PkiError(_both(f"no certificate with serial {serial:x} issued here"
                                 if serial is not None else "say what to revoke",
                                 "certificat inconnu de cette autorité"))
        revoked = self._revoked()
        revoked.setdefault(serial, _now())
        self.write_crl(revoked=revoked)
        return [c for c in self.certificates() if c.serial == serial]

    def certificates(self) -> list[Issued]:
        """Every certificate issued here, oldest first (the CA, the broker, then clients by
        name within a second), with its revocation date if any."""
        revoked = self._revoked() if self.crl.exists() else {}
        out: list[Issued] = []
        for path in sorted((self.directory / "issued").glob("*.pem")):
            certificate = _load_certificate(path)
            out.append(Issued(
                name=_common_name(certificate), kind=_kind(certificate),
                serial=certificate.serial_number, not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                revoked=revoked.get(certificate.serial_number), path=path))
        rank = {"ca": 0, "server": 1, "client": 2}
        return sorted(out, key=lambda c: (c.not_before, rank[c.kind], c.name, c.serial))

    def write_crl(self, *, revoked: dict[int, dt.datetime]) -> None:
        """Sign a CRL listing `revoked` (serial -> date), valid until the CA itself expires."""
        ca, key = self._authority()
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
                   .last_update(now - dt.timedelta(minutes=5))
                   .next_update(max(ca.not_valid_after_utc, now + dt.timedelta(days=1)))
                   .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       key.public_key()), critical=False))
        for serial, when in sorted(revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
                .build())
        crl = builder.sign(key, hashes.SHA256())
        _write_public(self.crl, crl.public_bytes(serialization.Encoding.PEM))

    # -- internals --------------------------------------------------------------------------

    def _authority(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not self.ca_key.exists():
            raise PkiError(_both(f"{self.directory}: no CA here; run `dynamo pki init` first",
                                 f"{self.directory} : pas d'autorité ici ; lancez "
                                 "`dynamo pki init`"))
        return _load_certificate(self.ca_cert), _load_key(self.ca_key)

    def _revoked(self) -> dict[int, dt.datetime]:
        ca, _ = self._authority()
        try:
            crl = x509.load_pem_x509_crl(self.crl.read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(_both(f"{self.crl}: cannot read the CRL",
                                 f"{self.crl} : liste de révocation illisible")) from exc
        if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
            raise PkiError(_both(f"{self.crl}: not signed by this CA",
                                 f"{self.crl} : non signée par cette autorité"))
        return {r.serial_number: r.revocation_date_utc for r in crl}

    def _issue(self, *, common_name: str, kind: str, days: int, cert_path: Path,
               key_path: Path, usage: x509.ObjectIdentifier,
               alt_names: Sequence[x509.GeneralName] = (),
               not_before: dt.datetime | None = None) -> x509.Certificate:
        _positive(days)
        ca, ca_key = self._authority()
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or _now() - dt.timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(alt_names)),
                                            critical=False)
        certificate = builder.sign(ca_key, hashes.SHA256())
        # Key first: a client that reloads between the two writes sees a mismatch and keeps
        # its previous pair (check_client_files), never a certificate without its key.
        _write_private(key_path, _key_pem(key))
        _write_public(cert_path, _pem(certificate))
        self._archive(certificate)
        return certificate

    def _archive(self, certificate: x509.Certificate) -> None:
        _write_public(self.directory / "issued" / f"{certificate.serial_number:x}.pem",
                      _pem(certificate))


def _positive(days: int) -> None:
    if days < 1:
        raise PkiError(_both(f"validity must be at least one day, not {days}",
                             f"la validité doit être d'au moins un jour, pas {days}"))


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _kind(certificate: x509.Certificate) -> str:
    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "ca"
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "client"
    return "server" if ExtendedKeyUsageOID.SERVER_AUTH in usages else "client"
