"""``render(PodRuleset) -> str``: ``nft -f`` text for humans (logs, debugging, golden files).

The output is loadable by ``nft -f`` (tests load it into a throwaway netns) and is stable: the same ruleset gives
the same text byte for byte. Interval elements print as a prefix when they are one, else as ``first-last``.
"""

from __future__ import annotations

import ipaddress
from typing import assert_never

from trinet.policy.ipblock import Interval, to_prefixes
from trinet.policy.ruleset import (
    ICMP_TYPES,
    ICMPV6_TYPES,
    Accept,
    Addr,
    AddrPort,
    CtState,
    Drop,
    IcmpType,
    IfName,
    L4Proto,
    Match,
    NfProto,
    PodRuleset,
    Port,
    Rule,
    Set,
    Verdict,
    Vmap,
)

__all__ = ["render", "render_rule"]

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}
_BITS = {"ipv4_addr": 32, "ipv6_addr": 128}
_ICMP_NAMES = {number: name for name, number in reversed(ICMP_TYPES.items())}
_ICMPV6_NAMES = {number: name for name, number in reversed(ICMPV6_TYPES.items())}


def _addr(value: int, key: str) -> str:
    return str(ipaddress.IPv4Address(value) if key == "ipv4_addr" else ipaddress.IPv6Address(value))


def _interval(interval: Interval, key: str) -> str:
    lo, hi = interval
    if key == "inet_service":
        return str(lo) if lo == hi else f"{lo}-{hi}"
    if lo == hi:
        return _addr(lo, key)
    prefixes = to_prefixes(interval, _BITS[key])
    if len(prefixes) == 1:
        return f"{_addr(lo, key)}/{prefixes[0][1]}"
    return f"{_addr(lo, key)}-{_addr(hi, key)}"


def _anonymous(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _neg(negate: bool) -> str:
    return "!= " if negate else ""


def _match(match: Match) -> str:
    match match:
        case NfProto(family=family):
            return f"meta nfproto ipv{family}"
        case L4Proto(protocols=protocols, negate=negate):
            return f"meta l4proto {_neg(negate)}{_anonymous([_PROTO_NAMES.get(p, str(p)) for p in protocols])}"
        case IfName(field=field, names=names, negate=negate):
            quoted = [f'"{n}"' for n in names]
            return f"{field} {_neg(negate)}{_anonymous(quoted)}"
        case CtState(states=states):
            return "ct state " + ",".join(states)
        case Addr(family=family, field=field, set_name=set_name, elements=elements, negate=negate):
            proto, key = ("ip", "ipv4_addr") if family == 4 else ("ip6", "ipv6_addr")
            target = f"@{set_name}" if set_name else _anonymous([_interval(i, key) for i in elements])
            return f"{proto} {field} {_neg(negate)}{target}"
        case Port(field=field, elements=elements, negate=negate):
            return f"th {field} {_neg(negate)}{_anonymous([_interval(i, 'inet_service') for i in elements])}"
        case AddrPort(family=family, addr_field=addr_field, port_field=port_field, set_name=set_name):
            return f"{'ip' if family == 4 else 'ip6'} {addr_field} . th {port_field} @{set_name}"
        case IcmpType(family=family, types=types):
            known = _ICMP_NAMES if family == 4 else _ICMPV6_NAMES
            return f"{'icmp' if family == 4 else 'icmpv6'} type {_anonymous([known.get(t, str(t)) for t in types])}"
        case _:
            assert_never(match)


def _verdict(verdict: Verdict) -> str:
    match verdict:
        case Accept():
            return "accept"
        case Drop():
            return "drop"
        case Vmap(field=field, map_name=map_name):
            return f"{field} vmap @{map_name}"
        case _:
            assert_never(verdict)


_PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp"}


def _matches(matches: tuple[Match, ...]) -> list[str]:
    """Render matches as `nft list ruleset` shows them (the same bytecode): `meta l4proto tcp` followed by a
    transport-header port match is written `tcp dport ...`, and a family guard that an address or ICMP match
    implies is left out."""
    parts: list[str] = []
    proto: str | None = None
    implied = {m.family for m in matches if isinstance(m, Addr | AddrPort | IcmpType)}
    for match in matches:
        if isinstance(match, NfProto) and match.family in implied:
            continue  # `ip saddr`, `icmp type`, ... carry this guard already
        if isinstance(match, L4Proto) and len(match.protocols) == 1 and not match.negate:
            proto = _PORT_PROTOCOLS.get(match.protocols[0])
            if proto is not None:
                continue
        text = _match(match)
        if proto is not None:
            if isinstance(match, Port | AddrPort):
                text = text.replace("th ", f"{proto} ", 1)
            else:
                parts.append(f"meta l4proto {proto}")
            proto = None
        parts.append(text)
    if proto is not None:
        parts.append(f"meta l4proto {proto}")
    return parts


def render_rule(rule: Rule) -> str:
    parts = [*_matches(rule.matches), *(["counter"] if rule.counter else []), _verdict(rule.verdict)]
    if rule.comment:
        parts.append('comment "' + rule.comment.replace('"', "'") + '"')
    return " ".join(parts)


def _set(s: Set) -> list[str]:
    lines = [f"\tset {s.name} {{", f"\t\ttype {' . '.join(s.key)}"]
    if s.interval:
        lines.append("\t\tflags interval")
    if s.elements:
        items = [" . ".join(_interval(i, k) for i, k in zip(e, s.key, strict=True)) for e in s.elements]
        lines.append("\t\telements = { " + ",\n\t\t\t     ".join(items) + " }")
    lines.append("\t}")
    return lines


def render(ruleset: PodRuleset) -> str:
    """The table as one ``nft -f`` document, preceded by a comment with the content hash."""
    table = ruleset.table
    lines = [f"# trinet content-hash {ruleset.content_hash()}", f"table {table.family} {table.name} {{"]
    for s in table.sets:
        lines += _set(s)
    for m in table.maps:
        lines += [f"\tmap {m.name} {{", "\t\ttype ifname : verdict"]
        if m.entries:
            lines.append("\t\telements = { " + ", ".join(f'"{i}" : jump {c}' for i, c in m.entries) + " }")
        lines.append("\t}")
    for chain in table.chains:
        lines.append(f"\tchain {chain.name} {{")
        if chain.hook is not None:
            lines.append(f"\t\ttype filter hook {chain.hook} priority {chain.priority}; policy accept;")
        lines += [f"\t\t{render_rule(r)}" for r in chain.rules]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"
