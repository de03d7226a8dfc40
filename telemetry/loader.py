"""Load and validate YAML configuration files, reporting every error with its place in the file.

Values may reference the environment as `${NAME}` or `${NAME:-default}`, so that secrets and
per-host ports stay out of the files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from telemetry.errors import ConfigError, ConfigIssue
from telemetry.roles import LOCATED_ROLES, PHASED_ROLES, PHASES, ROLES
from telemetry.site import Broker, GatewayConfig, TlsFiles
from telemetry.template import DeviceTemplate
from telemetry.units import same_dimension

M = TypeVar("M", bound=BaseModel)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Document:
    """A parsed YAML file that remembers the line of every node, for error messages."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.lines: dict[tuple[int | str, ...], int] = {}
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([ConfigIssue(str(file), "", f"cannot read: {exc.strerror}")]) from exc
        missing: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            # As in the shell, `${NAME:-default}` also applies the default when NAME is empty.
            value = os.environ.get(match.group(1)) or match.group(2)
            if value is None:
                missing.append(match.group(1))
                return ""
            return value

        try:
            node = yaml.compose(_ENV.sub(substitute, text))
            self.data: Any = yaml.safe_load(_ENV.sub(substitute, text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError([ConfigIssue(
                str(file), "", f"not valid YAML: {getattr(exc, 'problem', exc)}",
                mark.line + 1 if mark else None)]) from exc
        if missing:
            raise ConfigError([ConfigIssue(str(file), "", f"environment variable {name} is not set"
                                           " and has no default") for name in missing])
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, loc: tuple[int | str, ...]) -> None:
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[(*loc, key.value)] = key.start_mark.line + 1
                self._index(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*loc, i))

    def issue(self, loc: tuple[int | str, ...], message: str) -> ConfigIssue:
        line = None
        for end in range(len(loc), -1, -1):  # nearest ancestor that exists in the file
            if (line := self.lines.get(loc[:end])) is not None:
                break
        return ConfigIssue(str(self.file), _path(loc), message, line)

    def validate(self, model: type[M], data: Any = None) -> M:
        try:
            return model.model_validate(self.data if data is None else data)
        except ValidationError as exc:
            raise ConfigError([
                self.issue(tuple(e["loc"]), e["msg"]) for e in exc.errors()
            ]) from None


def load_yaml_model(file: str | Path, model: type[M]) -> M:
    """Load any YAML data file into a pydantic model; errors carry file, line and path."""
    return _Document(Path(file)).validate(model)


# Public name of the YAML document with line numbers, for other components' configuration
# loaders (e.g. alerting rules), so every configuration reports errors the same way.
YamlDocument = _Document


def load_template(file: str | Path) -> DeviceTemplate:
    """Load one device template file."""
    return _Document(Path(file)).validate(DeviceTemplate)


def load_templates(directory: str | Path) -> dict[str, DeviceTemplate]:
    """Load every `*.yaml` template of a directory, keyed by model; all errors at once."""
    templates: dict[str, DeviceTemplate] = {}
    issues: list[ConfigIssue] = []
    for file in sorted(Path(directory).glob("*.yaml")):
        try:
            template = load_template(file)
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        if template.model in templates:
            issues.append(ConfigIssue(str(file), "model", f"model {template.model} defined twice"))
        templates[template.model] = template
    if issues:
        raise ConfigError(issues)
    return templates


def load_gateway_config(file: str | Path, *, check_expiry: bool = False,
                        as_if: str | Path | None = None) -> GatewayConfig:
    """Load a gateway configuration and check it against its templates, roles and units.

    The optional top-level `template_dirs` (relative to the file; default `templates`) says where
    the device templates are. The brokers' TLS files are resolved against the file's folder and
    checked (readable, key of the certificate, certificate of the CA); their validity dates only
    with `check_expiry` (`dynamo config check`): a gateway whose certificate has expired still
    polls and spools, delayed until it gets a new one, rather than stopping.

    `as_if`: read `file` as if it stood in place of that configuration: `as_if`'s template
    folders, and relative paths against `as_if`'s folder. A configuration pushed from the centre
    (gateway/remote.py) names the centre's folders; it runs with the gateway's own.
    """
    path = Path(file)
    doc = _Document(path)
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.issue((), "expected a mapping at the top of the file")])
    data = dict(doc.data)
    template_dirs = data.pop("template_dirs", ["templates"])
    if as_if is not None:
        local = _Document(Path(as_if)).data
        template_dirs = local.get("template_dirs", ["templates"]) if isinstance(local, dict) \
            else ["templates"]
        path = Path(as_if)
    templates: dict[str, DeviceTemplate] = {}
    for i, directory in enumerate(template_dirs if isinstance(template_dirs, list) else []):
        folder = (path.parent / str(directory)).resolve()
        if not folder.is_dir():
            raise ConfigError([doc.issue(("template_dirs", i), f"no such directory: {folder}")])
        templates.update(load_templates(folder))
    config = doc.validate(GatewayConfig, data)
    issues = _cross_check(config, templates, doc)
    brokers: dict[str, Broker | None] = {}
    for field in ("broker", "local_broker"):
        broker, tls_issues = _resolve_tls(getattr(config, field), path.parent, doc, field,
                                          check_expiry=check_expiry,
                                          user=config.gateway if field == "broker" else None)
        brokers[field] = broker
        issues.extend(tls_issues)
    if issues:
        raise ConfigError(issues)
    return config.model_copy(update={"templates": templates, **brokers})


def _resolve_tls(broker: Broker | None, base: Path, doc: _Document, field: str, *,
                 check_expiry: bool, user: str | None) -> tuple[Broker | None, list[ConfigIssue]]:
    """The broker with its TLS paths made absolute, and what is wrong with those files.

    `user`: the name the certificate must carry (CN): the central broker takes the CN for the
    user name, so another gateway's certificate would publish as that gateway (and be refused).
    """
    if broker is None or broker.tls is None:
        return broker, []
    from telemetry.pki import PkiError, certificate_name, check_client_files  # cryptography

    files = {name: str(base / value) if value is not None else None
             for name, value in broker.tls.model_dump().items()}
    tls = TlsFiles(**files)
    problems = check_client_files(ca=tls.ca, cert=tls.cert, key=tls.key, expiry=check_expiry)
    if user is not None and tls.cert is not None and not problems:
        try:
            name = certificate_name(tls.cert)
        except PkiError as exc:
            name = user
            problems.append(str(exc))
        if name != user:
            problems.append(f"{tls.cert}: certificate of {name!r}, not of this gateway {user!r} "
                            f"(the broker takes the CN for the user name) / certificat de "
                            f"{name!r}, pas de cette passerelle {user!r}")
    issues = [doc.issue((field, "tls"), problem) for problem in problems]
    return broker.model_copy(update={"tls": tls}), issues


def _cross_check(
    config: GatewayConfig, templates: dict[str, DeviceTemplate], doc: _Document
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    equipment_ids = {e.id for e in config.equipment}
    for d, device in enumerate(config.devices):
        here: tuple[int | str, ...] = ("devices", d)
        if device.equipment not in equipment_ids:
            issues.append(doc.issue((*here, "equipment"),
                                    f"unknown equipment {device.equipment!r}; "
                                    f"declared: {', '.join(sorted(equipment_ids))}"))
        template = templates.get(device.template)
        if template is None:
            issues.append(doc.issue((*here, "template"),
                                    f"unknown template {device.template!r}; "
                                    f"known: {', '.join(sorted(templates)) or 'none'}"))
            continue
        if template.protocol == "modbus" and device.connection is None:
            issues.append(doc.issue(here, "a Modbus device needs a `connection`"))
        if template.protocol == "mqtt" and config.local_broker is None:
            issues.append(doc.issue(here, "an MQTT device needs the top-level `local_broker`"))
        if template.protocol == "mqtt" and "{name}" in template.topic and not device.name:
            issues.append(doc.issue(here, f"template {template.model}'s topic "
                                          f"{template.topic!r} needs the device's `name`"))
        for s, sensor in enumerate(device.sensors):
            where = (*here, "sensors", s)
            point = template.point(sensor.point)
            role = ROLES.get(sensor.role)
            if point is None:
                keys = [p.key for p in template.points] + [f.key for f in template.fields]
                issues.append(doc.issue((*where, "point"),
                                        f"template {template.model} has no point {sensor.point!r}; "
                                        f"it has: {', '.join(keys)}"))
            if role is None:
                issues.append(doc.issue((*where, "role"),
                                        f"unknown role {sensor.role!r}; see docs/roles.md"))
            elif (role.name in PHASED_ROLES and "phase" in sensor.attributes
                  and sensor.attributes["phase"] not in PHASES):
                issues.append(doc.issue((*where, "attributes", "phase"),
                                        f"phase {sensor.attributes['phase']!r} is not one of "
                                        f"{', '.join(sorted(PHASES))}"))
            elif role.name in LOCATED_ROLES and not sensor.location.strip():
                issues.append(doc.issue((*where, "location"),
                                        f"a {role.name} probe needs its `location` (where it "
                                        "is in the stack), to be found when it alarms"))
            if point is not None and role is not None:
                unit = point.unit if sensor.unit is None else sensor.unit
                if not role.any_unit and not same_dimension(unit, role.reference_unit):
                    issues.append(doc.issue((*where, "role"),
                                            f"role {role.name} measures {role.reference_unit!r} "
                                            f"but sensor {sensor.id} is in {unit!r}"))
    return issues
