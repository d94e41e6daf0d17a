"""The compiled ruleset of one pod: a thin, immutable model that maps one-to-one onto nftables objects.

Every type is a frozen msgspec Struct (hashable, comparable, cheaply serialisable), so a ``PodRuleset`` can be
hashed for "unchanged pod costs no transaction" and diffed for set-element deltas. Each match corresponds to one
nftables expression group (see ``render.py`` for the text form):

=================  ==========================================================
``NfProto``        ``meta nfproto ipv4|ipv6``
``L4Proto``        ``meta l4proto tcp`` / ``meta l4proto { tcp, udp }``
``IfName``         ``iifname "net1"`` / ``oifname != { "a", "b" }``
``CtState``        ``ct state established,related``
``Addr``           ``ip saddr @set`` (hash or interval set) / ``ip6 daddr != { 2001:db8::/64, fd00::1 }``
``Port``           ``th dport { 80, 8000-8010 }``, listed ``tcp dport ...`` after ``L4Proto`` (which it needs)
``AddrPort``       ``ip daddr . th dport @set`` (concatenation, ``ipv4_addr . inet_service``)
``IcmpType``       ``icmp type { 0, 8 }`` / ``icmpv6 type { 133, 134 }``
=================  ==========================================================

Verdicts are ``accept``, ``drop`` and ``<iifname|oifname> vmap @<map>`` (whose entries ``jump`` to chains); a
rule may count the packets that reach its verdict (``counter``).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from trinet.policy.elements import Elements
from trinet.policy.ipblock import Interval

__all__ = [
    "ICMPV6_TYPES",
    "ICMP_TYPES",
    "Accept",
    "Addr",
    "AddrField",
    "AddrPort",
    "Chain",
    "CtState",
    "Drop",
    "Family",
    "IcmpType",
    "IfName",
    "KeyType",
    "L4Proto",
    "Match",
    "NfProto",
    "PodRuleset",
    "Port",
    "Rule",
    "Set",
    "Table",
    "Verdict",
    "VerdictMap",
    "Vmap",
]

ICMP_TYPES = {  # nft's names of ICMP types
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5, "echo-request": 8,
    "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11, "parameter-problem": 12,
    "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
    "address-mask-request": 17, "address-mask-reply": 18,
}  # fmt: skip
ICMPV6_TYPES = {  # nft's names of ICMPv6 types
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
    "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
    "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137, "router-renumbering": 138,
    "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142, "mld2-listener-report": 143,
}  # fmt: skip
Family = Literal[4, 6]
AddrField = Literal["saddr", "daddr"]
PortField = Literal["sport", "dport"]
IfField = Literal["iifname", "oifname"]
KeyType = Literal["ipv4_addr", "ipv6_addr", "inet_service"]


class _V(msgspec.Struct, frozen=True, array_like=True, tag=True, cache_hash=True, gc=False):
    """Base of all model values: immutable, hashable; tagged so the encoded form is unambiguous. The hash is
    computed once per value: ``compile`` shares a chain and its sets between the pods that have the same one, and
    every memo look-up of a shared value then costs no more than an identity check.

    Not tracked by the cyclic garbage collector (``gc=False``): a value holds only other values, tuples, numbers,
    strings and ``Elements`` (tuples of numbers), never anything that could lead back to it, so it cannot be part
    of a reference cycle, and compiling a node's pods leaves tens of thousands of them alive, which the collector
    would otherwise traverse again and again (a fifth of a start-up's time, ``bench_policy_compile.py --split``).
    msgspec does not allow weak references to such values: the memos of ``to_netlink`` hold them and sweep."""


class NfProto(_V, frozen=True):
    family: Family


class L4Proto(_V, frozen=True):
    protocols: tuple[int, ...]  # IANA numbers: 1 icmp, 6 tcp, 17 udp, 58 ipv6-icmp, 132 sctp
    negate: bool = False


class IfName(_V, frozen=True):
    field: IfField
    names: tuple[str, ...]
    negate: bool = False


class CtState(_V, frozen=True):
    states: tuple[str, ...]  # subset of new, established, related, invalid, untracked


class Addr(_V, frozen=True):
    """Address match against a named set (``set_name``) or anonymous ``elements``."""

    family: Family
    field: AddrField
    set_name: str | None = None
    elements: tuple[Interval, ...] = ()
    negate: bool = False


class Port(_V, frozen=True):
    """Port match against anonymous ``elements`` (ranges)."""

    field: PortField
    elements: tuple[Interval, ...] = ()
    negate: bool = False


class AddrPort(_V, frozen=True):
    family: Family
    addr_field: AddrField
    port_field: PortField
    set_name: str


class IcmpType(_V, frozen=True):
    family: Family
    types: tuple[int, ...]


Match = NfProto | L4Proto | IfName | CtState | Addr | Port | AddrPort | IcmpType


class Accept(_V, frozen=True):
    pass


class Drop(_V, frozen=True):
    pass


class Vmap(_V, frozen=True):
    """``<field> vmap @<map_name>``: look the interface up in a verdict map; no entry means continue."""

    field: IfField
    map_name: str


Verdict = Accept | Drop | Vmap


class Rule(_V, frozen=True):
    """``<matches> [counter] <verdict> [comment "..."]``; ``counter`` counts the packets that reach the verdict."""

    matches: tuple[Match, ...]
    verdict: Verdict
    comment: str | None = None
    counter: bool = False


class Set(_V, frozen=True):
    """A named set. ``key`` has one type, or several for a concatenation; each element holds one interval per key
    part (single values are ``(v, v)``). Elements are canonical: sorted, and merged when ``interval``."""

    name: str
    key: tuple[KeyType, ...]
    interval: bool
    elements: tuple[tuple[Interval, ...], ...] | Elements[tuple[Interval, ...]] = ()  # chunked: selector peers


class VerdictMap(_V, frozen=True):
    """``map <name> { type ifname : verdict; }`` with ``jump <chain>`` entries, sorted by interface name."""

    name: str
    entries: tuple[tuple[str, str], ...]


class Chain(_V, frozen=True):
    """A chain; base chains have ``hook`` (input/output) at priority filter (0), policy accept."""

    name: str
    rules: tuple[Rule, ...]
    hook: Literal["input", "output"] | None = None
    priority: int = 0


class Table(_V, frozen=True):
    name: str
    sets: tuple[Set, ...] = ()
    maps: tuple[VerdictMap, ...] = ()
    chains: tuple[Chain, ...] = ()
    family: Literal["inet"] = "inet"


class PodRuleset(_V, frozen=True):
    """The complete desired ruleset of one pod. A table with no chains means: nothing to enforce (no table)."""

    table: Table

    @property
    def enforces(self) -> bool:
        return bool(self.table.chains)

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON encoding (IPv6 integers exceed msgpack): equal rulesets, equal hashes."""
        return hashlib.sha256(msgspec.json.encode(self, enc_hook=_encode_elements)).hexdigest()


def _encode_elements(value: object) -> tuple[tuple[Interval, ...], ...]:
    """Chunked elements encode as the tuple they stand for, so equal rulesets have equal content hashes."""
    if isinstance(value, Elements):
        return tuple(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")
