"""Electricity supply contracts of a site (market-based scope 2): list, add, edit, void.

Evaluators and admins write; every role of the site reads. An edit names the version it
started from (409 when someone else changed it in the meantime); DELETE voids the contract
(it stays listed with `?include_voided=true`, out of the figures).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from api.deps import EVALUATOR_WRITES, IDENT, Caller, Db, Registry
from api.records.contracts import ElectricityContract
from api.schemas import ElectricityContractIn, ElectricityContractOut

router = APIRouter(tags=["electricity contracts"])
_BASE = "/sites/{site}/electricity-contracts"
Site = Annotated[str, Path(pattern=IDENT)]


def _site(registry: Registry, caller: Caller, site: str) -> str:
    if not caller.may_see(site) or not any(s == site for s, _ in registry.equipment):
        raise HTTPException(404, f"no site {site!r}")
    return site


def _one(db: Db, site: str, contract_id: int) -> ElectricityContract:
    row = db.get(ElectricityContract, contract_id)
    if row is None or row.site != site:
        raise HTTPException(404, f"no electricity contract {contract_id} at site {site!r}")
    return row


@router.get(_BASE, response_model=list[ElectricityContractOut])
def list_contracts(site: Site, registry: Registry, caller: Caller, db: Db,
                   include_voided: Annotated[bool, Query()] = False
                   ) -> list[ElectricityContract]:
    """The site's contracts by start date; voided ones only when asked."""
    query = select(ElectricityContract).filter_by(site=_site(registry, caller, site))
    if not include_voided:
        query = query.where(ElectricityContract.voided_at.is_(None))
    return list(db.scalars(query.order_by(ElectricityContract.valid_from)))


@router.get(f"{_BASE}/{{contract_id}}", response_model=ElectricityContractOut)
def get_contract(site: Site, contract_id: int, registry: Registry, caller: Caller,
                 db: Db) -> ElectricityContract:
    return _one(db, _site(registry, caller, site), contract_id)


@router.post(_BASE, response_model=ElectricityContractOut, status_code=201,
             dependencies=[EVALUATOR_WRITES])
def create_contract(site: Site, body: ElectricityContractIn, registry: Registry,
                    caller: Caller, db: Db) -> ElectricityContract:
    row = ElectricityContract(site=_site(registry, caller, site),
                              **body.model_dump(exclude={"version"}),
                              created_at=datetime.now(UTC), created_by=caller.name)
    db.add(row)
    db.commit()
    db.refresh(row)
    return row


@router.put(f"{_BASE}/{{contract_id}}", response_model=ElectricityContractOut,
            dependencies=[EVALUATOR_WRITES])
def update_contract(site: Site, contract_id: int, body: ElectricityContractIn,
                    registry: Registry, caller: Caller, db: Db) -> ElectricityContract:
    row = _one(db, _site(registry, caller, site), contract_id)
    if row.voided_at is not None:
        raise HTTPException(409, "a voided contract cannot be edited")
    if body.version is not None and body.version != row.version:
        raise HTTPException(409, f"modified in the meantime: current version {row.version}")
    for key, value in body.model_dump(exclude={"version"}).items():
        setattr(row, key, value)
    row.updated_at, row.updated_by = datetime.now(UTC), caller.name
    try:
        db.commit()
    except StaleDataError:
        db.rollback()
        raise HTTPException(409, "modified in the meantime") from None
    db.refresh(row)
    return row


@router.delete(f"{_BASE}/{{contract_id}}", status_code=204, dependencies=[EVALUATOR_WRITES])
def void_contract(site: Site, contract_id: int, registry: Registry, caller: Caller, db: Db,
                  reason: Annotated[str, Query(max_length=500)] = "voided through the api"
                  ) -> Response:
    """Voids the contract: it stays readable, and no longer counts in the figures."""
    row = _one(db, _site(registry, caller, site), contract_id)
    if row.voided_at is None:
        row.voided_at, row.voided_by, row.void_reason = datetime.now(UTC), caller.name, reason
        db.commit()
    return Response(status_code=204)
