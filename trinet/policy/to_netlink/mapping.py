"""Map a ``PodRuleset`` one-to-one onto the ``netlink_nft`` model, ready for ``replace_contents`` (one transaction).

Every policy value has exactly one netlink counterpart (see ``ruleset.py``); the guards nft would add (``meta
nfproto`` before ``ip saddr``, ``meta l4proto`` before ``icmp type``) are inserted by ``netlink_nft.rule``. Ports
use the transport-header field (``th dport``) because our rules always match ``meta l4proto`` first.

The same policy on the same interface gives equal rules and sets in many pods, so mapped values are memoised by
policy value. An entry lives while some ruleset holding its value is alive (the daemon keeps the rulesets it
installed): ``sweep`` drops the others, and runs whenever the memos have grown by half, so they are bounded by
what is installed now (about twice that at most), never by history. Mapped values are shared between pods, so
netlink_nft sees the same ``Rule`` and ``Set`` objects again and again. The memos are plain dictionaries: call
from one thread (the daemon maps on its trio thread).
"""

from __future__ import annotations

import ipaddress
import operator
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Generic, Literal, TypeVar, assert_never

import netlink_nft as nl
from trinet.policy import ruleset as pm
from trinet.policy.ipblock import Interval, to_prefixes
from trinet.policy.to_netlink import values
from trinet.policy.to_netlink.generations import suffix

__all__ = ["TH_DPORT", "TH_SPORT", "ct_state", "elements", "memo_entries", "set_definition", "sweep", "to_netlink"]

TH_SPORT = nl.Field("th sport", nl.INET_SERVICE, nl.Payload(nl.PayloadBase.TRANSPORT, 0, nl.INET_SERVICE.length))
TH_DPORT = nl.Field("th dport", nl.INET_SERVICE, nl.Payload(nl.PayloadBase.TRANSPORT, 2, nl.INET_SERVICE.length))
_KEY_TYPES = {"ipv4_addr": nl.IPV4_ADDR, "ipv6_addr": nl.IPV6_ADDR, "inet_service": nl.INET_SERVICE}
_NUMBERS = frozenset({"inet_service"})  # key types whose canonical value is the number itself
_KEYS: dict[tuple[pm.KeyType, ...], tuple[nl.DataType, ...]] = {}  # the netlink key of each key (a few)
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


class _Memo(Generic[K, V]):
    """Mapped values by place (table, chain, generation suffix: what the netlink value depends on beside the
    policy value) and policy value. A caller takes the entries of its place once (``at``), then looks values up
    in a plain dict and adds them with ``_put``.

    The memo holds its policy values (they cannot be referenced weakly: ``ruleset._V``); ``_sweep`` drops the
    entries whose value nothing outside the memos holds any more, and the places left empty."""

    __slots__ = ("_places",)

    def __init__(self) -> None:
        self._places: dict[Place, dict[K, V]] = {}

    def at(self, place: Place) -> dict[K, V]:
        found = self._places.get(place)
        if found is None:
            found = self._places[place] = {}
        return found

    def _sweep(self, unheld: int) -> None:
        places = self._places
        copies = Counter(id(key) for entries in places.values() for key in entries)  # one per place holding it
        for place, entries in list(places.items()):
            held = _holders(entries)
            for key in [k for k, n in zip(entries, held, strict=True) if n - copies[id(k)] < unheld]:
                del entries[key]
            if not entries:
                del places[place]

    def __len__(self) -> int:
        return sum(map(len, self._places.values()))


def _holders(keys: Iterable[object]) -> list[int]:
    """The reference count of each key, read the same way for every memo and for the probe in ``sweep``."""
    return [sys.getrefcount(key) for key in keys]


# What the memos hold is weighed in values: one per entry, plus one per element of a set (a set of 100,000 peers
# weighs as much as 100,000 rules: its elements and their wire form are most of what it costs to keep).
_SWEEP_FLOOR = 32_768  # the least weight added between two sweeps (a start-up of a 100-pod node adds a few thousand)


class _Growth:
    """Weight added to the memos since the last sweep (``added``), and how much makes the next one (``limit``: half
    of what the last sweep left, at least ``_SWEEP_FLOOR``)."""

    __slots__ = ("added", "limit")

    def __init__(self) -> None:
        self.added = 0
        self.limit = _SWEEP_FLOOR


_GROWTH = _Growth()


def _put(entries: dict[K, V], key: K, value: V, weight: int = 1) -> V:
    entries[key] = value
    _GROWTH.added += weight
    return value


_MATCHES: _Memo[pm.Match, nl.Match] = _Memo()
_RULES: _Memo[pm.Rule, nl.Rule] = _Memo()
_CHAINS: _Memo[pm.Chain, tuple[nl.Chain, tuple[nl.Rule, ...]]] = _Memo()
_SETS: _Memo[pm.Set, nl.Set] = _Memo()
_MAPS: _Memo[pm.VerdictMap, nl.Set] = _Memo()
_TABLES: dict[str, nl.Table] = {}  # one object per table name: rulesets check their objects' table by identity


def sweep() -> None:
    """Drop every mapped value whose policy value nothing outside the memos holds any more. Containers first
    (a chain's entry holds its rules, a rule's its matches), so one sweep frees a dead ruleset whole.

    ``to_netlink`` runs it before mapping once the memos have grown by half the weight (entries, and set elements)
    the last sweep left, and at least by ``_SWEEP_FLOOR``: they then hold at most one and a half times what was
    alive at the last sweep (or that plus the floor), plus what one call maps. For a pod whose ruleset is swapped
    again and again (``transaction`` maps the installed and the desired ruleset together) that is twice its
    installed weight. A sweep costs about 1 us per entry (a node of 100 pods holds a few thousand); per value
    added, the cost does not grow with the memos' size."""
    unheld = _holders({object(): None})[0]  # what ``_holders`` reads for a key that only its memo holds
    for memo in (_CHAINS, _SETS, _MAPS, _RULES, _MATCHES):
        memo._sweep(unheld)
    values.clear()
    _GROWTH.added = 0
    _GROWTH.limit = max(_SWEEP_FLOOR, memo_weight() // 2)


def memo_weight() -> int:
    """What the memos hold, weighed as ``sweep`` weighs it: entries, plus the elements of the sets."""
    return memo_entries() + sum(len(s.elements) for entries in _SETS._places.values() for s in entries)


def memo_entries() -> int:
    """The number of (policy value, place) entries the memos hold (one per value and place: the live ones, and
    dead ones until the next sweep)."""
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


def _rule(
    table: nl.Table, chain: str, rule: pm.Rule, end: str, matches: dict[pm.Match, nl.Match] | None = None
) -> nl.Rule:
    """The netlink rule of ``rule`` in ``chain`` (not memoised: see ``_chain``); ``matches``: the match memo of
    ``end``, if the caller has it."""
    if matches is None:
        matches = _MATCHES.at((end,))
    parts: list[nl.Match | nl.Verdict | nl.Expr] = []
    for m in rule.matches:
        found = matches.get(m)
        parts.append(_put(matches, m, _match(m, end)) if found is None else found)
    if rule.counter:
        parts.append(nl.Counter())
    parts.append(_verdict(rule.verdict))
    return nl.rule(table, chain, *parts, comment=rule.comment)


def _chain(table: nl.Table, chain: pm.Chain, end: str) -> tuple[nl.Chain, tuple[nl.Rule, ...]]:
    """The chain and its rules, for a chain not found in the chain memo: equal rules of other chains of the same
    name (pods with different policies share many) are found in the rule memo."""
    hook = _HOOKS[chain.hook] if chain.hook else None
    made = nl.Chain(table, chain.name, hook, chain.priority, nl.Policy.ACCEPT)
    memo = _RULES.at((table.name, chain.name, end))
    matches = _MATCHES.at((end,))
    rules = []
    for r in chain.rules:
        found = memo.get(r)
        rules.append(_put(memo, r, _rule(table, chain.name, r, end, matches)) if found is None else found)
    return made, tuple(rules)


def _key(s: pm.Set) -> tuple[nl.DataType, ...]:
    found = _KEYS.get(s.key)
    if found is None:
        found = _KEYS[s.key] = tuple(_KEY_TYPES[k] for k in s.key)
    return found


def elements(s: pm.Set, items: Sequence[tuple[Interval, ...]]) -> tuple[nl.SetElement, ...]:
    """Netlink elements of ``items`` (elements of ``s``) with the key types' canonical values, in the same order:
    netlink_nft's canonical form when ``items`` are canonical (``_is_canonical``). A set maps hundreds of them, so
    the usual shapes (one field; an address and a port) have loops of their own."""
    key = s.key
    element = nl.SetElement
    if len(key) == 1:
        if key[0] in _NUMBERS:
            return tuple([element(lo, None if lo == hi else hi) for ((lo, hi),) in items])
        values.trim()
        addresses, singles = values.ADDRESSES[key[0]], values.SINGLES[key[0]]
        address, single, known = addresses.make, singles.make, addresses.get
        return tuple(
            [
                (singles.get(lo) or single(lo))
                if lo == hi
                else element(known(lo) or address(lo), known(hi) or address(hi))
                for ((lo, hi),) in items
            ]
        )
    # concatenations hold single values
    if len(key) == 2 and key[1] in _NUMBERS:
        values.trim()
        addresses, pairs = values.ADDRESSES[key[0]], values.PAIRS[key[0]]
        pair, ports = pairs.make, values.PORTS
        return tuple(
            [
                (pairs.get(n := a * ports + p) or pair(n))
                if 0 <= p < ports
                else element((addresses.get(a) or addresses.make(a), p))  # no such port: as given (encoding refuses)
                for ((a, _), (p, _)) in items
            ]
        )
    makes = [_KEY_TYPES[k].from_int for k in key]
    return tuple([element(tuple([m(lo) for m, (lo, _) in zip(makes, e, strict=True)])) for e in items])


def set_definition(table: nl.Table, s: pm.Set, generation: int | None) -> nl.Set:
    """The netlink set of ``s`` without its elements: enough to add or delete some (O(change), not O(set))."""
    return nl.Set(table, s.name + suffix(generation), _key(s), interval=s.interval)


def _is_canonical(s: pm.Set) -> bool:
    """Whether the elements are as ``compile`` makes them (and ``netlink_nft`` keeps them): sorted, distinct, and
    in interval sets neither overlapping nor touching (merged). Integer comparisons, run by ``map`` in C."""
    items = s.elements
    if len(s.key) > 1:
        return not s.interval and all(map(operator.lt, items, items[1:]))
    los = [lo for ((lo, _),) in items]
    his = [hi for ((_, hi),) in items]
    if s.interval:
        return all(map(operator.le, los, his)) and all(map(operator.lt, [hi + 1 for hi in his[:-1]], los[1:]))
    return los == his and all(map(operator.lt, los, los[1:]))


def _set(table: nl.Table, s: pm.Set, end: str) -> nl.Set:
    """The netlink set of ``s`` (not memoised: see ``to_netlink``)."""
    items = elements(s, s.elements)
    if _is_canonical(s):  # always, from compile: no second normalisation
        return nl.Set.of_canonical(table, s.name + end, _key(s), s.interval, items)
    return nl.Set(table, s.name + end, _key(s), interval=s.interval, elements=items)


def _map(table: nl.Table, m: pm.VerdictMap) -> nl.Set:
    entries = tuple(nl.SetElement(ifname, data=nl.jump(chain)) for ifname, chain in m.entries)
    return nl.Set(table, m.name, (nl.IFNAME,), data=nl.VERDICT, elements=entries)


def _table(name: str) -> nl.Table:
    found = _TABLES.get(name)
    if found is None:
        found = _TABLES[name] = nl.Table(nl.Family.INET, name)
    return found


def to_netlink(ruleset: pm.PodRuleset, generation: int | None = None) -> nl.Ruleset:
    """The netlink_nft ``Ruleset`` of a compiled pod; with ``generation``, its named sets are called
    ``<name>.g<generation>`` (the same as ``to_netlink(versioned(ruleset, generation))``, without the copy).

    Mapped values are memoised per policy value: one look-up per chain (pods with the same policies have equal
    chains) and per set, and only a chain not found looks up its rules."""
    if _GROWTH.added >= _GROWTH.limit:  # before mapping: what the last call replaced is dead by now
        sweep()
    src = ruleset.table
    end = suffix(generation)
    table = _table(src.name)
    place = (table.name, end)
    chain_memo = _CHAINS.at(place)
    chains: list[nl.Chain] = []
    rules: list[nl.Rule] = []
    for c in src.chains:
        found = chain_memo.get(c)
        if found is None:
            found = _put(chain_memo, c, _chain(table, c, end))
        chains.append(found[0])
        rules += found[1]
    set_memo = _SETS.at(place)
    sets: list[nl.Set] = []
    for s in src.sets:
        made = set_memo.get(s)
        sets.append(_put(set_memo, s, _set(table, s, end), 1 + len(s.elements)) if made is None else made)
    map_memo = _MAPS.at((table.name,))
    for m in src.maps:
        made = map_memo.get(m)
        sets.append(_put(map_memo, m, _map(table, m)) if made is None else made)
    return nl.Ruleset(table, tuple(chains), tuple(sets), tuple(rules))
