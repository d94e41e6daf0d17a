"""Reflector fault handling against the real kube-apiserver, with faults injected by tests/kube/proxy.py.

Stream ends, stalls, cuts, a server that is down, forced 410 (etcd compaction behind an apiserver without watch
cache), WatchList and its fallback, bookmarks, an apiserver restart, token rotation and revocation.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from e2e.controlplane import ControlPlane, Credentials
from e2e.controlplane.runner import tls_context
from tests.kube.helpers import (
    admin_client,
    check,
    create_namespace,
    create_pod,
    delete_pod,
    patch,
    pod_body,
    unique_name,
    wait_for,
)
from tests.kube.proxy import fault_proxy
from trinet.kube import PODS, ApiClient, Change, ClusterStore, KubeConfig, Reflector, ReflectorOptions, watch_cluster
from trinet.logs import event_fields

QUICK = ReflectorOptions(
    page_size=50,
    watch_list=False,
    inactivity_timeout=2.0,
    watch_timeout=(30, 40),
    backoff_initial=0.2,
    backoff_cap=1.0,
)


class Harness:
    """One pod reflector on one namespace, its store and every change it emitted (drained continuously)."""

    def __init__(self, reflector: Reflector, store: ClusterStore) -> None:
        self.reflector, self.store = reflector, store
        self.changes: list[Change[Any]] = []

    def has(self, name: str) -> bool:
        return any(key.endswith(f"/{name}") for key in self.store.pods)


@asynccontextmanager
async def reflecting(
    config: KubeConfig, namespace: str, options: ReflectorOptions = QUICK, **client_args: Any
) -> AsyncIterator[Harness]:
    store = ClusterStore()
    send, receive = trio.open_memory_channel[Change[Any]](0)
    async with ApiClient(config, **client_args) as api, trio.open_nursery() as nursery:
        reflector = Reflector(PODS, api, store, send, field_selector=f"metadata.namespace={namespace}", options=options)
        harness = Harness(reflector, store)

        async def drain() -> None:
            async for change in receive:
                harness.changes.append(change)

        nursery.start_soon(drain)
        nursery.start_soon(reflector.run)
        with trio.fail_after(20):
            await reflector.synced.wait()
        yield harness
        nursery.cancel_scope.cancel()


def config_for(creds: Credentials, url: str | None = None, **kwargs: Any) -> KubeConfig:
    if "token" not in kwargs and "token_file" not in kwargs:
        kwargs["token"] = creds.daemon_token
    return KubeConfig(server=url or creds.url, ca_file=str(creds.ca_file), **kwargs)


async def test_stream_end_resumes_from_last_version_without_relist(
    control_plane: Credentials, admin: httpx.AsyncClient
) -> None:
    ns = await create_namespace(admin)
    await create_pod(admin, ns, pod_body("before"))
    options = ReflectorOptions(watch_list=False, watch_timeout=(1, 1), inactivity_timeout=5)
    async with reflecting(config_for(control_plane), ns, options) as h:
        await wait_for(lambda: h.reflector.stats.watches >= 3, what="three watches (each closed by the server)")
        await create_pod(admin, ns, pod_body("after"))
        await wait_for(lambda: h.has("after"), what="the pod created between watches")
        assert h.reflector.stats.lists == 1
        assert h.store.health()["pods"].relists == 0
        await wait_for(lambda: len(h.changes) == 2, what="the change to be delivered")
        assert [c.key.split("/")[1] for c in h.changes] == ["before", "after"]


async def test_bookmarks_advance_the_resource_version(control_plane: Credentials, admin: httpx.AsyncClient) -> None:
    """A bookmark comes ~2 s before the watch deadline, carrying writes made outside our selector."""
    ns, other = await create_namespace(admin), await create_namespace(admin)
    options = ReflectorOptions(watch_list=False, watch_timeout=(4, 4), inactivity_timeout=10)
    async with reflecting(config_for(control_plane), ns, options) as h:
        elsewhere = await create_pod(admin, other, pod_body("elsewhere"))
        await wait_for(lambda: h.reflector.stats.bookmarks >= 1, timeout=15, what="a bookmark")
        await wait_for(
            lambda: int(h.reflector.resource_version) >= int(elsewhere["metadata"]["resourceVersion"]),
            timeout=15,
            what="the bookmark's resourceVersion",
        )
        assert h.changes == [] and h.reflector.stats.lists == 1


async def test_watch_list_syncs_in_one_stream(control_plane: Credentials, admin: httpx.AsyncClient) -> None:
    ns = await create_namespace(admin)
    for i in range(30):
        await create_pod(admin, ns, pod_body(f"p{i}"))
    async with reflecting(config_for(control_plane), ns, ReflectorOptions()) as h:
        assert len(h.store.pods) == 30
        await create_pod(admin, ns, pod_body("later"))
        await wait_for(lambda: h.has("later"), what="a change on the WatchList stream")
        stats = h.reflector.stats
        assert (stats.watch_lists, stats.lists, stats.watches) == (1, 0, 0)
        await wait_for(lambda: len(h.changes) == 31, what="every change to be delivered")
        assert all(c.old is None for c in h.changes)


async def test_watch_list_refused_falls_back_to_list(uncached_plane: ControlPlane) -> None:
    creds = uncached_plane.credentials
    assert creds is not None
    async with admin_client(creds) as admin:
        ns = await create_namespace(admin)
        await create_pod(admin, ns, pod_body("a"))
        async with reflecting(config_for(creds), ns, ReflectorOptions()) as h:
            assert h.has("a")
            assert (h.reflector.stats.watch_lists, h.reflector.stats.lists) == (1, 1)
            await create_pod(admin, ns, pod_body("b"))
            await wait_for(lambda: h.has("b"), what="a change after the fallback")
            assert h.reflector.stats.errors == 0


async def test_stalled_stream_is_detected_and_rewatched(control_plane: Credentials, admin: httpx.AsyncClient) -> None:
    ns = await create_namespace(admin)
    async with fault_proxy(control_plane.url) as proxy, reflecting(config_for(control_plane, proxy.url), ns) as h:
        await wait_for(lambda: h.reflector.stats.watches >= 1, what="the watch")
        proxy.stall()
        await create_pod(admin, ns, pod_body("during-stall"))
        with trio.fail_after(QUICK.inactivity_timeout + 10):
            await wait_for(lambda: h.has("during-stall"), what="the pod created while the stream was stalled")
        assert h.reflector.stats.stalls >= 1 and h.reflector.stats.lists == 1


async def test_cut_connection_is_rewatched_without_relist(control_plane: Credentials, admin: httpx.AsyncClient) -> None:
    ns = await create_namespace(admin)
    async with fault_proxy(control_plane.url) as proxy, reflecting(config_for(control_plane, proxy.url), ns) as h:
        await wait_for(lambda: h.reflector.stats.watches >= 1, what="the watch")
        proxy.cut()
        await create_pod(admin, ns, pod_body("after-cut"))
        await wait_for(lambda: h.has("after-cut"), what="the pod created after the cut")
        assert h.reflector.stats.lists == 1 and h.store.health()["pods"].relists == 0


async def test_server_unreachable_backs_off_then_recovers(control_plane: Credentials, admin: httpx.AsyncClient) -> None:
    ns = await create_namespace(admin)
    async with fault_proxy(control_plane.url) as proxy, reflecting(config_for(control_plane, proxy.url), ns) as h:
        proxy.refusing = True
        proxy.cut()
        before = proxy.connections
        await trio.sleep(4)  # observation window: count reconnection attempts while the server is "down"
        attempts = proxy.connections - before
        # backoff 0.2 s doubling to a 1 s cap: about 5-8 attempts in 4 s; a tight loop would make hundreds
        assert 2 <= attempts <= 12, attempts
        proxy.refusing = False
        await create_pod(admin, ns, pod_body("back"))
        await wait_for(lambda: h.has("back"), what="recovery once the server is reachable")


async def _compact(plane: ControlPlane) -> int:
    """Compact etcd at its current revision (its JSON gateway); return the revision."""
    async with httpx.AsyncClient(base_url=plane.etcd_url) as etcd:
        rev = int(
            (await etcd.post("/v3/kv/range", json={"key": base64.b64encode(b"a").decode()})).json()["header"][
                "revision"
            ]
        )
        response = await etcd.post("/v3/kv/compaction", json={"revision": str(rev), "physical": True})
        response.raise_for_status()
    return rev


async def test_expired_version_relists_and_reports_exactly_the_gap(uncached_plane: ControlPlane) -> None:
    creds = uncached_plane.credentials
    assert creds is not None
    async with admin_client(creds) as admin:
        ns = await create_namespace(admin)
        for i in range(5):
            await create_pod(admin, ns, pod_body(f"p{i}"))
        async with fault_proxy(creds.url) as proxy, reflecting(config_for(creds, proxy.url), ns) as h:
            kept = {k: h.store.pods.get(k) for k in (f"{ns}/p0", f"{ns}/p3", f"{ns}/p4")}
            await wait_for(lambda: h.reflector.stats.watches >= 1, what="the watch")
            proxy.refusing = True
            proxy.cut()
            initial = len(h.changes)
            # the gap: the reflector cannot see these as events
            await delete_pod(admin, ns, "p1")
            await patch(admin, f"/api/v1/namespaces/{ns}/pods/p2", {"metadata": {"labels": {"gap": "yes"}}})
            await create_pod(admin, ns, pod_body("p9"))
            await _compact(uncached_plane)
            proxy.refusing = False
            await wait_for(lambda: h.store.health()["pods"].relists == 1, what="a relist after 410")
            await wait_for(lambda: len(h.changes) >= initial + 3, what="the gap's changes to be delivered")
            await trio.sleep(0.5)  # let any spurious extra change arrive, so the equality below can catch it
            gap = {(c.key.split("/")[1], c.old is None, c.new is None) for c in h.changes[initial:]}
            assert gap == {("p1", False, True), ("p2", False, False), ("p9", True, False)}
            assert h.store.pods.get(f"{ns}/p2").metadata.labels["gap"] == "yes"  # type: ignore[union-attr]
            assert all(h.store.pods.get(k) is obj for k, obj in kept.items())  # unchanged objects keep identity


async def test_apiserver_restart_converges(uncached_plane: ControlPlane) -> None:
    creds = uncached_plane.credentials
    assert creds is not None
    async with admin_client(creds) as admin:
        ns = await create_namespace(admin)
        await create_pod(admin, ns, pod_body("old"))
        async with reflecting(config_for(creds), ns) as h:
            await wait_for(lambda: h.reflector.stats.watches >= 1, what="the watch")
            await trio.to_thread.run_sync(uncached_plane.restart_apiserver)
            await delete_pod(admin, ns, "old")
            await create_pod(admin, ns, pod_body("new"))
            await wait_for(lambda: h.has("new") and not h.has("old"), timeout=40, what="convergence after restart")
            assert h.store.health()["pods"].synced


async def _service_account(admin: httpx.AsyncClient, ns: str) -> str:
    name = unique_name("sa")
    await check(await admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": name}}))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{ns}-{name}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "trinet"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }
    await check(await admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding))
    return name


async def _bound_token(admin: httpx.AsyncClient, ns: str, sa: str) -> tuple[str, str]:
    """A TokenRequest token bound to a fresh Secret (deleting the Secret revokes it); (token, secret name)."""
    secret = await check(
        await admin.post(f"/api/v1/namespaces/{ns}/secrets", json={"metadata": {"name": unique_name("bind")}})
    )
    name = secret["metadata"]["name"]
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 3600,
            "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": name, "uid": secret["metadata"]["uid"]},
        },
    }
    body = await check(await admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", json=request))
    return str(body["status"]["token"]), name


async def _wait_rejected(creds: Credentials, token: str) -> None:
    async with httpx.AsyncClient(
        base_url=creds.url, verify=tls_context(creds.ca_file), headers={"Authorization": f"Bearer {token}"}
    ) as client:

        async def rejected() -> bool:
            return (await client.get("/api/v1/namespaces")).status_code == 401

        with trio.fail_after(20):
            while not await rejected():
                await trio.sleep(0.2)


async def test_rotated_token_is_picked_up_and_revoked_token_backs_off(
    control_plane: Credentials, admin: httpx.AsyncClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trinet.kube")
    ns = await create_namespace(admin)
    sa = await _service_account(admin, ns)
    token_a, secret_a = await _bound_token(admin, ns, sa)
    token_file = tmp_path / "token"
    token_file.write_text(token_a)
    async with fault_proxy(control_plane.url) as proxy:
        config = config_for(control_plane, proxy.url, token_file=str(token_file))
        # reload only on 401, so that the test proves the 401 path
        async with reflecting(config, ns, token_reload_interval=3600) as h:
            await wait_for(lambda: h.reflector.stats.watches >= 1, what="the watch")
            token_b, secret_b = await _bound_token(admin, ns, sa)
            token_file.write_text(token_b)
            await check(await admin.delete(f"/api/v1/namespaces/{ns}/secrets/{secret_a}"))
            await _wait_rejected(control_plane, token_a)
            proxy.cut()
            await create_pod(admin, ns, pod_body("rotated"))
            await wait_for(lambda: h.has("rotated"), what="the watch to resume with the rotated token")
            assert "api-credentials-refused" not in caplog.text

            await check(await admin.delete(f"/api/v1/namespaces/{ns}/secrets/{secret_b}"))
            await _wait_rejected(control_plane, token_b)
            before = proxy.connections
            proxy.cut()
            await trio.sleep(4)
            attempts = proxy.connections - before
            assert 1 <= attempts <= 12, attempts  # backoff, not a tight loop
            refused = [r for r in caplog.records if r.getMessage() == "api-credentials-refused"]
            assert refused and "HTTP 401" in event_fields(refused[0])["error"]
            assert h.store.health()["pods"].seconds_since_last_event >= 3


async def test_cancelling_watch_cluster_closes_every_stream(control_plane: Credentials) -> None:
    async with fault_proxy(control_plane.url) as proxy:
        api = ApiClient(config_for(control_plane, proxy.url))
        store = ClusterStore()
        send, _unread = trio.open_memory_channel[Change[Any]](float("inf"))  # kept open, never read
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                with trio.fail_after(30):
                    await nursery.start(watch_cluster, api, store, send)
                await wait_for(lambda: proxy.live >= 4, what="four watch streams")
                scope.cancel()
        # default options sync by WatchList: every connection was a stream, so none may stay open
        await wait_for(lambda: proxy.live == 0, timeout=5, what="every stream closed by the cancellation")
        await api.aclose()
