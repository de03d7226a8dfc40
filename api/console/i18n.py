"""The console's words in French and English: `messages/<page>.yaml`, one file per page.

A file maps a key to its French and English text; keys are used as `<file stem>.<key>`
(`records.title`), so each page owns its words. Every key must have both languages: a missing
one is refused when the console loads, not shown as a blank to an operator.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT: Lang = "fr"
MESSAGES = Path(__file__).parent / "messages"


class MessageError(ValueError):
    """A message file the console cannot use (file, key and why)."""


@cache
def catalogue() -> dict[str, dict[Lang, str]]:
    """Every key of every message file, with its text in each language."""
    found: dict[str, dict[Lang, str]] = {}
    for path in sorted(MESSAGES.glob("*.yaml")):
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise MessageError(f"{path.name}: expected a mapping of keys to {{fr, en}}")
        for key, texts in data.items():
            if not isinstance(texts, dict) or set(texts) != set(LANGS):
                raise MessageError(f"{path.name}: {key}: needs exactly 'fr' and 'en'")
            found[f"{path.stem}.{key}"] = {lang: str(texts[lang]) for lang in LANGS}
    return found


def translate(key: str, lang: Lang, /, **values: object) -> str:
    """The text of `key` in `lang`, with `{name}` placeholders filled from `values`."""
    try:
        text = catalogue()[key][lang]
    except KeyError:
        raise MessageError(f"no message {key!r}") from None
    return text.format(**values) if values else text


def typed_number(raw: str) -> str:
    """A number as typed in a form, in the notation Python reads: a phone's French keyboard
    may type a decimal comma and group digits with spaces."""
    return raw.replace(",", ".").replace(" ", "").replace("\u202f", "")


def language_of(cookie: str | None) -> Lang:
    return "en" if cookie == "en" else DEFAULT
