"""`/api/v1/fleet/bundles/{sha256}`: the gateway bundles published for remote upgrade.

Served to anyone, without a token: a bundle is the project's public code and its dependencies'
public wheels, and gateways hold no api token. What a gateway trusts is the signed notice
(telemetry/bundle_notice.py) that names the archive's SHA-256 and every file's; an archive
changed here, or on the way, is refused by the gateway. The folder is the api's
`DYNAMO_FLEET_BUNDLES`, filled by `dynamo fleet publish-bundle` (docs/fleet.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse

router = APIRouter(tags=["fleet"])


@router.get("/fleet/bundles/{sha256}", response_class=FileResponse,
            responses={404: {"description": "No bundle published with this SHA-256"}})
def bundle(request: Request,
           sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]) -> FileResponse:
    """The archive (tar) whose SHA-256 is `sha256`, as `dynamo fleet publish-bundle` stored it."""
    store = request.app.state.settings.fleet_bundles
    file = None if store is None else store / f"{sha256}.tar"
    if file is None or not file.is_file():
        raise HTTPException(status_code=404, detail=f"no bundle {sha256} published here")
    return FileResponse(file, media_type="application/x-tar", filename=f"{sha256}.tar")
