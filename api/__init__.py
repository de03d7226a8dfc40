"""Api: FastAPI service for energy and GHG indicators, exports and reports."""

from api.app import create_app
from api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
