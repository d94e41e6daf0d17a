"""Evaluate one packet against a ``PodRuleset`` the way the kernel would evaluate the nftables it maps to.

Used by tests to check compiled rulesets against the oracle without a kernel. It models: base chains by hook with
policy accept, rules in order, ``jump`` (return on fall-through), verdict maps (no entry: continue), and every match
type of ``ruleset.py`` (an address match of the other family never matches, even negated, as in nftables where
``ip saddr`` carries an implicit ``meta nfproto ipv4``).
"""

from __future__ import annotations

from typing import Literal

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
    Jump,
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
        if isinstance(match, NfProto):
            return p.family == match.family
        if isinstance(match, L4Proto):
            return (p.protocol in match.protocols) != match.negate
        if isinstance(match, IfName):
            own = "iifname" if p.hook == "input" else "oifname"
            name = p.ifname if match.field == own else ""
            return (name in match.names) != match.negate
        if isinstance(match, CtState):
            return p.ct_state in match.states
        if isinstance(match, Addr):
            if p.family != match.family:
                return False
            value = p.saddr if match.field == "saddr" else p.daddr
            if match.set_name is not None:
                found = self.in_set(match.set_name, (value,))
            else:
                found = any(lo <= value <= hi for lo, hi in match.elements)
            return found != match.negate
        if isinstance(match, Port):
            port = p.sport if match.field == "sport" else p.dport
            if p.protocol not in _PORT_PROTOCOLS or port is None:
                return False
            if match.set_name is not None:
                found = self.in_set(match.set_name, (port,))
            else:
                found = any(lo <= port <= hi for lo, hi in match.elements)
            return found != match.negate
        if isinstance(match, AddrPort):
            port = p.sport if match.port_field == "sport" else p.dport
            if p.family != match.family or p.protocol not in _PORT_PROTOCOLS or port is None:
                return False
            addr = p.saddr if match.addr_field == "saddr" else p.daddr
            return self.in_set(match.set_name, (addr, port))
        if isinstance(match, IcmpType):
            return (
                p.family == match.family
                and p.protocol == _ICMP_OF_FAMILY[match.family]
                and p.icmp_type is not None
                and p.icmp_type in match.types
            )
        raise TypeError(f"unknown match {match!r}")

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
        if isinstance(verdict, Accept):
            return "accept"
        if isinstance(verdict, Drop):
            return "drop"
        if isinstance(verdict, Jump):
            return self.run(self.chains[verdict.chain], depth + 1)
        if isinstance(verdict, Vmap):
            own = "iifname" if self.packet.hook == "input" else "oifname"
            key = self.packet.ifname if verdict.field == own else ""
            target = self.maps[verdict.map_name].get(key)
            return None if target is None else self.run(self.chains[target], depth + 1)
        raise TypeError(f"unknown verdict {verdict!r}")


def evaluate(ruleset: PodRuleset, packet: Packet) -> Literal["accept", "drop"]:
    """The final verdict of ``packet`` at its hook; with no base chain for the hook, everything is accepted."""
    evaluator = _Evaluator(ruleset.table, packet)
    for chain in ruleset.table.chains:
        if chain.hook == packet.hook:
            verdict = evaluator.run(chain)
            if verdict is not None:
                return verdict
    return "accept"
