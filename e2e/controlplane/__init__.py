"""A real kube-apiserver + etcd for tests: built from the Go module proxy, run on 127.0.0.1 only."""

from e2e.controlplane.manifests import apply_manifests, load_manifests
from e2e.controlplane.runner import ControlPlane, ControlPlaneError, Credentials, build_binaries

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "Credentials",
    "apply_manifests",
    "build_binaries",
    "load_manifests",
]
