"""``SnapshotCache``: pod changes are patched into the snapshot, anything else rebuilds it; both compile alike."""

from __future__ import annotations

import logging
from typing import TypeVar

import msgspec
import pytest

from tests.unit.policy.builders import nad, namespace, pod, policy
from trinet.daemon.snapshots import PATCH_LIMIT, SnapshotCache
from trinet.kube import ClusterStore
from trinet.logs import event_fields
from trinet.objects import MultiNetworkPolicy, Namespace, Pod
from trinet.policy import Snapshot, compile

T = TypeVar("T", Pod, MultiNetworkPolicy, Namespace)

SERVER = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])])
POLICY = policy("ns/p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [{"from": [{"podSelector": {}}]}]})


def _versioned(obj: T, version: str) -> T:
    return msgspec.structs.replace(obj, metadata=msgspec.structs.replace(obj.metadata, resource_version=version))


def _peer(i: int, version: str = "1") -> Pod:
    address = f"10.1.{1 + i // 250}.{i % 250}"
    return _versioned(pod(f"ns/a{i}", {"app": "a"}, [("ns/net1", "net1", [address])]), version)


@pytest.fixture
def store() -> ClusterStore:
    store = ClusterStore()
    store.namespaces.upsert(namespace("ns"))
    store.nads.upsert(nad("ns/net1"))
    store.policies.upsert(POLICY)
    store.pods.upsert(_versioned(SERVER, "1"))
    return store


def _from_scratch(store: ClusterStore) -> Snapshot:
    return Snapshot(store.pods.values(), store.namespaces.values(), store.policies.values(), store.nads.values())


def _peers(snapshot: Snapshot) -> set[int]:
    ruleset = compile(snapshot, SERVER)
    return {e[0][0] & 0xFFFF for s in ruleset.table.sets if s.key == ("ipv4_addr",) for e in s.elements}


def test_pod_changes_are_patched_into_the_same_lineage(store: ClusterStore) -> None:
    cache = SnapshotCache(store)
    first = cache.current()
    assert _peers(first) == {0x0001}
    for i in (2, 3):
        change = store.pods.upsert(_peer(i))
        assert change is not None
        cache.changed(change)
    deleted = store.pods.delete("ns/a2")
    assert deleted is not None
    cache.changed(deleted)
    patched = cache.current()
    assert patched is not first and patched.policies is first.policies  # patched, not rebuilt
    assert _peers(patched) == _peers(_from_scratch(store)) == {0x0001, 0x0103}
    assert cache.current() is patched  # nothing changed since


def test_any_other_change_rebuilds(store: ClusterStore) -> None:
    cache = SnapshotCache(store)
    first = cache.current()
    change = store.policies.upsert(_versioned(policy("ns/p", {"podSelector": {}}), "2"))
    assert change is not None
    cache.changed(change)
    assert cache.current().policies is not first.policies


def test_a_burst_of_pod_changes_rebuilds_once(store: ClusterStore) -> None:
    cache = SnapshotCache(store)
    first = cache.current()
    for i in range(PATCH_LIMIT + 1):  # distinct pods: what a patch costs grows with them
        change = store.pods.upsert(_peer(i))
        assert change is not None
        cache.changed(change)
    rebuilt = cache.current()
    assert rebuilt.policies is not first.policies
    assert _peers(rebuilt) == _peers(_from_scratch(store))


def test_a_failed_patch_is_logged_and_rebuilt(
    store: ClusterStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the patch must not stop enforcement: the snapshot is rebuilt from the store and the error logged."""
    cache = SnapshotCache(store)
    cache.current()

    def broken(self: Snapshot, changed: object) -> Snapshot:
        raise ValueError("patch bug")

    monkeypatch.setattr(Snapshot, "with_pods", broken)
    change = store.pods.upsert(_peer(5))
    assert change is not None
    cache.changed(change)
    with caplog.at_level(logging.ERROR, logger="trinet.daemon"):
        assert _peers(cache.current()) == {0x0001, 0x0105}
    (record,) = [r for r in caplog.records if r.getMessage() == "snapshot-patch-failed"]
    assert "patch bug" in event_fields(record)["error"]


def test_a_rebuild_that_raises_is_tried_again(store: ClusterStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy change must not be lost because the first rebuild after it failed (review F1)."""
    cache = SnapshotCache(store)
    cache.current()
    change = store.policies.upsert(_versioned(policy("ns/p", {"podSelector": {}}), "2"))
    assert change is not None
    cache.changed(change)
    real_init = Snapshot.__init__
    calls = []

    def failing_once(self: Snapshot, *args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("once")
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Snapshot, "__init__", failing_once)
    with pytest.raises(MemoryError):
        cache.current()
    served = cache.current().policies["ns/p"].subjects
    assert len(calls) == 2
    assert served == _from_scratch(store).policies["ns/p"].subjects


def test_a_namespace_change_that_keeps_its_labels_changes_nothing(store: ClusterStore) -> None:
    cache = SnapshotCache(store)
    first = cache.current()
    ns = store.namespaces.get("ns")
    assert ns is not None
    change = store.namespaces.upsert(_versioned(ns, "2"))
    assert change is not None
    cache.changed(change)
    assert cache.current() is first
    relabelled = msgspec.structs.replace(ns, metadata=msgspec.structs.replace(ns.metadata, labels={"team": "b"}))
    change = store.namespaces.upsert(_versioned(relabelled, "3"))
    assert change is not None
    cache.changed(change)
    assert cache.current() is not first


def test_a_pod_change_the_snapshot_already_holds_makes_no_new_snapshot(store: ClusterStore) -> None:
    """The change records of a rebuild's own reads: no new snapshot, so compile's memo is kept (review F3)."""
    cache = SnapshotCache(store)
    change = store.pods.upsert(_peer(7))
    first = cache.current()  # rebuilt after the upsert: it already holds the pod
    assert change is not None
    cache.changed(change)
    assert cache.current() is first
