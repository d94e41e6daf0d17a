"""``compile(snapshot, pod)``: the complete desired nftables ruleset of one pod (DESIGN.md "Data-plane principles").

Layout of table ``inet multi_networkpolicy`` (as ``render`` writes it; ``tests/golden/policy/`` has whole ones)::

    set ingress-net1-0 { type ipv4_addr; }             # per chain, numbered: peers' addresses (hash sets),
    set ingress-net1-1 { type ipv4_addr; flags interval; }   # ipBlocks (interval sets), egress address . port
    map ingress-dispatch { type ifname : verdict; elements = { "net1" : jump ingress-net1 } }
    map egress-dispatch  { ... }                       # both maps always present, maybe empty
    chain input  { type filter hook input priority 0; policy accept; iifname vmap @ingress-dispatch }
    chain output { type filter hook output priority 0; policy accept; oifname vmap @egress-dispatch }
    chain ingress-net1 {                               # one per isolated (interface, direction)
        ct state established,related accept
        icmpv6 type { nd-router-solicit, ..., nd-redirect } accept   # neighbour discovery, unless disabled
        meta l4proto icmp accept                       # accept_icmp / accept_icmpv6 (ipv6-icmp)
        <custom rules of that direction>
        ip saddr @ingress-net1-0 tcp dport 80 accept comment "ns/p ingress[0]"   # every isolating policy's rules
        counter drop                                   # what isolation drops (drop_counters)
    }

A packet therefore only meets the rules of its own network; interfaces no policy isolates are untouched.
Peer addresses are taken on the network of the interface only (§2.4.21, our choice, see DECISIONS.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, NamedTuple, cast

import msgspec

from trinet.objects import Pod
from trinet.policy.elements import Elements
from trinet.policy.ipblock import Interval, merge
from trinet.policy.model import PROTOCOL_NUMBERS, Direction, EffectivePolicy, IPBlockPeer, SelectorPeer
from trinet.policy.model import Rule as PolicyRule
from trinet.policy.peer_addresses import Element
from trinet.policy.ruleset import (
    Accept,
    Addr,
    AddrField,
    AddrPort,
    Chain,
    CtState,
    Drop,
    Family,
    IcmpType,
    IfField,
    KeyType,
    L4Proto,
    Match,
    PodRuleset,
    Port,
    Rule,
    Set,
    Table,
    VerdictMap,
    Vmap,
)
from trinet.policy.snapshot import Attachment, PodInfo, Snapshot

__all__ = ["NDP_TYPES", "CompileOptions", "CustomRules", "compile", "empty_ruleset"]

NDP_TYPES = (133, 134, 135, 136, 137)  # router solicit/advert, neighbour solicit/advert, redirect (§2.8.45)
_ICMP, _ICMPV6 = 1, 58
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_FAMILIES: tuple[tuple[Family, KeyType], ...] = ((4, "ipv4_addr"), (6, "ipv6_addr"))
_HOOKS: tuple[tuple[Direction, Literal["input", "output"], IfField], ...] = (
    (Direction.INGRESS, "input", "iifname"),
    (Direction.EGRESS, "output", "oifname"),
)
_DIRECTIONS = tuple(direction for direction, _, _ in _HOOKS)
_MAP_NAMES = {direction: f"{direction.value}-dispatch" for direction in _DIRECTIONS}
# The same in every pod's table: one value each, which everything mapped from them shares.
_BASE_CHAINS = tuple(
    Chain(hook, (Rule((), Vmap(field, _MAP_NAMES[direction])),), hook=hook) for direction, hook, field in _HOOKS
)


class CustomRules(msgspec.Struct, frozen=True):
    """Operator rules (``custom_rules.load_custom_rules``), already guarded by family, per direction."""

    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()


class CompileOptions(msgspec.Struct, frozen=True):
    table: str = "multi_networkpolicy"
    network_plugins: frozenset[str] = frozenset({"macvlan"})
    allow_ndp: bool = True
    accept_icmp: bool = False
    accept_icmpv6: bool = False
    custom: CustomRules = CustomRules()


def empty_ruleset(options: CompileOptions) -> PodRuleset:
    return PodRuleset(Table(options.table))


def _chain_name(direction: Direction, ifname: str) -> str:
    """``ingress-net1``; a name nft cannot take bare is hex-encoded after a ``/``, which no interface name holds."""
    if _SAFE_NAME.match(ifname):
        return f"{direction.value}-{ifname}"
    return f"{direction.value}/x{ifname.encode().hex()}"


def chain_interface(name: str) -> tuple[str, Direction] | None:
    """The (interface, direction) of a per-interface chain named by ``_chain_name``; None for any other name."""
    for direction in Direction:
        prefix = direction.value
        if name.startswith(prefix + "-") and _SAFE_NAME.match(name[len(prefix) + 1 :]):
            return name[len(prefix) + 1 :], direction
        if name.startswith(prefix + "/x"):
            try:
                return bytes.fromhex(name[len(prefix) + 2 :]).decode(), direction
            except ValueError:  # not hex, or not UTF-8: not one of ours
                return None
    return None


_NO_PODS: tuple[Elements[Element], Elements[Element]] = (Elements.of(()), Elements.of(()))


class _ChainBuilder:
    """Collects the named sets of one chain, numbering them ``<chain>-<n>`` in order of creation."""

    def __init__(self, chain: str, sets: list[Set]) -> None:
        self.chain = chain
        self.sets = sets
        self.count = 0

    def add_set(
        self,
        key: tuple[KeyType, ...],
        interval: bool,
        elements: tuple[tuple[Interval, ...], ...] | Elements[tuple[Interval, ...]],
    ) -> str:
        name = f"{self.chain}-{self.count}"
        self.count += 1
        self.sets.append(Set(name, key, interval, elements))
        return name


class _RulePeers(NamedTuple):
    """One rule's peers on one network, v4 and v6: ipBlock intervals (merged), the selected pods' addresses as
    hash-set elements (``Snapshot.peer_addresses``: chunked, patched from one snapshot to the next), and the
    rule's selector peers they come from."""

    blocks: tuple[tuple[Interval, ...], tuple[Interval, ...]]
    pods: tuple[Elements[Element], Elements[Element]]
    selectors: tuple[SelectorPeer, ...]


def _rule_peers(
    snapshot: Snapshot, policy: EffectivePolicy, direction: Direction, index: int, rule: PolicyRule, network: str
) -> _RulePeers:
    """The addresses of one rule's peers on ``network``, v4 and v6; memoised per snapshot."""
    key = ("addrs", policy.key, direction, index, network)
    found = snapshot.memo.get(key)
    if found is None:
        blocks: tuple[list[Interval], list[Interval]] = ([], [])
        for peer in rule.peers or ():
            if isinstance(peer, IPBlockPeer):
                blocks[0].extend(peer.v4)
                blocks[1].extend(peer.v6)
        selectors = tuple(p for p in rule.peers or () if isinstance(p, SelectorPeer))
        pods = snapshot.peer_addresses(policy.namespace, selectors, network) if selectors else _NO_PODS
        found = snapshot.memo[key] = _RulePeers((merge(blocks[0]), merge(blocks[1])), pods, selectors)
    return cast(_RulePeers, found)


def _named_egress_elements(
    snapshot: Snapshot,
    policy: EffectivePolicy,
    index: int,
    rule: PolicyRule,
    network: str,
    protocol: str,
    names: tuple[str, ...],
) -> tuple[Elements[Element], Elements[Element]]:
    """(address . port) elements of destination pods on ``network`` that the rule's peers allow and that serve one
    of ``names`` over ``protocol`` (§2.5.35: egress named ports resolve per destination pod)."""
    if rule.peers is None:  # every owner of the ports
        return snapshot.named_egress((policy.namespace, None, ((), ()), network, protocol, names))
    peers = _rule_peers(snapshot, policy, Direction.EGRESS, index, rule, network)
    return snapshot.named_egress((policy.namespace, peers.selectors, peers.blocks, network, protocol, names))


def _port_part(
    rule: PolicyRule, direction: Direction, subject: PodInfo
) -> tuple[list[tuple[Match, ...]], dict[str, tuple[str, ...]]]:
    """(alternative port matches, egress named ports by protocol) of one rule (§2.5).

    Ingress named ports resolve on the subject, the destination, so they become plain numbers here; egress names
    resolve per destination pod and are returned for ``_named_egress_elements``."""
    if rule.ports is None:
        return [()], {}
    whole: set[int] = set()
    ranges: dict[int, list[Interval]] = {}
    named: dict[str, set[str]] = {}
    for item in rule.ports:
        number = PROTOCOL_NUMBERS[item.protocol]
        if item.name is None:
            if item.first is None or item.last is None:
                whole.add(number)
            else:
                ranges.setdefault(number, []).append((item.first, item.last))
        elif direction is Direction.INGRESS:
            served = [(p, p) for n, proto, p in subject.container_ports if n == item.name and proto == item.protocol]
            ranges.setdefault(number, []).extend(served)
        else:
            named.setdefault(item.protocol, set()).add(item.name)
    matches: list[tuple[Match, ...]] = []
    if whole:  # a protocol-only item means every port, whatever else the list says (peer-nftables §9.1.8)
        matches.append((L4Proto(tuple(sorted(whole))),))
    for number in sorted(set(ranges) - whole):
        if ranges[number]:
            matches.append((L4Proto((number,)), Port("dport", elements=merge(ranges[number]))))
    return matches, {proto: tuple(sorted(names)) for proto, names in named.items()}


def _rule_rules(
    snapshot: Snapshot,
    subject: PodInfo,
    policy: EffectivePolicy,
    direction: Direction,
    index: int,
    rule: PolicyRule,
    network: str,
    builder: _ChainBuilder,
) -> list[Rule]:
    """The nft rules of one policy rule: (peer set x port alternative), plus egress named-port concatenations."""
    comment = f"{policy.key} {direction.value}[{index}]"[:127]
    port_matches, named = _port_part(rule, direction, subject)
    field: AddrField = "saddr" if direction is Direction.INGRESS else "daddr"
    families = _FAMILIES
    addr_matches: list[tuple[Match, ...]] = [()]
    if rule.peers is not None:
        # Peer part (§2.4), per family: ipBlocks in an interval set, selected pods' addresses in a plain (hash)
        # set. Pod churn then changes only elements of hash sets, which the kernel commits in constant time (an
        # interval set's commit grows with its size), and selector peers always get both families, so that churn
        # never changes the structure.
        peers = _rule_peers(snapshot, policy, direction, index, rule, network)
        families = tuple(fam for i, fam in enumerate(_FAMILIES) if peers.blocks[i] or peers.selectors)
        addr_matches = []
        for i, (family, key_type) in enumerate(_FAMILIES if port_matches else ()):
            for interval, elements, wanted in (
                (True, tuple((iv,) for iv in peers.blocks[i]), bool(peers.blocks[i])),
                (False, peers.pods[i], bool(peers.selectors)),
            ):
                if wanted:
                    name = builder.add_set((key_type,), interval, elements)
                    addr_matches.append((Addr(family, field, set_name=name),))
    out = [Rule(addr + ports, Accept(), comment) for addr in addr_matches for ports in port_matches]
    # Egress named ports: (destination address . port) per destination pod, exact values in a plain (hash) set,
    # so peer churn costs O(1) in the kernel (an interval set's commit grows with its size).
    for protocol in sorted(named, key=PROTOCOL_NUMBERS.__getitem__):
        pairs = _named_egress_elements(snapshot, policy, index, rule, network, protocol, named[protocol])
        for (family, key_type), served in zip(_FAMILIES, pairs, strict=True):
            if (family, key_type) in families:
                name = builder.add_set((key_type, "inet_service"), False, served)
                matches = (L4Proto((PROTOCOL_NUMBERS[protocol],)), AddrPort(family, "daddr", "dport", name))
                out.append(Rule(matches, Accept(), comment))
    return out


def _preamble(options: CompileOptions, direction: Direction) -> list[Rule]:
    rules = [Rule((CtState(("established", "related")),), Accept())]
    if options.allow_ndp:
        rules.append(Rule((IcmpType(6, NDP_TYPES),), Accept()))
    if options.accept_icmp:
        rules.append(Rule((L4Proto((_ICMP,)),), Accept()))
    if options.accept_icmpv6:
        rules.append(Rule((L4Proto((_ICMPV6,)),), Accept()))
    rules.extend(options.custom.ingress if direction is Direction.INGRESS else options.custom.egress)
    return rules


def _isolated_chain(
    snapshot: Snapshot,
    subject: PodInfo,
    options: CompileOptions,
    direction: Direction,
    name: str,
    network: str,
    policies: Iterable[EffectivePolicy],
) -> tuple[Chain, tuple[Set, ...]]:
    """The chain of one isolated (interface, direction) with the named sets it uses, from the rules of
    ``policies``; memoised per snapshot by everything it depends on, so that pods with the same policies on the
    same interface share one value (and everything mapped and encoded from it). Of the subject it reads only the
    container ports (ingress named ports)."""
    policies = tuple(policies)
    key = ("chain", options, direction, name, network, tuple(p.key for p in policies), subject.container_ports)
    found = snapshot.memo.get(key)
    if found is None:
        sets: list[Set] = []
        builder = _ChainBuilder(name, sets)
        rules = _preamble(options, direction)
        for policy in policies:
            for index, rule in enumerate(policy.rules(direction)):
                rules.extend(_rule_rules(snapshot, subject, policy, direction, index, rule, network, builder))
        rules.append(Rule((), Drop(), counter=True))  # what isolation drops, per pod and (interface, direction)
        found = snapshot.memo[key] = (Chain(name, tuple(rules)), tuple(sets))
    return cast(tuple[Chain, tuple[Set, ...]], found)


def compile(snapshot: Snapshot, pod: Pod, options: CompileOptions = CompileOptions()) -> PodRuleset:  # noqa: B008
    """The desired ruleset of ``pod`` given the cluster ``snapshot``. Pure and deterministic."""
    subject = snapshot.info(pod)
    if not subject.is_subject:
        return empty_ruleset(options)
    policed: dict[str, list[Attachment]] = {}
    for att in sorted(subject.attachments, key=lambda a: a.ifname):
        if att.ifname and att.cni_type in options.network_plugins:
            policed.setdefault(att.ifname, []).append(att)
    if not policed:
        return empty_ruleset(options)
    policies = [
        p
        for p in snapshot.policies_in(subject.namespace)
        if p.networks and (p.subjects is None or p.subjects.matches(subject.labels))
    ]
    sets: list[Set] = []
    chains: list[Chain] = []
    dispatch: dict[Direction, list[tuple[str, str]]] = {Direction.INGRESS: [], Direction.EGRESS: []}
    for ifname, atts in policed.items():
        # One interface reported on several networks (a contradictory network-status) is isolated wherever any of
        # its networks is, and allows nothing but the preamble: we cannot tell whose peers it should admit.
        networks = {a.network for a in atts}
        contradictory = len(networks) > 1
        for direction in _DIRECTIONS:
            isolating = [p for p in policies if networks & p.networks and direction in p.isolates]
            if not isolating:
                continue
            name = _chain_name(direction, ifname)
            chain, chain_sets = _isolated_chain(
                snapshot, subject, options, direction, name, atts[0].network, () if contradictory else isolating
            )
            sets.extend(chain_sets)
            chains.append(chain)
            dispatch[direction].append((ifname, name))
    if not chains:
        return empty_ruleset(options)
    # Both base chains and both maps exist whenever anything is enforced, even if one map is empty: base chains
    # are then created once and kept (no hook churn when a first egress policy arrives), and a chain that goes
    # away is only ever referenced by a map element, which an update removes before the chain.
    maps = tuple(_dispatch_map(snapshot, direction, tuple(dispatch[direction])) for direction in _DIRECTIONS)
    return PodRuleset(Table(options.table, tuple(sets), maps, _BASE_CHAINS + tuple(chains)))


def _dispatch_map(snapshot: Snapshot, direction: Direction, entries: tuple[tuple[str, str], ...]) -> VerdictMap:
    """The dispatch map of ``direction``, one value per snapshot for pods with the same isolated interfaces."""
    key = ("dispatch", direction, entries)
    found = snapshot.memo.get(key)
    if found is None:
        found = snapshot.memo[key] = VerdictMap(_MAP_NAMES[direction], entries)
    return cast(VerdictMap, found)
