"""Consumption-time validation (semantics.md §2.9) and normalisation into ``EffectivePolicy``.

Every message is ``<object path>: <reason>``. An invalid port item, peer or selector drops only itself and never
widens what the policy allows: a rule whose items are all invalid matches nothing, the policy still isolates.
"""

from __future__ import annotations

import ipaddress
import re

from trinet.objects import (
    IPBlock,
    MultiNetworkPolicy,
    MultiNetworkPolicyPeer,
    MultiNetworkPolicyPort,
)
from trinet.policy.annotations import POLICY_FOR_ANNOTATION, parse_policy_for
from trinet.policy.ipblock import block_intervals
from trinet.policy.model import PROTOCOL_NUMBERS, Direction, EffectivePolicy, IPBlockPeer, PortItem, Rule, SelectorPeer
from trinet.policy.selectors import Selector, compile_selector

__all__ = ["validate_policy"]

_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9](-?[a-z0-9])*$")
_TYPES = {"ingress": Direction.INGRESS, "egress": Direction.EGRESS}


class _Findings:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []


def _port_item(item: MultiNetworkPolicyPort, path: str, out: _Findings) -> PortItem | None:
    protocol = "TCP" if item.protocol is None else item.protocol
    if protocol not in PROTOCOL_NUMBERS:
        if protocol.upper() not in PROTOCOL_NUMBERS:
            out.errors.append(f"{path}.protocol: {protocol!r} is not one of TCP, UDP, SCTP")
            return None
        out.warnings.append(f"{path}.protocol: {protocol!r} accepted as {protocol.upper()!r}")
        protocol = protocol.upper()
    port, end = item.port, item.end_port
    if port is None:
        if end is not None:
            out.errors.append(f"{path}.endPort: may not be specified when port is not specified")
            return None
        return PortItem(protocol)
    if isinstance(port, str):
        if end is not None:
            out.errors.append(f"{path}.endPort: may not be specified when port is non-numeric")
            return None
        if len(port) > 15 or not _IANA_SVC_NAME.match(port):
            out.errors.append(f"{path}.port: {port!r} is neither a number nor a valid IANA_SVC_NAME")
            return None
        return PortItem(protocol, name=port)
    if not 1 <= port <= 65535:
        out.errors.append(f"{path}.port: {port} is not in 1-65535")
        return None
    if end is None:
        return PortItem(protocol, port, port)
    if not 1 <= end <= 65535:
        out.errors.append(f"{path}.endPort: {end} is not in 1-65535")
        return None
    if end < port:
        out.errors.append(f"{path}.endPort: {end} must be greater than or equal to port {port}")
        return None
    return PortItem(protocol, port, end)


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``address/prefix-length`` exactly as Kubernetes (Go ``net.ParseCIDR``) accepts it; host bits are ignored.

    Python's ``ip_network`` is more lenient: netmask and hostmask forms (``10.0.0.0/0.0.0.0`` is ``0.0.0.0/0``),
    bare addresses, surrounding whitespace and IPv6 zones. Upstream rejects all of them, so we do too: an ipBlock
    nobody else would accept must never open traffic.
    """
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isascii() or not prefix.isdigit() or "%" in address or address != address.strip():
        raise ValueError(f"{text!r} is not address/prefix-length")
    return ipaddress.ip_network((ipaddress.ip_address(address), int(prefix)), strict=False)


def _ip_block(block: IPBlock, path: str, out: _Findings) -> IPBlockPeer | None:
    try:
        cidr = parse_cidr(block.cidr)
    except ValueError:
        out.errors.append(f"{path}.cidr: {block.cidr!r} is not a valid CIDR (address/prefix-length)")
        return None
    excepts = []
    for i, text in enumerate(block.except_ or ()):
        try:
            exc = parse_cidr(text)
        except ValueError:
            out.errors.append(f"{path}.except[{i}]: {text!r} is not a valid CIDR (address/prefix-length)")
            return None
        if exc.version != cidr.version or exc.network_address not in cidr or exc.broadcast_address not in cidr:
            out.errors.append(f"{path}.except[{i}]: {text} is not inside cidr {block.cidr}")
            return None
        if exc.prefixlen == cidr.prefixlen:
            out.errors.append(f"{path}.except[{i}]: {text} must be a strict subset of cidr {block.cidr}")
            return None
        excepts.append(exc)
    intervals = block_intervals(cidr, excepts)
    return IPBlockPeer(v4=intervals) if cidr.version == 4 else IPBlockPeer(v6=intervals)


def _peer(peer: MultiNetworkPolicyPeer, path: str, out: _Findings) -> IPBlockPeer | SelectorPeer | None:
    if peer.ip_block is not None:
        if peer.pod_selector is not None or peer.namespace_selector is not None:
            out.errors.append(f"{path}: may not specify both ipBlock and another peer")
            return None
        return _ip_block(peer.ip_block, f"{path}.ipBlock", out)
    if peer.pod_selector is None and peer.namespace_selector is None:
        out.errors.append(f"{path}: must specify a peer")
        return None
    selectors: list[Selector | None] = []
    for field, selector in (("podSelector", peer.pod_selector), ("namespaceSelector", peer.namespace_selector)):
        if selector is None:
            selectors.append(None)
            continue
        compiled, errors = compile_selector(selector, f"{path}.{field}")
        if compiled is None:
            out.errors.extend(errors)
            return None
        selectors.append(compiled)
    return SelectorPeer(pods=selectors[0], namespaces=selectors[1])


def _rule(
    ports: list[MultiNetworkPolicyPort] | None,
    peers: list[MultiNetworkPolicyPeer] | None,
    path: str,
    peer_field: str,
    out: _Findings,
) -> Rule:
    port_items = None
    if ports:
        port_items = tuple(
            p for i, item in enumerate(ports) if (p := _port_item(item, f"{path}.ports[{i}]", out)) is not None
        )
    peer_items = None
    if peers:
        peer_items = tuple(
            q for i, peer in enumerate(peers) if (q := _peer(peer, f"{path}.{peer_field}[{i}]", out)) is not None
        )
    return Rule(port_items, peer_items)


def _policy_types(policy: MultiNetworkPolicy, out: _Findings) -> tuple[frozenset[Direction], frozenset[Direction]]:
    """(isolated directions, directions whose rules count); an invalid entry isolates both, counts nothing more."""
    spec = policy.spec
    if not spec.policy_types:
        enabled = {Direction.INGRESS} | ({Direction.EGRESS} if spec.egress else set())
        return frozenset(enabled), frozenset(enabled)
    if len(spec.policy_types) > 2:
        out.errors.append(f"spec.policyTypes: must have at most 2 items, has {len(spec.policy_types)}")
    valid: set[Direction] = set()
    invalid = False
    for i, value in enumerate(spec.policy_types):
        direction = _TYPES.get(value.lower())
        if direction is None:
            out.errors.append(f"spec.policyTypes[{i}]: {value!r} is not one of Ingress, Egress")
            invalid = True
            continue
        if value not in ("Ingress", "Egress"):
            out.warnings.append(f"spec.policyTypes[{i}]: {value!r} accepted as {direction.value.capitalize()!r}")
        valid.add(direction)
    isolates = frozenset(Direction) if invalid else frozenset(valid)
    return isolates, frozenset(valid)


def validate_policy(policy: MultiNetworkPolicy) -> EffectivePolicy:
    """Validate one policy and normalise it. Never raises."""
    out = _Findings()
    meta = policy.metadata
    annotation = meta.annotations.get(POLICY_FOR_ANNOTATION)
    if annotation is None:
        out.warnings.append(f"metadata.annotations[{POLICY_FOR_ANNOTATION}]: missing, the policy has no effect")
    networks = parse_policy_for(annotation, meta.namespace)
    isolates, counted = _policy_types(policy, out)
    subjects, errors = compile_selector(policy.spec.pod_selector, "spec.podSelector")
    if subjects is None:
        out.errors.extend(errors)
        out.errors.append("spec.podSelector: invalid: the policy isolates every pod of its namespace, allows nothing")
        counted = frozenset()
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    if Direction.INGRESS in counted:
        ingress = tuple(
            _rule(r.ports, r.from_, f"spec.ingress[{i}]", "from", out) for i, r in enumerate(policy.spec.ingress or ())
        )
    if Direction.EGRESS in counted:
        egress = tuple(
            _rule(r.ports, r.to, f"spec.egress[{i}]", "to", out) for i, r in enumerate(policy.spec.egress or ())
        )
    return EffectivePolicy(
        namespace=meta.namespace,
        name=meta.name,
        networks=networks,
        subjects=subjects,
        isolates=isolates,
        ingress=ingress,
        egress=egress,
        errors=tuple(out.errors),
        warnings=tuple(out.warnings),
    )
