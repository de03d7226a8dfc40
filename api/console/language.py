"""The language switch: a cookie, French unless it says English."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import RedirectResponse

from api.console.render import LANG_COOKIE

router = APIRouter()


def local_path(target: str | None) -> str:
    """`target` if it is a path of this site, else `/`: never a redirect to elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/langue/{code}")
def switch(code: Annotated[str, Path(pattern="^(fr|en)$")],
           next: Annotated[str | None, Query()] = None) -> RedirectResponse:
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, httponly=True,
                        samesite="strict")
    return response
