"""Mosquitto (Debian's) on a loopback port, with the repository's ACL and generated users."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from dynamo.devservices.ports import free_port, wait_for_port
from dynamo.devservices.process import ServiceProcess

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
    ) -> None:
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

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_file)]

    def wait_ready(self) -> None:
        wait_for_port(self.host, self.port, timeout_s=15)
