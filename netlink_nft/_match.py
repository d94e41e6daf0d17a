"""Matchers that build what `nft` itself builds, so `nft list ruleset` shows rules as an operator writes them.

A `Field` is something a rule loads into a register (`ip saddr`, `tcp dport`, `iifname`, ...). Matching it needs
guards, exactly as nft adds them: transport fields are guarded by `meta l4proto`, and in `inet` tables network
fields by `meta nfproto`. `rule()` emits each guard once, before the first match that needs it, and skips
`meta nfproto` outside `inet` tables.

    rule(table, "input", ip_saddr("10.0.0.0/8"), tcp_dport(between=(1000, 2000)), ACCEPT)
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from netlink_nft._const import NFT_REG32_00, NFT_REG_1, NFT_REG_VERDICT
from netlink_nft._datatypes import (
    ICMP_TYPE,
    ICMPV6_TYPE,
    IFNAME,
    INET_PROTO,
    INET_SERVICE,
    IPV4_ADDR,
    IPV6_ADDR,
    NFPROTO,
    DataType,
    Value,
    padded,
)
from netlink_nft._elements import AnonymousSet, SetElement
from netlink_nft._errors import InvalidValue
from netlink_nft._expr import (
    Bitwise,
    Cmp,
    CmpOp,
    Ct,
    CtKey,
    CtState,
    Expr,
    Immediate,
    Lookup,
    Meta,
    MetaKey,
    Payload,
    PayloadBase,
    Range,
    RangeOp,
)
from netlink_nft._model import Family, Rule, Table
from netlink_nft._verdict import ACCEPT, CONTINUE, DROP, RETURN, Verdict

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}


@dataclass(frozen=True)
class Guard:
    """`meta nfproto X` or `meta l4proto X`: a precondition nft puts before a header match."""

    key: MetaKey
    value: int

    def exprs(self) -> tuple[Expr, ...]:
        cached: tuple[Expr, ...] | None = self.__dict__.get("_exprs")  # frozen value: work it out once
        if cached is None:
            cached = self.__dict__["_exprs"] = _guard_exprs(self.key, self.value)
        return cached


@functools.cache
def _guard_exprs(key: MetaKey, value: int) -> tuple[Expr, ...]:
    return Meta(key), Cmp(CmpOp.EQ, bytes((value,)))


NFPROTO_IPV4 = Guard(MetaKey.NFPROTO, Family.IP)
NFPROTO_IPV6 = Guard(MetaKey.NFPROTO, Family.IP6)


def _l4(proto: str) -> Guard:
    return Guard(MetaKey.L4PROTO, PROTOCOLS[proto])


@dataclass(frozen=True)
class Field:
    """A value a rule can load into a register, with its data type and the guards nft puts before it."""

    name: str
    dtype: DataType
    loader: Payload | Meta
    guards: tuple[Guard, ...] = ()

    def __hash__(self) -> int:  # fields key the matchers' caches: hash once (the value is frozen)
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.name, self.dtype, self.loader, self.guards))
            object.__setattr__(self, "_hash", cached)
        return cached

    def load(self, reg: int = NFT_REG_1) -> Expr:
        return self.loader if reg == self.loader.dreg else dataclasses.replace(self.loader, dreg=reg)


def _payload(name: str, dtype: DataType, base: PayloadBase, offset: int, *guards: Guard) -> Field:
    return Field(name, dtype, Payload(base, offset, dtype.length), guards)


IP_SADDR = _payload("ip saddr", IPV4_ADDR, PayloadBase.NETWORK, 12, NFPROTO_IPV4)
IP_DADDR = _payload("ip daddr", IPV4_ADDR, PayloadBase.NETWORK, 16, NFPROTO_IPV4)
IP6_SADDR = _payload("ip6 saddr", IPV6_ADDR, PayloadBase.NETWORK, 8, NFPROTO_IPV6)
IP6_DADDR = _payload("ip6 daddr", IPV6_ADDR, PayloadBase.NETWORK, 24, NFPROTO_IPV6)
TCP_SPORT = _payload("tcp sport", INET_SERVICE, PayloadBase.TRANSPORT, 0, _l4("tcp"))
TCP_DPORT = _payload("tcp dport", INET_SERVICE, PayloadBase.TRANSPORT, 2, _l4("tcp"))
UDP_SPORT = _payload("udp sport", INET_SERVICE, PayloadBase.TRANSPORT, 0, _l4("udp"))
UDP_DPORT = _payload("udp dport", INET_SERVICE, PayloadBase.TRANSPORT, 2, _l4("udp"))
SCTP_SPORT = _payload("sctp sport", INET_SERVICE, PayloadBase.TRANSPORT, 0, _l4("sctp"))
SCTP_DPORT = _payload("sctp dport", INET_SERVICE, PayloadBase.TRANSPORT, 2, _l4("sctp"))
ICMP_TYPE_FIELD = _payload("icmp type", ICMP_TYPE, PayloadBase.TRANSPORT, 0, NFPROTO_IPV4, _l4("icmp"))
ICMPV6_TYPE_FIELD = _payload("icmpv6 type", ICMPV6_TYPE, PayloadBase.TRANSPORT, 0, NFPROTO_IPV6, _l4("icmpv6"))
META_L4PROTO = Field("meta l4proto", INET_PROTO, Meta(MetaKey.L4PROTO))
META_NFPROTO = Field("meta nfproto", NFPROTO, Meta(MetaKey.NFPROTO))
IIFNAME = Field("iifname", IFNAME, Meta(MetaKey.IIFNAME))
OIFNAME = Field("oifname", IFNAME, Meta(MetaKey.OIFNAME))

SADDR = {4: IP_SADDR, 6: IP6_SADDR}
DADDR = {4: IP_DADDR, 6: IP6_DADDR}
DPORT = {"tcp": TCP_DPORT, "udp": UDP_DPORT, "sctp": SCTP_DPORT}
SPORT = {"tcp": TCP_SPORT, "udp": UDP_SPORT, "sctp": SCTP_SPORT}


@dataclass(frozen=True)
class Match:
    """Expressions that test something, the guards they need, and the guard they establish themselves."""

    exprs: tuple[Expr, ...]
    guards: tuple[Guard, ...] = ()
    provides: Guard | None = None


Part = Match | Expr | Verdict


def rule(table: Table, chain: str, *parts: Part, comment: str | None = None) -> Rule:
    """A rule from matches, raw expressions and a final verdict, with nft's guards inserted once each."""
    exprs: list[Expr] = []
    satisfied: list[Guard] = []  # a few, mostly the module's own objects: `in` tries identity before ==
    inet = table.family == Family.INET
    for part in parts:
        if isinstance(part, Match):
            if part.guards:  # many matches need none (ct state, iifname, named lookups of interface maps)
                for guard in part.guards:
                    if guard in satisfied or (not inet and guard.key == MetaKey.NFPROTO):
                        continue
                    exprs += guard.exprs()
                    satisfied.append(guard)
            exprs += part.exprs
            if part.provides is not None:
                satisfied.append(part.provides)
        elif isinstance(part, Verdict):
            exprs.append(_CONSTANT_IMMEDIATES.get(id(part)) or _immediate(part))
        else:
            exprs.append(part)
    return Rule(table, chain, tuple(exprs), comment)


@functools.lru_cache(maxsize=1024)  # the same few verdicts end every rule (not kept on the verdict: a cycle)
def _immediate(verdict: Verdict) -> Immediate:
    return Immediate(verdict)


# The module's verdict constants live as long as the process, so their ids are never reused: found by id, without
# hashing the verdict (a Python-level dataclass hash) for the cache.
_CONSTANT_IMMEDIATES = {id(v): _immediate(v) for v in (ACCEPT, DROP, RETURN, CONTINUE)}


# --- generic matchers ----------------------------------------------------------------------------------------------


def eq(field: Field, value: object, *, negate: bool = False) -> Match:
    """`field == value` (`!=` with `negate`). Addresses may be prefixes; interface names may end in `*`."""
    op = CmpOp.NEQ if negate else CmpOp.EQ
    if field.dtype in (IPV4_ADDR, IPV6_ADDR) and isinstance(value, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
        packed, prefixlen = _parse_prefix(value)
        if prefixlen != 8 * len(packed):
            return _prefix(field, packed, prefixlen, op)
        data = packed
    elif field.dtype is IFNAME and isinstance(value, str) and value.endswith("*"):
        data = value[:-1].encode()
    else:
        data = field.dtype.to_bytes(field.dtype.normalise(value))
    provides = Guard(MetaKey.L4PROTO, data[0]) if field is META_L4PROTO and not negate else None
    return Match((field.load(), Cmp(op, data)), field.guards, provides)


def _parse_prefix(value: str | ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, int]:
    """(network address bytes with host bits cleared, prefix length) of "addr[/len]" or a network object."""
    if not isinstance(value, str):
        return value.network_address.packed, value.prefixlen
    address, _, length = value.partition("/")
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    except OSError:
        raise InvalidValue(f"{value!r} is not an address or prefix") from None
    bits = 8 * len(packed)
    prefixlen = int(length) if length else bits
    if not 0 <= prefixlen <= bits:
        raise InvalidValue(f"{value!r}: bad prefix length")
    mask = ((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1)
    return (int.from_bytes(packed, "big") & mask).to_bytes(len(packed), "big"), prefixlen


@functools.cache
def _shortened(load: Payload, length: int) -> Payload:
    return dataclasses.replace(load, length=length)


def _prefix(field: Field, network: bytes, prefixlen: int, op: CmpOp) -> Match:
    """nft's prefix match: a shorter load for byte-aligned prefixes, else a full load and a bitwise mask."""
    assert isinstance(field.loader, Payload)
    if prefixlen % 8 == 0 and prefixlen > 0:
        length = prefixlen // 8
        return Match((_shortened(field.loader, length), Cmp(op, network[:length])), field.guards)
    bits = 8 * len(network)
    mask = (((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1)).to_bytes(len(network), "big")
    return Match((field.load(), Bitwise(mask, bytes(len(mask))), Cmp(op, network)), field.guards)


def between(field: Field, low: Value, high: Value, *, negate: bool = False) -> Match:
    """`field low-high` (inclusive), as nft 1.0.6 encodes it: `cmp gte` + `cmp lte`, or `range neq` negated."""
    lo = field.dtype.to_bytes(field.dtype.normalise(low))
    hi = field.dtype.to_bytes(field.dtype.normalise(high))
    if negate:
        return Match((field.load(), Range(RangeOp.NEQ, lo, hi)), field.guards)
    return Match((field.load(), Cmp(CmpOp.GTE, lo), Cmp(CmpOp.LTE, hi)), field.guards)


@functools.lru_cache(maxsize=1024)  # a handful of field combinations, in every rule that matches on them
def _loads(fields: tuple[Field, ...]) -> tuple[tuple[Expr, ...], tuple[Guard, ...]]:
    """Load fields into consecutive registers the way nft lays out a concatenation.

    Fields start at 32-bit word offsets from reg 1; a word that begins a 128-bit register is named by its 128-bit
    number (NFT_REG_1..4), any other by its 32-bit one (NFT_REG32_xx), as nft sends and the kernel dumps them.
    """
    exprs: list[Expr] = []
    guards: list[Guard] = []
    offset = 0
    for field in fields:
        word = offset // 4
        exprs.append(field.load(NFT_REG_1 + word // 4 if word % 4 == 0 else NFT_REG32_00 + word))
        offset += padded(field.dtype.length)
        guards.extend(g for g in field.guards if g not in guards)
    nfproto = [g for g in guards if g.key == MetaKey.NFPROTO]
    return tuple(exprs), tuple(nfproto + [g for g in guards if g.key != MetaKey.NFPROTO])


_PLAIN = frozenset((int, str))  # the value types whose cache hits are exactly the same values


def anonymous_set(fields: tuple[Field, ...], values: Iterable[SetElement | Value | tuple[Value, ...]]) -> AnonymousSet:
    values = tuple(values)
    if _PLAIN.issuperset(map(type, values)):  # exact types: equal keys are the same values
        return _constant_set(fields, values)
    return _anonymous_set(fields, values)


def _anonymous_set(
    fields: tuple[Field, ...], values: tuple[SetElement | Value | tuple[Value, ...], ...]
) -> AnonymousSet:
    elements = [v if isinstance(v, SetElement) else SetElement(v) for v in values]
    interval = any(e.end is not None for e in elements)
    return AnonymousSet(tuple(f.dtype for f in fields), tuple(elements), interval)


# Lists of protocols, ports and ICMP types recur in every pod's rules: one set each (which also keeps its encoding,
# see `_plans`). Only ints and strings: with those a cache hit is exactly the same value (not so 1 == 1.0 == True).
_constant_set = functools.lru_cache(maxsize=512)(_anonymous_set)


def in_set(
    fields: Field | tuple[Field, ...],
    set_: str | AnonymousSet | Iterable[SetElement | Value | tuple[Value, ...]],
    *,
    negate: bool = False,
) -> Match:
    """`field @set` (or `field . field @set` for a tuple of fields); an iterable of values makes an anonymous set."""
    fields = fields if isinstance(fields, tuple) else (fields,)
    if type(set_) is str:
        return _named_lookup(fields, set_, negate, None)
    if not isinstance(set_, AnonymousSet):
        values = tuple(set_)  # type: ignore[arg-type]
        if _PLAIN.issuperset(map(type, values)):  # as `anonymous_set`: one Match per list
            return _constant_lookup(fields, values, negate)
        set_ = _anonymous_set(fields, values)
    return _lookup(fields, set_, negate, None)


@functools.lru_cache(maxsize=512)
def _constant_lookup(fields: tuple[Field, ...], values: tuple[int | str, ...], negate: bool) -> Match:
    """The match of a list of protocols, ports or ICMP types: the same few lists recur in every pod's rules (the
    rules that share it bind its set to an id each, `_plans`)."""
    return _lookup(fields, _constant_set(fields, values), negate, None)


def vmap(fields: Field | tuple[Field, ...], map_: str | AnonymousSet) -> Match:
    """`field vmap @map`: jump/accept/drop by the verdict stored for the key (its own verdict, no other needed)."""
    fields = fields if isinstance(fields, tuple) else (fields,)
    if type(map_) is str:
        return _named_lookup(fields, map_, False, NFT_REG_VERDICT)
    return _lookup(fields, map_, False, NFT_REG_VERDICT)


def _lookup(fields: tuple[Field, ...], set_: str | AnonymousSet, negate: bool, dreg: int | None) -> Match:
    exprs, guards = _loads(fields)
    return Match((*exprs, Lookup(set_, dreg=dreg, invert=negate)), guards)


# The same named sets are matched in every pod's rules: one Match each.
_named_lookup = functools.lru_cache(maxsize=4096)(_lookup)


# --- the matchers a firewall writes --------------------------------------------------------------------------------


def ct_state(*states: CtState) -> Match:
    """`ct state established,related`: any of the states."""
    bits = 0
    for state in states:
        bits |= int(state)  # plain ints: IntFlag's own `|` is Python code
    return _ct_state(bits)


@functools.lru_cache(maxsize=64)
def _ct_state(bits: int) -> Match:
    return Match((Ct(CtKey.STATE), Bitwise(bits.to_bytes(4, "little"), bytes(4)), Cmp(CmpOp.NEQ, bytes(4))))


def l4proto(proto: str) -> Match:
    """`meta l4proto tcp`."""
    return eq(META_L4PROTO, PROTOCOLS[proto])


def nfproto(version: int) -> Match:
    """`meta nfproto ipv4|ipv6`."""
    return eq(META_NFPROTO, Family.IP if version == 4 else Family.IP6)


def iifname(name: str) -> Match:
    return eq(IIFNAME, name)


def oifname(name: str) -> Match:
    return eq(OIFNAME, name)


def _addr_field(fields: dict[int, Field], value: str) -> Field:
    return fields[6 if ":" in value else 4]


def saddr(value: str, *, negate: bool = False) -> Match:
    """`ip saddr X` or `ip6 saddr X` according to the address (a prefix is fine)."""
    return eq(_addr_field(SADDR, value), value, negate=negate)


def daddr(value: str, *, negate: bool = False) -> Match:
    return eq(_addr_field(DADDR, value), value, negate=negate)


def dport(proto: str, port: int | tuple[int, int]) -> Match:
    """`tcp dport 80` or `tcp dport 1000-2000` (`port` a (first, last) tuple)."""
    return between(DPORT[proto], *port) if isinstance(port, tuple) else eq(DPORT[proto], port)


def sport(proto: str, port: int | tuple[int, int]) -> Match:
    return between(SPORT[proto], *port) if isinstance(port, tuple) else eq(SPORT[proto], port)


def icmp_type(value: int) -> Match:
    return eq(ICMP_TYPE_FIELD, value)


def icmpv6_type(value: int) -> Match:
    return eq(ICMPV6_TYPE_FIELD, value)
