#!/usr/bin/env bash
# Install the DYNAMO edge gateway on Raspberry Pi OS Bookworm (arm64 or armhf), as root.
#
#   sudo ./install.sh --config gateway.yaml [--env gateway.env] [--bundle DIR] [--wheel FILE]
#                     [--alerts alerts.yaml --smsd-config gammu-smsdrc] [--certs DIR]
#                     [--fleet-pub FILE] [--no-start]
#
# --bundle DIR  offline: install from a bundle built by `dynamo gateway bundle` (this script
#               sits in it, so the default is the script's own directory when it holds wheels/)
# --wheel FILE  online: the project's wheel; dependencies come from PyPI/piwheels
# --config FILE the gateway configuration; it is checked before anything is replaced
# --env FILE    secrets referenced by the configuration as ${NAME}
# --alerts FILE edge alerting: the rules this gateway runs while its uplink is down (checked
#               first); needs --smsd-config, the gammu-smsd configuration of the Pi's modem,
#               and Debian's mosquitto and gammu-smsd installed (the local broker, the modem)
# --certs DIR   MQTT over TLS: the site CA and this gateway's certificate and key from
#               `dynamo pki` (*.pem, *.key), installed in /etc/dynamo/certs (keys readable by
#               the gateway's user only); the configuration names them relative to itself, e.g.
#               tls: {ca: certs/ca.pem, cert: certs/dryer-gw.pem, key: certs/dryer-gw.key}.
#               Renewal: run again with the new files (docs/pki.md)
# --fleet-pub FILE  remote configuration and upgrades: the centre's Ed25519 public key
#               (`dynamo fleet keygen`), installed as /etc/dynamo/fleet.pub; the gateway
#               configuration turns them on with a `fleet:` section (docs/fleet.md)
# --no-start    install and enable the units but start nothing (an SD-card image being
#               prepared); implied when systemd is not running (a chroot, a container)
#
# What it does: a system user `dynamo` (groups dialout), a venv in /opt/dynamo/venv, the
# configuration in /etc/dynamo, state (spool, sequence numbers) in /var/lib/dynamo-gateway,
# the systemd unit with Restart=always and the watchdog, and a journald drop-in that limits
# writes to the SD card. Run it again to upgrade: the spool is kept.
# An armv7l (armhf) bundle also carries Debian's python3-cffi-backend .deb: its one module
# is copied into the venv (PyPI has no armv7l cffi wheel; docs/raspberry-pi.md).
set -euo pipefail

PREFIX=/opt/dynamo
CONF_DIR=/etc/dynamo
STATE_DIR=/var/lib/dynamo-gateway
USER_NAME=dynamo
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUNDLE=""
WHEEL=""
CONFIG=""
ENV_FILE=""
ALERTS=""
SMSD_CONFIG=""
CERTS=""
FLEET_PUB=""
START=1

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE="$2"; shift 2 ;;
    --wheel) WHEEL="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --env) ENV_FILE="$2"; shift 2 ;;
    --alerts) ALERTS="$2"; shift 2 ;;
    --smsd-config) SMSD_CONFIG="$2"; shift 2 ;;
    --certs) CERTS="$2"; shift 2 ;;
    --fleet-pub) FLEET_PUB="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
if [ -z "$BUNDLE" ] && [ -z "$WHEEL" ] && [ -d "$HERE/wheels" ]; then BUNDLE="$HERE"; fi
# sd_booted(3): systemd runs as the init system iff /run/systemd/system exists. In a chroot or
# an image build it does not: the units are installed and enabled, and start at next boot.
if [ ! -d /run/systemd/system ]; then
  [ "$START" -eq 0 ] || echo "install.sh: systemd is not running here: units enabled, not started"
  START=0
fi
[ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
[ -n "$BUNDLE" ] || [ -n "$WHEEL" ] || die "give --bundle DIR or --wheel FILE"
[ -z "$CONFIG" ] || [ -f "$CONFIG" ] || die "no such configuration: $CONFIG"
[ -z "$CERTS" ] || [ -d "$CERTS" ] || die "no such certificate folder: $CERTS"
[ -z "$FLEET_PUB" ] || [ -f "$FLEET_PUB" ] || die "no such public key: $FLEET_PUB"
if [ -n "$ALERTS" ]; then
  [ -f "$ALERTS" ] || die "no such alert rules file: $ALERTS"
  if [ -z "$SMSD_CONFIG" ] || [ ! -f "$SMSD_CONFIG" ]; then
    die "--alerts needs --smsd-config FILE (the modem's gammu-smsd configuration)"
  fi
  if ! command -v gammu-smsd >/dev/null || ! command -v mosquitto >/dev/null; then
    die "edge alerting needs Debian's gammu-smsd and mosquitto: apt install gammu-smsd mosquitto"
  fi
fi
command -v python3 >/dev/null || die "python3 missing (apt install python3)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python >= 3.11 needed (Raspberry Pi OS Bookworm ships 3.11)"
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || die "python3-venv missing: apt install python3-venv (or copy its .deb with the bundle)"

if [ -n "$BUNDLE" ]; then
  [ -f "$BUNDLE/manifest.json" ] || die "$BUNDLE is not a bundle (no manifest.json)"
  want="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["platform"])' \
          "$BUNDLE/manifest.json")"
  # The userland decides, not the kernel: 32-bit Raspberry Pi OS on a Pi 4 runs an aarch64
  # kernel under an armhf userland.
  case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
    arm64|aarch64) have=aarch64 ;;
    armhf|armv7l) have=armv7l ;;
    *) have="$(uname -m)" ;;
  esac
  [ "$want" = "$have" ] || die "bundle built for $want, this system is $have"
  (cd "$BUNDLE" && python3 - <<'PY') || die "bundle damaged (checksum mismatch)"
import hashlib, json, sys
manifest = json.load(open("manifest.json"))
bad = [f for f, digest in manifest["files"].items()
       if hashlib.sha256(open(f, "rb").read()).hexdigest() != digest]
print("\n".join(f"corrupt: {f}" for f in bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
fi

echo "== user $USER_NAME"
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --system --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
    --groups dialout "$USER_NAME"
fi

echo "== venv in $PREFIX/venv"
install -d -m 0755 "$PREFIX"
# Made once: an upgrade reuses it (recreating it would reinstall pip for nothing).
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
PIP=("$PREFIX/venv/bin/pip" --disable-pip-version-check --no-cache-dir)
if [ -n "$BUNDLE" ]; then
  OWN=("$BUNDLE"/wheels/dynamo_monitoring-*.whl)
  [ -f "${OWN[0]}" ] || die "$BUNDLE/wheels holds no dynamo_monitoring wheel"
  # Compiled modules PyPI has no wheel of for this platform, taken from the bundle's .debs.
  SITE="$("$PREFIX/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  MODULES="$(python3 -c 'import json,sys
for m in json.load(open(sys.argv[1])).get("debian_modules", []):
    print(m["deb"], m["module"])' "$BUNDLE/manifest.json")"
  # The project's code first, replaced even when an upgrade carries the same version number.
  "${PIP[@]}" install --no-index --no-deps --force-reinstall "${OWN[0]}"
  if [ -n "$MODULES" ]; then
    while read -r deb module; do
      dpkg-deb --fsys-tarfile "$BUNDLE/$deb" | tar -xO "./$module" >"$SITE/$(basename "$module")" \
        || die "could not take $module out of $deb"
    done <<<"$MODULES"
    # The bundle is the resolved set, less what the .debs provide: install it as it is.
    DEPS=()
    for wheel in "$BUNDLE"/wheels/*.whl; do
      [ "$wheel" = "${OWN[0]}" ] || DEPS+=("$wheel")
    done
    "${PIP[@]}" install --no-index --no-deps --upgrade "${DEPS[@]}"
  else
    # Its dependencies, resolved by pip from the bundle alone, at the bundle's versions.
    "${PIP[@]}" install --no-index --find-links "$BUNDLE/wheels" --upgrade \
      --upgrade-strategy eager "${OWN[0]}"
  fi
  "$PREFIX/venv/bin/python" -c 'import dynamo.cli, gateway.agent, yaml, pydantic_core
import cryptography.hazmat.bindings._rust' || die "the installed gateway does not import"
else
  "${PIP[@]}" install --upgrade "$WHEEL"
fi

# Remote upgrades (docs/fleet.md, "Remote upgrade"): this installation becomes `current`, and
# wins over any upgrade pending; new releases go beside it, owned by the gateway's user.
install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$PREFIX/releases"
"$PREFIX/venv/bin/dynamo" gateway releases-init --releases "$PREFIX/releases" --home "$PREFIX"

echo "== configuration in $CONF_DIR"
install -d -m 0750 -o root -g "$USER_NAME" "$CONF_DIR"
if [ -n "$ENV_FILE" ]; then
  install -m 0640 -o root -g "$USER_NAME" "$ENV_FILE" "$CONF_DIR/gateway.env"
fi
if [ -n "$CERTS" ]; then
  # Certificates readable by the gateway's group; private keys by the gateway's user alone.
  install -d -m 0750 -o root -g "$USER_NAME" "$CONF_DIR/certs"
  for file in "$CERTS"/*.pem; do
    if [ -e "$file" ]; then install -m 0644 -o root -g "$USER_NAME" "$file" "$CONF_DIR/certs/"; fi
  done
  for file in "$CERTS"/*.key; do
    if [ -e "$file" ]; then
      install -m 0600 -o "$USER_NAME" -g "$USER_NAME" "$file" "$CONF_DIR/certs/"
    fi
  done
fi
if [ -n "$FLEET_PUB" ]; then
  # A public key: readable by all; only root may replace it (it decides what the Pi runs).
  install -m 0644 -o root -g root "$FLEET_PUB" "$CONF_DIR/fleet.pub"
fi
if [ -n "$CONFIG" ]; then
  # Refuse a bad configuration before replacing a good one.
  set -a
  # shellcheck source=/dev/null
  if [ -f "$CONF_DIR/gateway.env" ]; then . "$CONF_DIR/gateway.env"; fi
  set +a
  "$PREFIX/venv/bin/dynamo" config check "$CONFIG" || die "configuration refused: $CONFIG"
  install -m 0640 -o root -g "$USER_NAME" "$CONFIG" "$CONF_DIR/gateway.yaml"
  # Templates next to the configuration (template_dirs are relative to it).
  if [ -d "$(dirname "$CONFIG")/templates" ]; then
    cp -r "$(dirname "$CONFIG")/templates" "$CONF_DIR/"
  fi
fi
[ -f "$CONF_DIR/gateway.yaml" ] || echo "!! no $CONF_DIR/gateway.yaml yet: add one, then systemctl start dynamo-gateway"

echo "== state in $STATE_DIR"
install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE_DIR"

echo "== systemd and journald"
UNIT_SRC="${BUNDLE:-$HERE}/dynamo-gateway.service"
[ -f "$UNIT_SRC" ] || UNIT_SRC="$HERE/dynamo-gateway.service"
install -m 0644 "$UNIT_SRC" /etc/systemd/system/dynamo-gateway.service
# The remote upgrade's guard (docs/fleet.md): a timer that switches back a release that
# starts but is not confirmed healthy in time.
for unit in dynamo-upgrade-guard.service dynamo-upgrade-guard.timer; do
  GUARD_SRC="${BUNDLE:-$HERE}/$unit"
  [ -f "$GUARD_SRC" ] || GUARD_SRC="$HERE/$unit"
  install -m 0644 "$GUARD_SRC" "/etc/systemd/system/$unit"
done
systemctl enable dynamo-upgrade-guard.timer
install -d -m 0755 /etc/systemd/journald.conf.d
install -m 0644 "$HERE/journald-dynamo.conf" /etc/systemd/journald.conf.d/dynamo.conf
systemctl enable dynamo-gateway.service
if [ "$START" -eq 1 ]; then
  systemctl restart systemd-journald
  systemctl daemon-reload
  if [ -f "$CONF_DIR/gateway.yaml" ]; then
    systemctl restart dynamo-gateway.service
    systemctl start dynamo-upgrade-guard.timer
    echo "== started; follow it with: journalctl -u dynamo-gateway -f"
  fi
else
  echo "== enabled, not started (starts at boot, or: systemctl start dynamo-gateway)"
fi

if [ -n "$ALERTS" ]; then
  echo "== edge alerting"
  # Refuse bad rules before replacing good ones (their site_configs are relative to the file).
  "$PREFIX/venv/bin/dynamo" alerts check "$ALERTS" || die "alert rules refused: $ALERTS"
  install -m 0640 -o root -g "$USER_NAME" "$ALERTS" "$CONF_DIR/alerts.yaml"
  install -m 0640 -o root -g "$USER_NAME" "$SMSD_CONFIG" "$CONF_DIR/gammu-smsdrc"
  getent group gammu >/dev/null && usermod -a -G gammu "$USER_NAME"
  EDGE_SRC="${BUNDLE:-$HERE}/dynamo-alerts-edge.service"
  [ -f "$EDGE_SRC" ] || EDGE_SRC="$HERE/dynamo-alerts-edge.service"
  install -m 0644 "$EDGE_SRC" /etc/systemd/system/dynamo-alerts-edge.service
  systemctl enable dynamo-alerts-edge.service
  if [ "$START" -eq 1 ]; then
    systemctl daemon-reload
    systemctl start dynamo-alerts-edge.service
    echo "== edge alerting started; follow it with: journalctl -u dynamo-alerts-edge -f"
  fi
fi
