"""The reflector and watch_cluster against the real kube-apiserver: paginated initial list, ordered changes."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from tests.kube.helpers import (
    MNP,
    NAD,
    check,
    create_many,
    create_namespace,
    create_pod,
    delete_pod,
    nad_body,
    patch,
    pod_body,
    policy_body,
)
from trinet.kube import PODS, ApiClient, Change, ClusterStore, Reflector, ReflectorOptions, watch_cluster
from trinet.objects import Pod

FAST = ReflectorOptions(page_size=100, watch_list=False, inactivity_timeout=10, watch_timeout=(20, 30))


async def receive(channel: trio.MemoryReceiveChannel[Change[Any]], n: int, timeout: float = 20) -> list[Change[Any]]:
    out: list[Change[Any]] = []
    with trio.fail_after(timeout):
        while len(out) < n:
            out.append(await channel.receive())
    return out


async def receive_until_deleted(
    channel: trio.MemoryReceiveChannel[Change[Any]], keys: set[str], timeout: float = 20
) -> list[Change[Any]]:
    out: list[Change[Any]] = []
    pending = set(keys)
    with trio.fail_after(timeout):
        while pending:
            change = await channel.receive()
            out.append(change)
            if change.new is None:
                pending.discard(change.key)
    return out


async def test_initial_list_across_pages_then_changes_in_order(admin: httpx.AsyncClient, api: ApiClient) -> None:
    ns = await create_namespace(admin)
    await create_many(
        admin,
        f"/api/v1/namespaces/{ns}/pods",
        [pod_body(f"p{i}", ip=f"10.1.{i // 250}.{i % 250}") for i in range(1500)],
    )
    store = ClusterStore()
    send, receive_channel = trio.open_memory_channel[Change[Any]](0)
    reflector = Reflector(PODS, api, store, send, field_selector=f"metadata.namespace={ns}", options=FAST)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reflector.run)
        with trio.fail_after(30):
            await reflector.synced.wait()
        assert len(store.pods) == 1500
        assert reflector.stats.lists == 15  # 100 per page
        initial = await receive(receive_channel, 1500)
        assert {c.key for c in initial} == {f"{ns}/p{i}" for i in range(1500)}
        assert all(c.old is None and c.resource == "pods" for c in initial)
        assert store.pods.get(f"{ns}/p7") is initial[[c.key for c in initial].index(f"{ns}/p7")].new
        assert [p.metadata.name for p in store.pods.by_ip("10.1.0.7")] == ["p7"]
        assert len(list(store.pods.by_node("node-a"))) == 1500
        assert len(list(store.pods.by_namespace(ns))) == 1500

        await create_pod(admin, ns, pod_body("x", labels={"v": "1"}))
        await patch(admin, f"/api/v1/namespaces/{ns}/pods/x", {"metadata": {"labels": {"v": "2"}}})
        await patch(admin, f"/api/v1/namespaces/{ns}/pods/p3", {"metadata": {"labels": {"touched": "yes"}}})
        await delete_pod(admin, ns, "x")
        await delete_pod(admin, ns, "p4")
        changes = await receive_until_deleted(receive_channel, {f"{ns}/x", f"{ns}/p4"})
        # a deletion may first mark the pod (deletionTimestamp: MODIFIED); drop those marks from the sequence
        changes = [c for c in changes if c.new is None or c.new.metadata.deletion_timestamp is None]
        summary = [(c.key, c.old is None, c.new is None) for c in changes]
        assert summary == [
            (f"{ns}/x", True, False),
            (f"{ns}/x", False, False),
            (f"{ns}/p3", False, False),
            (f"{ns}/x", False, True),
            (f"{ns}/p4", False, True),
        ]
        assert changes[1].old.metadata.labels == {"v": "1"}  # type: ignore[union-attr]
        assert changes[1].new.metadata.labels == {"v": "2"}  # type: ignore[union-attr]
        assert changes[0].new is changes[1].old
        assert store.pods.get(f"{ns}/x") is None and store.pods.get(f"{ns}/p4") is None
        assert store.pods.get(f"{ns}/p3").metadata.labels["touched"] == "yes"  # type: ignore[union-attr]
        assert len(store.pods) == 1499
        assert reflector.stats.lists == 15  # no relist happened
        nursery.cancel_scope.cancel()


async def test_watch_cluster_syncs_all_four_resources(admin: httpx.AsyncClient, api: ApiClient) -> None:
    ns = await create_namespace(admin, labels={"team": "blue"})
    await create_pod(admin, ns, pod_body("a"))
    await check(await admin.post(f"{MNP}/namespaces/{ns}/multi-networkpolicies", json=policy_body("pol")))
    store = ClusterStore()
    send, receive_channel = trio.open_memory_channel[Change[Any]](0)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(watch_cluster, api, store, send)
        # the store is complete before any change was consumed (an unbuffered channel cannot deadlock the start)
        assert isinstance(store.pods.get(f"{ns}/a"), Pod)
        assert store.policies.get(f"{ns}/pol") is not None
        assert ns in [n.metadata.name for n in store.namespaces.by_label("team", "blue")]
        assert all(h.synced for h in store.health().values()) and len(store.health()) == 4
        initial = await receive(
            receive_channel, len(store.pods) + len(store.namespaces) + len(store.policies) + len(store.nads)
        )
        assert all(c.old is None for c in initial)
        response = await admin.post(
            f"{NAD}/namespaces/{ns}/network-attachment-definitions",
            json=nad_body("macvlan1"),
        )
        assert response.status_code == 201, response.text
        [change] = await receive(receive_channel, 1)
        assert change.resource == "nads" and change.key == f"{ns}/macvlan1" and change.old is None
        assert store.nads.get(f"{ns}/macvlan1").spec.config.startswith('{"cniVersion"')  # type: ignore[union-attr]
        nursery.cancel_scope.cancel()


async def test_indexes_follow_status_ips_and_namespace_labels(admin: httpx.AsyncClient, api: ApiClient) -> None:
    ns = await create_namespace(admin, labels={"env": "a"})
    await create_pod(admin, ns, pod_body("p", node="node-z"))
    store = ClusterStore()
    send, _unread = trio.open_memory_channel[Change[Any]](float("inf"))  # kept open, never read
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(watch_cluster, api, store, send)

        async def set_ip(ip: str) -> None:
            status = {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}
            await patch(admin, f"/api/v1/namespaces/{ns}/pods/p/status", status)
            with trio.fail_after(20):
                while [q.metadata.name for q in store.pods.by_ip(ip)] != ["p"]:
                    await trio.sleep(0.02)

        await set_ip("10.9.9.9")
        await set_ip("10.9.9.10")
        assert list(store.pods.by_ip("10.9.9.9")) == []  # the old address left the index
        assert [q.metadata.name for q in store.pods.by_node("node-z")] == ["p"]
        await patch(admin, f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {"env": "b"}}})
        with trio.fail_after(20):
            while ns not in {n.metadata.name for n in store.namespaces.by_label("env", "b")}:
                await trio.sleep(0.02)
        assert ns not in {n.metadata.name for n in store.namespaces.by_label("env", "a")}
        nursery.cancel_scope.cancel()
