"""InfluxDB 1.x (Debian's `influxd`) on a loopback port with its own data directory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

from dynamo.devservices.ports import free_port
from dynamo.devservices.process import ServiceProcess

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 25000000

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[logging]
  level = "warn"
"""


class InfluxdProcess(ServiceProcess):
    """An influxd with HTTP on 127.0.0.1:`port`; data survives `restart()`."""

    name = "influxd"

    def __init__(self, *, workdir: Path, port: int | None = None, binary: str = "influxd") -> None:
        super().__init__(workdir=workdir)
        found = shutil.which(binary) or shutil.which(binary, path="/usr/bin:/usr/sbin")
        if found is None:
            raise FileNotFoundError(f"{binary} not found: install Debian's `influxdb` package")
        self.binary = found
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.config_file = self.workdir / "influxdb.conf"
        self.config_file.write_text(_CONFIG.format(dir=self.workdir, port=self.port,
                                                   rpc_port=self.rpc_port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.config_file)]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.running:
                raise TimeoutError("influxd exited")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("influxd did not answer /ping within 30 s")
