"""Create the objects of YAML manifests (CRDs, RBAC) through the API, the way `kubectl create -f` would.

Only the kinds trinet ships are known; an unknown kind is an error rather than a silent skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml

Manifest = dict[str, Any]

# kind -> (collection path template, namespaced)
_PATHS: dict[str, tuple[str, bool]] = {
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", False),
    "Namespace": ("/api/v1/namespaces", False),
    "ServiceAccount": ("/api/v1/namespaces/{ns}/serviceaccounts", True),
    "ConfigMap": ("/api/v1/namespaces/{ns}/configmaps", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1/clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", False),
}


def load_manifests(*paths: Path) -> list[Manifest]:
    """All documents of the given YAML files (or of every *.yaml under given directories), in order."""
    docs: list[Manifest] = []
    for path in paths:
        files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            docs.extend(doc for doc in yaml.safe_load_all(file.read_text()) if doc)
    return docs


def collection_path(doc: Manifest) -> str:
    kind = doc["kind"]
    if kind not in _PATHS:
        raise ValueError(f"cannot create a {kind}: unknown kind for the test control plane")
    template, namespaced = _PATHS[kind]
    return template.format(ns=doc["metadata"].get("namespace", "default")) if namespaced else template


def apply_manifests(client: httpx.Client, docs: Iterable[Manifest]) -> None:
    """Create every object; an object that already exists is left as it is. CRDs are waited for (Established)."""
    for doc in docs:
        response = client.post(collection_path(doc), json=doc)
        if response.status_code != 409:
            response.raise_for_status()
        if doc["kind"] == "CustomResourceDefinition":
            _wait_served(client, doc)


def _wait_served(client: httpx.Client, crd: Manifest, timeout: float = 30.0) -> None:
    """Wait until the CRD is Established and each served version answers a list (not 404/429/503)."""
    name, spec = crd["metadata"]["name"], crd["spec"]
    paths = [f"/apis/{spec['group']}/{v['name']}/{spec['names']['plural']}" for v in spec["versions"] if v["served"]]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
        conditions = (got.get("status") or {}).get("conditions") or []
        established = any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
        if established and all(client.get(path).status_code == 200 for path in paths):
            return
        time.sleep(0.1)
    raise TimeoutError(f"CRD {name} not served after {timeout}s")
