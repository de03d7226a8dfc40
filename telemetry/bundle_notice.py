"""Signed upgrade notices: a gateway bundle published by the centre (docs/fleet.md, "Remote
upgrade").

`dynamo fleet publish-bundle` puts the bundle's archive where the api serves it and publishes,
retained, a notice for one gateway or for every gateway of a site: the release's version, the
URL and SHA-256 of the archive, and the bundle's manifest (the SHA-256 of every file). The
notice is signed with the fleet key as configurations are (telemetry/signing.py), under its
own domain tag, so a configuration's signature can never pass for a notice's. The archive needs
no signature of its own: its hash, and every file's, are in the signed notice, which is why the
api may serve it to anyone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from telemetry.signing import (
    Ident,
    SigningError,
    canonical,
    check_signature,
    decode_signed,
    load_private_key,
    sign_bytes,
)
from telemetry.site import Broker
from telemetry.topics import fleet_bundle_topic

_DOMAIN = b"dynamo-fleet-bundle-v1\n"
# A release's name is a directory name on the gateway: no slash, no leading dot.
Release = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,62}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# A bundle is tens of megabytes; a gigabyte is a mistake (or an SD card filled on purpose).
MAX_ARCHIVE_BYTES = 1 << 30


class BundleNotice(BaseModel):
    """One published release for one gateway (`gateway`) or a whole site (`gateway` null)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    site: Ident
    gateway: Ident | None = None
    version: Release
    # Milliseconds since the epoch at publication, above the topic's previous notice: a gateway
    # handles each sequence once and never an older one (an old notice replayed).
    sequence: int = Field(ge=0)
    url: str = Field(min_length=1, max_length=2000)
    archive_sha256: Sha256
    archive_size: int = Field(ge=1, le=MAX_ARCHIVE_BYTES)
    # The bundle's manifest.json as built (gateway/bundle.py): platform, python, files.
    manifest: dict[str, Any]
    signature: str = ""

    def signed_bytes(self) -> bytes:
        return canonical(_DOMAIN, self.model_dump(exclude={"signature"}))

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    def files(self) -> dict[str, str]:
        """The manifest's path → SHA-256; `SigningError` if it has none readable."""
        files = self.manifest.get("files")
        if not isinstance(files, dict) or not files or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise SigningError("malformed notice: manifest.files is not a map of file hashes")
        return dict(files)

    def target(self) -> str:
        return f"{self.site}/{self.gateway or '*'}"


def sign_notice(key: Ed25519PrivateKey, **fields: Any) -> BundleNotice:
    unsigned = BundleNotice(**fields)
    return unsigned.model_copy(update={"signature": sign_bytes(key, unsigned.signed_bytes())})


def decode_notice(payload: bytes) -> BundleNotice:
    """Parse a notice (not verified yet); `SigningError` says what is malformed."""
    return decode_signed(BundleNotice, payload, "notice")


def verify_notice(notice: BundleNotice, key: Ed25519PublicKey) -> None:
    check_signature(key, notice.signature, notice.signed_bytes())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(bundle: Path) -> dict[str, Any]:
    """A bundle directory's manifest.json; `SigningError` with where and why."""
    path = bundle / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SigningError(f"{path}: not a bundle manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise SigningError(f"{path}: no `files` map (build it with `dynamo gateway bundle`)")
    return manifest


# -- the centre's side: `dynamo fleet publish-bundle` -------------------------------------------


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    version: str
    sequence: int
    archive_sha256: str
    url: str


def bundle_version(bundle: Path) -> str:
    """The version of the project's wheel in the bundle: the release's name by default."""
    own = sorted((bundle / "wheels").glob("dynamo_monitoring-*.whl"))
    if not own:
        raise SigningError(f"{bundle}/wheels holds no dynamo_monitoring wheel: not a bundle of "
                           "`dynamo gateway bundle`")
    return own[0].name.split("-")[1]


def check_bundle(bundle: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names is there with its SHA-256 (a damaged bundle is refused
    here rather than by every gateway)."""
    bad = [name for name, digest in manifest["files"].items()
           if not (bundle / name).is_file() or file_sha256(bundle / name) != digest]
    if bad:
        raise SigningError(f"{bundle}: files missing or changed since the manifest was "
                           f"written: {', '.join(sorted(bad)[:5])}")


def archive_bundle(bundle: Path, store: Path) -> tuple[str, int]:
    """The bundle as one tar in `store`, named by its SHA-256 (what the api serves); returns
    (sha256, size). Plain tar: the wheels inside are compressed already."""
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=store, prefix=".publishing-", suffix=".tar",
                                     delete=False) as handle:
        tmp = Path(handle.name)
    try:
        with tarfile.open(tmp, "w") as tar:
            for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
                tar.add(path, arcname=path.relative_to(bundle).as_posix(), recursive=False)
        digest = file_sha256(tmp)
        size = tmp.stat().st_size
        os.chmod(tmp, 0o644)
        os.replace(tmp, store / f"{digest}.tar")
    finally:
        tmp.unlink(missing_ok=True)
    return digest, size


def publish_bundle(*, bundle: Path, site: str, gateway: str | None, key_file: Path,
                   broker: Broker, store: Path, url_base: str, version: str | None = None,
                   now_ms: int | None = None, timeout_s: float = 10.0) -> Published:
    """Archive `bundle` into `store`, sign its notice and publish it (retained) for `gateway`
    of `site`, or for every gateway of `site`; `SigningError` or `FleetError` say why not."""
    from telemetry.fleet import FleetError, _Session

    manifest = read_manifest(bundle)
    check_bundle(bundle, manifest)
    key = load_private_key(key_file)
    sha256, size = archive_bundle(bundle, store)
    url = f"{url_base.rstrip('/')}/api/v1/fleet/bundles/{sha256}"
    topic = fleet_bundle_topic(site, gateway)
    with _Session(broker, timeout_s) as session:
        held = None
        for _, payload in reversed(session.collect([topic], wait_s=0.5)):
            with contextlib.suppress(SigningError):
                held = decode_notice(payload)
            break
        sequence = max(now_ms if now_ms is not None else int(time.time() * 1000),
                       held.sequence + 1 if held is not None else 0)
        try:
            notice = sign_notice(key, site=site, gateway=gateway,
                                 version=version or bundle_version(bundle), sequence=sequence,
                                 url=url, archive_sha256=sha256, archive_size=size,
                                 manifest=manifest)
        except ValidationError as exc:
            raise FleetError(f"notice refused: {exc.errors()[0]['msg']}") from None
        session.publish(topic, notice.encode())
    return Published(topic=topic, version=notice.version, sequence=sequence,
                     archive_sha256=sha256, url=url)
