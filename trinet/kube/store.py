"""The in-memory cluster state the reflectors maintain, with indexes, change records and health.

Objects are never mutated; an unchanged object stays the *same* Python object across relists (identity), so
that consumers can reuse work by `is`. The store is written only by the reflectors and read in the same trio
thread: no locks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod

__all__ = ["Change", "ClusterStore", "PodStore", "ReflectorHealth", "ResourceStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """One change of one object: old None = added, new None = deleted. `resource` names the ClusterStore attribute."""

    resource: str
    key: str
    old: T | None
    new: T | None


@dataclass(frozen=True, slots=True)
class ReflectorHealth:
    synced: bool
    seconds_since_last_event: float
    relists: int


@dataclass(slots=True)
class HealthState:
    """Mutable health of one reflector, written by it; `ClusterStore.health()` hands out frozen copies."""

    synced: bool = False
    last_event: float = field(default_factory=time.monotonic)
    relists: int = 0

    def saw_event(self) -> None:
        self.last_event = time.monotonic()


Indexer = Callable[[Any], Iterable[str]]


class ResourceStore(Generic[T]):
    """Objects of one resource by key, plus named secondary indexes (index value -> {key: object})."""

    def __init__(self, resource: str, key: Callable[[T], str], indexers: Mapping[str, Indexer] | None = None) -> None:
        self.resource = resource
        self._key = key
        self._items: dict[str, T] = {}
        self._indexers = dict(indexers or {})
        self._indexes: dict[str, dict[str, dict[str, T]]] = {name: {} for name in self._indexers}
        self._index_values: dict[str, tuple[tuple[str, ...], ...]] = {}

    # -- reading -----------------------------------------------------------------------------------------------

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def values(self) -> Iterable[T]:
        return self._items.values()

    def keys(self) -> KeysView[str]:
        return self._items.keys()

    def items(self) -> Iterable[tuple[str, T]]:
        return self._items.items()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def by_index(self, index: str, value: str) -> Iterable[T]:
        return self._indexes[index].get(value, {}).values()

    # -- writing (reflectors only) -----------------------------------------------------------------------------

    def key_of(self, obj: T) -> str:
        return self._key(obj)

    def upsert(self, obj: T) -> Change[T] | None:
        """Store `obj`; None if an equal object (same resourceVersion) is already stored (which is kept)."""
        key = self._key(obj)
        old = self._items.get(key)
        if old is not None and _same_version(old, obj):
            return None
        self._unindex(key)
        self._items[key] = obj
        self._index(key, obj)
        return Change(self.resource, key, old, obj)

    def delete(self, key: str) -> Change[T] | None:
        old = self._items.pop(key, None)
        if old is None:
            return None
        self._unindex(key)
        return Change(self.resource, key, old, None)

    def replace(self, objects: Iterable[T]) -> list[Change[T]]:
        """Make the store hold exactly `objects`; the true deltas (deletions included), unchanged objects kept."""
        fresh: dict[str, T] = {}
        for obj in objects:
            fresh[self._key(obj)] = obj
        changes = [c for key in list(self._items) if key not in fresh if (c := self.delete(key)) is not None]
        changes.extend(c for obj in fresh.values() if (c := self.upsert(obj)) is not None)
        return changes

    def _index(self, key: str, obj: T) -> None:
        values = tuple(tuple(indexer(obj)) for indexer in self._indexers.values())
        self._index_values[key] = values  # kept, so that un-indexing does not recompute (e.g. re-parse JSON)
        for index, keys in zip(self._indexes.values(), values, strict=True):
            for value in keys:
                index.setdefault(value, {})[key] = obj

    def _unindex(self, key: str) -> None:
        values = self._index_values.pop(key, None)
        if values is None:
            return
        for index, keys in zip(self._indexes.values(), values, strict=True):
            for value in keys:
                bucket = index.get(value)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del index[value]


def _same_version(old: Any, new: Any) -> bool:
    rv: str = new.metadata.resource_version
    return bool(rv) and rv == old.metadata.resource_version


def _namespaced_key(obj: Any) -> str:
    return f"{obj.metadata.namespace}/{obj.metadata.name}"


def _name_key(obj: Any) -> str:
    return str(obj.metadata.name)


def _namespace_of(obj: Any) -> Iterable[str]:
    return (obj.metadata.namespace,)


class _NetworkStatus(msgspec.Struct):
    ips: list[str] | None = None


_network_status_decoder = msgspec.json.Decoder(list[_NetworkStatus])


def pod_ips(pod: Pod) -> set[str]:
    """Every IP of a pod: status.podIP(s) and the secondary-network IPs of its network-status annotation."""
    ips = {p.ip for p in pod.status.pod_ips if p.ip}
    if pod.status.pod_ip:
        ips.add(pod.status.pod_ip)
    raw = pod.metadata.annotations.get(NETWORK_STATUS)
    if raw:
        try:
            for entry in _network_status_decoder.decode(raw):
                if entry.ips:
                    ips.update(entry.ips)
        except msgspec.DecodeError:
            pass  # malformed annotations are reported by trinet.policy, which reads them for real
    return ips


class PodStore(ResourceStore[Pod]):
    def __init__(self) -> None:
        super().__init__(
            "pods",
            _namespaced_key,
            {"node": lambda p: (p.spec.node_name,), "namespace": _namespace_of, "ip": pod_ips},
        )

    def by_node(self, node_name: str) -> Iterable[Pod]:
        return self.by_index("node", node_name)

    def by_namespace(self, namespace: str) -> Iterable[Pod]:
        return self.by_index("namespace", namespace)

    def by_ip(self, ip: str) -> Iterable[Pod]:
        return self.by_index("ip", ip)


class NamespaceStore(ResourceStore[Namespace]):
    def __init__(self) -> None:
        super().__init__(
            "namespaces", _name_key, {"label": lambda n: (f"{k}={v}" for k, v in n.metadata.labels.items())}
        )

    def by_label(self, key: str, value: str) -> Iterable[Namespace]:
        return self.by_index("label", f"{key}={value}")


class NamespacedStore(ResourceStore[T]):
    def __init__(self, resource: str) -> None:
        super().__init__(resource, _namespaced_key, {"namespace": _namespace_of})

    def by_namespace(self, namespace: str) -> Iterable[T]:
        return self.by_index("namespace", namespace)


class ClusterStore:
    """The four stores the daemon reads, and the health of the reflectors that fill them."""

    def __init__(self) -> None:
        self.pods = PodStore()
        self.namespaces = NamespaceStore()
        self.policies: NamespacedStore[MultiNetworkPolicy] = NamespacedStore("policies")
        self.nads: NamespacedStore[NetworkAttachmentDefinition] = NamespacedStore("nads")
        self._health: dict[str, HealthState] = {}

    def store_for(self, resource: str) -> ResourceStore[Any]:
        store: ResourceStore[Any] = getattr(self, resource)
        return store

    def health_state(self, resource: str) -> HealthState:
        return self._health.setdefault(resource, HealthState())

    def health(self) -> dict[str, ReflectorHealth]:
        now = time.monotonic()
        return {name: ReflectorHealth(h.synced, now - h.last_event, h.relists) for name, h in self._health.items()}
