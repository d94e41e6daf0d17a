"""A reference evaluator written straight from semantics.md §2.10 (and §2.9 for invalid input), for tests.

It deliberately shares no code with ``compile()``: it re-parses annotations, re-matches selectors and re-checks
validity in the most literal way, working on pod identities rather than address sets. Only the API types (the
input format) are shared. Slow by design; never use it at run time.

Where §2 leaves a choice open, this module states the same choice as ``DECISIONS.md`` (it is the executable form):
peers count only with their addresses on the flow's network; an invalid item matches nothing; an invalid
podSelector isolates the whole namespace and allows nothing; an invalid policyTypes entry isolates both directions.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping

from trinet.objects import (
    LabelSelector,
    MultiNetworkPolicy,
    MultiNetworkPolicyPeer,
    MultiNetworkPolicyPort,
    Namespace,
    NetworkAttachmentDefinition,
    Pod,
)

__all__ = ["Oracle"]

Endpoint = Pod | str  # a pod, or the IP address of something that is not a pod
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if "/" in key and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", prefix):
        return False
    if "/" in key and len(prefix) > 253:
        return False
    return 0 < len(name) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name) is not None


def _valid_label_value(value: str) -> bool:
    name = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
    return value == "" or (len(value) <= 63 and re.fullmatch(name, value) is not None)


def _selector_valid(sel: LabelSelector) -> bool:
    for k, v in (sel.match_labels or {}).items():
        if not _valid_label_key(k) or not _valid_label_value(v):
            return False
    for e in sel.match_expressions or []:
        vals = e.values or []
        if not _valid_label_key(e.key) or not all(_valid_label_value(v) for v in vals):
            return False
        if e.operator in ("In", "NotIn"):
            if len(vals) == 0:
                return False
        elif e.operator in ("Exists", "DoesNotExist"):
            if len(vals) != 0:
                return False
        else:
            return False
    return True


def _selector_matches(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Assumes the selector is valid."""
    for k, v in (sel.match_labels or {}).items():
        if k not in labels or labels[k] != v:
            return False
    for e in sel.match_expressions or []:
        present = e.key in labels
        vals = e.values or []
        if e.operator == "In" and not (present and labels[e.key] in vals):
            return False
        if e.operator == "NotIn" and present and labels[e.key] in vals:
            return False
        if e.operator == "Exists" and not present:
            return False
        if e.operator == "DoesNotExist" and present:
            return False
    return True


def _port_item_valid(pi: MultiNetworkPolicyPort) -> bool:
    if pi.protocol is not None and pi.protocol.upper() not in ("TCP", "UDP", "SCTP"):
        return False
    if pi.port is None:
        return pi.end_port is None
    if isinstance(pi.port, str):
        name = pi.port
        ok_name = (
            len(name) <= 15
            and re.fullmatch(r"[a-z0-9-]+", name) is not None
            and re.search(r"[a-z]", name) is not None
            and not name.startswith("-")
            and not name.endswith("-")
            and "--" not in name
        )
        return ok_name and pi.end_port is None
    if not (1 <= pi.port <= 65535):
        return False
    return pi.end_port is None or (1 <= pi.end_port <= 65535 and pi.end_port >= pi.port)


def _cidr(text: str) -> _Net:
    """Go's net.ParseCIDR: exactly ``<address>/<decimal prefix>``, no zone, no mask form, no spaces."""
    if not re.fullmatch(r"[0-9A-Fa-f.:]+/[0-9]+", text):
        raise ValueError(text)
    return ipaddress.ip_network(text, strict=False)


def _ip_block_parts(pe: MultiNetworkPolicyPeer) -> tuple[_Net, list[_Net]] | None:
    """(cidr, excepts) when the ipBlock is valid, else None."""
    assert pe.ip_block is not None
    try:
        cidr = _cidr(pe.ip_block.cidr)
        excepts = [_cidr(e) for e in pe.ip_block.except_ or []]
    except ValueError:
        return None
    for e in excepts:
        if e.version != cidr.version or e.prefixlen <= cidr.prefixlen:
            return None
        if not int(cidr.network_address) <= int(e.network_address) <= int(cidr.broadcast_address):
            return None
    return cidr, excepts


def _peer_valid(pe: MultiNetworkPolicyPeer) -> bool:
    if pe.ip_block is not None:
        return pe.pod_selector is None and pe.namespace_selector is None and _ip_block_parts(pe) is not None
    if pe.pod_selector is None and pe.namespace_selector is None:
        return False
    return all(_selector_valid(s) for s in (pe.pod_selector, pe.namespace_selector) if s is not None)


def _address(text: object) -> _IP | None:
    """The address of a network-status ``ips`` item, prefix length stripped; None when it is not one."""
    try:
        return ipaddress.ip_address(str(text).split("/")[0].strip())
    except ValueError:
        return None


class Oracle:
    """``allowed(src, dst, protocol, port, family, network)`` over a fixed set of cluster objects."""

    def __init__(
        self,
        pods: Iterable[Pod],
        namespaces: Iterable[Namespace],
        policies: Iterable[MultiNetworkPolicy],
        nads: Iterable[NetworkAttachmentDefinition],
        network_plugins: Iterable[str] = ("macvlan",),
    ) -> None:
        self.pods = list(pods)
        self.ns_labels = {n.metadata.name: n.metadata.labels for n in namespaces}
        self.policies = list(policies)
        self.nad_type: dict[str, str | None] = {}
        for nad in nads:
            try:
                conf = json.loads(nad.spec.config)
            except (ValueError, RecursionError):  # malformed or nested too deeply: type unknown
                conf = None
            kind = None
            if isinstance(conf, dict):
                if isinstance(conf.get("plugins"), list) and conf["plugins"]:
                    first = conf["plugins"][0]
                    kind = first.get("type") if isinstance(first, dict) else None
                else:
                    kind = conf.get("type")
            self.nad_type[nad.metadata.namespace + "/" + nad.metadata.name] = kind if isinstance(kind, str) else None
        self.plugins = set(network_plugins)

    # -- pods and networks -------------------------------------------------------------------------------------

    def interfaces(self, pod: Pod) -> list[tuple[str, str, list[_IP]]]:
        """(network "ns/name", interface, addresses) of every non-default network-status entry."""
        raw = pod.metadata.annotations.get("k8s.v1.cni.cncf.io/network-status")
        if not raw:
            return []
        try:
            entries = json.loads(raw)
        except (ValueError, RecursionError):
            return []
        out = []
        for e in entries if isinstance(entries, list) else []:
            if not isinstance(e, dict) or e.get("default"):
                continue
            iface = str(e.get("interface", ""))
            if iface and (len(iface.encode()) > 15 or iface in (".", "..") or re.search(r"[/:\s]", iface)):
                continue  # no Linux interface can have this name (DECISIONS.md 4)
            name = str(e.get("name", "")).strip()
            if "/" not in name:
                name = self.requested_namespace(pod, name, iface) + "/" + name
            ips = e.get("ips")
            out.append((name, iface, [a for a in map(_address, ips if isinstance(ips, list) else []) if a]))
        return out

    @staticmethod
    def requested_namespace(pod: Pod, name: str, iface: str) -> str:
        """The namespace of a bare network-status name: that of the pod's ``networks`` item with this name (and
        this interface, when the item names one), else the pod's own (DECISIONS.md 3)."""
        raw = pod.metadata.annotations.get("k8s.v1.cni.cncf.io/networks", "").strip()
        items: list[tuple[str, str, str | None]] = []  # (namespace, name, interface)
        if any(c in raw for c in '[{"'):
            try:
                decoded = json.loads(raw)
            except (ValueError, RecursionError):
                decoded = []
            for d in decoded if isinstance(decoded, list) else []:
                if isinstance(d, dict):
                    items.append((str(d.get("namespace") or ""), str(d.get("name", "")), d.get("interface")))
        else:
            for item in filter(None, (t.strip() for t in raw.split(","))):
                ref, _, wanted = item.partition("@")
                ns, _, bare = ref.rpartition("/")
                items.append((ns, bare, wanted or None))
        for ns, bare, requested in items:
            if bare == name and requested in (None, iface):
                return ns or pod.metadata.namespace
        return pod.metadata.namespace

    def ips(self, endpoint: Endpoint, network: str, family: int) -> list[_IP]:
        if isinstance(endpoint, str):
            ip = ipaddress.ip_address(endpoint)
            return [ip] if ip.version == family else []
        return [a for (n, _, addrs) in self.interfaces(endpoint) for a in addrs if n == network and a.version == family]

    def policed_on(self, endpoint: Endpoint, network: str) -> bool:
        """A pod is policed on N if it may be a subject and has an interface on N of a supported CNI type."""
        if isinstance(endpoint, str) or endpoint.spec.host_network:
            return False
        if endpoint.status.phase in ("Succeeded", "Failed"):
            return False
        return any(
            n == network and ifname and self.nad_type.get(n) in self.plugins
            for n, ifname, _ in self.interfaces(endpoint)
        )

    def other_networks(self, pod: Pod, network: str) -> set[str]:
        """Other networks that network-status reports for the interface the pod has on ``network``: a
        contradictory status, whose interface allows nothing wherever a policy isolates it (DECISIONS.md 4)."""
        entries = [(n, i) for n, i, _ in self.interfaces(pod) if i and self.nad_type.get(n) in self.plugins]
        ifaces = {i for n, i in entries if n == network}
        return {n for n, i in entries if i in ifaces and n != network}

    # -- policies ----------------------------------------------------------------------------------------------

    def networks(self, p: MultiNetworkPolicy) -> set[str]:
        value = p.metadata.annotations.get("k8s.v1.cni.cncf.io/policy-for")
        if value is None:
            return set()
        out = set()
        for raw_item in value.split(","):
            item = raw_item.strip()
            if item:
                out.add(item if "/" in item else p.metadata.namespace + "/" + item)
        return out

    def types(self, p: MultiNetworkPolicy) -> tuple[set[str], set[str]]:
        """(isolating directions, directions whose rules count)."""
        pts = p.spec.policy_types
        if not pts:
            t = {"Ingress"} | ({"Egress"} if p.spec.egress else set())
            return t, t
        good = {v.capitalize() for v in pts if v.lower() in ("ingress", "egress")}
        invalid = any(v.lower() not in ("ingress", "egress") for v in pts)
        return ({"Ingress", "Egress"} if invalid else good), good

    def selects(self, p: MultiNetworkPolicy, pod: Pod) -> bool:
        if p.metadata.namespace != pod.metadata.namespace:
            return False
        if not _selector_valid(p.spec.pod_selector):
            return True  # fail closed: isolate the whole namespace
        return _selector_matches(p.spec.pod_selector, pod.metadata.labels)

    def rules_count(self, p: MultiNetworkPolicy, direction: str) -> bool:
        return direction in self.types(p)[1] and _selector_valid(p.spec.pod_selector)

    # -- §2.10 -------------------------------------------------------------------------------------------------

    def allowed(self, src: Endpoint, dst: Endpoint, protocol: str, port: int | None, family: int, network: str) -> bool:
        eg_ok = True
        if not isinstance(src, str) and self.policed_on(src, network):
            on = {network} | self.other_networks(src, network)
            e = [
                p
                for p in self.policies
                if self.selects(p, src) and on & self.networks(p) and "Egress" in self.types(p)[0]
            ]
            if e and len(on) > 1:
                eg_ok = False
            elif e:
                eg_ok = any(
                    self.rule_matches(r.ports, r.to, p, dst, dst, protocol, port, family, network)
                    for p in e
                    if self.rules_count(p, "Egress")
                    for r in p.spec.egress or []
                )
        in_ok = True
        if not isinstance(dst, str) and self.policed_on(dst, network):
            on = {network} | self.other_networks(dst, network)
            i = [
                p
                for p in self.policies
                if self.selects(p, dst) and on & self.networks(p) and "Ingress" in self.types(p)[0]
            ]
            if i and len(on) > 1:
                in_ok = False
            elif i:
                in_ok = any(
                    self.rule_matches(r.ports, r.from_, p, src, dst, protocol, port, family, network)
                    for p in i
                    if self.rules_count(p, "Ingress")
                    for r in p.spec.ingress or []
                )
        return eg_ok and in_ok

    def rule_matches(
        self,
        ports: list[MultiNetworkPolicyPort] | None,
        peers: list[MultiNetworkPolicyPeer] | None,
        policy: MultiNetworkPolicy,
        peer: Endpoint,
        port_owner: Endpoint,
        protocol: str,
        port: int | None,
        family: int,
        network: str,
    ) -> bool:
        ports_ok = (not ports) or any(
            _port_item_valid(pi) and self.port_item_matches(pi, port_owner, protocol, port) for pi in ports
        )
        peers_ok = (not peers) or any(
            _peer_valid(pe) and self.peer_matches(pe, policy, peer, family, network) for pe in peers
        )
        return ports_ok and peers_ok

    def peer_matches(
        self, pe: MultiNetworkPolicyPeer, policy: MultiNetworkPolicy, peer: Endpoint, family: int, network: str
    ) -> bool:
        if pe.ip_block is not None:
            parts = _ip_block_parts(pe)
            assert parts is not None
            cidr, excepts = parts
            return any(
                ip in cidr and not any(ip in e for e in excepts)
                for ip in self.ips(peer, network, family)
                if ip.version == cidr.version
            )
        if isinstance(peer, str) or peer.spec.host_network or peer.status.phase != "Running":
            return False
        if not self.ips(peer, network, family):
            return False
        if pe.namespace_selector is None:
            if peer.metadata.namespace != policy.metadata.namespace:
                return False
        elif not _selector_matches(pe.namespace_selector, self.ns_labels.get(peer.metadata.namespace, {})):
            return False
        return pe.pod_selector is None or _selector_matches(pe.pod_selector, peer.metadata.labels)

    def port_item_matches(self, pi: MultiNetworkPolicyPort, owner: Endpoint, protocol: str, port: int | None) -> bool:
        if protocol != (pi.protocol or "TCP").upper():
            return False
        if pi.port is None:
            return True
        if port is None:
            return False
        if isinstance(pi.port, int):
            return pi.port <= port <= (pi.end_port or pi.port)
        if isinstance(owner, str) or owner.spec.host_network or owner.status.phase in ("Succeeded", "Failed"):
            return False
        return any(
            cp.name == pi.port and cp.protocol == protocol and cp.container_port == port
            for c in owner.spec.containers
            for cp in c.ports or []
        )
