"""Offline installation bundle for a Raspberry Pi: a wheelhouse and the provisioning files.

A site without internet installs from a USB stick: the bundle holds the project's wheel,
binary wheels of every dependency for the Pi's platform and Python (pip's cross-platform
`download --platform … --only-binary=:all:`), the installer, the systemd unit, and a manifest
with the SHA-256 of each file. `firmware-config/pi/install.sh --bundle DIR` installs from it
with `pip --no-index`.

aarch64 (Raspberry Pi OS 64-bit) finds every wheel on PyPI. armv7l (32-bit, armhf) needs
piwheels, the Raspberry Pi community's wheel index, for the packages PyPI has no armv7l wheel
of (PyYAML): it is added as an extra index for that platform.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

PLATFORMS: dict[str, tuple[str, ...]] = {
    # glibc 2.36 on Bookworm: manylinux tags up to 2_36 are installable.
    "aarch64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64",
                "manylinux_2_31_aarch64", "manylinux_2_34_aarch64", "manylinux_2_36_aarch64"),
    "armv7l": ("manylinux2014_armv7l", "manylinux_2_17_armv7l", "manylinux_2_31_armv7l",
               "manylinux_2_36_armv7l", "linux_armv7l"),
}
PIWHEELS = "https://www.piwheels.org/simple"
DISTRIBUTION = "dynamo-monitoring"
_SOURCES = ("pyproject.toml", "README.md")
_PACKAGES = ("telemetry", "gateway", "collector", "api", "simulators", "alerting", "dashboards",
             "dynamo")
_PROVISIONING = ("install.sh", "dynamo-gateway.service", "dynamo-alerts-edge.service",
                 "journald-dynamo.conf", "gateway.env.example")


class BundleError(Exception):
    """The bundle could not be built; the message says which step and why."""


@dataclass(frozen=True, slots=True)
class Bundle:
    directory: Path
    platform: str
    python: str
    wheels: tuple[str, ...]


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


def build_bundle(*, platform: str, out: Path, python_version: str = "3.11") -> Bundle:
    """Build the bundle for `platform` (aarch64 or armv7l) and CPython `python_version`."""
    if platform not in PLATFORMS:
        raise BundleError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    root = project_root()
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    abi = "cp" + python_version.replace(".", "")
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
    platform_args = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    index_args = ["--extra-index-url", PIWHEELS] if platform == "armv7l" else []
    _pip("download", "--only-binary=:all:", *platform_args, "--python-version", python_version,
         "--implementation", "cp", "--abi", abi, *index_args, "-d", str(wheels),
         *core_requirements(), step=f"download the {platform} wheels")
    provisioning = root / "firmware-config" / "pi"
    for name in _PROVISIONING:
        shutil.copy2(provisioning / name, out / name)
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = {
        "distribution": DISTRIBUTION, "platform": platform, "python": python_version,
        "files": {str(p.relative_to(out)): _sha256(p) for p in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Bundle(out, platform, python_version, tuple(sorted(p.name for p in
                                                              wheels.glob("*.whl"))))


def _pip(*args: str, step: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise BundleError(f"could not {step} (pip exit {result.returncode}):\n{tail}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
