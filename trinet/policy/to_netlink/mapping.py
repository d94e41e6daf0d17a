"""Map a ``PodRuleset`` one-to-one onto the ``netlink_nft`` model, ready for ``replace_contents`` (one transaction).

Every policy value has exactly one netlink counterpart (see ``ruleset.py``); the guards nft would add (``meta
nfproto`` before ``ip saddr``, ``meta l4proto`` before ``icmp type``) are inserted by ``netlink_nft.rule``. Ports
use the transport-header field (``th dport``) because our rules always match ``meta l4proto`` first.

The same policy on the same interface gives equal rules and sets in many pods, so mapped values are memoised. Each
memo is keyed *weakly* by the policy value: an entry lives only while some ruleset holding an equal value is alive
(the daemon keeps the rulesets it installed), so the memos are bounded by what is installed now, never by history.
Mapped values are shared between pods, so netlink_nft sees the same ``Rule`` and ``Set`` objects again and again.
The memos are plain dictionaries: call from one thread (the daemon maps on its trio thread).
"""

from __future__ import annotations

import ipaddress
import itertools
import sys
import weakref
from typing import Generic, Literal, TypeVar, assert_never

import netlink_nft as nl
from trinet.policy import ruleset as pm
from trinet.policy.ipblock import Interval, to_prefixes
from trinet.policy.to_netlink.generations import suffix

__all__ = ["TH_DPORT", "TH_SPORT", "ct_state", "elements", "memo_entries", "set_definition", "to_netlink"]

TH_SPORT = nl.Field("th sport", nl.INET_SERVICE, nl.Payload(nl.PayloadBase.TRANSPORT, 0, nl.INET_SERVICE.length))
TH_DPORT = nl.Field("th dport", nl.INET_SERVICE, nl.Payload(nl.PayloadBase.TRANSPORT, 2, nl.INET_SERVICE.length))
_KEY_TYPES = {"ipv4_addr": nl.IPV4_ADDR, "ipv6_addr": nl.IPV6_ADDR, "inet_service": nl.INET_SERVICE}
_CT = {
    "new": nl.CtState.NEW,
    "established": nl.CtState.ESTABLISHED,
    "related": nl.CtState.RELATED,
    "invalid": nl.CtState.INVALID,
    "untracked": nl.CtState.UNTRACKED,
}
_BITS = {4: 32, 6: 128}
_HOOKS = {"input": nl.Hook.INPUT, "output": nl.Hook.OUTPUT}

K = TypeVar("K")
V = TypeVar("V")
Place = tuple[str, ...]


class _WeakMemo(Generic[K, V]):
    """Mapped values by (policy value, place): an entry lives only while a policy value equal to its key does.

    What ``weakref.WeakKeyDictionary`` does, without its Python-level ``get`` on the hot path (a pod's mapping
    makes a few dozen lookups)."""

    __slots__ = ("_data", "_remove")

    def __init__(self) -> None:
        data: dict[weakref.ref[K], dict[Place, V]] = {}
        self._data = data
        self._remove = lambda ref: data.pop(ref, None)  # the key died: nothing can look its entry up any more

    def get(self, key: K, place: Place) -> V | None:
        by_place = self._data.get(weakref.ref(key))
        return None if by_place is None else by_place.get(place)

    def put(self, key: K, place: Place, value: V) -> V:
        ref = weakref.ref(key, self._remove)
        by_place = self._data.get(ref)
        if by_place is None:
            by_place = self._data[ref] = {}
        by_place[place] = value
        return value

    def __len__(self) -> int:
        return len(self._data)


_MATCHES: _WeakMemo[pm.Match, nl.Match] = _WeakMemo()
_RULES: _WeakMemo[pm.Rule, nl.Rule] = _WeakMemo()
_CHAINS: _WeakMemo[pm.Chain, tuple[nl.Chain, tuple[nl.Rule, ...]]] = _WeakMemo()
_SETS: _WeakMemo[pm.Set, nl.Set] = _WeakMemo()
_MAPS: _WeakMemo[pm.VerdictMap, nl.Set] = _WeakMemo()
_TABLES: dict[str, nl.Table] = {}  # one object per table name: rulesets check their objects' table by identity


def memo_entries() -> int:
    """The number of policy values the memos hold (they hold one entry per live value)."""
    return sum(len(m) for m in (_MATCHES, _RULES, _CHAINS, _SETS, _MAPS))


def _network(family: int, address: int, prefixlen: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The prefix in its own family (``ip_network((0, 16))`` would be IPv4 whatever the family)."""
    if family == 4:
        return ipaddress.IPv4Network((address, prefixlen))
    return ipaddress.IPv6Network((address, prefixlen))


def _address_match(field: nl.Field, family: int, intervals: tuple[Interval, ...], negate: bool) -> nl.Match:
    if len(intervals) == 1:
        lo, hi = intervals[0]
        prefixes = to_prefixes((lo, hi), _BITS[family])
        if len(prefixes) == 1:
            return nl.eq(field, _network(family, *prefixes[0]), negate=negate)
        return nl.between(field, lo, hi, negate=negate)
    return nl.in_set(field, [nl.SetElement.interval(lo, hi) for lo, hi in intervals], negate=negate)


def _values_match(field: nl.Field, intervals: tuple[Interval, ...], negate: bool) -> nl.Match:
    if len(intervals) == 1:
        lo, hi = intervals[0]
        return nl.eq(field, lo, negate=negate) if lo == hi else nl.between(field, lo, hi, negate=negate)
    return nl.in_set(field, [nl.SetElement.interval(lo, hi) for lo, hi in intervals], negate=negate)


def ct_state(states: tuple[str, ...], byteorder: Literal["little", "big"] = sys.byteorder) -> nl.Match:
    """``ct state a,b``: the state bits are a host-order u32 in the register, so the mask is in host order too
    (``netlink_nft.ct_state`` writes it little-endian, which is wrong on s390x)."""
    bits = 0
    for state in states:
        bits |= _CT[state]
    zero = bytes(4)
    return nl.Match((nl.Ct(nl.CtKey.STATE), nl.Bitwise(bits.to_bytes(4, byteorder), zero), nl.Cmp(nl.CmpOp.NEQ, zero)))


def _match(match: pm.Match, end: str) -> nl.Match:
    """The netlink match of ``match``, named sets under the generation suffix ``end``."""
    match match:
        case pm.NfProto(family=family):  # satisfies the nfproto guard of later address matches, as in nft
            provides = nl.Guard(nl.MetaKey.NFPROTO, nl.Family.IP if family == 4 else nl.Family.IP6)
            return nl.Match(nl.nfproto(family).exprs, provides=provides)
        case pm.L4Proto(protocols=protocols, negate=negate):
            if len(protocols) == 1:
                return nl.eq(nl.META_L4PROTO, protocols[0], negate=negate)
            return nl.in_set(nl.META_L4PROTO, protocols, negate=negate)
        case pm.IfName(field=field, names=names, negate=negate):
            loader = nl.IIFNAME if field == "iifname" else nl.OIFNAME
            if len(names) == 1:
                return nl.eq(loader, names[0], negate=negate)
            return nl.in_set(loader, names, negate=negate)
        case pm.CtState(states=states):
            return ct_state(states)
        case pm.Addr(family=family, field=field, set_name=set_name, elements=intervals, negate=negate):
            loader = (nl.SADDR if field == "saddr" else nl.DADDR)[family]
            if set_name is not None:
                return nl.in_set(loader, set_name + end, negate=negate)
            return _address_match(loader, family, intervals, negate)
        case pm.Port(field=field, elements=intervals, negate=negate):
            return _values_match(TH_SPORT if field == "sport" else TH_DPORT, intervals, negate)
        case pm.AddrPort(family=family, addr_field=addr_field, port_field=port_field, set_name=set_name):
            addr = (nl.SADDR if addr_field == "saddr" else nl.DADDR)[family]
            port = TH_SPORT if port_field == "sport" else TH_DPORT
            return nl.in_set((addr, port), set_name + end)
        case pm.IcmpType(family=family, types=types):
            loader = nl.ICMP_TYPE_FIELD if family == 4 else nl.ICMPV6_TYPE_FIELD
            return nl.eq(loader, types[0]) if len(types) == 1 else nl.in_set(loader, types)
        case _:
            assert_never(match)


def _verdict(verdict: pm.Verdict) -> nl.Verdict | nl.Match:
    match verdict:
        case pm.Accept():
            return nl.ACCEPT
        case pm.Drop():
            return nl.DROP
        case pm.Vmap(field=field, map_name=map_name):
            return nl.vmap(nl.IIFNAME if field == "iifname" else nl.OIFNAME, map_name)
        case _:
            assert_never(verdict)


def _cached_match(match: pm.Match, end: str) -> nl.Match:
    place = (end,)
    found = _MATCHES.get(match, place)
    return _MATCHES.put(match, place, _match(match, end)) if found is None else found


def _rule(table: nl.Table, chain: str, rule: pm.Rule, end: str) -> nl.Rule:
    place = (table.name, chain, end)
    found = _RULES.get(rule, place)
    if found is None:
        counter = (nl.Counter(),) if rule.counter else ()
        parts = (*(_cached_match(m, end) for m in rule.matches), *counter, _verdict(rule.verdict))
        found = _RULES.put(rule, place, nl.rule(table, chain, *parts, comment=rule.comment))
    return found


def _chain(table: nl.Table, chain: pm.Chain, end: str) -> tuple[nl.Chain, tuple[nl.Rule, ...]]:
    """The chain and its rules: one lookup per chain (pods with the same policies have equal chains), else one per
    rule."""
    place = (table.name, end)
    found = _CHAINS.get(chain, place)
    if found is None:
        hook = _HOOKS[chain.hook] if chain.hook else None
        made = nl.Chain(table, chain.name, hook, chain.priority, nl.Policy.ACCEPT)
        found = _CHAINS.put(chain, place, (made, tuple(_rule(table, chain.name, r, end) for r in chain.rules)))
    return found


def elements(s: pm.Set, items: tuple[tuple[Interval, ...], ...]) -> tuple[nl.SetElement, ...]:
    """Netlink elements of ``items`` (elements of ``s``) with the key types' canonical values, in the same order:
    netlink_nft's canonical form when ``items`` are canonical (``_is_canonical``)."""
    makes = [_KEY_TYPES[k].from_int for k in s.key]
    if len(makes) == 1:
        make = makes[0]
        return tuple(nl.SetElement(make(lo), None if lo == hi else make(hi)) for ((lo, hi),) in items)
    # concatenations hold single values
    return tuple(nl.SetElement(tuple(m(lo) for m, (lo, _) in zip(makes, e, strict=True))) for e in items)


def set_definition(table: nl.Table, s: pm.Set, generation: int | None) -> nl.Set:
    """The netlink set of ``s`` without its elements: enough to add or delete some (O(change), not O(set))."""
    key = tuple(_KEY_TYPES[k] for k in s.key)
    return nl.Set(table, s.name + suffix(generation), key, interval=s.interval)


def _is_canonical(s: pm.Set) -> bool:
    """Whether the elements are as ``compile`` makes them (and ``netlink_nft`` keeps them): sorted, distinct, and
    in interval sets neither overlapping nor touching (merged). One pass of integer comparisons."""
    pairs = itertools.pairwise(s.elements)
    if len(s.key) > 1:
        return not s.interval and all(a < b for a, b in pairs)
    if s.interval:
        ordered = all(prev_hi + 1 < lo for ((_, prev_hi),), ((lo, _),) in pairs)
        return ordered and all(lo <= hi for ((lo, hi),) in s.elements)
    return all(a < b for ((a, _),), ((b, _),) in pairs) and all(lo == hi for ((lo, hi),) in s.elements)


def _set(table: nl.Table, s: pm.Set, end: str) -> nl.Set:
    place = (table.name, end)
    found = _SETS.get(s, place)
    if found is None:
        key = tuple(_KEY_TYPES[k] for k in s.key)
        items = elements(s, s.elements)
        if _is_canonical(s):  # always, from compile: no second normalisation
            made = nl.Set.of_canonical(table, s.name + end, key, s.interval, items)
        else:
            made = nl.Set(table, s.name + end, key, interval=s.interval, elements=items)
        found = _SETS.put(s, place, made)
    return found


def _map(table: nl.Table, m: pm.VerdictMap) -> nl.Set:
    place = (table.name,)
    found = _MAPS.get(m, place)
    if found is None:
        entries = tuple(nl.SetElement(ifname, data=nl.jump(chain)) for ifname, chain in m.entries)
        found = _MAPS.put(m, place, nl.Set(table, m.name, (nl.IFNAME,), data=nl.VERDICT, elements=entries))
    return found


def _table(name: str) -> nl.Table:
    found = _TABLES.get(name)
    if found is None:
        found = _TABLES[name] = nl.Table(nl.Family.INET, name)
    return found


def to_netlink(ruleset: pm.PodRuleset, generation: int | None = None) -> nl.Ruleset:
    """The netlink_nft ``Ruleset`` of a compiled pod; with ``generation``, its named sets are called
    ``<name>.g<generation>`` (the same as ``to_netlink(versioned(ruleset, generation))``, without the copy)."""
    src = ruleset.table
    end = suffix(generation)
    table = _table(src.name)
    mapped = [_chain(table, c, end) for c in src.chains]
    chains = tuple(chain for chain, _ in mapped)
    sets = (*(_set(table, s, end) for s in src.sets), *(_map(table, m) for m in src.maps))
    rules = tuple(r for _, chain_rules in mapped for r in chain_rules)
    return nl.Ruleset(table, chains, sets, rules)
