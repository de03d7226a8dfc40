"""`dynamo api …`: the indicators api."""

from __future__ import annotations

import click


@click.group()
def api() -> None:
    """The indicators api."""


@api.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api_run(host: str, port: int) -> None:
    """Serve the api (settings: DYNAMO_* env)."""
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
