"""Api: FastAPI service for energy and GHG indicators, production records, exports."""

from api.access.tokens import TokenRole, create_token
from api.accounting.energy import CounterDelta, PowerIntegral, counter_delta, power_integral
from api.accounting.factors import EmissionFactor, FactorTable, UnknownFactor
from api.accounting.gwp import GwpTable
from api.accounting.rollups import RollupReport, run_rollups
from api.app import create_app
from api.periods import Calendar, Period, PeriodError, calendar_period, explicit_period
from api.settings import ApiSettings

__all__ = [
    "ApiSettings",
    "Calendar",
    "CounterDelta",
    "EmissionFactor",
    "FactorTable",
    "GwpTable",
    "Period",
    "PeriodError",
    "PowerIntegral",
    "RollupReport",
    "TokenRole",
    "UnknownFactor",
    "calendar_period",
    "counter_delta",
    "create_app",
    "create_token",
    "explicit_period",
    "power_integral",
    "run_rollups",
]
