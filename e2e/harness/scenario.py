"""Scenario files: the schema (pydantic, unknown keys are errors naming their path) and the loader.

A scenario is a cluster (nodes, namespaces, networks = NADs, pods, policies applied at the start) and ordered
steps. The expectation syntax is in `Expect`; `e2e/scenarios/README.md` documents the whole format.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from e2e.harness.probes import PROTOCOLS


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file and the path of every problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_PORT_RE = re.compile(r"^(?:(tcp|udp|sctp)/)?(\d{1,5})$")


def parse_port(text: str | int) -> tuple[str, int]:
    """`5555` (TCP), `tcp/5555`, `udp/53`, `sctp/80`, `icmp` (port 0)."""
    text = str(text).strip().lower()
    if text == "icmp":
        return "icmp", 0
    match = _PORT_RE.match(text)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError(f"{text!r} is not a port (forms: 5555, tcp/5555, udp/53, sctp/80, icmp)")
    return match.group(1) or "tcp", int(match.group(2))


class Namespace(Strict):
    name: str
    labels: dict[str, str] = {}


class Network(Strict):
    """A NetworkAttachmentDefinition; every attachment is a macvlan on the nodes' `segment` interface."""

    name: str
    namespace: str = "default"
    type: str = "macvlan"
    """CNI type written into the NAD (the daemon filters on it); the attachment is a macvlan whatever it says."""
    segment: str = "lan0"
    subnets: list[str] = ["10.10.0.0/24"]
    offset: int = 10
    """Host number of the first address handed out (per subnet)."""
    create: bool = True
    """False: the NAD object is only created by a later `apply` step (the harness still wires the segment)."""
    config: dict[str, Any] | None = None
    """A verbatim CNI config instead of the generated one."""

    @field_validator("subnets")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            ipaddress.ip_network(subnet)
        return value

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class ContainerPort(Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    name: str | None = None
    container: str = "app"


class Attachment(Strict):
    network: str
    """A NAD reference: `name` (the pod's namespace) or `namespace/name`."""
    interface: str | None = None
    ips: list[str] | None = None
    """Addresses (with or without prefix length) instead of the allocator's."""


def _attachment(value: object) -> object:
    return {"network": value} if isinstance(value, str) else value


class Pod(Strict):
    name: str
    namespace: str = "default"
    node: str = "node-1"
    labels: dict[str, str] = {}
    networks: list[Annotated[Attachment, Field()]] = []
    ports: list[ContainerPort] = []
    host_network: bool = False
    create: bool = True
    """False: the pod is only created by a later `create_pods` step."""

    @field_validator("networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        return [_attachment(v) for v in value] if isinstance(value, list) else value

    @field_validator("ports", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        out: list[object] = []
        for item in value:
            if isinstance(item, str | int):
                proto, port = parse_port(item)
                out.append({"port": port, "protocol": proto.upper()})
            else:
                out.append(item)
        return out

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Expect(Strict):
    """A connectivity matrix, polled until every cell holds (or `timeout` passes).

    `matrix` lines are `SRC -> DST[:PORT] allow|deny`; SRC and DST are pod names or `namespace/name`, with
    shell wildcards (`*`, `client-?`). A later line overrides an earlier one for the cells both match; the cells
    probed are exactly those some line matches. Without `:PORT`, a line covers every port of `ports`, or the
    destination pod's declared ports when `ports` is not given. Every (source, destination) pair is probed on
    `network` in each family of `families` that both pods have an address of.
    """

    network: str | list[str] | None = None
    """NAD reference(s) of the network probed (default: the scenario's first network); `cluster` for eth0. With
    several, each pod is probed at its first interface on any of them (NADs sharing one L2 segment)."""
    families: list[Literal[4, 6]] = [4, 6]
    ports: list[str] | None = None
    matrix: list[str]
    timeout: float = 30.0
    oracle: bool = True
    """False: the matrix shows state the API no longer describes (rules kept while a daemon is down), so
    `trinet.policy.oracle` is not asked."""
    flush_neighbours: bool = False
    """Flush every pod's neighbour cache before each round, so each probe needs ARP/NDP anew."""

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[str] | None) -> list[str] | None:
        for port in value or []:
            parse_port(port)
        return value

    @field_validator("matrix")
    @classmethod
    def _matrix(cls, value: list[str]) -> list[str]:
        for line in value:
            parse_rule(line)
        return value


_RULE_RE = re.compile(r"^\s*(\S+)\s*->\s*([^\s:]+)(?::(\S+))?\s+(allow|deny)\s*$")


def parse_rule(line: str) -> tuple[str, str, tuple[str, int] | None, bool]:
    match = _RULE_RE.match(line)
    if not match:
        raise ValueError(f"{line!r}: expected 'SRC -> DST[:PORT] allow|deny'")
    port = parse_port(match.group(3)) if match.group(3) else None
    if port and port[0] not in PROTOCOLS:
        raise ValueError(f"{line!r}: unknown protocol")
    return match.group(1), match.group(2), port, match.group(4) == "allow"


class ObjectRef(Strict):
    kind: str
    name: str
    namespace: str | None = None


class Patch(ObjectRef):
    patch: dict[str, Any]
    """A JSON merge patch."""


class SetIps(Strict):
    pod: str
    network: str
    ips: list[str]


class DaemonArgs(Strict):
    node: str | None = None
    """None: every node."""
    args: list[str] | None = None
    """None: keep the current arguments."""


class Tables(Strict):
    """Which pods hold the daemon's table (`inet multi_networkpolicy`), polled like a matrix."""

    present: list[str] = []
    absent: list[str] = []
    nodes_untouched: bool = True
    """Also require that no node namespace holds a table (hostNetwork pods live there)."""
    timeout: float = 30.0


class Step(Strict):
    """Exactly one action per step."""

    note: str | None = None
    expect: Expect | None = None
    tables: Tables | None = None
    apply: list[dict[str, Any]] | None = None
    patch: Patch | None = None
    delete: ObjectRef | None = None
    create_pods: list[str] | None = None
    delete_pods: list[str] | None = None
    set_ips: SetIps | None = None
    restart_daemon: DaemonArgs | None = None
    stop_daemon: DaemonArgs | None = None
    start_daemon: DaemonArgs | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        actions = [k for k, v in self.__dict__.items() if k != "note" and v is not None]
        if len(actions) != 1:
            raise ValueError(f"a step has exactly one action, found {actions or 'none'}")
        return self

    @property
    def action(self) -> str:
        return next(k for k, v in self.__dict__.items() if k != "note" and v is not None)


class Scenario(Strict):
    name: str
    description: str = ""
    nodes: list[str] = ["node-1", "node-2"]
    daemon_args: list[str] = []
    namespaces: list[Namespace] = []
    networks: list[Network] = []
    pods: list[Pod] = []
    files: dict[str, str] = {}
    """Files written before the daemons start (e.g. custom rule files); `{files}` in daemon arguments is their
    directory."""
    policies: list[dict[str, Any]] = []
    """Objects applied before the first step (verbatim YAML, usually MultiNetworkPolicies)."""
    steps: list[Step]

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        nets = {n.ref for n in self.networks}
        keys = [p.key for p in self.pods]
        if len(set(keys)) != len(keys):
            raise ValueError("two pods with the same namespace/name")
        for pod in self.pods:
            if pod.node not in self.nodes:
                raise ValueError(f"pod {pod.key}: node {pod.node!r} is not in nodes {self.nodes}")
            for att in pod.networks:
                if qualify(att.network, pod.namespace) not in nets:
                    raise ValueError(f"pod {pod.key}: network {att.network!r} is not in networks")
        return self


def qualify(ref: str, namespace: str) -> str:
    return ref if "/" in ref else f"{namespace}/{ref}"


def load(path: Path) -> Scenario:
    """Read and validate one scenario file; any problem raises `ScenarioError` naming the file and the path."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"  {where}: {message}")
        raise ScenarioError(f"{path}: invalid scenario\n" + "\n".join(problems)) from None
