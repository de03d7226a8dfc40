#!/bin/sh
# Prepares the broker's volumes; run as root by the `broker-init` service of docker-compose.yml
# (in the eclipse-mosquitto image, for its mosquitto_passwd) before the broker starts:
# writes the password file, installs a private copy of the ACL, and hands the persistence
# directory to the broker's user.
#
# The ACL and the gateway list (gateways.list) beside this script are GENERATED from the site
# configurations by `dynamo broker acl firmware-config/sites --output firmware-config/broker/acl
# --users firmware-config/broker/gateways.list` (this image has no Python to run it): each
# gateway may use exactly dynamo/v1/{site}/{gateway}/#. An ACL with `pattern` lines (the old
# hand-written `pattern write dynamo/v1/+/%u/#`, any site) is refused.
#
# Mosquitto 2.0 opens the password and ACL files after dropping root for its `mosquitto` user
# (uid 1883 in the image) and warns, "Future versions will refuse to load this file", when
# they are readable by others or owned by another user: both are therefore written here as
# 0600, owned by 1883, into the mosquitto-auth volume, never read from the repository mount.
#
# The password file is rebuilt from scratch at every run, so it always says exactly what the
# configuration says:
#   1. the gateways of MQTT_GATEWAYS_FILE (hashed lines written by `mosquitto_passwd`; the
#      operator manages them, see README.md), copied as they are;
#   2. the service users collector, api and healthcheck (required) and alerting (when its
#      password is set), from the environment;
#   3. for the demo profile, the gateways named in MQTT_DEMO_GATEWAYS with the password
#      MQTT_DEMO_GATEWAY_PASSWORD, unless step 1 already defines them. Leave that password
#      empty on a production server.
# Passwords are never printed.
set -eu

out=${MQTT_PASSWORD_FILE:-/mosquitto/auth/passwd}
gateways_file=${MQTT_GATEWAYS_FILE:-/mosquitto/config/gateways.passwd}
acl_source=${MQTT_ACL_SOURCE:-/mosquitto/config/acl}
acl_out=${MQTT_ACL_FILE:-/mosquitto/auth/acl}
gateway_list=${MQTT_GATEWAY_LIST:-/mosquitto/config/gateways.list}
owner=${MQTT_FILE_OWNER:-1883:1883}
# Service users and pseudo-gateway levels (telemetry/acl.py, RESERVED): no gateway may take
# these names.
reserved="collector api alerting healthcheck ack"
min_length=12

fail() {
    echo "broker-init: error: $*" >&2
    exit 1
}

# Same rule as a gateway id in a site configuration (telemetry/site.py, `Ident`).
is_ident() {
    case $1 in
        '' | [!a-z0-9]* | *[!a-z0-9_-]*) return 1 ;;
    esac
    [ "${#1}" -le 63 ]
}

# Whether the generated ACL has lines for this gateway (no list: nothing to check against).
is_declared() {
    [ -f "$gateway_list" ] || return 0
    grep -qx "$1" "$gateway_list"
}

is_reserved() {
    for name in $reserved; do
        [ "$1" = "$name" ] && return 0
    done
    return 1
}

# Placeholders and short passwords are refused: these accounts face the network.
check_password() {
    case $2 in
        '') fail "$1 is not set (see .env.example)" ;;
        *change*me* | *CHANGE*ME* | password | secret) fail "$1 is a placeholder, set a real secret" ;;
    esac
    [ "${#2}" -ge "$min_length" ] || fail "$1 must be at least $min_length characters long"
}

umask 077
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
: >"$tmp"

# 1. Operator-managed gateways.
if [ -f "$gateways_file" ]; then
    lineno=0
    while IFS= read -r line || [ -n "$line" ]; do
        lineno=$((lineno + 1))
        case $line in '' | '#'*) continue ;; esac
        user=${line%%:*}
        [ "$user" != "$line" ] || fail "$gateways_file:$lineno: expected user:hash"
        is_ident "$user" || fail "$gateways_file:$lineno: '$user' is not a valid gateway id ([a-z0-9][a-z0-9_-]*)"
        is_reserved "$user" && fail "$gateways_file:$lineno: '$user' is reserved for a service"
        grep -q "^$user:" "$tmp" && fail "$gateways_file:$lineno: '$user' defined twice"
        is_declared "$user" || echo "broker-init: warning: $gateways_file:$lineno: no site" \
            "configuration declares gateway '$user' ($gateway_list): it can connect but the ACL" \
            "grants it nothing; run \`dynamo broker acl\`" >&2
        printf '%s\n' "$line" >>"$tmp"
    done <"$gateways_file"
fi

# 2. Service users.
add_user() {
    mosquitto_passwd -b "$tmp" "$1" "$2" || fail "mosquitto_passwd failed for user $1"
}
check_password MQTT_COLLECTOR_PASSWORD "${MQTT_COLLECTOR_PASSWORD:-}"
add_user collector "$MQTT_COLLECTOR_PASSWORD"
check_password MQTT_API_PASSWORD "${MQTT_API_PASSWORD:-}"
add_user api "$MQTT_API_PASSWORD"
check_password MQTT_HEALTHCHECK_PASSWORD "${MQTT_HEALTHCHECK_PASSWORD:-}"
add_user healthcheck "$MQTT_HEALTHCHECK_PASSWORD"
if [ -n "${MQTT_ALERTING_PASSWORD:-}" ]; then
    check_password MQTT_ALERTING_PASSWORD "$MQTT_ALERTING_PASSWORD"
    add_user alerting "$MQTT_ALERTING_PASSWORD"
fi

# 3. Demo gateways.
if [ -n "${MQTT_DEMO_GATEWAY_PASSWORD:-}" ]; then
    check_password MQTT_DEMO_GATEWAY_PASSWORD "$MQTT_DEMO_GATEWAY_PASSWORD"
    for user in ${MQTT_DEMO_GATEWAYS:-}; do
        is_ident "$user" || fail "MQTT_DEMO_GATEWAYS: '$user' is not a valid gateway id"
        is_reserved "$user" && fail "MQTT_DEMO_GATEWAYS: '$user' is reserved for a service"
        if grep -q "^$user:" "$tmp"; then
            echo "broker-init: $user: keeping the password of $gateways_file"
            continue
        fi
        add_user "$user" "$MQTT_DEMO_GATEWAY_PASSWORD"
    done
fi

# Private, atomic installation of a file the broker reads.
install_private() {
    if [ "$(id -u)" = 0 ]; then
        chown "$owner" "$1"
    fi
    chmod 600 "$1"
    mv -f "$1" "$2"
}

install_private "$tmp" "$out"
echo "broker-init: $out written with users: $(cut -d: -f1 "$out" | tr '\n' ' ')"

[ -f "$acl_source" ] || fail "no ACL at $acl_source"
if grep -q '^[[:space:]]*pattern' "$acl_source"; then
    fail "$acl_source has 'pattern' lines (a gateway could write under any site): generate it" \
        "with \`dynamo broker acl\`"
fi
cp "$acl_source" "$tmp"
install_private "$tmp" "$acl_out"
trap - EXIT
echo "broker-init: $acl_out installed from $acl_source"

# The broker's service skips the image's entrypoint (whose `chown -R /mosquitto` would trip
# over the read-only configuration mount at every start), so its data volume is handed over
# here instead.
if [ -n "${MQTT_DATA_DIR:-}" ] && [ "$(id -u)" = 0 ]; then
    chown -R "$owner" "$MQTT_DATA_DIR"
fi
