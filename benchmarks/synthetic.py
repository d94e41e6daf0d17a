"""Synthetic clusters for benchmarks: deterministic for a given seed and size parameters.

Pods are spread over namespaces and nodes, each attached to one or two of ``networks`` macvlan NADs with an IPv4
and an IPv6 address per attachment, labelled ``app=app<k>`` (20 apps) and ``tier``. Policies are spread over the
namespaces; each selects one app, isolates ingress and egress on one or two networks, and has ``peers`` peers per
rule, mixing podSelector, namespaceSelector + podSelector and ipBlock-with-except, with numbered, ranged and named
ports.
"""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec

from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod

__all__ = ["Cluster", "synthetic_cluster"]

APPS = 20


class Cluster(msgspec.Struct):
    pods: list[Pod]
    namespaces: list[Namespace]
    policies: list[MultiNetworkPolicy]
    nads: list[NetworkAttachmentDefinition]


def _peer(rng: random.Random, namespaces: int) -> dict[str, Any]:
    kind = rng.randrange(3)
    app = {"matchLabels": {"app": f"app{rng.randrange(APPS)}"}}
    if kind == 0:
        return {"podSelector": app}
    if kind == 1:
        return {"podSelector": app, "namespaceSelector": {"matchLabels": {"team": f"t{rng.randrange(namespaces)}"}}}
    octet = rng.randrange(1, 250)
    return {"ipBlock": {"cidr": f"10.{octet}.0.0/16", "except": [f"10.{octet}.{rng.randrange(256)}.0/24"]}}


def synthetic_cluster(
    pods: int, namespaces: int, policies: int, peers: int = 3, networks: int = 2, nodes: int = 10, seed: int = 1
) -> Cluster:
    rng = random.Random(seed)
    nets = [f"ns0/net{n}" for n in range(networks)]
    out_pods = []
    for i in range(pods):
        ns = f"ns{i % namespaces}"
        attached = rng.sample(nets, k=min(len(nets), rng.choice((1, 2))))
        status = [
            {"name": "pod-network", "interface": "eth0", "ips": [f"192.168.{i >> 8 & 255}.{i & 255}"], "default": True}
        ]
        for net in attached:
            n = nets.index(net) + 1
            status.append(
                {"name": net, "interface": f"net{n}", "ips": [f"10.{n}.{i >> 8 & 255}.{i & 255}", f"fd00:{n}::{i:x}"]}
            )
        out_pods.append({
            "metadata": {"namespace": ns, "name": f"pod{i}", "uid": f"uid{i}",
                         "labels": {"app": f"app{rng.randrange(APPS)}", "tier": rng.choice(("web", "db"))},
                         "annotations": {"k8s.v1.cni.cncf.io/network-status": json.dumps(status),
                                         "k8s.v1.cni.cncf.io/networks": ",".join(attached)}},
            "spec": {"nodeName": f"node{i % nodes}", "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": rng.choice((80, 8080)), "protocol": "TCP"}]}]},
            "status": {"phase": "Running"},
        })  # fmt: skip
    out_policies = []
    for j in range(policies):
        ns = f"ns{j % namespaces}"
        rule_ports = [{"port": 443}, {"port": 8000, "endPort": 8100}, {"port": "http"}, {"protocol": "UDP", "port": 53}]
        policy_for = ",".join(rng.sample(nets, k=min(2, len(nets))))
        out_policies.append({
            "metadata": {"namespace": ns, "name": f"policy{j}",
                         "annotations": {"k8s.v1.cni.cncf.io/policy-for": policy_for}},
            "spec": {"podSelector": {"matchLabels": {"app": f"app{rng.randrange(APPS)}"}},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [_peer(rng, namespaces) for _ in range(peers)], "ports": rule_ports}],
                     "egress": [{"to": [_peer(rng, namespaces) for _ in range(peers)], "ports": rule_ports}]},
        })  # fmt: skip
    return Cluster(
        pods=msgspec.convert(out_pods, list[Pod]),
        namespaces=[
            msgspec.convert({"metadata": {"name": f"ns{k}", "labels": {"team": f"t{k}"}}}, Namespace)
            for k in range(namespaces)
        ],
        policies=msgspec.convert(out_policies, list[MultiNetworkPolicy]),
        nads=[
            msgspec.convert(
                {"metadata": {"namespace": "ns0", "name": f"net{n}"},
                 "spec": {"config": json.dumps({"cniVersion": "0.3.1", "type": "macvlan"})}},
                NetworkAttachmentDefinition,
            )
            for n in range(networks)
        ],
    )  # fmt: skip
