"""Render deploy/ variants with the real kubectl (kustomize) and pick objects out of them."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e.controlplane import build_kubectl

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NAMESPACE = "trinet-system"
# Every variant a user can apply: the default, each overlay, the CRD alone.
VARIANTS = {
    "default": DEPLOY,
    "procfs": DEPLOY / "overlays/procfs",
    "cri": DEPLOY / "overlays/cri",
    "cleanup": DEPLOY / "overlays/cleanup",
}
COMPONENTS = ("network-attachment-definitions", "servicemonitor")
# Objects that run something: only ever applied with a server-side dry run (no kubelet, no controllers here).
WORKLOAD_KINDS = {"DaemonSet", "Service", "ServiceMonitor"}

Doc = dict[str, Any]


def render(directory: Path) -> list[Doc]:
    """`kubectl kustomize DIRECTORY`, parsed."""
    proc = subprocess.run(
        [str(build_kubectl()), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@contextmanager
def with_components(base: Path, components: Sequence[str] = COMPONENTS) -> Iterator[Path]:
    """A throwaway kustomization: `base` plus deploy/components/<name> for each name (what README shows)."""
    with tempfile.TemporaryDirectory(prefix="trinet-kustomize-") as tmp:
        # kustomize refuses absolute paths
        lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "resources:"]
        lines += [f"  - {os.path.relpath(base, tmp)}", "components:"]
        lines += [f"  - {os.path.relpath(DEPLOY / 'components' / name, tmp)}" for name in components]
        Path(tmp, "kustomization.yaml").write_text("\n".join(lines) + "\n")
        yield Path(tmp)


def one(docs: Sequence[Doc], kind: str, name: str | None = None) -> Doc:
    """The only object of `kind` (and `name`) in `docs`."""
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name!r}"
    return found[0]


def daemon_container(docs: Sequence[Doc], name: str = "trinet") -> Doc:
    """The DaemonSet's container (or init container) `name`; the DaemonSet has exactly one regular container."""
    pod_spec = one(docs, "DaemonSet", "trinet")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["trinet"]
    found = [c for c in pod_spec["containers"] + pod_spec.get("initContainers", []) if c["name"] == name]
    assert len(found) == 1, name
    return dict(found[0])


def to_yaml(docs: Sequence[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass
class Container:
    """The DaemonSet's container as a process on this machine would see it (see `container`)."""

    args: list[str]
    env: dict[str, str]
    binds: list[tuple[str, Path, bool]]
    """hostPath volumes still to bind-mount (host path, target under root, read-only), with `bind=True`."""
    security: Doc


def container(
    docs: Sequence[Doc],
    root: Path,
    node_name: str,
    *,
    bind: bool = False,
    name: str = "trinet",
    host_paths: dict[str, str] | None = None,
) -> Container:
    """The DaemonSet container's args and env with the container's filesystem laid out under `root`: ConfigMap
    volumes become files with the ConfigMap's data, emptyDirs empty directories, hostPath volumes symlinks to the
    host path (or, with `bind`, mount points listed in `binds` for the caller to bind-mount in its own mount
    namespace); every argument naming a path under (or above) a mount point moves under `root`. The downward
    API's spec.nodeName becomes `node_name`. `host_paths` replaces hostPath sources that do not exist on this
    machine (a runtime socket) by ones that do."""
    spec = daemon_container(docs, name)
    pod_spec = one(docs, "DaemonSet", "trinet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    mount_points, binds = [], []
    for mount in spec["volumeMounts"]:
        volume, target = volumes[mount["name"]], root / mount["mountPath"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            target.mkdir()
            for key, text in one(docs, "ConfigMap", volume["configMap"]["name"]).get("data", {}).items():
                (target / key).write_text(text)
        elif "hostPath" in volume:
            source = (host_paths or {}).get(volume["hostPath"]["path"], volume["hostPath"]["path"])
            if not bind:
                target.symlink_to(source)
            else:
                if volume["hostPath"].get("type") in {"Socket", "File"}:
                    target.touch()  # a file is mounted on a file
                else:
                    target.mkdir()
                binds.append((source, target, bool(mount.get("readOnly"))))
        else:
            assert "emptyDir" in volume, volume
            target.mkdir()
        mount_points.append(mount["mountPath"])

    def inside(path: str, directory: str) -> bool:
        return path == directory or path.startswith(directory.rstrip("/") + "/")

    def relocate(arg: str) -> str:
        """A path under a mount point, or above one (--host-prefix=/host for /host/proc), moves under root."""
        flag, eq, value = arg.partition("=")
        if eq and value.startswith("/") and any(inside(value, m) or inside(m, value) for m in mount_points):
            return f"{flag}={root}{value}"
        return arg

    env = {}
    for var in spec.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}, var
            env[var["name"]] = node_name
    return Container([relocate(arg) for arg in spec["args"]], env, binds, spec["securityContext"])
