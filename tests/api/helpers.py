"""Small helpers for API tests: unique namespaces and object builders."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

MNP_API = "/apis/k8s.cni.cncf.io/v1beta1"
_counter = itertools.count()


def unique_namespace(admin: httpx.Client, prefix: str = "t") -> str:
    """Create a namespace with a unique name (a bare apiserver never finishes deleting namespaces)."""
    name = f"{prefix}-{os.getpid()}-{next(_counter)}"
    response = admin.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    response.raise_for_status()
    return name


def watch_events(client: httpx.Client, path: str, resource_version: str, timeout: int = 10) -> Iterator[Any]:
    """Yield decoded watch events from `resource_version` on; the server closes the stream after `timeout` s."""
    params = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": str(timeout)}
    with client.stream("GET", path, params=params, timeout=timeout + 5) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line:
                yield json.loads(line)
