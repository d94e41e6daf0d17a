"""Every setting of the daemon, defined once: name, flag, environment variables, default, help and validation.

The CLI generates its flags from ``Settings`` (``add_arguments``) and builds the model with ``from_sources``:
a flag given on the command line wins over the environment, the environment over the default. Flag names follow
the Go peer where it has one (``--hostname-override``, ``--network-plugins``, ...) and controller-runtime for the
bind addresses. Every value arrives as a string (flag or environment) and is validated here, so an error names
the flag and the variable it came from.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trinet.policy import CompileOptions, CustomRuleError, CustomRuleFile, CustomRules, build_custom_rules

__all__ = [
    "ConfigError",
    "Settings",
    "add_arguments",
    "compile_options",
    "cri_socket_path",
    "from_sources",
    "grpc_available",
    "load_custom_rules",
    "parse_bind_address",
    "parse_duration",
    "validate_for_run",
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


class ConfigError(Exception):
    """Invalid settings or custom rule files: ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def _opt(flag: str, env: Sequence[str], help: str, metavar: str | None = None) -> dict[str, Any]:
    return {"flag": flag, "env": list(env), "metavar": metavar, "help": help}


def parse_duration(text: str) -> float:
    """Seconds from ``30``, ``30s``, ``1m30s``, ``500ms`` or ``2h`` (Go duration units ms, s, m, h)."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if not value or _DURATION.sub("", value) != "":
        raise ValueError(f"{text!r} is not a duration (examples: 30, 30s, 1m30s, 500ms)")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))


def parse_bind_address(text: str) -> tuple[str, int] | None:
    """``host:port``, ``:port`` (every address) or ``0`` (disabled, as in controller-runtime)."""
    value = text.strip()
    if value == "0":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port, :port or 0")
    host = host.strip("[]")
    return (host or "", int(port))


class Settings(BaseModel):
    """The daemon's configuration (``trinet run --help`` lists the same fields with their flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: str | None = Field(
        None,
        json_schema_extra=_opt(
            "--kubeconfig", ["TRINET_KUBECONFIG", "KUBECONFIG"], "kubeconfig file; default: in-cluster", "FILE"
        ),
    )
    node_name: str = Field(
        "",
        json_schema_extra=_opt(
            "--hostname-override",
            ["TRINET_HOSTNAME_OVERRIDE", "NODE_NAME"],
            "this node's name, compared with pod spec.nodeName (required; NODE_NAME comes from the downward API)",
            "NAME",
        ),
    )
    network_plugins: tuple[str, ...] = Field(
        ("macvlan",),
        json_schema_extra=_opt(
            "--network-plugins",
            ["TRINET_NETWORK_PLUGINS"],
            "comma list of CNI types whose interfaces are policed (default: macvlan)",
            "LIST",
        ),
    )
    netns_source: Literal["auto", "procfs", "cri"] = Field(
        "auto",
        json_schema_extra=_opt(
            "--netns-source",
            ["TRINET_NETNS_SOURCE"],
            "how a pod's network namespace is found: procfs (scan <host-prefix>/proc/*/cgroup for the pod UID), "
            "cri (ask the runtime at --container-runtime-endpoint; needs the trinet[cri] extra), "
            "auto (cri when --container-runtime-endpoint is given, else procfs; the default)",
            "{auto,procfs,cri}",
        ),
    )
    container_runtime_endpoint: str | None = Field(
        None,
        json_schema_extra=_opt(
            "--container-runtime-endpoint",
            ["TRINET_CONTAINER_RUNTIME_ENDPOINT"],
            "CRI socket path (unix:// optional), under --host-prefix",
            "PATH",
        ),
    )
    host_prefix: str = Field(
        "",
        json_schema_extra=_opt(
            "--host-prefix",
            ["TRINET_HOST_PREFIX"],
            "where the host's / is mounted (e.g. /host): <prefix>/proc and the CRI socket are read there",
            "DIR",
        ),
    )
    accept_icmp: bool = Field(
        False,
        json_schema_extra=_opt(
            "--accept-icmp", ["TRINET_ACCEPT_ICMP"], "accept all ICMPv4 on policed interfaces", "[BOOL]"
        ),
    )
    accept_icmpv6: bool = Field(
        False,
        json_schema_extra=_opt(
            "--accept-icmpv6",
            ["TRINET_ACCEPT_ICMPV6"],
            "accept all ICMPv6 on policed interfaces (neighbour discovery is always accepted)",
            "[BOOL]",
        ),
    )
    custom_v4_ingress_rule_file: Path | None = Field(
        None,
        json_schema_extra=_opt(
            "--custom-v4-ingress-rule-file", ["TRINET_CUSTOM_V4_INGRESS_RULE_FILE"], "IPv4 ingress rules", "FILE"
        ),
    )
    custom_v4_egress_rule_file: Path | None = Field(
        None,
        json_schema_extra=_opt(
            "--custom-v4-egress-rule-file", ["TRINET_CUSTOM_V4_EGRESS_RULE_FILE"], "IPv4 egress rules", "FILE"
        ),
    )
    custom_v6_ingress_rule_file: Path | None = Field(
        None,
        json_schema_extra=_opt(
            "--custom-v6-ingress-rule-file", ["TRINET_CUSTOM_V6_INGRESS_RULE_FILE"], "IPv6 ingress rules", "FILE"
        ),
    )
    custom_v6_egress_rule_file: Path | None = Field(
        None,
        json_schema_extra=_opt(
            "--custom-v6-egress-rule-file", ["TRINET_CUSTOM_V6_EGRESS_RULE_FILE"], "IPv6 egress rules", "FILE"
        ),
    )
    table_name: str = Field(
        "multi_networkpolicy",
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$",
        json_schema_extra=_opt(
            "--table-name", ["TRINET_TABLE_NAME"], "the inet table trinet owns in every pod (default: %(default)s)"
        ),
    )
    workers: int = Field(
        4,
        ge=1,
        le=64,
        json_schema_extra=_opt(
            "--workers", ["TRINET_WORKERS"], "pods worked on in parallel, 1-64 (default: %(default)s)", "N"
        ),
    )
    resync_period: float = Field(
        60.0,
        ge=0,
        json_schema_extra=_opt(
            "--resync-period",
            ["TRINET_RESYNC_PERIOD"],
            "every period, read back each local pod's table and repair drift; seconds or 30s/5m; 0 disables "
            "(default: 60s)",
            "DURATION",
        ),
    )
    metrics_bind_address: str = Field(
        ":8080",
        json_schema_extra=_opt(
            "--metrics-bind-address",
            ["TRINET_METRICS_BIND_ADDRESS"],
            "host:port for /metrics, 0 disables (default: %(default)s)",
            "ADDR",
        ),
    )
    metrics_per_pod_labels: bool = Field(
        True,
        json_schema_extra=_opt(
            "--metrics-per-pod-labels",
            ["TRINET_METRICS_PER_POD_LABELS"],
            "label per-pod metrics with namespace and pod; false on large nodes (node totals) (default: true)",
            "[BOOL]",
        ),
    )
    health_probe_bind_address: str = Field(
        ":8081",
        json_schema_extra=_opt(
            "--health-probe-bind-address",
            ["TRINET_HEALTH_PROBE_BIND_ADDRESS"],
            "host:port for /healthz and /readyz, 0 disables (default: %(default)s)",
            "ADDR",
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        json_schema_extra=_opt(
            "--log-level", ["TRINET_LOG_LEVEL"], "debug, info, warning or error (default: %(default)s)", "LEVEL"
        ),
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        json_schema_extra=_opt(
            "--log-format",
            ["TRINET_LOG_FORMAT"],
            "text (key=value) or json (one object per line) (default: %(default)s)",
            "{text,json}",
        ),
    )

    @field_validator("network_plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, tuple | list) and not value:
            raise ValueError("must name at least one CNI type")
        return value

    @field_validator("accept_icmp", "accept_icmpv6", "metrics_per_pod_labels", mode="before")
    @classmethod
    def _bool(cls, value: object) -> object:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(f"{value!r} is not a boolean (true/false)")
        return value

    @field_validator("resync_period", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("metrics_bind_address", "health_probe_bind_address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_bind_address(value)
        return value

    @field_validator("log_level", "log_format", "netns_source", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("kubeconfig", "container_runtime_endpoint", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "custom_v4_ingress_rule_file",
        "custom_v4_egress_rule_file",
        "custom_v6_ingress_rule_file",
        "custom_v6_egress_rule_file",
        mode="before",
    )
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _cri_needs_endpoint(self) -> Settings:
        if self.netns_source == "cri" and not self.container_runtime_endpoint:
            raise ValueError("--netns-source cri needs --container-runtime-endpoint")
        return self

    @property
    def health_address(self) -> tuple[str, int] | None:
        return parse_bind_address(self.health_probe_bind_address)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        return parse_bind_address(self.metrics_bind_address)

    @property
    def resolved_netns_source(self) -> Literal["procfs", "cri"]:
        """``auto``: cri when an endpoint is given and gRPC is installed, else procfs."""
        if self.netns_source == "auto":
            return "cri" if self.container_runtime_endpoint and grpc_available() else "procfs"
        return self.netns_source


def _extra(name: str) -> dict[str, Any]:
    extra = Settings.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    return extra


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``Settings`` field. Values stay strings here; ``from_sources`` validates them."""
    group = parser.add_argument_group("settings (each also from the environment variable named in brackets)")
    for name, field in Settings.model_fields.items():
        extra = _extra(name)
        env = ", ".join(extra["env"])
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(default)
        help_text = f"{extra['help']} [{env}]".replace("%(default)s", str(default))
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if field.annotation is bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif extra["metavar"]:
            kwargs["metavar"] = extra["metavar"]
        group.add_argument(extra["flag"], **kwargs)


def from_sources(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Settings from parsed flags, then the environment, then defaults; ``ConfigError`` names each bad source."""
    raw: dict[str, object] = {}
    source: dict[str, str] = {}
    for name in Settings.model_fields:
        extra = _extra(name)
        if hasattr(args, name):
            raw[name] = getattr(args, name)
            source[name] = extra["flag"]
            continue
        for var in extra["env"]:
            if var in environ:
                raw[name] = environ[var]
                source[name] = var
                break
    try:
        return Settings.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            where = source.get(name) or (_extra(name)["flag"] if name in Settings.model_fields else "settings")
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise ConfigError(problems) from None


def load_custom_rules(settings: Settings) -> CustomRules:
    """Read and validate the four custom rule files; ``ConfigError`` with ``file:line: reason`` entries."""
    files: dict[str, CustomRuleFile | None] = {}
    problems: list[str] = []
    for key in ("v4_ingress", "v4_egress", "v6_ingress", "v6_egress"):
        path: Path | None = getattr(settings, f"custom_{key}_rule_file")
        if path is None:
            files[key] = None
            continue
        try:
            files[key] = CustomRuleFile(str(path), path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            files[key] = None
    if problems:
        raise ConfigError(problems)
    try:
        return build_custom_rules(**files)
    except CustomRuleError as exc:
        raise ConfigError(list(exc.problems)) from None


def compile_options(settings: Settings, custom: CustomRules) -> CompileOptions:
    return CompileOptions(
        table=settings.table_name,
        network_plugins=frozenset(settings.network_plugins),
        accept_icmp=settings.accept_icmp,
        accept_icmpv6=settings.accept_icmpv6,
        custom=custom,
    )


def validate_for_run(settings: Settings) -> list[str]:
    """Problems that only matter when the daemon touches a node (``run``, ``cleanup``)."""
    problems = []
    if not settings.node_name.strip():
        problems.append("--hostname-override: the node name is not set (give the flag or NODE_NAME)")
    if settings.netns_source == "cri" and not grpc_available():
        problems.append("--netns-source cri: gRPC is not installed (pip install 'trinet[cri]')")
    proc = Path(settings.host_prefix or "/") / "proc"
    if settings.resolved_netns_source == "procfs" and not proc.is_dir():
        problems.append(f"--host-prefix: {proc} is not a directory (the procfs netns source reads it)")
    if settings.resolved_netns_source == "cri" and settings.container_runtime_endpoint:
        socket = cri_socket_path(settings.container_runtime_endpoint, settings.host_prefix)
        try:
            is_socket = stat.S_ISSOCK(socket.stat().st_mode)
        except OSError as exc:
            problems.append(f"--container-runtime-endpoint: {socket}: {exc.strerror} (the cri netns source uses it)")
        else:
            if not is_socket:
                problems.append(f"--container-runtime-endpoint: {socket} is not a unix socket")
    return problems


def cri_socket_path(endpoint: str, host_prefix: str) -> Path:
    """Where the CRI socket of ``--container-runtime-endpoint`` (``unix://`` optional) is, under ``--host-prefix``."""
    return Path(host_prefix or "/") / endpoint.removeprefix("unix://").lstrip("/")


def grpc_available() -> bool:
    """Is the optional ``trinet[cri]`` extra (grpcio) installed?"""
    return importlib.util.find_spec("grpc") is not None
