"""A real kube-apiserver + etcd (and kubectl) for tests: built from the Go module proxy, run on 127.0.0.1 only."""

from e2e.controlplane.kubectl import KubectlError, build_kubectl, kubectl
from e2e.controlplane.manifests import apply_manifests, load_manifests
from e2e.controlplane.runner import ControlPlane, ControlPlaneError, Credentials, build_binaries

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "Credentials",
    "KubectlError",
    "apply_manifests",
    "build_binaries",
    "build_kubectl",
    "kubectl",
    "load_manifests",
]
