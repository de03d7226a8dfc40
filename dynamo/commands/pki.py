"""`dynamo pki …`: the site CA, the broker's certificate and one client certificate per broker
user, for MQTT over TLS with client certificates (docs/pki.md). The work is telemetry/pki.py's.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

_DIR = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    default=Path("firmware-config/broker/certs"), show_default=True, envvar="DYNAMO_PKI_DIR",
    help="The PKI folder (env DYNAMO_PKI_DIR); keys in it are never committed.")


@click.group()
def pki() -> None:
    """Certificates for MQTT over TLS: site CA, broker, gateways and services."""


@contextmanager
def _refusals() -> Iterator[None]:
    """A refused operation as a one-line error (English / French), exit status 1."""
    from telemetry.pki import PkiError

    try:
        yield
    except PkiError as exc:
        raise click.ClickException(str(exc)) from None


@pki.command("init")
@_DIR
@click.option("--name", default="DYNAMO site CA", show_default=True, help="The CA's CN.")
@click.option("--days", type=int, default=None, help="CA validity [default: 3650].")
@click.option("--host", "hosts", multiple=True,
              help="DNS name or IP address of the broker, repeatable "
                   "[default: localhost and 127.0.0.1].")
@click.option("--server-days", type=int, default=None, help="Broker certificate validity "
                                                            "[default: 825].")
@click.option("--force", is_flag=True, help="Replace an existing CA (every certificate it "
                                             "issued stops working).")
def pki_init(directory: Path, name: str, days: int | None, hosts: tuple[str, ...],
             server_days: int | None, force: bool) -> None:
    """Create the site CA, an empty CRL and the broker's certificate."""
    from telemetry.pki import CA_DAYS, SERVER_DAYS, Pki

    store = Pki(directory)
    with _refusals():
        store.init(common_name=name, days=CA_DAYS if days is None else days, force=force)
        server = store.issue_server(hosts=hosts or ("localhost", "127.0.0.1"),
                                    days=SERVER_DAYS if server_days is None else server_days)
    click.echo(f"CA: {store.ca_cert} (key {store.ca_key}, 0600; keep it off the broker)")
    click.echo(f"CRL: {store.crl}")
    click.echo(f"broker: {store.server_cert} {store.server_key}, valid until "
               f"{server.not_valid_after_utc:%Y-%m-%d}")


@pki.command("issue")
@_DIR
@click.argument("names", nargs=-1)
@click.option("--server", is_flag=True, help="Issue the broker's certificate again instead.")
@click.option("--host", "hosts", multiple=True, help="With --server: DNS name or IP address, "
                                                     "repeatable [default: localhost, 127.0.0.1].")
@click.option("--days", type=int, default=None,
              help="Validity [default: 397 for a client, 825 for the broker].")
def pki_issue(directory: Path, names: tuple[str, ...], server: bool, hosts: tuple[str, ...],
              days: int | None) -> None:
    """Issue a client certificate (CN = broker user name) for each NAME: gateway ids and the
    services collector, api, alerting. Issuing again renews: new key, new certificate; the
    previous one stays valid until it expires or is revoked."""
    from telemetry.pki import CLIENT_DAYS, SERVER_DAYS, Pki

    store = Pki(directory)
    if server == bool(names):
        raise click.UsageError("give client NAMEs, or --server")
    with _refusals():
        if server:
            issued = store.issue_server(hosts=hosts or ("localhost", "127.0.0.1"),
                                        days=SERVER_DAYS if days is None else days)
            click.echo(f"broker: {store.server_cert}, serial {issued.serial_number:x}, valid "
                       f"until {issued.not_valid_after_utc:%Y-%m-%d}; reload the broker "
                       "(SIGHUP) to use it")
            return
        for name in names:
            issued = store.issue_client(name, days=CLIENT_DAYS if days is None else days)
            click.echo(f"{name}: {store.client_cert(name)} {store.client_key(name)}, serial "
                       f"{issued.serial_number:x}, valid until "
                       f"{issued.not_valid_after_utc:%Y-%m-%d}")
    click.echo("In a gateway configuration: broker: {port: 8883, tls: {ca: ca.pem, "
               "cert: NAME.pem, key: NAME.key}} (paths relative to the configuration file)")


@pki.command("revoke")
@_DIR
@click.argument("name", required=False)
@click.option("--serial", help="Revoke this certificate (hexadecimal, as `list` shows it) "
                               "instead of NAME's current one.")
def pki_revoke(directory: Path, name: str | None, serial: str | None) -> None:
    """Revoke NAME's current certificate, or one by --serial, and rewrite the CRL."""
    from telemetry.pki import Pki

    if (name is None) == (serial is None):
        raise click.UsageError("give a NAME or --serial, not both")
    try:
        number = int(serial, 16) if serial is not None else None
    except ValueError:
        raise click.UsageError(f"--serial {serial!r} is not hexadecimal") from None
    store = Pki(directory)
    with _refusals():
        revoked = store.revoke(name=name, serial=number)
    for certificate in revoked:
        click.echo(f"revoked {certificate.kind} {certificate.name} serial "
                   f"{certificate.serial:x}")
    click.echo(f"CRL written: {store.crl}. Reload the broker (SIGHUP, e.g. `docker compose kill "
               "-s HUP mosquitto`): the certificate is refused from its next connection.")


@pki.command("list")
@_DIR
def pki_list(directory: Path) -> None:
    """Every certificate issued: kind, name, serial, validity and state
    (valid, renew: expires within 30 days, expired, revoked)."""
    from telemetry.pki import Pki

    with _refusals():
        certificates = Pki(directory).certificates()
    now = dt.datetime.now(dt.UTC)
    click.echo(f"{'kind':<7} {'name':<24} {'serial':<41} {'not after':<17} state")
    for c in certificates:
        click.echo(f"{c.kind:<7} {c.name:<24} {c.serial:<41x} "
                   f"{c.not_after:%Y-%m-%d %H:%M} {c.state(now)}")
    if not certificates:
        click.echo(f"no certificate in {directory}", err=True)
        sys.exit(1)
