"""Remote upgrade: a signed bundle from the centre, installed beside the running release,
switched to, and given up for the previous one if it does not prove healthy (docs/fleet.md,
"Remote upgrade").

The releases folder (`/opt/dynamo/releases` on a Pi, any folder in tests) holds one directory
per release, each with its own venv installed offline from its bundle's wheelhouse (`pip
--no-index`), and a `current` symlink that systemd starts the gateway through
(`current/venv/bin/dynamo gateway run`). For each notice on its upgrade topics (one for the
gateway, one for its site; telemetry/bundle_notice.py) the running gateway, in order:

1. checks the signature against the fleet key, the target (its site, and its id or every
   gateway), and that the notice is newer than any it handled (retained: it comes again at each
   connection), and that the bundle is for this machine's architecture;
2. downloads the archive from the notice's URL (the api's `/api/v1/fleet/bundles/{sha256}`),
   checks its size and SHA-256, unpacks it (no absolute path, no `..`, no link out) and checks
   every file against the signed manifest; a file more or less is refused too;
3. installs a venv beside the running one and checks that the gateway imports in it;
4. writes `pending.json` (the version, the release to judge, the one to go back to, a
   deadline), copies the guard (gateway/upgrade_guard.py, standard library only) beside the
   releases, switches `current`, and stops cleanly with `RESTART_EXIT_CODE`: systemd starts
   the new release (Restart=always).

The new release confirms itself once its status says `online` with its version and a poll has
read a value. If it crashes, hangs or stays unhealthy, the guard (run by systemd before each
start, and by a timer) switches back: the decision is never left to the release being judged.
Each step's outcome is in the gateway's status (`upgrade`); refusals and failed installations
switch nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import upgrade_guard
from gateway.agent import Gateway, software_version
from gateway.remote import Feed
from telemetry.bundle_notice import (
    BundleNotice,
    bundle_version,
    decode_notice,
    file_sha256,
    read_manifest,
    verify_notice,
)
from telemetry.payload import UpgradeReport
from telemetry.signing import SigningError, load_public_key
from telemetry.site import GatewayConfig
from telemetry.topics import fleet_bundle_topic

log = logging.getLogger(__name__)

# EX_TEMPFAIL: "stopped to be started again" (the unit restarts on any exit: Restart=always).
RESTART_EXIT_CODE = 75
DISTRIBUTION = "dynamo-monitoring"
GUARD = "upgrade-guard.py"
_NOTICES = "notices.json"
_CHECK_EVERY_S = 0.2
_DOWNLOAD_TIMEOUT_S = 60.0


class UpgradeError(Exception):
    """An upgrade not done: `state` is `refused` (not trusted) or `failed` (could not)."""

    def __init__(self, state: str, reason: str) -> None:
        self.state = state
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class UpgradeOptions:
    """Where the releases are and how long a new one has to prove healthy."""

    root: Path
    timeout_s: float = 300.0
    max_starts: int = 3
    # The interpreter new venvs are made with (the system's python3 on a Pi).
    python: str = field(default_factory=lambda: str(getattr(sys, "_base_executable",
                                                            sys.executable)))


def machine() -> str:
    """This machine's architecture as bundles name it (the userland's, like install.sh)."""
    try:
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        arch = platform.machine()
    return {"arm64": "aarch64", "armhf": "armv7l", "amd64": "x86_64"}.get(arch, arch)


# -- releases on disk ---------------------------------------------------------------------------


def release_name(version: str, archive_sha256: str) -> str:
    """The directory of a release: its version and archive, so that a bundle republished under
    the same version number is a release of its own."""
    return f"{version}-{archive_sha256[:12]}"


def check_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file of the unpacked bundle is in the signed manifest with its SHA-256, and every
    file the manifest names is there; `UpgradeError` (refused) names the first few that are
    not."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise UpgradeError("refused", "manifest has no `files` map")
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")
               if p.is_file() or p.is_symlink()}
    present.discard("manifest.json")
    bad = sorted(f for f in present & set(files) if file_sha256(directory / f) != files[f])
    extra, missing = sorted(present - set(files)), sorted(set(files) - present)
    problems = ([f"tampered: {f}" for f in bad] + [f"not in the manifest: {f}" for f in extra]
                + [f"missing: {f}" for f in missing])
    if problems:
        raise UpgradeError("refused", "archive does not match the signed manifest: "
                           + ", ".join(problems[:5]))
    with contextlib.suppress(SigningError):
        if (directory / "manifest.json").exists() and read_manifest(directory) != manifest:
            raise UpgradeError("refused", "the archive's manifest.json is not the signed one")


def unpack(archive: Path, into: Path) -> None:
    """Unpack a tar archive; members that would land outside `into` (absolute paths, `..`,
    links) or are devices are refused (tarfile's `data` filter)."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise UpgradeError("refused", f"archive cannot be unpacked: {exc}") from None


def install_release(bundle: Path, release: Path, *, python: str) -> None:
    """A venv in `release/venv` with the bundle's wheels, offline, then an import check;
    `UpgradeError` (failed) with the tool's last lines. `release` is made from scratch."""
    manifest = read_manifest(bundle)
    wheels = bundle / "wheels"
    if not any(wheels.glob("dynamo_monitoring-*.whl")):
        raise UpgradeError("failed", "the bundle holds no dynamo_monitoring wheel")
    shutil.rmtree(release, ignore_errors=True)
    release.mkdir(parents=True)
    venv = release / "venv"
    _run([python, "-m", "venv", "--without-pip", str(venv)], step="create the venv")
    new_python = str(venv / "bin" / "python")
    modules = manifest.get("debian_modules") or []
    if modules:  # armv7l: compiled modules from Debian packages, as install.sh does
        site = _run([new_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    step="find the venv's site-packages").strip()
        for module in modules:
            _debian_module(bundle / module["deb"], module["module"], Path(site))
        _pip(new_python, "install", "--no-index", "--no-deps",
             *sorted(str(w) for w in wheels.glob("*.whl")))
    else:
        _pip(new_python, "install", "--no-index", "--find-links", str(wheels), DISTRIBUTION)
    _run([new_python, "-c", "import dynamo.cli, gateway.agent"],
         step="import the gateway in the new release")
    shutil.copy2(bundle / "manifest.json", release / "manifest.json")


def _pip(new_python: str, *args: str) -> None:
    """pip of this interpreter run against the new venv (`--python`), so that release venvs
    need no pip of their own; or the new venv's own, set up by ensurepip, if this one has none."""
    try:
        import pip  # noqa: F401
        command = [sys.executable, "-m", "pip", "--python", new_python]
    except ImportError:
        _run([new_python, "-m", "ensurepip"], step="set up pip in the new venv")
        command = [new_python, "-m", "pip"]
    _run([*command, "--disable-pip-version-check", "--no-cache-dir", *args],
         step="install the wheels")


def _debian_module(deb: Path, member: str, site: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "data.tar"
        with tar.open("wb") as out:
            if subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=out,
                              check=False).returncode != 0:
                raise UpgradeError("failed", f"cannot read {deb.name}")
        with tarfile.open(tar) as data:
            extracted = data.extractfile(f"./{member}")
            if extracted is None:
                raise UpgradeError("failed", f"{member} is not in {deb.name}")
            (site / Path(member).name).write_bytes(extracted.read())


def _run(command: list[str], *, step: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise UpgradeError("failed", f"could not {step} (exit {result.returncode}): {tail}"[:480])
    return result.stdout


def adopt(root: Path, bundle: Path, *, python: str | None = None) -> Path:
    """Install `bundle` (a directory) as the first release and make it `current`: what
    install.sh does on a new Pi, and the tests' starting point."""
    manifest = read_manifest(bundle)
    try:
        version = bundle_version(bundle)
    except SigningError as exc:
        raise UpgradeError("failed", str(exc)) from None
    name = release_name(version, file_sha256(bundle / "manifest.json"))
    root.mkdir(parents=True, exist_ok=True)
    release = root / "releases" / name
    check_files(bundle, manifest)
    install_release(bundle, release, python=python or UpgradeOptions(root).python)
    upgrade_guard.point(root / "current", f"releases/{name}")
    install_guard(root)
    return release


def init_releases(root: Path, home: Path) -> None:
    """Make the release installed by install.sh (`{home}/venv`) the `current` one: run at each
    installation, so an installation on site always wins over a remote upgrade (a pending one
    is forgotten by the guard, `current` no longer being it)."""
    if not (home / "venv" / "bin" / "dynamo").is_file():
        raise UpgradeError("failed", f"{home}/venv/bin/dynamo: no gateway installed there")
    root.mkdir(parents=True, exist_ok=True)
    upgrade_guard.point(root / "current", str(home.resolve()))
    install_guard(root)


def install_guard(root: Path) -> None:
    """The guard systemd runs before each start: this (running, known good) release's copy."""
    target = root / GUARD
    tmp = target.with_name(f".{GUARD}.tmp")
    shutil.copyfile(upgrade_guard.__file__, tmp)
    os.replace(tmp, target)


def prune(root: Path) -> None:
    """Remove every release but `current` and `previous` (an SD card is small)."""
    keep = {(root / link).resolve() for link in ("current", "previous")
            if (root / link).is_symlink()}
    for release in (root / "releases").iterdir() if (root / "releases").is_dir() else ():
        if release.resolve() not in keep:
            shutil.rmtree(release, ignore_errors=True)


def running_release() -> Path:
    """The release this process runs from: the folder holding its venv."""
    return Path(sys.prefix).resolve().parent


# -- the gateway's listener --------------------------------------------------------------------


class Upgrader:
    """The gateway's end of `dynamo fleet publish-bundle`: one per gateway process.

    `restart` is called once a new release is switched to: it must stop the gateway cleanly
    and exit with `RESTART_EXIT_CODE` (`dynamo gateway run` does).
    """

    def __init__(self, *, config: GatewayConfig, public_key: Path, options: UpgradeOptions,
                 restart: Callable[[], None]) -> None:
        self.config = config
        self.public_key = public_key
        self.options = options
        self.root = options.root
        self.restart = restart
        self.root.mkdir(parents=True, exist_ok=True)

    # -- status ------------------------------------------------------------------------------

    def report(self) -> UpgradeReport | None:
        """What the status says: the upgrade on probation, else the last outcome."""
        pending = upgrade_guard.read_json(self.root / upgrade_guard.PENDING)
        if pending is not None:
            return UpgradeReport(version=str(pending.get("version")), state="probation")
        result = upgrade_guard.read_json(self.root / upgrade_guard.RESULT)
        if result is None:
            return None
        try:
            return UpgradeReport.model_validate({"version": str(result.get("version")),
                                                 "state": result.get("state"),
                                                 "reason": result.get("reason")})
        except ValueError:
            return None

    def _result(self, agent: Gateway, version: str, state: str, reason: str | None) -> None:
        upgrade_guard.write_json(self.root / upgrade_guard.RESULT, {
            "version": version, "state": state, "reason": reason and reason[:500],
            "ts": upgrade_guard.now_ms()})
        agent.upgrade = self.report()
        agent.publisher.publish_status()

    def attach(self, agent: Gateway) -> None:
        """Show the state in the agent's status (before it starts, so its birth has it)."""
        agent.upgrade = self.report()

    # -- running -----------------------------------------------------------------------------

    async def run(self, agent: Gateway, stop: asyncio.Event) -> None:
        """Confirm this release if it is on probation, then follow the upgrade topics."""
        while not agent.running and not stop.is_set():
            await asyncio.sleep(0.05)
        await self._confirm(agent, stop)
        config = self.config
        topics = [fleet_bundle_topic(config.site), fleet_bundle_topic(config.site, config.gateway)]
        with Feed(config, topics, "upgrade") as feed:
            while (payload := await feed.next(stop)) is not None:
                try:
                    if await self.handle(agent, payload):
                        self.restart()
                        break
                except Exception:  # a bug here must not stop the polling
                    log.exception("upgrade: internal error")

    async def _confirm(self, agent: Gateway, stop: asyncio.Event) -> None:
        """On probation: once online with the new version and a poll read a value, keep this
        release. Not done in time: the guard decides (this process is the one on trial)."""
        pending = upgrade_guard.read_json(self.root / upgrade_guard.PENDING)
        if pending is None:
            return
        release = (self.root / str(pending.get("release"))).resolve()
        if release != running_release() or software_version() != pending.get("version"):
            log.error("upgrade to %s pending, but this is %s from %s: the guard will roll back",
                      pending.get("version"), software_version(), running_release())
            return
        while not stop.is_set() and not (agent.publisher.connected.is_set() and agent.polled):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _CHECK_EVERY_S)
        if stop.is_set():
            return
        (self.root / upgrade_guard.PENDING).unlink(missing_ok=True)
        log.warning("upgrade to %s confirmed: online and polling", pending.get("version"))
        self._result(agent, str(pending.get("version")), "done", None)
        with contextlib.suppress(OSError):
            prune(self.root)

    async def handle(self, agent: Gateway, payload: bytes) -> bool:
        """One notice: True once a new release is switched to (restart now)."""
        try:
            notice = self._verified(payload)
        except UpgradeError as exc:
            log.error("upgrade notice refused: %s", exc.reason)
            self._result(agent, _claimed_version(payload), exc.state, exc.reason)
            return False
        if notice is None:
            return False
        self._handled(notice.sequence)
        self._result(agent, notice.version, "installing", None)
        try:
            await asyncio.to_thread(self._install_and_switch, notice)
        except (UpgradeError, OSError, subprocess.SubprocessError) as exc:
            state, reason = (exc.state, exc.reason) if isinstance(exc, UpgradeError) \
                else ("failed", f"{type(exc).__name__}: {exc}")
            log.error("upgrade to %s %s: %s", notice.version, state, reason)
            self._result(agent, notice.version, state, reason)
            return False
        agent.upgrade = self.report()
        agent.publisher.publish_status()
        log.warning("upgrade to %s installed and switched to: restarting", notice.version)
        return True

    def _verified(self, payload: bytes) -> BundleNotice | None:
        """The notice if it is to be installed, None if handled already; `UpgradeError`
        (refused) otherwise."""
        try:
            notice = decode_notice(payload)
            verify_notice(notice, load_public_key(self.public_key))
        except SigningError as exc:
            raise UpgradeError("refused", str(exc)) from None
        site, gateway = self.config.site, self.config.gateway
        if notice.site != site or notice.gateway not in (None, gateway):
            raise UpgradeError("refused", f"for {notice.target()}, not {site}/{gateway}")
        if notice.sequence <= self._handled():
            return None  # retained: the one handled, or an older one, delivered again
        current = self.root / "current"
        if current.is_symlink() and (self.root / os.readlink(current)).resolve().name == \
                release_name(notice.version, notice.archive_sha256):
            self._handled(notice.sequence)
            return None  # this very release runs already
        platform_ = notice.manifest.get("platform")
        if platform_ != machine():
            self._handled(notice.sequence)
            raise UpgradeError("refused", f"bundle for {platform_}, this gateway is {machine()}")
        return notice

    def _handled(self, sequence: int | None = None) -> int:
        """The highest notice sequence handled (and, given `sequence`, record it)."""
        path = self.root / _NOTICES
        handled = int((upgrade_guard.read_json(path) or {}).get("handled", -1))
        if sequence is not None and sequence > handled:
            upgrade_guard.write_json(path, {"handled": sequence})
            handled = sequence
        return handled

    def _install_and_switch(self, notice: BundleNotice) -> None:
        """Download, check, install beside the running release, switch (blocking)."""
        name = release_name(notice.version, notice.archive_sha256)
        releases = self.root / "releases"
        releases.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=releases, prefix=".incoming-") as tmp:
            archive, bundle = Path(tmp) / "bundle.tar", Path(tmp) / "bundle"
            self._download(notice, archive)
            unpack(archive, bundle)
            archive.unlink()
            check_files(bundle, notice.manifest)
            # Installed where it will run: a venv's scripts name their interpreter by absolute
            # path, so a venv cannot be moved. Not `current` until it is complete and imports.
            target = releases / name
            try:
                install_release(bundle, target, python=self.options.python)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
        self._switch(notice, f"releases/{name}")

    def _download(self, notice: BundleNotice, archive: Path) -> None:
        tls = self.config.broker.tls
        context = ssl.create_default_context(cafile=tls.ca if tls is not None else None)
        digest = hashlib.sha256()
        size = 0
        try:
            with urllib.request.urlopen(notice.url, timeout=_DOWNLOAD_TIMEOUT_S,
                                        context=context) as response, archive.open("wb") as out:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    size += len(chunk)
                    if size > notice.archive_size:
                        raise UpgradeError("refused", f"archive larger than the "
                                           f"{notice.archive_size} bytes signed")
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise UpgradeError("failed", f"cannot download {notice.url}: {exc}") from None
        if digest.hexdigest() != notice.archive_sha256:
            raise UpgradeError("refused", f"archive SHA-256 {digest.hexdigest()[:12]}…, the "
                               f"signed notice says {notice.archive_sha256[:12]}…")

    def _switch(self, notice: BundleNotice, release: str) -> None:
        """Pending first, then the guard, then `current`: a power cut at any point leaves a
        state the guard understands (pending for a release not current is dropped)."""
        current = self.root / "current"
        previous = os.readlink(current) if current.is_symlink() else str(running_release())
        since = upgrade_guard.now_ms()
        upgrade_guard.write_json(self.root / upgrade_guard.PENDING, {
            "version": notice.version, "release": release, "previous": previous,
            "since_ms": since, "deadline_ms": since + int(self.options.timeout_s * 1000),
            "starts": 0, "max_starts": self.options.max_starts})
        install_guard(self.root)
        upgrade_guard.point(self.root / "previous", previous)
        upgrade_guard.point(current, release)


def _claimed_version(payload: bytes) -> str:
    """The version a refused notice claims, for the status (`?` if it claims none)."""
    try:
        version = json.loads(payload).get("version")
    except (ValueError, AttributeError):
        return "?"
    return version[:64] if isinstance(version, str) and version else "?"
