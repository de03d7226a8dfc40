"""Mosquitto (Debian's) on a loopback port, with the repository's ACL and generated users."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dynamo.devservices.ports import free_port, wait_for_port
from dynamo.devservices.process import ServiceProcess
from telemetry.acl import generate

_CONFIG = """\
per_listener_settings false
allow_anonymous false
password_file {dir}/passwd
acl_file {acl}
persistence true
persistence_location {dir}/
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages 1000
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
listener {port} 127.0.0.1
# Started by root, mosquitto would switch to the `mosquitto` user, which cannot enter our
# private temporary directory: stay who we are.
user {user}
"""


# The TLS listener of firmware-config/broker/conf.d/tls.conf.example, on loopback: a client
# certificate of the site CA is required, and its CN is the user name the ACL sees.
_TLS_LISTENER = """\
listener {port} 127.0.0.1
cafile {tls.cafile}
certfile {tls.certfile}
keyfile {tls.keyfile}
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
"""


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The broker's side of TLS: the CA its clients' certificates must chain to, its own
    certificate and key, and the CRL of revoked clients (`dynamo pki` makes all four)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path | None = None


def generated_acl(directory: Path, *, sites: Path,
                  development_gateways: tuple[str, ...] = ()) -> Path:
    """Write the ACL `dynamo broker acl` makes for the configurations below `sites` into
    `directory` (created), and return its path.

    `development_gateways`: synthetic gateways of the suite and the benchmarks (e.g. `test-gw`)
    that publish under throwaway site ids; they get their prefix on every site, in a section
    marked development only (telemetry.acl.render_acl).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "acl"
    path.write_text(generate(sites, development_gateways=development_gateways))
    return path


class MosquittoProcess(ServiceProcess):
    """A broker with no anonymous access, the given users, and `acl_file` (the repo's ACL)."""

    name = "mosquitto"

    def __init__(
        self,
        *,
        workdir: Path,
        users: dict[str, str],
        acl_file: Path,
        port: int | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        """`tls`: also listen with TLS and client certificates on `tls_port` (free port)."""
        super().__init__(workdir=workdir)
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        passwd = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd",
                                                                  path="/usr/bin")
        if binary is None or passwd is None:
            raise FileNotFoundError("mosquitto not found: install Debian's `mosquitto` package")
        self.binary = binary
        self.port = port or free_port()
        self.users = dict(users)
        password_file = self.workdir / "passwd"
        password_file.write_text("")
        for user, password in users.items():
            subprocess.run([passwd, "-b", str(password_file), user, password], check=True,
                           capture_output=True)
        self.config_file = self.workdir / "mosquitto.conf"
        self.config_file.write_text(_CONFIG.format(
            dir=self.workdir, acl=acl_file.resolve(), port=self.port,
            user=pwd.getpwuid(os.geteuid()).pw_name))
        self.tls_port: int | None = None
        if tls is not None:
            self.tls_port = free_port()
            listener = _TLS_LISTENER.format(port=self.tls_port, tls=tls)
            if tls.crlfile is not None:
                listener += f"crlfile {tls.crlfile}\n"
            with self.config_file.open("a") as config:
                config.write(listener)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_file)]

    def wait_ready(self) -> None:
        wait_for_port(self.host, self.port, timeout_s=15)
        if self.tls_port is not None:
            wait_for_port(self.host, self.tls_port, timeout_s=15)

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its ACL, passwords, certificates and CRL again; connected
        clients keep their sessions (a revoked certificate is refused from its next connection)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)
