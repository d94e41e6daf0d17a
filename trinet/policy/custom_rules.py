"""Operator rule files, compatible with the Go peers' four flags (custom v4/v6 ingress/egress rule files).

We parse a documented subset of the nft rule syntax ourselves, so a bad line is rejected with ``file:line: reason``
before anything is applied, and every accepted line maps onto the ruleset model (and so onto netlink). One rule per
line; blank lines and lines whose first non-blank character is ``#`` are skipped. A line is zero or more matches
followed by ``accept`` or ``drop``:

==============================================  ===============================================================
``ip saddr|daddr [!=] A``                       v4 files; A is an address, prefix, ``first-last`` range or
``ip6 saddr|daddr [!=] A``                      v6 files; ``{ A, A, ... }`` (anonymous set)
``tcp|udp|sctp sport|dport [!=] P``             P is a number, ``first-last`` or ``{ ... }`` of those
``meta l4proto [!=] L``                         L is tcp, udp, sctp, icmp, icmpv6 (ipv6-icmp) or a number, or a set
``icmp type T`` / ``icmpv6 type T``             v4 / v6 files; T is a name (echo-request, nd-neighbor-solicit...)
                                                or a number, or a set
``iifname|oifname [!=] "name"``                 or a set of quoted names
``ct state S[,S...]``                           new, established, related, invalid, untracked
==============================================  ===============================================================

Each rule of a v4 file gets ``meta nfproto ipv4`` prepended (``ipv6`` for v6 files), so the family of the file
means something in the ``inet`` table (unlike the Go peer, which concatenates both files unguarded).
"""

from __future__ import annotations

import ipaddress
import re

import msgspec

from trinet.policy.annotations import is_interface_name
from trinet.policy.compile import CustomRules
from trinet.policy.ipblock import Interval, merge, network_interval
from trinet.policy.ruleset import (
    ICMP_TYPES,
    ICMPV6_TYPES,
    Accept,
    Addr,
    AddrField,
    CtState,
    Drop,
    Family,
    IcmpType,
    IfField,
    IfName,
    L4Proto,
    Match,
    NfProto,
    Port,
    PortField,
    Rule,
)

__all__ = ["CustomRuleError", "CustomRuleFile", "build_custom_rules", "parse_custom_rules"]

_TOKEN = re.compile(r'"[^"]*"|[{},]|!=|==|[^\s{},"]+')
_L4 = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58}
_ADDR_FIELDS: dict[str, AddrField] = {"saddr": "saddr", "daddr": "daddr"}
_PORT_FIELDS: dict[str, PortField] = {"sport": "sport", "dport": "dport"}
_IF_FIELDS: dict[str, IfField] = {"iifname": "iifname", "oifname": "oifname"}
_CT_STATES = ("new", "established", "related", "invalid", "untracked")


class CustomRuleFile(msgspec.Struct, frozen=True):
    """A rule file's name (for messages) and content; the daemon reads the file, this package does no I/O."""

    name: str
    text: str


class CustomRuleError(ValueError):
    """Every problem of the rejected files, one ``file:line: reason`` per entry."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid custom rules:\n" + "\n".join(problems))
        self.problems = problems


class _Bad(Exception):
    pass


class _Line:
    def __init__(self, text: str, family: Family) -> None:
        self.tokens = _TOKEN.findall(text)
        self.pos = 0
        self.family = family

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, what: str) -> str:
        token = self.peek()
        if token is None:
            raise _Bad(f"expected {what}, found end of line")
        self.pos += 1
        return token

    def negation(self) -> bool:
        if self.peek() in ("!=", "=="):
            return self.take("operator") == "!="
        return False

    def values(self, what: str) -> list[str]:
        """One value, or ``{ v, v, ... }``."""
        if self.peek() != "{":
            return [self.take(what)]
        self.take("{")
        out = [self.take(what)]
        while (token := self.take("',' or '}'")) != "}":
            if token != ",":
                raise _Bad(f"expected ',' or '}}', found {token!r}")
            out.append(self.take(what))
        return out


def _address_interval(text: str, family: int) -> Interval:
    bad = _Bad(f"{text!r} is not an IPv{family} address, prefix or range")
    try:
        if "-" in text:
            first, last = (ipaddress.ip_address(t) for t in text.split("-", 1))
            interval = int(first), int(last)
            versions = {first.version, last.version}
        else:
            net = ipaddress.ip_network(text, strict=True)
            interval, versions = network_interval(net), {net.version}
    except ValueError:
        raise bad from None
    if versions != {family} or interval[0] > interval[1]:
        raise bad
    return interval


def _port_interval(text: str) -> Interval:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if not m:
        raise _Bad(f"{text!r} is not a port number or range (service names are not resolved)")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 0 <= lo <= hi <= 65535:
        raise _Bad(f"{text!r} is not a port number or range in 0-65535")
    return lo, hi


def _number(text: str, names: dict[str, int], what: str, limit: int) -> int:
    if text in names:
        return names[text]
    if text.isdigit() and int(text) <= limit:
        return int(text)
    raise _Bad(f"{text!r} is not a known {what}")


def _match(line: _Line, keyword: str) -> list[Match]:
    fam = line.family
    if keyword in ("ip", "ip6"):
        if keyword != ("ip" if fam == 4 else "ip6"):
            raise _Bad(f"'{keyword}' in an IPv{fam} rule file")
        token = line.take("saddr or daddr")
        addr_field = _ADDR_FIELDS.get(token)
        if addr_field is None:
            raise _Bad(f"expected saddr or daddr after {keyword}, found {token!r}")
        negate = line.negation()
        elements = merge(_address_interval(v, fam) for v in line.values("an address"))
        return [Addr(fam, addr_field, elements=elements, negate=negate)]
    if keyword in ("tcp", "udp", "sctp"):
        token = line.take("sport or dport")
        port_field = _PORT_FIELDS.get(token)
        if port_field is None:
            raise _Bad(f"expected sport or dport after {keyword}, found {token!r}")
        negate = line.negation()
        elements = merge(_port_interval(v) for v in line.values("a port"))
        return [L4Proto((_L4[keyword],)), Port(port_field, elements=elements, negate=negate)]
    if keyword == "meta":
        key = line.take("l4proto")
        if key != "l4proto":
            raise _Bad(f"only 'meta l4proto' is supported, found 'meta {key}'")
        negate = line.negation()
        protocols = sorted({_number(v, _L4, "protocol", 255) for v in line.values("a protocol")})
        return [L4Proto(tuple(protocols), negate)]
    if keyword in ("icmp", "icmpv6"):
        if keyword != ("icmp" if fam == 4 else "icmpv6"):
            raise _Bad(f"'{keyword}' in an IPv{fam} rule file")
        if (token := line.take("type")) != "type":
            raise _Bad(f"only '{keyword} type' is supported, found '{keyword} {token}'")
        if line.negation():
            raise _Bad(f"'{keyword} type !=' is not supported")
        names = ICMP_TYPES if fam == 4 else ICMPV6_TYPES
        types = sorted({_number(v, names, f"{keyword} type", 255) for v in line.values("a type")})
        return [IcmpType(fam, tuple(types))]
    if (if_field := _IF_FIELDS.get(keyword)) is not None:
        negate = line.negation()
        raw = line.values("a quoted interface name")
        if not all(len(v) >= 2 and v[0] == v[-1] == '"' for v in raw):
            raise _Bad(f"{keyword} needs quoted names, found {' '.join(raw)}")
        ifnames = sorted({v[1:-1] for v in raw})
        for name in ifnames:
            if "*" in name:
                raise _Bad(f"{keyword} wildcards are not supported, found {name!r}")
            if not is_interface_name(name):
                raise _Bad(f"{keyword} {name!r} is not a valid interface name (1-15 bytes, no '/', ':' or spaces)")
        return [IfName(if_field, tuple(ifnames), negate)]
    if keyword == "ct":
        if (token := line.take("state")) != "state":
            raise _Bad(f"only 'ct state' is supported, found 'ct {token}'")
        states = [line.take("a state")]
        while line.peek() == ",":
            line.take(",")
            states.append(line.take("a state"))
        if not all(s in _CT_STATES for s in states):
            raise _Bad(f"ct state must be a comma list of {', '.join(_CT_STATES)}")
        return [CtState(tuple(sorted(set(states), key=_CT_STATES.index)))]
    raise _Bad(f"unsupported expression {keyword!r}")


def _parse_line(text: str, family: Family) -> Rule:
    line = _Line(text, family)
    matches: list[Match] = [NfProto(family)]
    while (token := line.take("a match or a verdict")) not in ("accept", "drop"):
        matches.extend(_match(line, token))
    if line.peek() is not None:
        raise _Bad(f"unexpected {' '.join(line.tokens[line.pos :])!r} after the verdict")
    return Rule(tuple(matches), Accept() if token == "accept" else Drop(), "custom rule")


def parse_custom_rules(source: CustomRuleFile, family: Family) -> tuple[tuple[Rule, ...], list[str]]:
    """Rules of one file, and its problems as ``file:line: reason`` (any problem rejects the file)."""
    rules: list[Rule] = []
    problems: list[str] = []
    for number, text in enumerate(source.text.splitlines(), start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            rules.append(_parse_line(stripped, family))
        except _Bad as exc:
            problems.append(f"{source.name}:{number}: {exc}")
    return tuple(rules), problems


def build_custom_rules(
    *,
    v4_ingress: CustomRuleFile | None = None,
    v4_egress: CustomRuleFile | None = None,
    v6_ingress: CustomRuleFile | None = None,
    v6_egress: CustomRuleFile | None = None,
) -> CustomRules:
    """All four files, or ``CustomRuleError`` listing every problem of every file."""
    problems: list[str] = []
    parsed: dict[str, tuple[Rule, ...]] = {}
    files: tuple[tuple[str, CustomRuleFile | None, Family], ...] = (
        ("v4_ingress", v4_ingress, 4),
        ("v6_ingress", v6_ingress, 6),
        ("v4_egress", v4_egress, 4),
        ("v6_egress", v6_egress, 6),
    )
    for key, source, family in files:
        rules, errs = parse_custom_rules(source, family) if source else ((), [])
        parsed[key] = rules
        problems += errs
    if problems:
        raise CustomRuleError(problems)
    return CustomRules(
        ingress=parsed["v4_ingress"] + parsed["v6_ingress"], egress=parsed["v4_egress"] + parsed["v6_egress"]
    )
