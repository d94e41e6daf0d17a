"""Kubernetes API objects as msgspec Structs, trimmed to the fields trinet reads.

One definition serves `trinet.kube` (decoding) and `trinet.policy` (pure: this module imports no I/O code).

The shapes follow the real JSON of the Kubernetes API (camelCase keys, ``metadata``/``spec``/``status``), so the
kube client can decode list and watch payloads straight into them. Unknown fields are ignored by msgspec. Nothing
here is validated beyond JSON types: the CRD validates nothing, so validation happens at consumption time
(``validation.py``).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Container",
    "ContainerPort",
    "IPBlock",
    "LabelSelector",
    "LabelSelectorRequirement",
    "MultiNetworkPolicy",
    "MultiNetworkPolicyEgressRule",
    "MultiNetworkPolicyIngressRule",
    "MultiNetworkPolicyPeer",
    "MultiNetworkPolicyPort",
    "MultiNetworkPolicySpec",
    "Namespace",
    "NetworkAttachmentDefinition",
    "NetworkAttachmentDefinitionSpec",
    "ObjectMeta",
    "Pod",
    "PodIP",
    "PodSpec",
    "PodStatus",
]


class _Obj(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True, gc=False):
    """Base: camelCase JSON keys, keyword-only construction. Treat instances as immutable.

    ``gc=False``: API objects are trees (they never reference themselves), so the cyclic GC need not track them;
    with 10,000 pods held this triples decode-and-keep throughput (benchmarks/bench_kube_sync.py).
    """


class ObjectMeta(_Obj):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    deletion_timestamp: str | None = None
    resource_version: str = ""
    creation_timestamp: str = ""


class LabelSelectorRequirement(_Obj):
    key: str
    operator: str
    values: list[str] | None = None


class LabelSelector(_Obj):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class IPBlock(_Obj):
    cidr: str = ""
    except_: list[str] | None = msgspec.field(default=None, name="except")


class MultiNetworkPolicyPeer(_Obj):
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None


class MultiNetworkPolicyPort(_Obj):
    protocol: str | None = None
    port: int | str | None = None
    end_port: int | None = None


class MultiNetworkPolicyIngressRule(_Obj):
    ports: list[MultiNetworkPolicyPort] | None = None
    from_: list[MultiNetworkPolicyPeer] | None = msgspec.field(default=None, name="from")


class MultiNetworkPolicyEgressRule(_Obj):
    ports: list[MultiNetworkPolicyPort] | None = None
    to: list[MultiNetworkPolicyPeer] | None = None


class MultiNetworkPolicySpec(_Obj):
    pod_selector: LabelSelector = msgspec.field(default_factory=LabelSelector)
    ingress: list[MultiNetworkPolicyIngressRule] | None = None
    egress: list[MultiNetworkPolicyEgressRule] | None = None
    policy_types: list[str] | None = None


class MultiNetworkPolicy(_Obj):
    """k8s.cni.cncf.io MultiNetworkPolicy; v1beta1 (with ``endPort`` since v1.0.1) and v1beta2 decode alike."""

    metadata: ObjectMeta
    spec: MultiNetworkPolicySpec = msgspec.field(default_factory=MultiNetworkPolicySpec)
    api_version: str = "k8s.cni.cncf.io/v1beta1"
    kind: str = "MultiNetworkPolicy"


class ContainerPort(_Obj):
    container_port: int
    name: str | None = None
    protocol: str = "TCP"


class Container(_Obj):
    name: str = ""
    ports: list[ContainerPort] | None = None


class PodSpec(_Obj):
    node_name: str = ""
    host_network: bool = False
    containers: list[Container] = []


class PodIP(_Obj):
    ip: str = ""


class PodStatus(_Obj):
    phase: str = ""
    pod_ip: str = msgspec.field(default="", name="podIP")
    pod_ips: list[PodIP] = msgspec.field(default_factory=list, name="podIPs")


class Pod(_Obj):
    metadata: ObjectMeta
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)


class Namespace(_Obj):
    metadata: ObjectMeta


class NetworkAttachmentDefinitionSpec(_Obj):
    config: str = ""


class NetworkAttachmentDefinition(_Obj):
    metadata: ObjectMeta
    spec: NetworkAttachmentDefinitionSpec = msgspec.field(default_factory=NetworkAttachmentDefinitionSpec)
