"""Helpers of observability tests: API objects (macvlan NADs, pods with network-status, policies), the trinet CLI as
a subprocess, and a /metrics scraper."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

MNP = "/apis/k8s.cni.cncf.io/v1beta1"
NAD = "/apis/k8s.cni.cncf.io/v1"
REPO = Path(__file__).resolve().parents[2]


def create_nad(admin: httpx.Client, ns: str, name: str, cni_type: str = "macvlan") -> None:
    config = json.dumps({"cniVersion": "0.3.1", "name": name, "type": cni_type})
    body = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name},
        "spec": {"config": config},
    }
    admin.post(f"{NAD}/namespaces/{ns}/network-attachment-definitions", json=body).raise_for_status()


def create_pod(
    admin: httpx.Client,
    ns: str,
    name: str,
    labels: dict[str, str],
    nets: Sequence[tuple[str, str, str]],
    *,
    node: str = "node-a",
    network_status: str | None = None,
) -> dict[str, Any]:
    """A Running pod on ``node``; ``nets``: (NAD name in ``ns``, interface, address). ``network_status`` replaces
    the generated annotation (malformed-annotation tests)."""
    status = [{"name": "kindnet", "interface": "eth0", "ips": ["192.168.0.1"], "default": True}]
    status += [{"name": f"{ns}/{nad}", "interface": ifname, "ips": [ip]} for nad, ifname, ip in nets]
    annotations = {
        "k8s.v1.cni.cncf.io/networks": ",".join(f"{nad}@{ifname}" for nad, ifname, _ in nets),
        "k8s.v1.cni.cncf.io/network-status": network_status if network_status is not None else json.dumps(status),
    }
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "example.invalid/c"}]},
    }
    path = f"/api/v1/namespaces/{ns}/pods"
    created = admin.post(path, json=body)
    created.raise_for_status()
    running = admin.patch(
        f"{path}/{name}/status",
        content=json.dumps({"status": {"phase": "Running"}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    running.raise_for_status()
    result: dict[str, Any] = running.json()
    return result


def create_policy(admin: httpx.Client, ns: str, name: str, spec: dict[str, Any], policy_for: str = "net1") -> None:
    body = {
        "apiVersion": "k8s.cni.cncf.io/v1beta1",
        "kind": "MultiNetworkPolicy",
        "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/policy-for": policy_for}},
        "spec": spec,
    }
    admin.post(f"{MNP}/namespaces/{ns}/multi-networkpolicies", json=body).raise_for_status()


def trinet(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m trinet ARGS`` as a subprocess, with only this kubeconfig."""
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run(
        [sys.executable, "-m", "trinet", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Scraper:
    """GET /metrics of a running daemon, parsed with prometheus-client's own parser."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"

    def families(self) -> dict[str, list[Sample]]:
        response = httpx.get(self.url, timeout=5)
        response.raise_for_status()
        assert response.headers["content-type"] == CONTENT_TYPE_LATEST
        return {f.name: f.samples for f in text_string_to_metric_families(response.text)}

    def value(self, family: str, sample: str | None = None, **labels: str) -> float:
        """One sample's value; 0 when the series does not exist (yet)."""
        found = [s.value for s in self.families()[family] if s.name == (sample or family) and s.labels == labels]
        return found[0] if found else 0.0

    def series(self, family: str) -> list[Sample]:
        return self.families()[family]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
