"""``trinet explain``: is a flow between two pods allowed, and why.

Two independent readings answer, and must agree:

* the reference oracle (``trinet.policy.oracle.Oracle``, written from semantics.md §2.10) gives the verdict and
  the reasons: which policies select each side, which isolate the direction on the flow's network, and which
  rule, peer and port item admit the flow;
* the compiled rulesets (``trinet.policy.compile`` + ``trinet.policy.evaluate``) give what the kernel would do
  with the packet at the source's output hook and the destination's input hook, and the nft rule that decided.

Any difference between them is a bug in trinet and is reported as such (exit status 3).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from trinet.objects import MultiNetworkPolicy, MultiNetworkPolicyPeer, MultiNetworkPolicyPort, Pod
from trinet.observability.arguments import PROTOCOLS
from trinet.policy import CompileOptions, Packet, PodRuleset, Snapshot, compile, evaluate
from trinet.policy.oracle import Oracle
from trinet.policy.render import render_rule
from trinet.policy.ruleset import Chain, Drop, Rule, Table

__all__ = [
    "EXIT_ALLOWED",
    "EXIT_BUG",
    "EXIT_DENIED",
    "EXIT_ERROR",
    "PROTOCOLS",
    "Allowance",
    "ExplainError",
    "Explanation",
    "Flow",
    "PolicyNote",
    "Side",
    "exit_status",
    "explain",
    "format_explanations",
]

EXIT_ALLOWED, EXIT_DENIED, EXIT_ERROR, EXIT_BUG = 0, 1, 2, 3
_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132}
_SOURCE_PORT = 40000  # any ephemeral port: no policy matches source ports
Verdict = Literal["accept", "drop"]


class ExplainError(Exception):
    """The question cannot be asked: unknown pod, no shared network, no address of the family, bad port."""


@dataclass(frozen=True)
class Flow:
    """``src``/``dst`` are ``namespace/name``; ``network`` (``ns/nad``) and ``family`` None mean: every one the
    two pods share."""

    src: str
    dst: str
    protocol: str
    port: int | None
    network: str | None = None
    family: int | None = None


@dataclass(frozen=True)
class Allowance:
    """One policy rule that admits the flow: ``rule`` is ``ingress[0]``; ``peer`` and ``port`` name the item."""

    policy: str
    rule: str
    peer: str
    port: str


@dataclass(frozen=True)
class PolicyNote:
    """A policy whose podSelector selects a side, whatever its networks."""

    policy: str
    networks: tuple[str, ...]
    isolates: tuple[str, ...]
    applies: bool  # its networks include the flow's network


@dataclass(frozen=True)
class Side:
    """One direction of the flow: egress at the source pod or ingress at the destination pod."""

    direction: Literal["egress", "ingress"]
    pod: str
    interface: str
    not_policed: str | None  # why the pod is not policed on this network, None when it is
    selecting: tuple[PolicyNote, ...]
    isolating: tuple[str, ...]  # policies that isolate this direction on this network
    contradictory: tuple[str, ...]  # other networks network-status reports for the same interface
    allowances: tuple[Allowance, ...]
    oracle_allows: bool
    compiled: Verdict
    compiled_rule: str | None  # the nft rule that decided, None when no chain is dispatched for the interface


@dataclass(frozen=True)
class Explanation:
    flow: Flow
    network: str
    family: int
    src_address: str
    dst_address: str
    egress: Side
    ingress: Side
    oracle_allowed: bool
    bugs: tuple[str, ...] = field(default=())

    @property
    def compiled_allowed(self) -> bool:
        return self.egress.compiled == "accept" and self.ingress.compiled == "accept"


def _compact(obj: msgspec.Struct) -> str:
    return msgspec.json.encode(obj).decode()


def _pod(snapshot: Snapshot, ref: str) -> Pod:
    if ref.count("/") != 1:
        raise ExplainError(f"{ref!r}: give a pod as NAMESPACE/NAME")
    found = snapshot.pods.get(ref)
    if found is None:
        raise ExplainError(f"pod {ref} not found")
    return found


class _Explainer:
    def __init__(
        self,
        snapshot: Snapshot,
        oracle: Oracle,
        policies: Sequence[MultiNetworkPolicy],
        options: CompileOptions,
    ) -> None:
        self.snapshot = snapshot
        self.oracle = oracle
        self.policies = sorted(policies, key=lambda p: (p.metadata.namespace, p.metadata.name))
        self.options = options
        self._rulesets: dict[str, PodRuleset] = {}

    def ruleset(self, ref: str, pod: Pod) -> PodRuleset:
        found = self._rulesets.get(ref)
        if found is None:
            found = self._rulesets[ref] = compile(self.snapshot, pod, self.options)
        return found

    # -- the oracle's reading --------------------------------------------------------------------------------

    def not_policed(self, pod: Pod, network: str) -> str | None:
        if pod.spec.host_network:
            return "a hostNetwork pod is never policed"
        if pod.status.phase in ("Succeeded", "Failed"):
            return f"the pod has finished ({pod.status.phase})"
        if self.oracle.policed_on(pod, network):
            return None
        cni_type = self.oracle.nad_type.get(network)
        if network not in self.oracle.nad_type:
            return f"NetworkAttachmentDefinition {network} does not exist"
        if cni_type is None:
            return f"the CNI type of NetworkAttachmentDefinition {network} is unknown"
        plugins = ", ".join(sorted(self.oracle.plugins))
        return f"{network} is of CNI type {cni_type!r}, not a policed plugin ({plugins})"

    def notes(self, pod: Pod, network: str) -> tuple[PolicyNote, ...]:
        out = []
        for p in self.policies:
            if self.oracle.selects(p, pod):
                networks = self.oracle.networks(p)
                isolates = tuple(sorted(self.oracle.types(p)[0]))
                out.append(PolicyNote(_key(p), tuple(sorted(networks)), isolates, network in networks))
        return tuple(out)

    def allowances(
        self, direction: Literal["egress", "ingress"], policies: list[MultiNetworkPolicy], flow: Flow, peer: Pod,
        owner: Pod, family: int, network: str,
    ) -> tuple[Allowance, ...]:  # fmt: skip
        o = self.oracle
        out = []
        kind = direction.capitalize()
        peers_field = "to" if direction == "egress" else "from"
        for p in policies:
            if not o.rules_count(p, kind):
                continue
            rules: Sequence[tuple[list[MultiNetworkPolicyPort] | None, list[MultiNetworkPolicyPeer] | None]] = (
                [(r.ports, r.to) for r in p.spec.egress or []]
                if direction == "egress"
                else [(r.ports, r.from_) for r in p.spec.ingress or []]
            )
            for index, (ports, peers) in enumerate(rules):
                args = (p, peer, owner, flow.protocol, flow.port, family, network)
                if not o.rule_matches(ports, peers, *args):
                    continue
                if peers:
                    j = next(j for j, pe in enumerate(peers) if o.rule_matches(None, [pe], *args))
                    peer_text = f"{peers_field}[{j}] {_compact(peers[j])}"
                else:
                    peer_text = f"any peer (no {peers_field!r})"
                if ports:
                    k = next(k for k, pi in enumerate(ports) if o.rule_matches([pi], None, *args))
                    port_text = f"ports[{k}] {_compact(ports[k])}"
                else:
                    port_text = "any port (no 'ports')"
                out.append(Allowance(_key(p), f"{direction}[{index}]", peer_text, port_text))
        return tuple(out)

    # -- the compiled reading --------------------------------------------------------------------------------

    def compiled(self, ruleset: PodRuleset, packet: Packet) -> tuple[Verdict, str | None]:
        """The verdict of ``evaluate`` and the rule of the interface's chain that decided it."""
        verdict = evaluate(ruleset, packet)
        table = ruleset.table
        map_name = f"{'ingress' if packet.hook == 'input' else 'egress'}-dispatch"
        entries = dict(next((m.entries for m in table.maps if m.name == map_name), ()))
        target = entries.get(packet.ifname)
        chain = next((c for c in table.chains if c.name == target), None)
        if chain is None:
            return verdict, None
        for number, rule in enumerate(chain.rules):
            if _rule_decides(table, chain, rule, packet):
                return verdict, f"chain {chain.name} rule {number}: {render_rule(rule)}"
        return verdict, f"chain {chain.name}: no rule matched (falls through to the base chain's policy accept)"

    # -- one flow ----------------------------------------------------------------------------------------------

    def side(
        self, direction: Literal["egress", "ingress"], flow: Flow, src: Pod, dst: Pod, packet: Packet, network: str,
        family: int,
    ) -> Side:  # fmt: skip
        pod, ref = (src, flow.src) if direction == "egress" else (dst, flow.dst)
        peer = dst if direction == "egress" else src
        reason = self.not_policed(pod, network)
        isolating: list[MultiNetworkPolicy] = []
        contradictory: set[str] = set()
        allowances: tuple[Allowance, ...] = ()
        allows = True
        if reason is None:
            contradictory = self.oracle.other_networks(pod, network)
            on = {network} | contradictory
            isolating = [
                p
                for p in self.policies
                if self.oracle.selects(p, pod)
                and on & self.oracle.networks(p)
                and direction.capitalize() in self.oracle.types(p)[0]
            ]
            if isolating and not contradictory:
                allowances = self.allowances(direction, isolating, flow, peer, dst, family, network)
            allows = not isolating or bool(allowances)
        verdict, rule = self.compiled(self.ruleset(ref, pod), packet)
        return Side(
            direction=direction,
            pod=ref,
            interface=packet.ifname,
            not_policed=reason,
            selecting=self.notes(pod, network),
            isolating=tuple(_key(p) for p in isolating),
            contradictory=tuple(sorted(contradictory)),
            allowances=allowances,
            oracle_allows=allows,
            compiled=verdict,
            compiled_rule=rule,
        )

    def one(self, flow: Flow, src: Pod, dst: Pod, network: str, family: int) -> Explanation:
        saddr, daddr = self.oracle.ips(src, network, family), self.oracle.ips(dst, network, family)
        src_if, dst_if = self.interface(src, network), self.interface(dst, network)
        if flow.protocol == "ICMP":
            number, icmp_type, sport = (1, 8, None) if family == 4 else (58, 128, None)
        else:
            number, icmp_type, sport = _NUMBERS[flow.protocol], None, _SOURCE_PORT
        fam: Literal[4, 6] = 4 if family == 4 else 6

        def packet(hook: Literal["input", "output"], ifname: str) -> Packet:
            return Packet(
                hook=hook,
                ifname=ifname,
                family=fam,
                saddr=int(saddr[0]),
                daddr=int(daddr[0]),
                protocol=number,
                sport=sport,
                dport=flow.port,
                icmp_type=icmp_type,
            )

        egress = self.side("egress", flow, src, dst, packet("output", src_if), network, family)
        ingress = self.side("ingress", flow, src, dst, packet("input", dst_if), network, family)
        oracle_allowed = self.oracle.allowed(src, dst, flow.protocol, flow.port, family, network)
        bugs = []
        for s in (egress, ingress):
            if s.oracle_allows != (s.compiled == "accept"):
                bugs.append(
                    f"{s.direction} of {s.pod}: the oracle {'allows' if s.oracle_allows else 'denies'} but the "
                    f"compiled ruleset {'accepts' if s.compiled == 'accept' else 'drops'}"
                )
        if oracle_allowed != (egress.oracle_allows and ingress.oracle_allows):
            bugs.append("explain's reading of the oracle's rules differs from Oracle.allowed()")
        return Explanation(
            flow, network, family, str(saddr[0]), str(daddr[0]), egress, ingress, oracle_allowed, tuple(bugs)
        )

    def interface(self, pod: Pod, network: str) -> str:
        return next(i for n, i, _ in self.oracle.interfaces(pod) if n == network)


def _rule_decides(table: Table, chain: Chain, rule: Rule, packet: Packet) -> bool:
    """Does ``rule`` match ``packet``? Asked through ``evaluate`` itself: the chain holds only this rule, followed by
    a drop, so the verdict is the rule's own verdict when it matches and drop otherwise (accept rules only decide
    when they match; the final drop rule always does)."""
    if isinstance(rule.verdict, Drop):
        probe = Chain(chain.name, (rule,), chain.hook, chain.priority)
        alone = msgspec.structs.replace(table, chains=tuple(probe if c is chain else c for c in table.chains))
        # a drop rule decides when it matches: with it alone in the chain, no match means fall-through (accept)
        return evaluate(PodRuleset(alone), packet) == "drop"
    probe = Chain(chain.name, (rule, Rule((), Drop())), chain.hook, chain.priority)
    alone = msgspec.structs.replace(table, chains=tuple(probe if c is chain else c for c in table.chains))
    return evaluate(PodRuleset(alone), packet) == "accept"


def _key(p: MultiNetworkPolicy) -> str:
    return f"{p.metadata.namespace}/{p.metadata.name}"


def _networks(oracle: Oracle, pod: Pod) -> list[str]:
    return sorted({n for n, _, _ in oracle.interfaces(pod)})


def explain(
    snapshot: Snapshot,
    policies: Sequence[MultiNetworkPolicy],
    oracle: Oracle,
    flow: Flow,
    options: CompileOptions,
) -> list[Explanation]:
    """One explanation per (network, family) the flow can take. ``policies`` are the objects ``snapshot`` and
    ``oracle`` were built from (the oracle reads them raw); ``options`` are the daemon's compile options."""
    if flow.protocol not in PROTOCOLS:
        raise ExplainError(f"protocol {flow.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if flow.protocol == "ICMP":
        if flow.port is not None:
            raise ExplainError("ICMP has no port")
    elif flow.port is None or not 1 <= flow.port <= 65535:
        raise ExplainError(f"{flow.protocol} needs --port in 1-65535")
    src, dst = _pod(snapshot, flow.src), _pod(snapshot, flow.dst)
    shared = sorted(set(_networks(oracle, src)) & set(_networks(oracle, dst)))
    if flow.network is not None:
        network = flow.network if "/" in flow.network else f"{src.metadata.namespace}/{flow.network}"
        if network not in shared:
            raise ExplainError(
                f"{flow.src} and {flow.dst} are not both attached to {network} "
                f"(shared networks: {', '.join(shared) or 'none'})"
            )
        shared = [network]
    if not shared:
        raise ExplainError(f"{flow.src} and {flow.dst} share no secondary network")
    explainer = _Explainer(snapshot, oracle, policies, options)
    out = []
    for network in shared:
        for family in (4, 6) if flow.family is None else (flow.family,):
            if oracle.ips(src, network, family) and oracle.ips(dst, network, family):
                out.append(explainer.one(flow, src, dst, network, family))
    if not out:
        families = "an address" if flow.family is None else f"an IPv{flow.family} address"
        raise ExplainError(f"{flow.src} and {flow.dst} do not both have {families} on {', '.join(shared)}")
    return out


def _side_lines(side: Side, network: str) -> list[str]:
    where = f"{side.direction} of {side.pod} ({side.interface} on {network})"
    lines: list[str] = []
    if side.not_policed is not None:
        lines.append(f"  {where}: not policed: {side.not_policed}")
    elif not side.isolating:
        lines.append(f"  {where}: not isolated: no policy selecting {side.pod} isolates {side.direction} on {network}")
    else:
        lines.append(f"  {where}: isolated by {', '.join(side.isolating)}")
        if side.contradictory:
            others = ", ".join(side.contradictory)
            lines.append(f"    denied: network-status also reports this interface on {others}; it allows nothing")
        elif side.allowances:
            for a in side.allowances:
                lines.append(f"    allowed by {a.policy} {a.rule}: peer {a.peer}, port {a.port}")
        else:
            lines.append(f"    denied: the direction is isolated and no rule of {', '.join(side.isolating)} matches")
    rule = side.compiled_rule or "no chain for this interface (the hook's policy accept)"
    lines.append(f"    compiled: {side.compiled}: {rule}")
    if side.selecting:
        notes = [
            f"{n.policy} ({'/'.join(n.isolates) or 'nothing'} on {', '.join(n.networks) or 'no network'}"
            f"{'' if n.applies else '; not this network'})"
            for n in side.selecting
        ]
        lines.append(f"    policies selecting {side.pod}: {'; '.join(notes)}")
    else:
        lines.append(f"    policies selecting {side.pod}: none")
    return lines


def format_explanations(explanations: Sequence[Explanation]) -> str:
    lines: list[str] = []
    for e in explanations:
        f = e.flow
        what = f.protocol if f.port is None else f"{f.protocol}/{f.port}"
        verdict = "ALLOWED" if e.oracle_allowed else "DENIED"
        version = ipaddress.ip_address(e.src_address).version
        lines.append(
            f"{f.src} -> {f.dst} {what} IPv{version} {e.src_address} -> {e.dst_address} on {e.network}: {verdict}"
        )
        lines += _side_lines(e.egress, e.network)
        lines += _side_lines(e.ingress, e.network)
        for bug in e.bugs:
            lines.append(f"  BUG: {bug} (please report: the oracle and the compiled rulesets must agree)")
    return "\n".join(lines) + "\n"


def exit_status(explanations: Sequence[Explanation]) -> int:
    """0 every explained flow allowed, 1 some denied, 3 the oracle and the compiled rulesets disagree."""
    if any(e.bugs or e.oracle_allowed != e.compiled_allowed for e in explanations):
        return EXIT_BUG
    return EXIT_ALLOWED if all(e.oracle_allowed for e in explanations) else EXIT_DENIED
