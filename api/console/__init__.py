"""The operators' console: server-rendered pages at `/`, French by default, English on a switch.

Same process, database, roles and site scopes as the api under `/api/v1`. Each page is one module
with its own router; this package gathers them into `router`, which `api.app` mounts at `/`.
"""

from fastapi import APIRouter

from api.console import (
    alerts,
    auth,
    base_year,
    calendar,
    contracts,
    fleet,
    indicators,
    language,
    missing,
    overview,
    records,
    users,
)

router = APIRouter(include_in_schema=False)
router.include_router(language.router)
router.include_router(auth.router)
router.include_router(users.router)
router.include_router(missing.router)
# Before records: its `/registres/{site}/{equipment}/{kind}` would take the contracts' paths.
router.include_router(contracts.router)
router.include_router(base_year.router)
router.include_router(calendar.router)
router.include_router(records.router)
router.include_router(overview.router)
router.include_router(indicators.router)
router.include_router(alerts.router)
router.include_router(fleet.router)

__all__ = ["router"]
