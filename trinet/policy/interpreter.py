"""Evaluate one packet against a ``PodRuleset`` the way the kernel would evaluate the nftables it maps to.

Used by tests to check compiled rulesets against the oracle without a kernel. It models: base chains by hook with
policy accept, rules in order, verdict maps whose entries jump (return on fall-through; no entry: continue), and
every match type of ``ruleset.py`` (an address match of the other family never matches, even negated, as in
nftables where ``ip saddr`` carries an implicit ``meta nfproto ipv4``).
"""

from __future__ import annotations

from typing import Literal, assert_never

import msgspec

from trinet.policy.ruleset import (
    Accept,
    Addr,
    AddrPort,
    Chain,
    CtState,
    Drop,
    IcmpType,
    IfName,
    L4Proto,
    Match,
    NfProto,
    PodRuleset,
    Port,
    Set,
    Table,
    Verdict,
    Vmap,
)

__all__ = ["Packet", "evaluate"]

_PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})  # tcp, udp, dccp, sctp, udplite: have a transport port header
_ICMP_OF_FAMILY = {4: 1, 6: 58}


class Packet(msgspec.Struct, frozen=True, kw_only=True):
    """A packet as seen by one hook of the pod's netns. ``ifname`` is the input (input hook) or output interface."""

    hook: Literal["input", "output"]
    ifname: str
    family: Literal[4, 6]
    saddr: int
    daddr: int
    protocol: int
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    ct_state: str = "new"


class _Evaluator:
    def __init__(self, table: Table, packet: Packet) -> None:
        self.packet = packet
        self.chains: dict[str, Chain] = {c.name: c for c in table.chains}
        self.sets: dict[str, Set] = {s.name: s for s in table.sets}
        self.maps = {m.name: dict(m.entries) for m in table.maps}

    def in_set(self, name: str, values: tuple[int, ...]) -> bool:
        return any(
            all(lo <= v <= hi for v, (lo, hi) in zip(values, element, strict=True))
            for element in self.sets[name].elements
        )

    def matches(self, match: Match) -> bool:
        p = self.packet
        match match:
            case NfProto(family=family):
                return p.family == family
            case L4Proto(protocols=protocols, negate=negate):
                return (p.protocol in protocols) != negate
            case IfName(field=field, names=names, negate=negate):
                own = "iifname" if p.hook == "input" else "oifname"
                return ((p.ifname if field == own else "") in names) != negate
            case CtState(states=states):
                return p.ct_state in states
            case Addr(family=family, field=field, set_name=set_name, elements=elements, negate=negate):
                if p.family != family:
                    return False
                value = p.saddr if field == "saddr" else p.daddr
                if set_name is not None:
                    return self.in_set(set_name, (value,)) != negate
                return any(lo <= value <= hi for lo, hi in elements) != negate
            case Port(field=field, elements=elements, negate=negate):
                port = p.sport if field == "sport" else p.dport
                if p.protocol not in _PORT_PROTOCOLS or port is None:
                    return False
                return any(lo <= port <= hi for lo, hi in elements) != negate
            case AddrPort(family=family, addr_field=addr_field, port_field=port_field, set_name=set_name):
                port = p.sport if port_field == "sport" else p.dport
                if p.family != family or p.protocol not in _PORT_PROTOCOLS or port is None:
                    return False
                return self.in_set(set_name, (p.saddr if addr_field == "saddr" else p.daddr, port))
            case IcmpType(family=family, types=types):
                return (
                    p.family == family
                    and p.protocol == _ICMP_OF_FAMILY[family]
                    and p.icmp_type is not None
                    and p.icmp_type in types
                )
            case _:
                assert_never(match)

    def run(self, chain: Chain, depth: int = 0) -> Literal["accept", "drop"] | None:
        if depth > 16:
            raise RecursionError("jump depth exceeded")
        for rule in chain.rules:
            if all(self.matches(m) for m in rule.matches):
                verdict = self.verdict(rule.verdict, depth)
                if verdict is not None:
                    return verdict
        return None

    def verdict(self, verdict: Verdict, depth: int) -> Literal["accept", "drop"] | None:
        match verdict:
            case Accept():
                return "accept"
            case Drop():
                return "drop"
            case Vmap(field=field, map_name=map_name):
                own = "iifname" if self.packet.hook == "input" else "oifname"
                target = self.maps[map_name].get(self.packet.ifname if field == own else "")
                return None if target is None else self.run(self.chains[target], depth + 1)
            case _:
                assert_never(verdict)


def evaluate(ruleset: PodRuleset, packet: Packet) -> Literal["accept", "drop"]:
    """The final verdict of ``packet`` at its hook; with no base chain for the hook, everything is accepted."""
    evaluator = _Evaluator(ruleset.table, packet)
    for chain in ruleset.table.chains:
        if chain.hook == packet.hook:
            verdict = evaluator.run(chain)
            if verdict is not None:
                return verdict
    return "accept"
