"""The emission factors and refrigerant GWPs in force, with their sources."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Factors, Gwp, Settings
from api.schemas import FactorOut, GwpOut

router = APIRouter(tags=["factors"])


@router.get("/factors", response_model=list[FactorOut])
def list_factors(factors: Factors) -> list[FactorOut]:
    """Every emission factor loaded (shipped and user files), with source and validity."""
    return [FactorOut.model_validate(f, from_attributes=True) for f in factors.factors]


@router.get("/refrigerants", response_model=list[GwpOut])
def list_gwp(gwp: Gwp, settings: Settings) -> list[GwpOut]:
    """GWP-100 of each refrigerant per assessment report; `in_use` marks the deployment's."""
    return [GwpOut(report=name, source=gwp.source(name), in_use=name == settings.api_gwp_report,
                   gwp=gwp.table(name))
            for name in gwp.reports]
