"""The server stack as declared: docker-compose.yml, the Dockerfile, the broker and Grafana files.

No Docker engine is needed. The structure is checked with PyYAML; `docker compose config`
validates the file against the Compose specification where a Compose v2 CLI is installed (it
needs no engine), and that test skips elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
BROKER_DIR = REPO / "firmware-config" / "broker"
PROVISIONING = REPO / "dashboards" / "provisioning"

SERVER_SERVICES = {"broker-init", "mosquitto", "influxdb", "grafana", "collector", "api"}
DEMO_SERVICES = {"simulators", "gateway-dryer", "gateway-freezer", "gateway-packaging"}
ALERTING_SERVICES = {"alerting"}
# Innermost `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`: no `$`, `{`
# or `}` inside, so nested defaults resolve from the inside out.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^${}]*))?\}")


def _interpolate(text: str) -> str:
    """Compose interpolation with every variable unset: defaults apply, required ones read
    `<NAME>`, and `$$` stays a literal `$`."""
    text = text.replace("$$", "\0")
    while True:
        resolved = _VARIABLE.sub(
            lambda m: m.group(3) if m.group(2) in ("-", ":-") else f"<{m.group(1)}>", text)
        if resolved == text:
            return text.replace("\0", "$")
        text = resolved


def _interpolate_all(node: Any) -> Any:
    if isinstance(node, str):
        return _interpolate(node)
    if isinstance(node, list):
        return [_interpolate_all(item) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_all(value) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    resolved: dict[str, Any] = _interpolate_all(document)
    return resolved


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(host source, container target, read-only) of each mount from a host path."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            source, target = volume.get("source", ""), volume["target"]
            read_only = bool(volume.get("read_only"))
            if volume.get("type", "volume") != "bind":
                continue
        if source.startswith((".", "/")):
            mounts.append((source, target, read_only))
    return mounts


def _repo_path(source: str) -> Path:
    path = (REPO / source).resolve()
    assert path.is_relative_to(REPO), f"{source} is outside the repository"
    return path


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file that a container path of `service` shows, through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target, _ in _bind_mounts(service):
        if wanted.is_relative_to(target):
            return _repo_path(source) / wanted.relative_to(target)
    return None


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _image_tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all (a registry port is not a tag)
        return image, ""
    return name, tag


def _site_config_path(service: dict[str, Any]) -> Path:
    command = _command(service)
    assert command[:2] == ["gateway", "run"]
    config = command[command.index("--config") + 1]
    host = _host_path(service, config)
    assert host is not None, f"{config} is not mounted from the repository"
    assert host.is_file(), f"{host.relative_to(REPO)} does not exist"
    return host


def _site_config(service: dict[str, Any]) -> dict[str, Any]:
    """A gateway's site configuration as `dynamo gateway run` reads it in that container:
    `${NAME:-default}` substituted from the service's environment, then parsed."""
    env = _environment(service)
    text = _site_config_path(service).read_text(encoding="utf-8")
    text = _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(3) or ""), text)
    document: dict[str, Any] = yaml.safe_load(text)
    return document


# -- images ------------------------------------------------------------------------------------


def test_the_stack_has_the_server_services_and_the_demo_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == SERVER_SERVICES | DEMO_SERVICES | ALERTING_SERVICES
    for name in SERVER_SERVICES:
        assert not services[name].get("profiles"), f"{name} must run without a profile"
    for name in DEMO_SERVICES:
        assert services[name].get("profiles") == ["demo"], f"{name} belongs to the demo profile"
    for name in ALERTING_SERVICES:
        assert services[name].get("profiles") == ["alerting"], f"{name}: alerting profile"


def test_every_image_is_pinned_to_an_explicit_version(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        assert "image" in service, f"{name}: name its image (and tag) explicitly"
        image_name, tag = _image_tag(service["image"])
        assert tag, f"{name}: {service['image']} has no tag"
        assert tag != "latest" and "latest" not in tag, f"{name}: never `latest`"
        # An exact release, e.g. 2.7.11 or 11.6.0: a floating `2` or `2.7` changes under you.
        assert re.fullmatch(r"\d+\.\d+\.\d+([-.][\w.]+)?", tag), (
            f"{name}: {service['image']} is not pinned to an exact version")
        if "build" in service:
            assert image_name == "dynamo-monitoring", f"{name}: the project's image name"


def test_influxdb_is_2_7_with_its_bucket_created_at_setup(
    services: dict[str, dict[str, Any]],
) -> None:
    influxdb = services["influxdb"]
    image_name, tag = _image_tag(influxdb["image"])
    assert image_name == "influxdb" and tag.startswith("2.7.")
    env = _environment(influxdb)
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_BUCKET"] == "dynamo"
    for secret in ("DOCKER_INFLUXDB_INIT_PASSWORD", "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"):
        assert env[secret].startswith("<"), f"{secret} must be required from .env, no default"


def test_the_project_services_share_the_image_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    ours = {name for name, s in services.items() if "build" in s}
    assert ours == {"collector", "api"} | DEMO_SERVICES | ALERTING_SERVICES
    images = {services[name]["image"] for name in ours}
    assert len(images) == 1
    for name in ours:
        assert services[name]["build"]["context"] == "."
        assert (REPO / "Dockerfile").is_file()


def test_the_dockerfile_is_pinned_non_root_and_runs_dynamo() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    external = [b for b in bases if ":" in b]
    assert external, "the Dockerfile names a pinned base image"
    for base in external:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), f"{base} is not pinned"
    assert re.search(r"""pip install\s+["']?\.\[server,dashboards\]""", text)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT\s+\["dynamo"\]', text, flags=re.MULTILINE)
    dockerignore = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    for private in (".git", ".venv", ".env", "firmware-config/broker/gateways.passwd"):
        assert private in dockerignore, f".dockerignore must keep {private} out of the image"


# -- broker ------------------------------------------------------------------------------------


def _mosquitto_conf_lines() -> list[str]:
    files = [BROKER_DIR / "mosquitto.conf", *sorted((BROKER_DIR / "conf.d").glob("*.conf"))]
    lines = []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_mosquitto_uses_the_repository_broker_config_without_anonymous_access(
    services: dict[str, dict[str, Any]],
) -> None:
    mosquitto = services["mosquitto"]
    assert _image_tag(mosquitto["image"])[0] == "eclipse-mosquitto"
    assert _image_tag(mosquitto["image"])[1].startswith("2.0.")
    mounts = {target: (source, ro) for source, target, ro in _bind_mounts(mosquitto)}
    source, read_only = mounts["/mosquitto/config"]
    assert _repo_path(source) == BROKER_DIR and read_only
    command = [*(mosquitto.get("entrypoint") or []), *_command(mosquitto)]
    config = command[command.index("-c") + 1]
    assert _host_path(mosquitto, config) == BROKER_DIR / "mosquitto.conf"

    lines = _mosquitto_conf_lines()
    settings = [line.split(None, 1) for line in lines]
    assert ["allow_anonymous", "false"] in settings
    assert not any(s[0] == "allow_anonymous" and s[1:] != ["false"] for s in settings)
    options = {s[0]: s[1] if len(s) > 1 else "" for s in settings}
    assert options["persistence"] == "true"
    assert int(options["max_queued_messages"]) >= 100_000
    assert options["log_dest"] == "stdout"
    assert "listener 1883" in lines
    # The TLS listener stays an example until an installer enables it with real certificates.
    assert not any(line.startswith("listener 8883") for line in lines)
    assert (BROKER_DIR / "conf.d" / "tls.conf.example").is_file()
    # Listener options after `include_dir` would bind to the included listener.
    assert lines[-1].startswith("include_dir ")


def test_broker_init_prepares_the_password_and_acl_files_the_broker_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    init, mosquitto = services["broker-init"], services["mosquitto"]
    assert _depends_on(mosquitto) == {"broker-init": "service_completed_successfully"}
    assert init.get("restart") in ("no", None)
    options = dict(line.split(None, 1) for line in _mosquitto_conf_lines() if " " in line)
    shared = set(_named_volume_targets(init)) & set(_named_volume_targets(mosquitto))
    for option in ("password_file", "acl_file"):
        assert any(PurePosixPath(options[option]).is_relative_to(t) for t in shared), (
            f"{option} {options[option]} must be on a volume that broker-init writes")
    script = [*(init.get("entrypoint") or []), *_command(init)]
    scripts = [p for p in (_host_path(init, arg) for arg in script if arg.startswith("/")) if p]
    assert scripts and all(p.is_file() for p in scripts)
    env = _environment(init)
    for required in ("MQTT_COLLECTOR_PASSWORD", "MQTT_API_PASSWORD",
                     "MQTT_HEALTHCHECK_PASSWORD"):
        assert env[required] == f"<{required}>", f"{required} must be required from .env"
    assert set(env["MQTT_DEMO_GATEWAYS"].split()) == {
        _site_config(services[name])["broker"]["username"]
        for name in DEMO_SERVICES - {"simulators"}}


def _named_volume_targets(service: dict[str, Any]) -> list[str]:
    targets = []
    for volume in service.get("volumes") or []:
        source, target = (volume.split(":")[:2] if isinstance(volume, str)
                          else (volume.get("source", ""), volume["target"]))
        if source and not source.startswith((".", "/")):
            targets.append(target)
    return targets


def test_the_acl_confines_gateways_to_their_prefix() -> None:
    rules = [line.split() for line in (BROKER_DIR / "acl").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    # No rule before the first `user` line: those would apply to anonymous clients.
    assert rules[0][0] == "user"
    # No pattern at all (generated per gateway by `dynamo broker acl`, tests/test_broker_acl.py).
    assert not any(r[0] == "pattern" for r in rules)
    users: dict[str, list[list[str]]] = {}
    current = None
    for rule in rules:
        if rule[0] == "user":
            current = rule[1]
            users[current] = []
        elif rule[0] == "topic":
            assert current is not None, "a `topic` rule outside any `user` block"
            users[current].append(rule[1:])
    for service_user in ("collector", "api", "alerting"):
        assert ["read", "dynamo/v1/#"] in users[service_user]
    for user, topics in users.items():
        assert not any(access in ("write", "readwrite") and topic in ("#", "dynamo/v1/#")
                       for access, topic in topics), f"{user} must not write everywhere"


# -- wiring ------------------------------------------------------------------------------------


def test_services_that_use_the_broker_or_the_database_wait_for_them(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        env = _environment(service)
        deps = _depends_on(service)
        if env.get("DYNAMO_MQTT_HOST") == "mosquitto":
            assert deps.get("mosquitto") == "service_healthy", f"{name} must wait for the broker"
        if "influxdb:8086" in env.get("DYNAMO_INFLUX_URL", ""):
            assert deps.get("influxdb") == "service_healthy", f"{name} must wait for InfluxDB"
        if env.get("DYNAMO_SIM_HOST") == "simulators":
            assert "simulators" in deps, f"{name} polls the simulators"
        for dependency, condition in deps.items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    assert _depends_on(services["grafana"]).get("influxdb") == "service_healthy"
    for name in ("collector", "api"):
        assert {"mosquitto", "influxdb"} <= set(_depends_on(services[name]))


def test_long_running_services_restart_and_servers_report_health(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name == "broker-init":
            continue
        assert service.get("restart") in ("unless-stopped", "always"), f"{name}: restart policy"
    for name in ("mosquitto", "influxdb", "grafana", "api"):
        assert services[name]["healthcheck"]["test"], f"{name}: healthcheck"


def test_project_services_get_their_settings_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    base = {"DYNAMO_MQTT_HOST", "DYNAMO_MQTT_PORT", "DYNAMO_MQTT_USERNAME",
            "DYNAMO_MQTT_PASSWORD", "DYNAMO_INFLUX_URL", "DYNAMO_INFLUX_DB",
            "DYNAMO_INFLUX_TOKEN"}
    for name in ("collector", "api"):
        env = _environment(services[name])
        assert base <= set(env), f"{name} lacks {sorted(base - set(env))}"
        assert env["DYNAMO_MQTT_USERNAME"] == name
        assert env["DYNAMO_INFLUX_DB"] == "dynamo"
    assert _command(services["collector"])[:2] == ["collector", "run"]
    assert _command(services["api"])[:2] == ["api", "run"]
    assert "0.0.0.0" in _command(services["api"])
    site_configs = _environment(services["api"])["DYNAMO_SITE_CONFIGS"]
    assert (host := _host_path(services["api"], site_configs)) is not None and host.is_dir()


def test_every_path_mounted_from_the_repository_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for source, target, read_only in _bind_mounts(service):
            path = _repo_path(source)
            assert path.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert read_only, f"{name}: {source} must be mounted read-only"


def test_the_demo_gateways_run_site_configs_that_exist(
    services: dict[str, dict[str, Any]],
) -> None:
    simulators = _command(services["simulators"])
    assert simulators[:1] == ["simulate"] and "0.0.0.0" in simulators
    for name in DEMO_SERVICES - {"simulators"}:
        service = services[name]
        site = _site_config(service)
        raw = yaml.safe_load(_VARIABLE.sub("x", _site_config_path(service).read_text()))
        env = _environment(service)
        assert env["DYNAMO_SIM_HOST"] == "simulators"
        for device in site["devices"]:
            if device.get("connection", {}).get("type") == "tcp":
                assert device["connection"]["host"] == "simulators", f"{name}: {device['id']}"
        assert site["broker"]["host"] == "mosquitto"
        assert int(site["broker"]["port"]) == 1883
        # The broker's ACL matches the user name against the topic's gateway level.
        assert site["broker"]["username"] == site["gateway"], (
            f"{name}: broker user {site['broker']['username']!r} is not the gateway id")
        # The demo password reaches the variable that the site file reads it from.
        password = re.search(r"^\s*password:\s*\$\{([A-Za-z_][A-Za-z0-9_]*)",
                             _site_config_path(service).read_text(), flags=re.MULTILINE)
        assert password and password.group(1) in env, f"{name}: pass the broker password"
        assert env[password.group(1)] == "", "from MQTT_DEMO_GATEWAY_PASSWORD, no default"
        assert raw["gateway"] == site["gateway"], "the gateway id is not taken from the env"
        # The disk buffer survives a container's re-creation.
        spool = PurePosixPath(site.get("spool_dir", "/var/lib/dynamo-gateway"))
        assert any(spool.is_relative_to(t) for t in _named_volume_targets(service)), (
            f"{name}: spool_dir {spool} is not on a named volume")


# -- Grafana -----------------------------------------------------------------------------------


def test_grafana_provisions_the_influxdb_datasource_in_influxql_mode(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert _host_path(grafana, "/etc/grafana/provisioning") == PROVISIONING
    document = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    (datasource,) = document["datasources"]
    assert datasource["type"] == "influxdb"
    assert datasource["url"] == "http://influxdb:8086"
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["jsonData"]["dbName"] == "dynamo"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    header = datasource["secureJsonData"]["httpHeaderValue1"]
    match = re.fullmatch(r"Token \$\{([A-Z_][A-Z0-9_]*)\}", header)
    assert match, f"{header!r} must be `Token ${{VARIABLE}}`"
    assert _environment(grafana).get(match.group(1)), f"grafana lacks {match.group(1)}"


def test_grafana_loads_the_generated_dashboards_from_files(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    document = yaml.safe_load((PROVISIONING / "dashboards" / "dynamo.yaml").read_text())
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["foldersFromFilesStructure"] is True
    assert _host_path(grafana, provider["options"]["path"]) == REPO / "dashboards" / "generated"


# -- environment -------------------------------------------------------------------------------


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    return []


def test_env_example_documents_every_variable_of_the_compose_file() -> None:
    # From the parsed values: comments are not interpolated by Compose.
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    text = "\n".join(_strings(raw)).replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    documented = _env_example()
    assert used <= set(documented), f"undocumented: {sorted(used - set(documented))}"
    assert set(documented) <= used, f"unused: {sorted(set(documented) - used)}"
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", text))
    for name in required:
        assert documented[name] == "", f"{name} is a secret: no value in .env.example"


def _compose_cli() -> list[str] | None:
    """`docker compose` (the CLI plugin) or a standalone Compose v2 binary, if installed."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                               timeout=60, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        probe = subprocess.run([standalone, "version"], capture_output=True, text=True,
                               timeout=60, check=False)
        if probe.returncode == 0 and re.search(r"version v?([2-9]|\d\d)\.", probe.stdout):
            return [standalone]
    return None


@pytest.mark.parametrize("profile", [None, "demo"])
def test_docker_compose_config_accepts_the_file(tmp_path: Path, profile: str | None) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 CLI (docker compose plugin or docker-compose v2)")
    # .env.example with every empty secret filled in, as an installer would.
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{key}={value or f'test-{key.lower()}-0123456789'}\n"
                                for key, value in _env_example().items()))
    command = [*cli, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE),
               "--env-file", str(env_file)]
    if profile:
        command += ["--profile", profile]
    # A clean environment: the developer's own variables must not fill the gaps.
    clean = {k: v for k, v in os.environ.items()
             if k in ("PATH", "HOME", "DOCKER_CONFIG", "XDG_CONFIG_HOME", "TMPDIR")}
    result = subprocess.run([*command, "config", "--quiet"], capture_output=True, text=True,
                            timeout=120, env=clean, check=False)
    assert result.returncode == 0, result.stderr
    listed = subprocess.run([*command, "config", "--services"], capture_output=True, text=True,
                            timeout=120, env=clean, check=True).stdout.split()
    expected = SERVER_SERVICES | (DEMO_SERVICES if profile else set())
    assert set(listed) == expected

    # And the same file without a .env refuses to start rather than run without secrets.
    bare = subprocess.run([*cli, "--project-directory", str(tmp_path), "-f", str(COMPOSE_FILE),
                           "config", "--quiet"], capture_output=True, text=True, timeout=120,
                          env=clean, check=False)
    assert bare.returncode != 0 and "required variable" in bare.stderr


def test_the_api_healthcheck_asks_a_route_the_api_serves(
    services: dict[str, dict[str, Any]],
) -> None:
    from api.app import create_app

    probe = " ".join(services["api"]["healthcheck"]["test"])
    [path] = re.findall(r"http://127\.0\.0\.1:8000(/[\w/]+)", probe)
    assert path in create_app().openapi()["paths"]
