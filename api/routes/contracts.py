"""Electricity supply contracts of a site (market-based scope 2): list, add, edit, void, history.

Evaluators and admins write; every role of the site reads. The writes go through the records
service (`api.records.service`, kind `electricity_contracts`, owned by the site), as the other
records do: `POST` honours an `Idempotency-Key` header (the same key on the same site creates
one contract), an edit names the version it started from (body `version` or `If-Match`; 409
when someone else changed it in the meantime), DELETE voids the contract with a reason (it
stays listed with `?include_voided=true`, out of the figures; `?purge=true`, admin, deletes
it), and `…/history` answers its audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from api.deps import EVALUATOR_WRITES, IDENT, Caller, Db, Registry, visible_site
from api.records import service
from api.records.kinds import ELECTRICITY_CONTRACTS as KIND
from api.records.service import RecordError
from api.routes.records import (
    IdempotencyKey,
    IfMatch,
    IncludeVoided,
    Purge,
    Reason,
    _actor,
    _admit_purge,
    _as_out,
    _http,
    _version,
)
from api.schemas import AuditOut, ElectricityContractIn, ElectricityContractOut

router = APIRouter(tags=["electricity contracts"])
_BASE = "/sites/{site}/electricity-contracts"
_ONE = f"{_BASE}/{{contract_id}}"
Site = Annotated[str, Path(pattern=IDENT)]


class ElectricityContractEdit(ElectricityContractIn):
    """The PUT body: the contract's fields and the version the edit started from."""

    version: int | None = None


def _site(registry: Registry, caller: Caller, site: Site) -> str:
    return visible_site(registry, caller, site)


# The path's site, once the caller may see it (another site's looks like no site at all).
CheckedSite = Annotated[str, Depends(_site)]


@router.get(_BASE, response_model=list[ElectricityContractOut])
def list_contracts(site: CheckedSite, db: Db,
                   include_voided: IncludeVoided = False) -> list[Any]:
    """The site's contracts by start date; voided ones only when asked."""
    return [_as_out(KIND, row) for row in service.rows(db, KIND, equipment=site,
                                                       include_voided=include_voided)]


@router.get(_ONE, response_model=ElectricityContractOut)
def get_contract(site: CheckedSite, contract_id: int, db: Db) -> Any:
    try:
        return _as_out(KIND, service.get(db, KIND, contract_id, equipment=site))
    except RecordError as exc:
        raise _http(exc) from None


@router.post(_BASE, response_model=ElectricityContractOut, status_code=201,
             dependencies=[EVALUATOR_WRITES])
def create_contract(site: CheckedSite, body: ElectricityContractIn, caller: Caller, db: Db,
                    idempotency_key: IdempotencyKey = None) -> Any:
    try:
        row = service.create(db, KIND, body.model_dump(), equipment=site,
                             actor=_actor(caller), via="api", idempotency_key=idempotency_key)
    except RecordError as exc:
        raise _http(exc) from None
    return _as_out(KIND, row)


@router.put(_ONE, response_model=ElectricityContractOut, dependencies=[EVALUATOR_WRITES],
            description="Full replacement of the editable fields, from the version named in "
                        "the body (`version`) or an `If-Match` header: 409 when the contract "
                        "changed meanwhile, and nothing is overwritten.")
def update_contract(site: CheckedSite, contract_id: int, body: ElectricityContractEdit,
                    caller: Caller, db: Db, if_match: IfMatch = None) -> Any:
    values = body.model_dump()
    expected = _version(values.pop("version", None), if_match)
    try:
        row = service.edit(db, KIND, contract_id, values, equipment=site,
                           expected_version=expected, actor=_actor(caller), via="api")
    except RecordError as exc:
        raise _http(exc) from None
    return _as_out(KIND, row)


@router.delete(_ONE, status_code=204, dependencies=[EVALUATOR_WRITES])
def void_contract(site: CheckedSite, contract_id: int, caller: Caller, db: Db,
                  reason: Reason = None, purge: Purge = False) -> Response:
    """Voids the contract: it stays readable, and no longer counts in the figures."""
    _admit_purge(caller, purge)
    try:
        if purge:
            service.purge(db, KIND, contract_id, equipment=site, actor=_actor(caller),
                          via="api", reason=reason or "purged through the api")
        else:
            service.void(db, KIND, contract_id, equipment=site, actor=_actor(caller),
                         via="api", reason=reason or "voided through the api")
    except RecordError as exc:
        raise _http(exc) from None
    return Response(status_code=204)


@router.get(f"{_ONE}/history", response_model=list[AuditOut])
def contract_history(site: CheckedSite, contract_id: int, db: Db) -> list[AuditOut]:
    """Every create, edit and void of the contract (also after a purge), oldest first."""
    entries = service.history(db, KIND, contract_id, equipment=site)
    if not entries:
        # A contract stored before its writes were audited has an empty history.
        get_contract(site, contract_id, db)
    return [AuditOut.model_validate(e, from_attributes=True) for e in entries]

