"""The catalogue's expectations checked against `trinet.policy.oracle` (semantics.md §2.10 and DECISIONS.md in
executable form), on the objects the API server actually holds. This needs no daemon: it catches a wrong
hand-written matrix before any packet is sent.

A flow between two networks (NADs sharing one segment) is judged as the data plane sees it: the source's egress
on the source's network and the destination's ingress on the destination's network. The oracle knows nothing of
daemon flags: cells whose verdict depends on `--accept-icmp*` (ICMP) or on custom rule files are not judged.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from e2e.harness.cluster import Cluster
from e2e.harness.matrix import Cell
from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod
from trinet.policy.oracle import Oracle

_LISTS = {
    "pods": ("/api/v1/pods", Pod),
    "namespaces": ("/api/v1/namespaces", Namespace),
    "policies": ("/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies", MultiNetworkPolicy),
    "nads": ("/apis/k8s.cni.cncf.io/v1/network-attachment-definitions", NetworkAttachmentDefinition),
}


def _list(cluster: Cluster, kind: str) -> list[object]:
    path, type_ = _LISTS[kind]
    response = cluster.api.client.get(path)
    response.raise_for_status()
    return [msgspec.json.decode(msgspec.json.encode(item), type=type_) for item in response.json()["items"]]


def plugins_of(args: list[str]) -> list[str]:
    for i, arg in enumerate(args):
        if arg == "--network-plugins" and i + 1 < len(args):
            return args[i + 1].split(",")
        if arg.startswith("--network-plugins="):
            return arg.split("=", 1)[1].split(",")
    return ["macvlan"]


def blind_to(args: list[str]) -> set[str]:
    """Protocols (or "*") whose verdicts depend on daemon flags the oracle does not model."""
    if any(a.startswith("--custom-") for a in args):
        return {"*"}
    if any(a.startswith("--accept-icmp") for a in args):
        return {"icmp"}
    return set()


def judge(cluster: Cluster, cells: Mapping[Cell, bool], network: str | list[str], args: list[str]) -> dict[Cell, bool]:
    """The oracle's verdict for every cell it can judge under daemon arguments `args`."""
    pods: dict[str, Pod] = {
        f"{p.metadata.namespace}/{p.metadata.name}": p for p in _list(cluster, "pods") if isinstance(p, Pod)
    }
    oracle = Oracle(
        pods.values(),
        _list(cluster, "namespaces"),  # type: ignore[arg-type]
        _list(cluster, "policies"),  # type: ignore[arg-type]
        _list(cluster, "nads"),  # type: ignore[arg-type]
        network_plugins=plugins_of(args),
    )
    blind = blind_to(args)
    verdicts: dict[Cell, bool] = {}
    for cell in cells:
        if "*" in blind or cell.proto in blind:
            continue
        src_att, dst_att = cluster.pods[cell.src].on(network), cluster.pods[cell.dst].on(network)
        assert src_att is not None and dst_att is not None
        proto, port = cell.proto.upper(), (None if cell.proto == "icmp" else cell.port)
        src, dst = pods[cell.src], pods[cell.dst]
        verdicts[cell] = all(
            oracle.allowed(src, dst, proto, port, cell.family, net) for net in {src_att.network, dst_att.network}
        )
    return verdicts
