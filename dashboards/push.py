"""Upload dashboards to a running Grafana through its HTTP API (grafana-client).

For Grafanas that are not provisioned from dashboards/generated/ (a hosted Grafana, a shared
instance). grafana-client's errors are translated into `PushError` here, and only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.dashboard import Dashboard
from dashboards.machine import dashboard_uid


class PushError(Exception):
    """Grafana refused or could not be reached; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Pushed:
    uid: str
    folder_uid: str
    url: str
    version: int | None


def folder_uid(site: str) -> str:
    return dashboard_uid(site)


def push_dashboards(dashboards: Sequence[Dashboard], *, url: str, token: str,
                    timeout_s: float = 10.0) -> list[Pushed]:
    """Create each site's folder if missing, then create or overwrite each dashboard."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException, TokenAuth
    from niquests.exceptions import RequestException  # grafana-client's HTTP library

    credential = TokenAuth(token=token)  # type: ignore[no-untyped-call]
    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)
    pushed = []
    folders: set[str] = set()
    try:
        for dashboard in dashboards:
            folder = folder_uid(dashboard.site)
            if folder not in folders:
                try:
                    api.folder.get_folder(folder)
                except GrafanaClientError as exc:
                    if exc.status_code != 404:
                        raise
                    api.folder.create_folder(dashboard.site, uid=folder)
                folders.add(folder)
            answer: dict[str, Any] = api.dashboard.update_dashboard({
                "dashboard": dashboard.to_json(), "folderUid": folder, "overwrite": True,
                "message": "dynamo dashboards push"})
            pushed.append(Pushed(uid=str(answer.get("uid", dashboard.uid)), folder_uid=folder,
                                 url=str(answer.get("url", "")),
                                 version=answer.get("version")))
    except GrafanaException as exc:
        raise PushError(f"Grafana at {url} refused the dashboards: {exc.message}",
                        exc.status_code) from exc
    except RequestException as exc:
        raise PushError(f"Grafana at {url} unreachable: {exc}") from exc
    return pushed
