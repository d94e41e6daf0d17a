"""Map a ``PodRuleset`` one-to-one onto the ``netlink_nft`` model, ready for ``replace_contents`` (one transaction).

Every model value has exactly one netlink counterpart (see ``ruleset.py``); the guards nft would add (``meta
nfproto`` before ``ip saddr``, ``meta l4proto`` before ``icmp type``) are inserted by ``netlink_nft.rule``. Ports
use the transport-header field (``th dport``) because our rules always match ``meta l4proto`` first.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import NamedTuple

import msgspec

import netlink_nft as nl
from netlink_nft import Field, PayloadBase
from trinet.policy.compile import chain_interface
from trinet.policy.delta import ElementDelta, NoChange, delta
from trinet.policy.ipblock import Interval, to_prefixes
from trinet.policy.ruleset import (
    Accept,
    Addr,
    AddrPort,
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
    Rule,
    Set,
    Verdict,
    Vmap,
)

__all__ = ["Installed", "adopt", "drop_counters", "removal", "to_netlink", "transaction", "versioned"]

TH_SPORT = Field("th sport", nl.INET_SERVICE, nl.Payload(PayloadBase.TRANSPORT, 0, nl.INET_SERVICE.length))
TH_DPORT = Field("th dport", nl.INET_SERVICE, nl.Payload(PayloadBase.TRANSPORT, 2, nl.INET_SERVICE.length))
_KEY_TYPES = {"ipv4_addr": nl.IPV4_ADDR, "ipv6_addr": nl.IPV6_ADDR, "inet_service": nl.INET_SERVICE}
_CT = {
    "new": nl.CtState.NEW,
    "established": nl.CtState.ESTABLISHED,
    "related": nl.CtState.RELATED,
    "invalid": nl.CtState.INVALID,
    "untracked": nl.CtState.UNTRACKED,
}
_BITS = {4: 32, 6: 128}


def _address_match(field: Field, family: int, elements: tuple[Interval, ...], negate: bool) -> nl.Match:
    if len(elements) == 1:
        lo, hi = elements[0]
        prefixes = to_prefixes((lo, hi), _BITS[family])
        if len(prefixes) == 1:
            network = ipaddress.ip_network((prefixes[0][0], prefixes[0][1]))
            return nl.eq(field, str(network), negate=negate)
        return nl.between(field, lo, hi, negate=negate)
    return nl.in_set(field, [nl.SetElement.interval(lo, hi) for lo, hi in elements], negate=negate)


def _values_match(field: Field, elements: tuple[Interval, ...], negate: bool) -> nl.Match:
    if len(elements) == 1:
        lo, hi = elements[0]
        return nl.eq(field, lo, negate=negate) if lo == hi else nl.between(field, lo, hi, negate=negate)
    return nl.in_set(field, [nl.SetElement.interval(lo, hi) for lo, hi in elements], negate=negate)


@functools.lru_cache(maxsize=1 << 14)
def _match(match: Match) -> nl.Match:
    if isinstance(match, NfProto):  # satisfies the nfproto guard of later address matches, as in nft
        family = nl.Family.IP if match.family == 4 else nl.Family.IP6
        return nl.Match(nl.nfproto(match.family).exprs, provides=nl.Guard(nl.MetaKey.NFPROTO, family))
    if isinstance(match, L4Proto):
        if len(match.protocols) == 1:
            return nl.eq(nl.META_L4PROTO, match.protocols[0], negate=match.negate)
        return nl.in_set(nl.META_L4PROTO, match.protocols, negate=match.negate)
    if isinstance(match, IfName):
        field = nl.IIFNAME if match.field == "iifname" else nl.OIFNAME
        if len(match.names) == 1:
            return nl.eq(field, match.names[0], negate=match.negate)
        return nl.in_set(field, match.names, negate=match.negate)
    if isinstance(match, CtState):
        return nl.ct_state(*(_CT[s] for s in match.states))
    if isinstance(match, Addr):
        field = (nl.SADDR if match.field == "saddr" else nl.DADDR)[match.family]
        if match.set_name is not None:
            return nl.in_set(field, match.set_name, negate=match.negate)
        return _address_match(field, match.family, match.elements, match.negate)
    if isinstance(match, Port):
        field = TH_SPORT if match.field == "sport" else TH_DPORT
        if match.set_name is not None:
            return nl.in_set(field, match.set_name, negate=match.negate)
        return _values_match(field, match.elements, match.negate)
    if isinstance(match, AddrPort):
        addr = (nl.SADDR if match.addr_field == "saddr" else nl.DADDR)[match.family]
        port = TH_SPORT if match.port_field == "sport" else TH_DPORT
        return nl.in_set((addr, port), match.set_name)
    if isinstance(match, IcmpType):
        field = nl.ICMP_TYPE_FIELD if match.family == 4 else nl.ICMPV6_TYPE_FIELD
        if len(match.types) == 1:
            return nl.eq(field, match.types[0])
        return nl.in_set(field, match.types)
    raise TypeError(f"unknown match {match!r}")


def _verdict(verdict: Verdict) -> nl.Verdict | nl.Match:
    if isinstance(verdict, Accept):
        return nl.ACCEPT
    if isinstance(verdict, Drop):
        return nl.DROP
    if isinstance(verdict, Jump):
        return nl.jump(verdict.chain)
    if isinstance(verdict, Vmap):
        return nl.vmap(nl.IIFNAME if verdict.field == "iifname" else nl.OIFNAME, verdict.map_name)
    raise TypeError(f"unknown verdict {verdict!r}")


def _elements(s: Set, elements: tuple[tuple[Interval, ...], ...]) -> list[nl.SetElement]:
    if len(s.key) == 1:
        return [nl.SetElement.interval(lo, hi) for ((lo, hi),) in elements]
    return [nl.SetElement(tuple(lo for lo, _ in e)) for e in elements]  # concatenations hold single values


@functools.lru_cache(maxsize=1 << 12)
def _set(table: nl.Table, s: Set) -> nl.Set:
    key = tuple(_KEY_TYPES[k] for k in s.key)
    return nl.Set(table, s.name, key, interval=s.interval, elements=tuple(_elements(s, s.elements)))


@functools.lru_cache(maxsize=1 << 14)
def _rule(table: nl.Table, chain: str, r: Rule) -> nl.Rule:
    """Memoised: the same policy on the same interface name gives the same rules in many pods."""
    counter = (nl.Counter(),) if r.counter else ()
    return nl.rule(table, chain, *(_match(m) for m in r.matches), *counter, _verdict(r.verdict), comment=r.comment)


def drop_counters(dumped: nl.Ruleset) -> dict[tuple[str, str], int]:
    """Packets dropped by isolation so far, by (interface, direction) (``"ingress"``/``"egress"``), read from the
    counter of each per-interface chain's final drop rule in a dump (``netlink_nft.dump_table``). Chains that are
    not trinet's per-interface chains, and drop rules without a counter, are left out."""
    out: dict[tuple[str, str], int] = {}
    for r in dumped.rules:
        where = chain_interface(r.chain)
        if where is None or len(r.exprs) < 2:
            continue
        counter, verdict = r.exprs[-2:]
        if isinstance(counter, nl.Counter) and isinstance(verdict, nl.Immediate) and verdict.data == nl.DROP:
            out[where[0], where[1].value] = counter.packets
    return out


def to_netlink(ruleset: PodRuleset) -> nl.Ruleset:
    """The netlink_nft ``Ruleset`` of a compiled pod."""
    src = ruleset.table
    table = nl.Table(nl.Family.INET, src.name)
    hooks = {"input": nl.Hook.INPUT, "output": nl.Hook.OUTPUT}
    chains = tuple(
        nl.Chain(table, c.name, hooks[c.hook] if c.hook else None, c.priority, nl.Policy.ACCEPT) for c in src.chains
    )
    sets = [_set(table, s) for s in src.sets]
    sets += [
        nl.Set(
            table,
            m.name,
            (nl.IFNAME,),
            data=nl.VERDICT,
            elements=tuple(nl.SetElement(ifname, data=nl.jump(chain)) for ifname, chain in m.entries),
        )
        for m in src.maps
    ]
    rules = tuple(_rule(table, c.name, r) for c in src.chains for r in c.rules)
    return nl.Ruleset(table, chains, tuple(sets), rules)


class Installed(NamedTuple):
    """What a pod's table holds: the compiled ruleset, and the generation that names its sets."""

    ruleset: PodRuleset
    generation: int


def versioned(ruleset: PodRuleset, generation: int) -> PodRuleset:
    """The ruleset with every named set called ``<name>.g<generation>``; chains and verdict maps keep their names.

    Why sets and only sets (each measured with ``tests/kernel/test_policy_atomic.py``): a packet reads the
    generation once when it enters a base chain and sees the rules of that generation in every chain it jumps to,
    but a set lookup reads the generation when it happens. A full swap therefore installs new sets under the other
    generation's names, so an old rule only ever looks up the old set, whose elements stay active until the commit
    ends. Chains are flushed and refilled in place (consistent by the rule above), and the dispatch maps keep
    their names: deleting a map deactivates its elements at once (an old rule's lookup would then miss and fall
    through to accept), and a map entry jumping to a chain created in the same transaction would meet that
    chain's empty old generation.
    """
    suffix = f".g{generation}"

    def match(m: Match) -> Match:
        if isinstance(m, Addr | Port | AddrPort) and m.set_name is not None:
            return msgspec.structs.replace(m, set_name=m.set_name + suffix)
        return m

    src = ruleset.table
    chains = tuple(
        msgspec.structs.replace(
            c, rules=tuple(msgspec.structs.replace(r, matches=tuple(match(m) for m in r.matches)) for r in c.rules)
        )
        for c in src.chains
    )
    sets = tuple(msgspec.structs.replace(x, name=x.name + suffix) for x in src.sets)
    return PodRuleset(msgspec.structs.replace(src, sets=sets, chains=chains))


def transaction(applied: Installed | None, desired: PodRuleset) -> tuple[nl.Batch | None, Installed | None]:
    """The one transaction that turns what is ``applied`` into ``desired``, and what is installed afterwards. The
    batch is None when nothing changes. ``applied`` None means: nothing installed by us that we know of (a fresh
    netns); when the state is *unknown* (restart, ``OutcomeUnknown``) dump the table and call ``adopt`` instead.

    - Peer churn (``delta`` finds only element changes): element deletions then additions in the sets of the
      installed generation, nothing else. Rules do not change, so any mix of old and new elements that a packet
      racing the commit sees is allowed by the old or by the new ruleset.
    - A pod that no longer needs enforcing: its table is removed (``removal``, whether it exists or not; also
      when ``applied`` is None).
    - Any other change: a full swap in one transaction: chains and maps kept and refilled, the sets created
      under the other generation's names (``versioned``) and the old generation's sets deleted.
    - ``applied`` None: everything is created if missing, flushed and refilled (NEWTABLE is create-or-keep); the
      table is never deleted, so an enforcing table has no gap. Leftovers the batch cannot reuse (a set of the same
      name but another type) make it fail whole, the old rules intact: then ``adopt`` a dump.

    No message needs NFT_MSG_DESTROY* (kernels before 6.3 lack them).
    """
    if not desired.enforces:
        return removal(desired.table.name), None
    if applied is not None:
        change = delta(applied.ruleset, desired)
        if isinstance(change, NoChange):
            return None, applied
        if isinstance(change, ElementDelta):
            return _element_batch(applied.generation, desired, change), Installed(desired, applied.generation)
        generation = 2 if applied.generation == 1 else 1
        old = to_netlink(versioned(applied.ruleset, applied.generation))
        return nl.replace_contents(to_netlink(versioned(desired, generation)), old), Installed(desired, generation)
    return nl.replace_contents(to_netlink(versioned(desired, 1))), Installed(desired, 1)


def removal(table_name: str) -> nl.Batch:
    """Delete the table whether it exists or not, without NFT_MSG_DESTROYTABLE: NEWTABLE (create-or-keep) then
    DELTABLE, in one transaction. Removing a table stops enforcement for its pod; that is what is asked."""
    table = nl.Table(nl.Family.INET, table_name)
    batch = nl.Batch()
    batch.add_table(table)
    batch.delete_table(table)
    return batch


def adopt(dumped: nl.Ruleset | None, desired: PodRuleset) -> tuple[nl.Batch | None, Installed | None]:
    """Reconcile ``desired`` with what the kernel actually holds (``dumped``, from ``netlink_nft.dump_table``; None
    when the table does not exist): at start-up, at every resync (drift repair) and after ``OutcomeUnknown``.

    - ``dumped`` is ``desired`` installed under generation 1 or 2: no batch, ``Installed(desired, g)``. Counter
      values do not take part in the comparison, so an unchanged pod never costs a transaction.
    - ``desired`` does not enforce: the table is removed if it exists.
    - Anything else (drift, hand edits, another trinet version, no table): one gap-free batch from that actual
      state, ``replace_contents`` with the sets under the generation the dumped sets do not use, so no packet meets
      an old rule with new set contents. The table and its base chains are kept, never deleted and recreated.
    """
    if not desired.enforces:
        return (removal(desired.table.name) if dumped is not None else None), None
    if dumped is not None:
        for generation in (1, 2):
            if dumped == to_netlink(versioned(desired, generation)):
                return None, Installed(desired, generation)
    generation = _free_generation(dumped, desired)
    return nl.replace_contents(to_netlink(versioned(desired, generation)), dumped), Installed(desired, generation)


def _free_generation(dumped: nl.Ruleset | None, desired: PodRuleset) -> int:
    """The generation whose set names no dumped set uses (1 when both are free; when a hand-made table uses both,
    the one that reuses fewer names: a reused name only gets an element delta, exact but not generation-safe)."""
    present = {s.name for s in dumped.sets} if dumped is not None else set()
    clashes = {g: sum(f"{s.name}.g{g}" in present for s in desired.table.sets) for g in (1, 2)}
    return min((1, 2), key=lambda g: clashes[g])


def _element_batch(generation: int, desired: PodRuleset, change: ElementDelta) -> nl.Batch:
    table = nl.Table(nl.Family.INET, desired.table.name)
    suffix = f".g{generation}"
    by_name = {s.name: s for s in desired.table.sets}
    batch = nl.Batch()
    for item in change.changes:
        model = by_name[item.set_name]
        target = _set(table, msgspec.structs.replace(model, name=model.name + suffix))
        if item.removed:
            batch.delete_elements(target, _elements(model, item.removed))
        if item.added:
            batch.add_elements(target, _elements(model, item.added))
    return batch
