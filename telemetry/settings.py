"""Environment settings of the server-side services (collector, api), prefix `DYNAMO_`.

Server-only: it needs pydantic-settings, which the gateway's Raspberry Pi does not install.
"""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from telemetry.influx.client import InfluxClient
from telemetry.site import Broker, TlsFiles


class ServiceSettings(BaseSettings):
    """Broker and database coordinates; every service reads these from the environment."""

    model_config = SettingsConfigDict(env_prefix="DYNAMO_", extra="ignore")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: str | None = None
    # A client certificate and key for a broker listener with `require_certificate`
    # (docs/pki.md); setting them turns TLS on.
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None

    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "dynamo"
    influx_token: str | None = None  # InfluxDB 2.x / 3: v1-compat API with a token
    influx_username: str | None = None  # InfluxDB 1.x with auth enabled
    influx_password: str | None = None
    influx_gzip: bool = True  # compress writes; off saves CPU on both ends of a local link
    # A request InfluxDB has not answered in this long is abandoned and retried (a hung server).
    influx_timeout_s: float = 10.0

    @model_validator(mode="after")
    def _one_auth(self) -> ServiceSettings:
        if self.influx_token and self.influx_username:
            raise ValueError("set DYNAMO_INFLUX_TOKEN or DYNAMO_INFLUX_USERNAME, not both")
        return self

    def broker(self) -> Broker:
        tls = None
        if self.mqtt_tls or self.mqtt_cert_file:
            tls = TlsFiles(ca=self.mqtt_ca_file, cert=self.mqtt_cert_file,
                           key=self.mqtt_key_file)
        return Broker(host=self.mqtt_host, port=self.mqtt_port, username=self.mqtt_username,
                      password=self.mqtt_password, tls=tls)

    def influx(self) -> InfluxClient:
        return InfluxClient(url=self.influx_url, database=self.influx_db,
                            token=self.influx_token, username=self.influx_username,
                            password=self.influx_password, gzip_writes=self.influx_gzip,
                            timeout_s=self.influx_timeout_s)
