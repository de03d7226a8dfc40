"""The project stands alone: no file refers to anything outside the repository (a shared facts
file, a design brief, a development machine's paths), and every citation of an outside fact
resolves to an entry of docs/sources.md."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[1]
SOURCES = ROOT / "docs" / "sources.md"
# Shipped data whose `source_ref` values must name an entry of docs/sources.md (test cases'
# own factor files are user files: their `source_ref` may name the case; device templates cite
# their maker's document in `source` and docs/sources.md lists them).
DATA_DIRS = ("api/data/",)

# Split so that this file does not match itself.
FORBIDDEN = re.compile("|".join((
    r"FACTS" r"\.md",
    r"\.\./" r"shared",
    r"\bDESIGN" r"(\.md|\s*§)",
    r"/wo" r"rk/",
    r"/ho" r"me/[a-z]",
    r"/Us" r"ers/",
)))
LINK = re.compile(r"docs/sources\.md#([A-Za-z0-9_-]+)")


def _files() -> list[Path]:
    """Every file of the repository: tracked, and new ones not ignored (not yet committed)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True, timeout=30).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name and (ROOT / name).is_file()]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary files (images, fonts) cannot hold a written reference


def _anchors() -> set[str]:
    return set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", SOURCES.read_text(encoding="utf-8")))


def _source_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "source_ref" and value is not None:
                yield str(value)
            else:
                yield from _source_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _source_refs(item)


def test_no_file_refers_outside_the_repository() -> None:
    me = Path(__file__).resolve()
    found = []
    for path in _files():
        if path.resolve() == me:
            continue
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if FORBIDDEN.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_every_link_to_docs_sources_resolves() -> None:
    anchors = _anchors()
    assert len(anchors) > 20
    broken = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            broken += [f"{path.relative_to(ROOT)}:{number}: #{anchor}"
                       for anchor in LINK.findall(line) if anchor not in anchors]
    assert not broken, "links to missing docs/sources.md entries:\n" + "\n".join(broken)


def test_every_source_ref_of_shipped_data_has_an_entry() -> None:
    anchors = _anchors()
    checked = 0
    broken = []
    for path in _files():
        name = path.relative_to(ROOT).as_posix()
        if not name.startswith(DATA_DIRS) or path.suffix not in (".yaml", ".yml"):
            continue
        for ref in _source_refs(yaml.safe_load(path.read_text(encoding="utf-8"))):
            checked += 1
            if ref not in anchors:
                line = next((n for n, text in enumerate(path.read_text().splitlines(), 1)
                             if f"source_ref: {ref}" in text), 0)
                broken.append(f"{name}:{line}: source_ref {ref!r}")
    assert checked > 50, f"only {checked} source_ref found: is the data where expected?"
    assert not broken, "source_ref without an entry in docs/sources.md:\n" + "\n".join(broken)
