"""Writing API objects as an admin, a kubelet and Multus would: create/apply/patch/delete by kind."""

from __future__ import annotations

import json
from typing import Any

import httpx

Object = dict[str, Any]

# kind -> (API prefix, plural, namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True),
    "NetworkAttachmentDefinition": ("/apis/k8s.cni.cncf.io/v1", "network-attachment-definitions", True),
    "MultiNetworkPolicy": ("/apis/k8s.cni.cncf.io/v1beta1", "multi-networkpolicies", True),
}
API_VERSIONS = {
    "Namespace": "v1",
    "Node": "v1",
    "Pod": "v1",
    "NetworkAttachmentDefinition": "k8s.cni.cncf.io/v1",
    "MultiNetworkPolicy": "k8s.cni.cncf.io/v1beta1",
}
FIELD_MANAGER = "trinet-e2e"


class KubeError(RuntimeError):
    """The API server refused a write; the message has the verb, the path and the server's answer."""


def kinds() -> list[str]:
    return sorted(_KINDS)


def object_path(kind: str, name: str, namespace: str | None = None) -> str:
    try:
        prefix, plural, namespaced = _KINDS[kind]
    except KeyError:
        raise KubeError(f"unknown kind {kind!r} (known: {', '.join(kinds())})") from None
    if namespaced:
        return f"{prefix}/namespaces/{namespace or 'default'}/{plural}/{name}"
    return f"{prefix}/{plural}/{name}"


def _path_of(obj: Object) -> str:
    meta = obj.get("metadata") or {}
    return object_path(str(obj.get("kind")), str(meta.get("name")), meta.get("namespace"))


class Kube:
    """A thin synchronous client over one admin `httpx.Client`; every failure raises `KubeError`."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _check(self, response: httpx.Response, verb: str, path: str) -> Object:
        if response.status_code >= 400:
            raise KubeError(f"{verb} {path}: HTTP {response.status_code}: {response.text[:600]}")
        return response.json() if response.content else {}

    def apply(self, obj: Object) -> Object:
        """Server-side apply (create or update) of a whole object."""
        obj = dict(obj)
        obj.setdefault("apiVersion", API_VERSIONS.get(str(obj.get("kind")), "v1"))
        path = _path_of(obj)
        response = self.client.patch(
            path,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        return self._check(response, "apply", path)

    def create(self, obj: Object) -> Object:
        obj = dict(obj)
        obj.setdefault("apiVersion", API_VERSIONS.get(str(obj.get("kind")), "v1"))
        path = _path_of(obj).rsplit("/", 1)[0]
        return self._check(self.client.post(path, json=obj), "create", path)

    def merge_patch(
        self, kind: str, name: str, namespace: str | None, patch: Object, *, status: bool = False
    ) -> Object:
        path = object_path(kind, name, namespace) + ("/status" if status else "")
        response = self.client.patch(
            path, content=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"}
        )
        return self._check(response, "patch", path)

    def delete(self, kind: str, name: str, namespace: str | None, *, grace: int | None = None) -> None:
        path = object_path(kind, name, namespace)
        params = {} if grace is None else {"gracePeriodSeconds": str(grace)}
        response = self.client.delete(path, params=params)
        if response.status_code != 404:
            self._check(response, "delete", path)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Object | None:
        path = object_path(kind, name, namespace)
        response = self.client.get(path)
        if response.status_code == 404:
            return None
        return self._check(response, "get", path)
