"""Render deploy/ variants with the real kubectl (kustomize) and pick objects out of them."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from e2e.controlplane import build_kubectl

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NAMESPACE = "trinet-system"
# Every variant a user can apply: the default, each overlay, the CRD alone.
VARIANTS = {"default": DEPLOY, "procfs": DEPLOY / "overlays/procfs", "cri": DEPLOY / "overlays/cri"}
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


def daemon_container(docs: Sequence[Doc]) -> Doc:
    containers = one(docs, "DaemonSet", "trinet")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["trinet"]
    return dict(containers[0])


def to_yaml(docs: Sequence[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
