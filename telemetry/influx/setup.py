"""Database setup, kept out of the write path: it differs per InfluxDB version.

1.x needs `CREATE DATABASE`; 2.x creates its bucket at init (and maps `db=` to it through its
automatic virtual DBRP); 3 Core creates a database on first write.
"""

from __future__ import annotations

from telemetry.influx.client import InfluxClient


def ensure_database(client: InfluxClient) -> str:
    """Create the database where the server needs it; returns the server's version string."""
    server_version = client.ping()
    if server_version.startswith("1."):
        client.create_database()  # idempotent on 1.x
    return server_version
