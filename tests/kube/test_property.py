"""Property: random mutations of all four resources while the proxy injects random faults; afterwards the store
equals a fresh LIST, and replaying the emitted changes from nothing gives the same store (object identity).

Run against two servers: the suite's (watch cache, WatchList) and one without watch cache or WatchList, where the
faults include etcd compaction (so re-watches hit 410 and relist). Reproduce a failure with TRINET_PROPERTY_SEED.
"""

from __future__ import annotations

import os
import random
from typing import Any

import httpx
import pytest
import trio

from e2e.controlplane import ControlPlane, Credentials
from tests.kube.helpers import MNP, NAD, admin_client, create_namespace, nad_body, pod_body, policy_body, unique_name
from tests.kube.proxy import FaultProxy, fault_proxy
from tests.kube.test_faults import _compact, config_for
from trinet.kube import RESOURCES, ApiClient, Change, ClusterStore, Reflector, ReflectorOptions

MUTATIONS = int(os.environ.get("TRINET_PROPERTY_MUTATIONS", "150"))
SELECT = "trinet-property"

OPTIONS = ReflectorOptions(
    page_size=7,
    inactivity_timeout=1.5,
    watch_timeout=(3, 6),
    backoff_initial=0.05,
    backoff_cap=0.5,
    min_watch_duration=0.0,
)


class Cluster:
    """Random mutations through the admin client; names are tracked loosely (API refusals are fine)."""

    def __init__(self, admin: httpx.AsyncClient, rng: random.Random, run: str, homes: list[str]) -> None:
        self.admin, self.rng, self.run, self.homes = admin, rng, run, homes
        self.names: dict[str, list[tuple[str, str]]] = {"pods": [], "policies": [], "nads": [], "namespaces": []}

    def _path(self, resource: str, ns: str) -> str:
        return {
            "pods": f"/api/v1/namespaces/{ns}/pods",
            "policies": f"{MNP}/namespaces/{ns}/multi-networkpolicies",
            "nads": f"{NAD}/namespaces/{ns}/network-attachment-definitions",
            "namespaces": "/api/v1/namespaces",
        }[resource]

    def _body(self, resource: str, name: str) -> dict[str, Any]:
        if resource == "pods":
            body = pod_body(name)
        elif resource == "policies":
            body = policy_body(name)
        elif resource == "nads":
            body = nad_body(name)
        else:
            body = {"metadata": {"name": name}}
        body["metadata"].setdefault("labels", {})[SELECT] = self.run
        return body

    async def _merge(self, path: str, patch: dict[str, Any]) -> None:
        await self.admin.patch(
            path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )  # a refusal (404 after a delete) is part of the game

    async def mutate(self) -> None:
        resource = self.rng.choice(["pods", "pods", "policies", "nads", "namespaces"])
        existing = self.names[resource]
        op = self.rng.choice(["create", "create", "update", "unlabel", "relabel", "delete"]) if existing else "create"
        if op == "create":
            ns = "" if resource == "namespaces" else self.rng.choice(self.homes)
            name = unique_name(resource[:3])
            await self.admin.post(self._path(resource, ns), json=self._body(resource, name))
            existing.append((ns, name))
            return
        ns, name = self.rng.choice(existing)
        item = f"{self._path(resource, ns)}/{name}"
        if op == "update":
            await self._merge(item, {"metadata": {"labels": {"n": str(self.rng.randrange(1000))}}})
        elif op == "unlabel":  # leaves the selector: the watch reports a deletion
            await self._merge(item, {"metadata": {"labels": {SELECT: None}}})
        elif op == "relabel":  # back into the selector: an addition
            await self._merge(item, {"metadata": {"labels": {SELECT: self.run}}})
        else:
            await self.admin.delete(item, params={"gracePeriodSeconds": "0"})
            if resource != "namespaces":  # namespaces only go Terminating on a bare apiserver
                existing.remove((ns, name))


async def inject_faults(proxy: FaultProxy, rng: random.Random, plane: ControlPlane | None) -> None:
    while True:
        await trio.sleep(rng.uniform(0.1, 0.6))
        fault = rng.choice(["cut", "stall", "refuse", "slow", "none"] + (["compact"] * 2 if plane else []))
        if fault == "cut":
            proxy.cut()
        elif fault == "stall":
            proxy.stall()
        elif fault == "refuse":
            proxy.refusing = True
            proxy.cut()
            await trio.sleep(rng.uniform(0.2, 1.0))
            proxy.refusing = False
        elif fault == "slow":
            proxy.delay = 0.02
            await trio.sleep(rng.uniform(0.2, 1.0))
            proxy.delay = 0.0
        elif fault == "compact" and plane is not None:
            await _compact(plane)
            proxy.cut()


async def listed(admin: httpx.AsyncClient, run: str) -> dict[str, dict[str, str]]:
    """key -> resourceVersion of every selected object, per resource, from a fresh LIST."""
    out: dict[str, dict[str, str]] = {}
    for resource in RESOURCES:
        response = await admin.get(resource.collection_path(), params={"labelSelector": f"{SELECT}={run}"})
        response.raise_for_status()
        out[resource.name] = {
            (f"{m['namespace']}/{m['name']}" if resource.namespaced else m["name"]): m["resourceVersion"]
            for m in (item["metadata"] for item in response.json()["items"])
        }
    return out


def stored(store: ClusterStore) -> dict[str, dict[str, str]]:
    return {r.name: {k: o.metadata.resource_version for k, o in store.store_for(r.name).items()} for r in RESOURCES}


@pytest.mark.parametrize("server", ["cached", "uncached"])
async def test_random_mutations_under_faults_converge(
    server: str, control_plane: Credentials, request: pytest.FixtureRequest
) -> None:
    plane: ControlPlane | None = request.getfixturevalue("uncached_plane") if server == "uncached" else None
    creds = plane.credentials if plane is not None else control_plane
    assert creds is not None
    seed = int(os.environ.get("TRINET_PROPERTY_SEED", random.randrange(2**32)))
    print(f"property seed {seed} on the {server} server")  # shown on failure
    rng = random.Random(seed)
    run = unique_name("run")
    store = ClusterStore()
    replay: dict[str, dict[str, Any]] = {r.name: {} for r in RESOURCES}
    delivered: list[Change[Any]] = []

    async def consume(receive: trio.MemoryReceiveChannel[Change[Any]]) -> None:
        async for change in receive:
            current = replay[change.resource].get(change.key)
            assert change.old is current, f"change {change.key}: old is not the object last delivered"
            if change.new is None:
                del replay[change.resource][change.key]
            else:
                replay[change.resource][change.key] = change.new
            delivered.append(change)

    async with admin_client(creds) as admin, fault_proxy(creds.url) as proxy:
        homes = [await create_namespace(admin, labels={SELECT: run}) for _ in range(2)]
        cluster = Cluster(admin, rng, run, homes)
        for _ in range(10):  # some state before the reflectors start
            await cluster.mutate()
        send, receive = trio.open_memory_channel[Change[Any]](0)
        async with ApiClient(config_for(creds, proxy.url)) as api, trio.open_nursery() as nursery:
            nursery.start_soon(consume, receive)
            reflectors = [
                Reflector(r, api, store, send, label_selector=f"{SELECT}={run}", options=OPTIONS) for r in RESOURCES
            ]
            for reflector in reflectors:
                nursery.start_soon(reflector.run)
            faults = trio.CancelScope()

            async def fault_task() -> None:
                with faults:
                    await inject_faults(proxy, rng, plane)

            nursery.start_soon(fault_task)
            for _ in range(MUTATIONS):
                await cluster.mutate()
                await trio.sleep(rng.uniform(0, 0.03))
            faults.cancel()
            proxy.refusing, proxy.delay = False, 0.0
            if plane is not None:  # one certain 410 whatever the seed: the streams hear nothing while objects
                proxy.stall()  # change and etcd compacts past every reflector's resourceVersion
                for _ in range(3):
                    await cluster.mutate()
                await _compact(plane)
                proxy.cut()

            truth = await listed(admin, run)
            with trio.move_on_after(60):
                while stored(store) != truth or stored_replay(replay) != truth:
                    await trio.sleep(0.1)
            assert stored(store) == truth
            assert stored_replay(replay) == truth
            for resource in RESOURCES:  # the replay holds the very objects of the store
                for key, obj in store.store_for(resource.name).items():
                    assert replay[resource.name][key] is obj
            relists = sum(h.relists for h in store.health().values())
            print(f"{len(delivered)} changes, {relists} relists, {sum(r.stats.errors for r in reflectors)} errors")
            if plane is not None:
                assert relists >= 1, "compaction never forced a relist: the 410 path was not exercised"
            nursery.cancel_scope.cancel()


def stored_replay(replay: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {name: {k: o.metadata.resource_version for k, o in objs.items()} for name, objs in replay.items()}
