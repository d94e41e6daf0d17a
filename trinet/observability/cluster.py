"""Read the whole cluster once (one paginated list of each watched resource) for ``trinet render``/``explain``."""

from __future__ import annotations

from typing import Any, NamedTuple

import trio

from trinet.kube.client import ApiClient
from trinet.kube.config import KubeConfig
from trinet.kube.resources import NADS, NAMESPACES, PODS, POLICIES, Resource
from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod
from trinet.policy import Snapshot
from trinet.policy.oracle import Oracle

__all__ = ["ClusterObjects", "read_cluster"]

_PAGE = "500"


class ClusterObjects(NamedTuple):
    pods: list[Pod]
    namespaces: list[Namespace]
    policies: list[MultiNetworkPolicy]
    nads: list[NetworkAttachmentDefinition]

    def snapshot(self) -> Snapshot:
        return Snapshot(self.pods, self.namespaces, self.policies, self.nads)

    def oracle(self, network_plugins: frozenset[str]) -> Oracle:
        return Oracle(self.pods, self.namespaces, self.policies, self.nads, sorted(network_plugins))


async def _list(api: ApiClient, resource: Resource[Any]) -> list[Any]:
    items: list[Any] = []
    params = {"limit": _PAGE}
    while True:
        body = await api.request("GET", resource.collection_path(), params=params)
        meta, page = resource.decode_list(body)
        items += page
        if not meta.continue_:
            return items
        params = {"limit": _PAGE, "continue": meta.continue_}


async def _read(config: KubeConfig) -> ClusterObjects:
    async with ApiClient(config) as api:
        return ClusterObjects(
            await _list(api, PODS), await _list(api, NAMESPACES), await _list(api, POLICIES), await _list(api, NADS)
        )


def read_cluster(config: KubeConfig) -> ClusterObjects:
    """Every pod, namespace, MultiNetworkPolicy and NetworkAttachmentDefinition (raises ``ApiError``/``OSError``
    when the API server cannot be read)."""
    return trio.run(_read, config)
