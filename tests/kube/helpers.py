"""Helpers for trinet.kube tests: an async admin client, object builders, bulk creation, polling."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import trio

from e2e.controlplane import Credentials
from e2e.controlplane.runner import tls_context

MNP = "/apis/k8s.cni.cncf.io/v1beta1"
NAD = "/apis/k8s.cni.cncf.io/v1"
_counter = itertools.count()


def admin_client(creds: Credentials) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=creds.url,
        verify=tls_context(creds.ca_file),
        headers={"Authorization": f"Bearer {creds.admin_token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=16),
    )


def unique_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def pod_body(name: str, *, labels: dict[str, str] | None = None, node: str = "node-a", ip: str = "") -> dict[str, Any]:
    """A pod on `node`; `ip` goes into its network-status annotation (a bare apiserver drops status on create)."""
    annotations = {"k8s.v1.cni.cncf.io/networks": "macvlan1"}
    if ip:
        annotations["k8s.v1.cni.cncf.io/network-status"] = json.dumps([{"name": "macvlan1", "ips": [ip]}])
    return {
        "metadata": {"name": name, "labels": labels or {"app": name}, "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]},
    }


async def check(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    result: dict[str, Any] = response.json()
    return result


async def create_namespace(
    admin: httpx.AsyncClient, name: str | None = None, labels: dict[str, str] | None = None
) -> str:
    name = name or unique_name("kt")
    await check(await admin.post("/api/v1/namespaces", json={"metadata": {"name": name, "labels": labels or {}}}))
    return name


async def create_pod(admin: httpx.AsyncClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return await check(await admin.post(f"/api/v1/namespaces/{namespace}/pods", json=body))


async def delete_pod(admin: httpx.AsyncClient, namespace: str, name: str) -> None:
    await check(await admin.delete(f"/api/v1/namespaces/{namespace}/pods/{name}", params={"gracePeriodSeconds": "0"}))


async def patch(admin: httpx.AsyncClient, path: str, patch_body: dict[str, Any]) -> dict[str, Any]:
    return await check(
        await admin.patch(
            path, content=json.dumps(patch_body), headers={"Content-Type": "application/merge-patch+json"}
        )
    )


async def create_many(admin: httpx.AsyncClient, path: str, bodies: list[dict[str, Any]], concurrency: int = 16) -> None:
    """POST every body to `path`, `concurrency` at a time."""
    limiter = trio.CapacityLimiter(concurrency)

    async def one(body: dict[str, Any]) -> None:
        async with limiter:
            await check(await admin.post(path, json=body))

    async with trio.open_nursery() as nursery:
        for body in bodies:
            nursery.start_soon(one, body)


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` every 20 ms until it holds; fail after `timeout` seconds."""
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def policy_body(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1beta1",
        "kind": "MultiNetworkPolicy",
        "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/policy-for": "macvlan1"}},
        "spec": spec or {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def nad_body(name: str, config: str = '{"cniVersion":"0.3.1","type":"macvlan"}') -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name},
        "spec": {"config": config},
    }
