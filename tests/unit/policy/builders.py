"""Builders for API objects and a harness that checks compiled rulesets against the oracle, flow by flow."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec
from hypothesis import HealthCheck, settings

from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, ObjectMeta, Pod
from trinet.policy import CompileOptions, Packet, PodRuleset, Snapshot, compile, evaluate
from trinet.policy.oracle import Oracle

PROTO = {"TCP": 6, "UDP": 17, "SCTP": 132, "ICMP": 1}

# Hypothesis settings of the policy property tests, applied per test so that no other package's tests change:
# fast by default (the unit suite stays well under a minute); TRINET_HYPOTHESIS_PROFILE=heavy digs deep.
HEAVY = os.environ.get("TRINET_HYPOTHESIS_PROFILE") == "heavy"
property_settings = settings(
    max_examples=5000 if HEAVY else 300,
    deadline=None,
    suppress_health_check=list(HealthCheck) if HEAVY else [HealthCheck.too_slow],
)


def nad(ref: str, cni_type: str = "macvlan", conflist: bool = False) -> NetworkAttachmentDefinition:
    ns, name = ref.split("/")
    config: dict[str, Any] = {"cniVersion": "0.3.1", "name": name}
    if conflist:
        config["plugins"] = [{"type": cni_type}, {"type": "tuning"}]
    else:
        config["type"] = cni_type
    return msgspec.convert(
        {"metadata": {"namespace": ns, "name": name}, "spec": {"config": json.dumps(config)}},
        NetworkAttachmentDefinition,
    )


def namespace(name: str, **labels: str) -> Namespace:
    return Namespace(metadata=ObjectMeta(name=name, labels={"kubernetes.io/metadata.name": name, **labels}))


def pod(
    ref: str,
    labels: dict[str, str] | None = None,
    nets: Sequence[tuple[str, str, Sequence[str]]] = (),
    *,
    phase: str = "Running",
    host_network: bool = False,
    ports: Sequence[tuple[str, str, int]] = (),
    networks: str | None = None,
    extra_status: Sequence[dict[str, Any]] = (),
) -> Pod:
    """``nets``: (status name, interface, ips) per attachment; a default-network entry is always added first."""
    ns, name = ref.split("/")
    status = [{"name": "kindnet", "interface": "eth0", "ips": ["192.168.0.1"], "default": True}]
    status += [{"name": n, "interface": i, "ips": list(ips)} for n, i, ips in nets]
    status += list(extra_status)
    annotations = {"k8s.v1.cni.cncf.io/network-status": json.dumps(status)}
    annotations["k8s.v1.cni.cncf.io/networks"] = (
        networks if networks is not None else ",".join(f"{n}@{i}" for n, i, _ in nets)
    )
    containers = [{"name": "c", "ports": [{"name": n, "protocol": p, "containerPort": c} for n, p, c in ports]}]
    return msgspec.convert(
        {
            "metadata": {
                "namespace": ns,
                "name": name,
                "uid": f"uid-{ns}-{name}",
                "labels": labels or {},
                "annotations": annotations,
            },
            "spec": {"nodeName": "node1", "hostNetwork": host_network, "containers": containers},
            "status": {"phase": phase},
        },
        Pod,
    )


def policy(ref: str, spec: dict[str, Any], policy_for: str | None = "net1") -> MultiNetworkPolicy:
    ns, name = ref.split("/")
    annotations = {} if policy_for is None else {"k8s.v1.cni.cncf.io/policy-for": policy_for}
    spec = {"podSelector": {}, **spec}
    return msgspec.convert(
        {"metadata": {"namespace": ns, "name": name, "annotations": annotations}, "spec": spec}, MultiNetworkPolicy
    )


class World:
    """A cluster; ``allowed`` answers from the compiled rulesets and asserts the oracle agrees."""

    def __init__(
        self,
        pods: Iterable[Pod] = (),
        policies: Iterable[MultiNetworkPolicy] = (),
        namespaces: Iterable[Namespace] = (),
        nads: Iterable[NetworkAttachmentDefinition] = (),
        options: CompileOptions | None = None,
    ) -> None:
        self.pods = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in pods}
        self.policies = list(policies)
        known = {n.metadata.name for n in namespaces}
        extra = {p.metadata.namespace for p in self.pods.values()} - known
        self.namespaces = [*namespaces, *(namespace(n) for n in sorted(extra))]
        self.nads = list(nads)
        self.options = options or CompileOptions()
        self.snapshot = Snapshot(self.pods.values(), self.namespaces, self.policies, self.nads)
        self._compiled: dict[str, PodRuleset] = {}
        self.oracle = Oracle(
            self.pods.values(), self.namespaces, self.policies, self.nads, self.options.network_plugins
        )

    def __repr__(self) -> str:
        """The whole cluster as JSON, so that a falsifying example can be read and replayed."""
        objects = {
            "pods": self.pods,
            "policies": self.policies,
            "namespaces": self.namespaces,
            "nads": self.nads,
        }
        return msgspec.json.format(msgspec.json.encode(objects).decode(), indent=1)

    def ruleset(self, ref: str) -> PodRuleset:
        found = self._compiled.get(ref)
        if found is None:
            found = self._compiled[ref] = compile(self.snapshot, self.pods[ref], self.options)
        return found

    def has_address(self, ref: str, network: str, family: int) -> bool:
        """Can a flow of ``family`` on ``network`` start or end at ``ref`` (an address, or a pod attached there)?"""
        endpoint = self.endpoint(ref)
        if isinstance(endpoint, str):
            return ipaddress.ip_address(endpoint).version == family
        return self._address(endpoint, network, family) is not None

    def endpoint(self, ref: str) -> Pod | str:
        return self.pods.get(ref) or ref

    # Endpoints are addressed through the oracle's reading of network-status (independent of compile()).
    def _ifname(self, p: Pod, network: str) -> str | None:
        return next((i for n, i, _ in self.oracle.interfaces(p) if n == network), None)

    def _address(self, endpoint: Pod | str, network: str, family: int) -> int | None:
        if isinstance(endpoint, str):
            return int(ipaddress.ip_address(endpoint))
        found = self.oracle.ips(endpoint, network, family)
        return int(found[0]) if found else None

    def compiled(
        self, src: str, dst: str, protocol: str, port: int | None, family: int, network: str, icmp_type: int = 8
    ) -> bool:
        s, d = self.endpoint(src), self.endpoint(dst)
        saddr, dst_ip = self._address(s, network, family), self._address(d, network, family)
        assert saddr is not None and dst_ip is not None, f"{src} -> {dst}: no v{family} address on {network}"
        number = PROTO[protocol] if not (protocol == "ICMP" and family == 6) else 58
        fam: Literal[4, 6] = 4 if family == 4 else 6
        verdicts = []
        for endpoint, hook in ((s, "output"), (d, "input")):
            if isinstance(endpoint, str):
                continue
            ifname = self._ifname(endpoint, network)
            if ifname is None:
                continue
            packet = Packet(
                hook=hook,  # type: ignore[arg-type]
                ifname=ifname,
                family=fam,
                saddr=saddr,
                daddr=dst_ip,
                protocol=number,
                sport=None if number in (1, 58) else 40000,
                dport=port,
                icmp_type=icmp_type if number in (1, 58) else None,
            )
            ref = f"{endpoint.metadata.namespace}/{endpoint.metadata.name}"
            verdicts.append(evaluate(self.ruleset(ref), packet))
        return all(v == "accept" for v in verdicts)

    def allowed(
        self,
        src: str,
        dst: str,
        protocol: str = "TCP",
        port: int | None = 80,
        family: int = 4,
        network: str = "ns/net1",
    ) -> bool:
        got = self.compiled(src, dst, protocol, port, family, network)
        want = self.oracle.allowed(self.endpoint(src), self.endpoint(dst), protocol, port, family, network)
        assert got == want, f"compiled {got} but oracle {want}: {src}->{dst} {protocol}/{port} v{family} on {network}"
        return got
