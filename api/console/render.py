"""Pages from Jinja2 templates, with what every page needs: the language, its words, the person
signed in, the CSRF token of their session and numbers written the way the language writes them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.console.i18n import Lang, language_of, translate
from api.reports.language import number

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LANG_COOKIE = "dynamo_lang"

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def lang_of(request: Request) -> Lang:
    return language_of(request.cookies.get(LANG_COOKIE))


def moment(value: datetime | None, lang: Lang, zone: Any = None) -> str:
    """A date and time as `lang` writes it (in `zone` when given; "—" for none)."""
    if value is None:
        return "—"
    local = value.astimezone(zone) if zone is not None else value
    return local.strftime("%d/%m/%Y %H:%M" if lang == "fr" else "%Y-%m-%d %H:%M")


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """`template` rendered for the person making `request` (a whole page or a fragment)."""
    lang = lang_of(request)
    state = request.state
    html = _env.get_template(template).render(
        request=request, lang=lang,
        _=lambda key, **values: translate(key, lang, **values),
        number=lambda value, digits=1: number(value, digits=digits, lang=lang),
        moment=lambda value, zone=None: moment(value, lang, zone),
        person=getattr(state, "person", None),
        csrf_token=getattr(state, "csrf_token", ""),
        **context)
    return HTMLResponse(html, status_code=status)
