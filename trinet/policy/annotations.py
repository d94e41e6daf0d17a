"""Parsing of the Multus/NPWG annotations and of a NAD's CNI type (semantics.md §1.3, §2.6).

Every parser is total: malformed input gives an empty or partial result plus human-readable problems, never an
exception, because annotations and NADs are written by users and plugins we do not control. That includes JSON
nested deeper than a decoder recurses (``RecursionError``, not a ``ValueError``), text that is not valid UTF-8
(lone surrogates) and numbers longer than Python converts: anyone who may create a NAD or annotate a pod must not
be able to break the snapshot of the whole cluster.
"""

from __future__ import annotations

import json
import re
import socket

import msgspec

from trinet.objects import NetworkAttachmentDefinition

__all__ = [
    "NETWORKS_ANNOTATION",
    "NETWORK_STATUS_ANNOTATION",
    "POLICY_FOR_ANNOTATION",
    "NetworkSelection",
    "NetworkStatusEntry",
    "is_interface_name",
    "nad_cni_type",
    "normalize_ref",
    "parse_cni_config",
    "parse_ip",
    "parse_network_status",
    "parse_networks",
    "parse_policy_for",
]

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
POLICY_FOR_ANNOTATION = "k8s.v1.cni.cncf.io/policy-for"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_JSON_ERRORS = (ValueError, RecursionError)  # msgspec's and json's errors, bad UTF-8 and long numbers: ValueError


def _json_problem(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


class NetworkSelection(msgspec.Struct, frozen=True, gc=False):
    """One item of the pod's ``networks`` annotation, namespace already defaulted."""

    namespace: str
    name: str
    interface: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class NetworkStatusEntry(msgspec.Struct, frozen=True, gc=False):
    """One item of ``network-status``: name as written, interface, IPv4 and IPv6 addresses as integers."""

    name: str
    interface: str
    v4: tuple[int, ...]
    v6: tuple[int, ...]
    default: bool = False


class _RawSelection(msgspec.Struct, gc=False):
    name: str
    namespace: str | None = None
    interface: str | None = None


class _RawStatus(msgspec.Struct, gc=False):
    name: str = ""
    interface: str = ""
    ips: list[str] | None = None
    default: bool = False


def is_interface_name(name: str) -> bool:
    """A name Linux accepts for a network interface (``dev_valid_name``): 1-15 bytes, not ``.`` or ``..``, no
    ``/``, ``:`` or whitespace. nftables stores at most 15 bytes and reads a trailing ``*`` as a wildcard, so a
    name that fails this can never be matched exactly."""
    size = len(name.encode())
    return 0 < size < 16 and name not in (".", "..") and not any(c in "/:" or c.isspace() for c in name)


def normalize_ref(ref: str, default_namespace: str) -> str:
    """``name`` → ``default_namespace/name``; ``ns/name`` unchanged; surrounding whitespace removed."""
    ref = ref.strip()
    return ref if "/" in ref else f"{default_namespace}/{ref}"


def parse_networks(value: str, pod_namespace: str) -> tuple[tuple[NetworkSelection, ...], list[str]]:
    """Parse ``k8s.v1.cni.cncf.io/networks`` in either form (JSON when it contains ``[``, ``{`` or ``"``)."""
    problems: list[str] = []
    out: list[NetworkSelection] = []
    if any(c in value for c in '[{"'):
        try:
            raw = msgspec.json.decode(value.encode(), type=list[_RawSelection])
        except _JSON_ERRORS as exc:
            return (), [f"networks: invalid JSON: {_json_problem(exc)}"]
        for sel in raw:
            out.append(NetworkSelection(sel.namespace or pod_namespace, sel.name, sel.interface or None))
        return tuple(out), problems
    for index, raw_item in enumerate(value.split(",")):
        item = raw_item.strip()
        if not item:
            continue
        ns_part, _, rest = item.rpartition("/") if "/" in item else ("", "", item)
        name, _, ifname = rest.partition("@")
        units = [u for u in (ns_part, name) if u]
        if item.count("/") > 1 or not all(_DNS_LABEL.match(u) for u in units) or not name:
            problems.append(f"networks[{index}]: {item!r} is not [<namespace>/]<name>[@<ifname>]")
            continue
        out.append(NetworkSelection(ns_part or pod_namespace, name, ifname or None))
    return tuple(out), problems


def parse_ip(text: str) -> tuple[int, int] | None:
    """``(version, integer)`` of an address, any prefix length stripped; None if it is not an address.

    ``inet_pton`` rather than ``ipaddress``: this runs for every address of every pod in the cluster.
    """
    address = text.strip().partition("/")[0]
    family, version = (socket.AF_INET6, 6) if ":" in address else (socket.AF_INET, 4)
    try:
        return version, int.from_bytes(socket.inet_pton(family, address), "big")
    except OSError:
        return None


def parse_network_status(value: str) -> tuple[tuple[NetworkStatusEntry, ...], list[str]]:
    """Parse ``network-status``; prefix lengths are stripped (D10), unparsable addresses dropped with a problem.

    ``v4`` and ``v6`` hold the integers of the valid entries of ``ips``, in order."""
    try:
        raw = msgspec.json.decode(value.encode(), type=list[_RawStatus])
    except _JSON_ERRORS as exc:
        return (), [f"network-status: invalid JSON: {_json_problem(exc)}"]
    problems: list[str] = []
    out: list[NetworkStatusEntry] = []
    for index, item in enumerate(raw):
        v4: list[int] = []
        v6: list[int] = []
        for j, ip in enumerate(item.ips or ()):
            parsed = parse_ip(ip)
            if parsed is None:
                problems.append(f"network-status[{index}].ips[{j}]: {ip!r} is not an IP address")
            else:
                (v4 if parsed[0] == 4 else v6).append(parsed[1])
        out.append(NetworkStatusEntry(item.name, item.interface, tuple(v4), tuple(v6), item.default))
    return tuple(out), problems


def parse_policy_for(value: str | None, policy_namespace: str) -> frozenset[str]:
    """``policy-for``: comma list; items trimmed; empty items ignored; bare names in the policy's namespace."""
    if value is None:
        return frozenset()
    return frozenset(normalize_ref(item, policy_namespace) for item in value.split(",") if item.strip())


def parse_cni_config(config: str) -> tuple[str | None, tuple[str, ...]]:
    """(CNI type, problems) of a NAD's ``spec.config``: ``plugins[0].type`` of a conflist, else ``type``.

    The type is None when unknown or malformed, with a problem when malformed. An empty config (the config is on
    the node's disk, which the pure core does not read) is unknown here but not a problem.
    """
    if not config.strip():
        return None, ()
    try:
        cfg = json.loads(config)
    except _JSON_ERRORS as exc:
        return None, (f"spec.config: invalid JSON: {_json_problem(exc)}",)
    if not isinstance(cfg, dict):
        return None, ("spec.config: not a JSON object",)
    plugins = cfg.get("plugins")
    if isinstance(plugins, list) and plugins:
        cfg = plugins[0] if isinstance(plugins[0], dict) else {}
    kind = cfg.get("type")
    if isinstance(kind, str) and kind:
        return kind, ()
    return None, ("spec.config: no CNI type (a string `type`, or `plugins[0].type` in a conflist)",)


def nad_cni_type(nad: NetworkAttachmentDefinition) -> str | None:
    """CNI type of a NAD (``parse_cni_config``); None when unknown or malformed."""
    return parse_cni_config(nad.spec.config)[0]
