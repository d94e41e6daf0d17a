"""A control plane with nothing of deploy/ installed, so the tests install it with kubectl as a user would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from e2e.controlplane import ControlPlane, Credentials, build_binaries, kubectl
from tests.deploy.helpers import DEPLOY, WORKLOAD_KINDS, render, to_yaml, with_components


@pytest.fixture(scope="module")
def bare_cluster(control_plane: Credentials) -> Iterator[Credentials]:
    """A fresh kube-apiserver + etcd without trinet's CRDs, namespace or RBAC (`control_plane` only for its skips)."""
    with ControlPlane(build_binaries(), bare=True) as cp:
        assert cp.credentials is not None
        yield cp.credentials


@pytest.fixture(scope="module")
def installed(bare_cluster: Credentials) -> Credentials:
    """`kubectl apply -k deploy/crds`, then for real every non-workload object of the default install with the
    optional components (workloads are only ever dry-run: nothing here would run them)."""
    kubectl(bare_cluster, "apply", "-k", str(DEPLOY / "crds"))
    kubectl(bare_cluster, "wait", "--for=condition=Established", "--timeout=30s",
            "crd/multi-networkpolicies.k8s.cni.cncf.io")  # fmt: skip
    with with_components(DEPLOY) as variant:
        docs = [doc for doc in render(variant) if doc["kind"] not in WORKLOAD_KINDS]
    kubectl(bare_cluster, "apply", "-f", "-", stdin=to_yaml(docs))
    kubectl(bare_cluster, "wait", "--for=condition=Established", "--timeout=30s",
            "crd/network-attachment-definitions.k8s.cni.cncf.io")  # fmt: skip
    _wait_listable(bare_cluster, "multi-networkpolicies.k8s.cni.cncf.io", "network-attachment-definitions")
    return bare_cluster


def _wait_listable(cluster: Credentials, *resources: str, timeout: float = 30.0) -> None:
    """Established CRDs can answer 429/404 for a moment: poll `kubectl get R -A` until each lists."""
    deadline = time.monotonic() + timeout
    for resource in resources:
        while (proc := kubectl(cluster, "get", resource, "-A", check=False)).returncode != 0:
            assert time.monotonic() < deadline, f"{resource} not listable after {timeout}s: {proc.stderr}"
            time.sleep(0.2)
