"""``compile(snapshot, pod)``: the complete desired nftables ruleset of one pod (DESIGN.md "Data-plane principles").

Layout of table ``inet multi_networkpolicy``::

    chain input  (hook input)  : iifname vmap @ingress-dispatch     # only policed, ingress-isolated interfaces
    chain output (hook output) : oifname vmap @egress-dispatch
    chain ingress-<if> / egress-<if>, one per isolated (interface, direction):
        ct state established,related accept
        icmpv6 type { 133-137 } accept               # neighbour discovery, unless disabled
        meta l4proto icmp / ipv6-icmp accept        # --accept-icmp / --accept-icmpv6
        <custom rules of that direction>
        <the allow rules of every policy isolating this interface in this direction>
        drop

A packet therefore only meets the rules of its own network; interfaces no policy isolates are untouched.
Peer addresses are taken on the network of the interface only (§2.4.21, our choice, see DECISIONS.md).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

import msgspec

from trinet.policy.ipblock import Interval, merge
from trinet.policy.model import PROTOCOL_NUMBERS, Direction, EffectivePolicy, IPBlockPeer
from trinet.policy.model import Rule as PolicyRule
from trinet.policy.ruleset import (
    Accept,
    Addr,
    AddrPort,
    Chain,
    CtState,
    Drop,
    IcmpType,
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
from trinet.policy.types import Pod

__all__ = ["NDP_TYPES", "CompileOptions", "CustomRules", "compile", "empty_ruleset"]

NDP_TYPES = (133, 134, 135, 136, 137)  # router solicit/advert, neighbour solicit/advert, redirect (§2.8.45)
_ICMP, _ICMPV6 = 1, 58
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


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
    suffix = ifname if _SAFE_NAME.match(ifname) else "x" + ifname.encode().hex()
    return f"{direction.value}-{suffix}"


class _ChainBuilder:
    """Collects the named sets of one chain, numbering them ``<chain>-<n>`` in order of creation."""

    def __init__(self, chain: str, sets: list[Set]) -> None:
        self.chain = chain
        self.sets = sets
        self.count = 0

    def add_set(self, key: tuple[str, ...], interval: bool, elements: Iterable[tuple[Interval, ...]]) -> str:
        name = f"{self.chain}-{self.count}"
        self.count += 1
        self.sets.append(Set(name, key, interval, tuple(elements)))  # type: ignore[arg-type]
        return name


def _peer_addresses(
    snapshot: Snapshot, policy: EffectivePolicy, direction: Direction, index: int, rule: PolicyRule, network: str
) -> tuple[tuple[Interval, ...], tuple[Interval, ...], bool]:
    """(v4, v6, has selector peers) of one rule's peers on ``network``; memoised per snapshot."""
    key = ("addrs", policy.key, direction, index, network)
    found = snapshot.memo.get(key)
    if found is None:
        v4: list[Interval] = []
        v6: list[Interval] = []
        has_selector = False
        for peer in rule.peers or ():
            if isinstance(peer, IPBlockPeer):
                v4.extend(peer.v4)
                v6.extend(peer.v6)
                continue
            has_selector = True
            for info in snapshot.peer_pods(policy.namespace, peer):
                a4, a6 = info.addresses(network)
                v4.extend((a, a) for a in a4)
                v6.extend((a, a) for a in a6)
        found = snapshot.memo[key] = (merge(v4), merge(v6), has_selector)
    return found  # type: ignore[return-value]


def _named_egress_elements(
    snapshot: Snapshot,
    policy: EffectivePolicy,
    index: int,
    rule: PolicyRule,
    network: str,
    protocol: str,
    names: tuple[str, ...],
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(address, port) pairs of destination pods on ``network`` that the rule's peers allow and that serve one of
    ``names`` over ``protocol`` (§2.5.35: egress named ports resolve per destination pod)."""
    key = ("named", policy.key, index, network, protocol, names)
    found = snapshot.memo.get(key)
    if found is None:
        allowed: tuple[tuple[Interval, ...] | None, ...] = (None, None)
        if rule.peers is not None:
            allowed = _peer_addresses(snapshot, policy, Direction.EGRESS, index, rule, network)[:2]
        families = []
        for family in (0, 1):
            pairs: set[tuple[int, int]] = set()
            for name in names:
                served = snapshot.named_ports(network, protocol, name)[family]
                intervals = allowed[family]
                if intervals is None:
                    pairs.update(served)
                    continue
                for lo, hi in intervals:
                    start = bisect.bisect_left(served, (lo, -1))
                    end = bisect.bisect_right(served, (hi, 1 << 16))
                    pairs.update(served[start:end])
            families.append(tuple(sorted(pairs)))
        found = snapshot.memo[key] = (families[0], families[1])
    return found  # type: ignore[return-value]


def _policy_rules(
    snapshot: Snapshot,
    subject: PodInfo,
    policy: EffectivePolicy,
    direction: Direction,
    network: str,
    builder: _ChainBuilder,
) -> list[Rule]:
    out: list[Rule] = []
    field = "saddr" if direction is Direction.INGRESS else "daddr"
    for index, rule in enumerate(policy.rules(direction)):
        comment = f"{policy.key} {direction.value}[{index}]"[:127]
        # Port part (§2.5): protocol-only items, numbered ranges, named ports.
        port_matches: list[tuple[Match, ...]] = []
        named: dict[str, list[str]] = {}
        if rule.ports is None:
            port_matches.append(())
        else:
            whole: set[int] = set()
            ranges: dict[int, list[Interval]] = {}
            for item in rule.ports:
                number = PROTOCOL_NUMBERS[item.protocol]
                if item.name is not None:
                    if direction is Direction.INGRESS:  # the subject is the destination: resolve on it
                        for name, proto, port in subject.container_ports:
                            if name == item.name and proto == item.protocol:
                                ranges.setdefault(number, []).append((port, port))
                    else:
                        named.setdefault(item.protocol, []).append(item.name)
                elif item.first is None or item.last is None:
                    whole.add(number)
                else:
                    ranges.setdefault(number, []).append((item.first, item.last))
            if whole:
                port_matches.append((L4Proto(tuple(sorted(whole))),))
            for number in sorted(set(ranges) - whole):
                port_matches.append((L4Proto((number,)), Port("dport", elements=merge(ranges[number]))))
        # Peer part (§2.4): one interval set per family; selector peers always get both families so that pod
        # churn changes only set elements.
        addr_matches: list[tuple[Match, ...]] = []
        families: tuple[tuple[int, str], ...] = ((4, "ipv4_addr"), (6, "ipv6_addr"))
        if rule.peers is None:
            addr_matches.append(())
        else:
            v4, v6, has_selector = _peer_addresses(snapshot, policy, direction, index, rule, network)
            fams = []
            for (family, key_type), intervals in zip(families, (v4, v6), strict=True):
                if port_matches and (intervals or has_selector):
                    name = builder.add_set((key_type,), True, ((iv,) for iv in intervals))
                    addr_matches.append((Addr(family, field, set_name=name),))  # type: ignore[arg-type]
                if intervals or has_selector:
                    fams.append((family, key_type))
            families = tuple(fams)
        for addr in addr_matches:
            for ports in port_matches:
                out.append(Rule(addr + ports, Accept(), comment))
        # Egress named ports: (destination address . port) per destination pod. The concatenation is an interval
        # set (pipapo) although it holds single values: netlink_nft encodes every concatenation with
        # NFTA_SET_DESC_CONCAT, which the kernel only accepts together with the interval flag.
        for protocol in sorted(named, key=PROTOCOL_NUMBERS.__getitem__):
            names = tuple(sorted(set(named[protocol])))
            pairs = _named_egress_elements(snapshot, policy, index, rule, network, protocol, names)
            for (family, key_type), elems in zip(((4, "ipv4_addr"), (6, "ipv6_addr")), pairs, strict=True):
                if (family, key_type) not in families:
                    continue
                name = builder.add_set((key_type, "inet_service"), True, (((a, a), (p, p)) for a, p in elems))
                matches = (L4Proto((PROTOCOL_NUMBERS[protocol],)), AddrPort(family, "daddr", "dport", name))  # type: ignore[arg-type]
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


def compile(snapshot: Snapshot, pod: Pod, options: CompileOptions = CompileOptions()) -> PodRuleset:  # noqa: B008
    """The desired ruleset of ``pod`` given the cluster ``snapshot``. Pure and deterministic."""
    subject = snapshot.info(pod)
    if not subject.is_subject:
        return empty_ruleset(options)
    policed: dict[str, Attachment] = {}
    for att in sorted(subject.attachments, key=lambda a: a.ifname):
        if att.ifname and att.cni_type in options.network_plugins:
            policed.setdefault(att.ifname, att)
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
    for ifname, att in policed.items():
        for direction in Direction:
            isolating = [p for p in policies if att.network in p.networks and direction in p.isolates]
            if not isolating:
                continue
            name = _chain_name(direction, ifname)
            builder = _ChainBuilder(name, sets)
            rules = _preamble(options, direction)
            for policy in isolating:
                rules.extend(_policy_rules(snapshot, subject, policy, direction, att.network, builder))
            rules.append(Rule((), Drop()))
            chains.append(Chain(name, tuple(rules)))
            dispatch[direction].append((ifname, name))
    if not chains:
        return empty_ruleset(options)
    maps: list[VerdictMap] = []
    base: list[Chain] = []
    for direction, hook, field in ((Direction.INGRESS, "input", "iifname"), (Direction.EGRESS, "output", "oifname")):
        if dispatch[direction]:
            map_name = f"{direction.value}-dispatch"
            maps.append(VerdictMap(map_name, tuple(dispatch[direction])))
            base.append(Chain(hook, (Rule((), Vmap(field, map_name)),), hook=hook))  # type: ignore[arg-type]
    return PodRuleset(Table(options.table, tuple(sets), tuple(maps), tuple(base + chains)))
