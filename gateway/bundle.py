"""Offline installation bundle for a Raspberry Pi: a wheelhouse and the provisioning files.

A site without internet installs from a USB stick: the bundle holds the project's wheel,
binary wheels of every dependency for the Pi's platform and Python (pip's cross-platform
`download --platform … --only-binary=:all:`), the installer, the systemd unit, and a manifest
with the SHA-256 of each file. `firmware-config/pi/install.sh --bundle DIR` installs from it
with `pip --no-index`; nothing is compiled on the Pi and nothing is fetched there.

aarch64 (Raspberry Pi OS 64-bit) finds every wheel on PyPI. armv7l (32-bit, armhf) does not,
and piwheels (the Raspberry Pi community's index) is not reachable from where bundles are
built, so the two gaps are filled from sources that are:

- PyYAML has no armv7l wheel on PyPI. Its sdist builds a pure-Python `py3-none-any` wheel
  when told not to compile the libyaml extension (`PYYAML_FORCE_LIBYAML=0`); that wheel is
  built here, on any machine, and installs anywhere. The gateway parses one small YAML file
  at start-up, so the C parser's speed is not needed.
- cffi has no armv7l wheel on PyPI, and cryptography (armv7l wheels on PyPI) needs its
  compiled `_cffi_backend` module at import. Debian bookworm's `python3-cffi-backend` armhf
  package is that module alone, built for CPython 3.11: the bundle carries the .deb (pinned by
  SHA-256) and install.sh copies the module into the gateway's venv, without touching dpkg.
  cryptography is downloaded without its `cffi` requirement, so the armv7l bundle installs
  its wheels with `pip --no-deps` (the bundle is the resolved set) and checks the imports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

PLATFORMS: dict[str, tuple[str, ...]] = {
    # glibc 2.36 on Bookworm: manylinux tags up to 2_36 are installable.
    "aarch64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64",
                "manylinux_2_31_aarch64", "manylinux_2_34_aarch64", "manylinux_2_36_aarch64"),
    "armv7l": ("manylinux2014_armv7l", "manylinux_2_17_armv7l", "manylinux_2_28_armv7l",
               "manylinux_2_31_armv7l", "manylinux_2_34_armv7l", "manylinux_2_36_armv7l",
               "linux_armv7l"),
}
DISTRIBUTION = "dynamo-monitoring"
_SOURCES = ("pyproject.toml", "README.md")
_PACKAGES = ("telemetry", "gateway", "collector", "api", "simulators", "alerting", "dashboards",
             "dynamo")
_PROVISIONING = ("install.sh", "dynamo-gateway.service", "dynamo-alerts-edge.service",
                 "dynamo-upgrade-guard.service", "dynamo-upgrade-guard.timer",
                 "journald-dynamo.conf", "gateway.env.example")


@dataclass(frozen=True, slots=True)
class PureBuild:
    """A dependency without a wheel for the platform, built here as a pure-Python wheel."""

    name: str
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DebianModule:
    """A compiled module taken from a Debian package, for a dependency PyPI has no wheel of."""

    provides: str          # the distribution it stands in for (dropped from pip's resolution)
    needed_by: str         # the distribution downloaded without that requirement
    url: str
    sha256: str
    module: str            # the file inside the .deb that install.sh copies into the venv
    python: str            # the CPython it was built for


# PyYAML's setup.py: PYYAML_FORCE_LIBYAML=0 skips the libyaml extension (docs/sources.md).
PURE_BUILDS: dict[str, tuple[PureBuild, ...]] = {
    "armv7l": (PureBuild("pyyaml", (("PYYAML_FORCE_LIBYAML", "0"),)),),
}
# Debian bookworm's python3-cffi-backend 1.15.1-5+b1 for armhf (docs/sources.md).
DEBIAN_MODULES: dict[str, tuple[DebianModule, ...]] = {
    "armv7l": (DebianModule(
        provides="cffi", needed_by="cryptography",
        url="http://deb.debian.org/debian/pool/main/p/python-cffi/"
            "python3-cffi-backend_1.15.1-5+b1_armhf.deb",
        sha256="64b6808b72098da2215d54199871252663692201d8416bebdf6464af5b86e37c",
        module="usr/lib/python3/dist-packages/_cffi_backend.cpython-311-arm-linux-gnueabihf.so",
        python="3.11"),),
}


class BundleError(Exception):
    """The bundle could not be built; the message says which step and why."""


@dataclass(frozen=True, slots=True)
class Bundle:
    directory: Path
    platform: str
    python: str
    wheels: tuple[str, ...]
    debs: tuple[str, ...] = ()


def project_root() -> Path:
    """The source checkout this code runs from (the bundle builds the project's own wheel)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise BundleError(f"no pyproject.toml in {root}: build bundles from a source checkout")
    return root


def core_requirements() -> list[str]:
    """The distribution's requirements without extras: what the gateway needs."""
    try:
        declared = requires(DISTRIBUTION) or []
    except PackageNotFoundError as exc:
        raise BundleError(f"{DISTRIBUTION} is not installed (pip install -e .)") from exc
    return [r for r in declared if "extra ==" not in r]


def requirement_name(requirement: str) -> str:
    """`pymodbus[serial]<4,>=3.11` → `pymodbus` (normalised as pip compares names)."""
    for stop in "<>=!~[; (":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower().replace("_", "-")


def build_bundle(*, platform: str, out: Path, python_version: str = "3.11") -> Bundle:
    """Build the bundle for `platform` (aarch64 or armv7l) and CPython `python_version`."""
    if platform not in PLATFORMS:
        raise BundleError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    modules = DEBIAN_MODULES.get(platform, ())
    for module in modules:
        if module.python != python_version:
            raise BundleError(f"{platform} bundles take {module.provides} from Debian bookworm, "
                              f"built for Python {module.python}, not {python_version}")
    root = project_root()
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    _build_own_wheel(root, wheels)
    for build in PURE_BUILDS.get(platform, ()):
        _build_pure_wheel(build, wheels)
    _download_wheels(platform, python_version, wheels)
    debs = tuple(_fetch_deb(module, out / "debs") for module in modules)
    provisioning = root / "firmware-config" / "pi"
    for name in _PROVISIONING:
        shutil.copy2(provisioning / name, out / name)
    _write_manifest(out, platform, python_version, modules)
    return Bundle(out, platform, python_version,
                  tuple(sorted(p.name for p in wheels.glob("*.whl"))), debs)


def _build_own_wheel(root: Path, wheels: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Build from a copy: setuptools leaves build/ behind, and others may build meanwhile.
        source = Path(tmp) / "src"
        source.mkdir()
        for name in _SOURCES:
            shutil.copy2(root / name, source / name)
        for package in _PACKAGES:
            if (root / package).is_dir():
                shutil.copytree(root / package, source / package,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _pip("wheel", "--no-deps", "-w", str(wheels), str(source), step="build the wheel")


def _build_pure_wheel(build: PureBuild, wheels: Path) -> None:
    """Build `build.name` from its sdist with its C extension switched off; refuse the result
    unless it really is pure (a platform wheel of this machine would not run on the Pi)."""
    [requirement] = [r for r in core_requirements() if requirement_name(r) == build.name]
    with tempfile.TemporaryDirectory() as tmp:
        _pip("wheel", "--no-deps", "--no-binary", build.name, "-w", tmp, requirement,
             env=dict(build.env), step=f"build a pure-Python wheel of {build.name}")
        built = list(Path(tmp).glob("*.whl"))
        if len(built) != 1 or not built[0].name.endswith("-py3-none-any.whl"):
            raise BundleError(f"building {build.name} without its C extension gave "
                              f"{[p.name for p in built]}, not one py3-none-any wheel")
        shutil.copy2(built[0], wheels / built[0].name)


def _download_wheels(platform: str, python_version: str, wheels: Path) -> None:
    """Download binary wheels for the Pi; the pure builds already in `wheels` count, and a
    dependency taken from Debian is left out of pip's resolution."""
    abi = "cp" + python_version.replace(".", "")
    target = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    target += ["--python-version", python_version, "--implementation", "cp", "--abi", abi]
    without_deps = {m.needed_by for m in DEBIAN_MODULES.get(platform, ())}
    wanted = core_requirements()
    resolved = [r for r in wanted if requirement_name(r) not in without_deps]
    common = ["download", "--only-binary=:all:", *target, "--find-links", str(wheels),
              "-d", str(wheels)]
    _pip(*common, *resolved, step=f"download the {platform} wheels")
    alone = [r for r in wanted if requirement_name(r) in without_deps]
    if alone:
        _pip(*common, "--no-deps", *alone, step=f"download {', '.join(alone)} for {platform}")


def _fetch_deb(module: DebianModule, directory: Path) -> str:
    """Download the pinned .deb (or reuse it) and check its SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / module.url.rsplit("/", 1)[1]
    if not path.exists() or _sha256(path) != module.sha256:
        try:
            with urllib.request.urlopen(module.url, timeout=120) as response:
                path.write_bytes(response.read())
        except OSError as exc:
            raise BundleError(f"could not download {module.url} (for {module.provides}): "
                              f"{exc}") from exc
    if _sha256(path) != module.sha256:
        raise BundleError(f"{module.url}: SHA-256 {_sha256(path)}, expected {module.sha256}")
    return path.name


def _write_manifest(out: Path, platform: str, python_version: str,
                    modules: tuple[DebianModule, ...]) -> None:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = {
        "distribution": DISTRIBUTION, "platform": platform, "python": python_version,
        # install.sh: copy these modules out of the .debs into the venv, install --no-deps.
        "debian_modules": [{"provides": m.provides, "deb": "debs/" + m.url.rsplit("/", 1)[1],
                            "module": m.module} for m in modules],
        "files": {str(p.relative_to(out)): _sha256(p) for p in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _pip(*args: str, step: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise BundleError(f"could not {step} (pip exit {result.returncode}):\n{tail}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
