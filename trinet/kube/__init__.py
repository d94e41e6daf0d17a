"""trinet.kube: list+watch access to the Kubernetes API on trio, httpx and msgspec (no netlink here).

    config = load_config(path_or_None)            # None: in-cluster
    async with ApiClient(config) as api:
        store = ClusterStore()
        send, receive = trio.open_memory_channel[Change](1000)
        await nursery.start(watch_cluster, api, store, send)   # store complete from here on
        async for change in receive: ...

The API object types are those of `trinet.objects`. See `reflector.py` for the watch protocol handling.
"""

from trinet.kube.client import ApiClient, ApiError
from trinet.kube.config import KubeConfig, KubeConfigError, load_config
from trinet.kube.events import EventWriter
from trinet.kube.reflector import Reflector, ReflectorOptions, ReflectorStats
from trinet.kube.resources import NADS, NAMESPACES, PODS, POLICIES, RESOURCES, Resource
from trinet.kube.store import Change, ClusterStore, ReflectorHealth, ResourceStore
from trinet.kube.watch import watch_cluster

__all__ = [
    "NADS",
    "NAMESPACES",
    "PODS",
    "POLICIES",
    "RESOURCES",
    "ApiClient",
    "ApiError",
    "Change",
    "ClusterStore",
    "EventWriter",
    "KubeConfig",
    "KubeConfigError",
    "Reflector",
    "ReflectorHealth",
    "ReflectorOptions",
    "ReflectorStats",
    "Resource",
    "ResourceStore",
    "load_config",
    "watch_cluster",
]
