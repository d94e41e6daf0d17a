"""The README's install, local walk-through and configuration reference are true (run or rendered here)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import yaml

from e2e.controlplane import Credentials, build_kubectl, kubectl
from tests.deploy import config_reference
from tests.deploy.helpers import DEPLOY, NAMESPACE, REPO, daemon_container, one, render

README = (REPO / "README.md").read_text()
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _block_after(marker: str, language: str) -> str:
    """The first fenced block of `language` after `marker`."""
    match = re.search(re.escape(marker) + rf".*?```{language}\n(.*?)```", README, re.S)
    assert match, f"no {language} block after {marker!r} in README.md"
    return match[1]


def test_configuration_reference_is_current() -> None:
    """Fails when a setting changed without `python -m tests.deploy.config_reference --write`."""
    assert config_reference.current(README) == config_reference.render()


def test_local_install_commands_work_on_a_bare_control_plane(bare_cluster: Credentials) -> None:
    lines = [line for line in _block_after("<!-- local-install", "bash").splitlines() if line.strip()]
    export, commands = lines[0], lines[1:]
    # the export names the kubeconfig `python -m e2e.controlplane run` writes and the directory of the kubectl
    assert "KUBECONFIG=$PWD/.cache/controlplane/kubeconfig" in export
    assert "$(ls -d $PWD/.cache/controlplane/bin-*)" in export
    if "TRINET_CACHE_DIR" not in os.environ:
        assert build_kubectl().parent.parent == REPO / ".cache/controlplane"
    main = (REPO / "e2e/controlplane/__main__.py").read_text()
    assert 'default=Path(".cache/controlplane/kubeconfig")' in main
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "kubectl", command
        outputs.append(kubectl(bare_cluster, *argv[1:], cwd=REPO).stdout)
    assert "daemonset.apps/trinet created" in outputs[0]
    rules = dict(re.findall(r"^(\S+)\s+\[\]\s+\[\]\s+\[(.*)\]$", outputs[-1], re.M))
    assert rules["pods"] == "get list watch"
    assert rules["events.events.k8s.io"] == "create patch"
    assert "secrets" not in rules


def test_uninstall_commands_work_after_the_install(bare_cluster: Credentials) -> None:
    """After the local install: the cleanup overlay applies over it; the delete names exactly what is installed
    (a server-side dry run: a bare API server has no namespace controller, so a real delete would never end); the
    rollout needs a kubelet and is left out."""
    kubectl(bare_cluster, "apply", "-k", "deploy/", cwd=REPO)
    lines = [line.split("#")[0].strip() for line in _block_after("<!-- uninstall", "bash").splitlines()]
    commands = [shlex.split(line) for line in lines if line]
    assert [c[:2] for c in commands] == [["kubectl", "apply"], ["kubectl", "-n"], ["kubectl", "delete"]]
    applied = kubectl(bare_cluster, *commands[0][1:], cwd=REPO).stdout
    assert "daemonset.apps/trinet configured" in applied
    with bare_cluster.client() as admin:
        pod_spec = admin.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/trinet").json()["spec"]["template"]
        assert [c["args"][0] for c in pod_spec["spec"]["initContainers"]] == ["cleanup"]
    deleted = kubectl(bare_cluster, *commands[2][1:], "--dry-run=server", cwd=REPO).stdout
    pattern = r'^(\S+) "([^"]+)" deleted (?:from \S+ namespace )?\(server dry run\)$'
    assert set(re.findall(pattern, deleted, re.M)) == _names(render(REPO / "deploy/overlays/cleanup"))


def _names(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(`kind.group`, name) as kubectl prints them."""
    groups = {"Namespace": "", "ServiceAccount": "", "ConfigMap": "", "DaemonSet": ".apps",
              "CustomResourceDefinition": ".apiextensions.k8s.io", "ClusterRole": ".rbac.authorization.k8s.io",
              "ClusterRoleBinding": ".rbac.authorization.k8s.io"}  # fmt: skip
    return {(f"{d['kind'].lower()}{groups[d['kind']]}", d["metadata"]["name"]) for d in docs}


def test_your_own_kustomization_renders_with_image_and_components(tmp_path: Path) -> None:
    text = _block_after("Then install with your own kustomization", "yaml")
    checkout = os.path.relpath(REPO, tmp_path / "my-trinet")
    (tmp_path / "my-trinet").mkdir()
    (tmp_path / "my-trinet/kustomization.yaml").write_text(text.replace("../trinet/", f"{checkout}/"))
    docs = render(tmp_path / "my-trinet")
    image = yaml.safe_load(text)["images"][0]
    assert daemon_container(docs)["image"] == f"{image['newName']}:{image['newTag']}"
    assert image["newTag"] == VERSION
    assert one(docs, "CustomResourceDefinition", "network-attachment-definitions.k8s.cni.cncf.io")
    assert one(docs, "ServiceMonitor", "trinet")
    assert f"docker build -t {image['newName']}:{VERSION} ." in README


def test_every_deploy_path_the_readme_names_exists_and_renders() -> None:
    paths = set(re.findall(r"`(deploy/[\w/.*-]*)`", README)) | set(re.findall(r"-k (deploy/[\w/-]*)", README))
    assert {"deploy/overlays/cleanup", "deploy/overlays/cri", "deploy/crds"} <= paths
    for path in paths:
        if "*" in path:
            assert list(REPO.glob(path)), path
        elif path.endswith(".yaml") or path.endswith(".py"):
            assert (REPO / path).is_file(), path
        else:
            assert (REPO / path).is_dir(), path
            if (REPO / path / "kustomization.yaml").is_file() and "components" not in path:
                assert render(REPO / path), path
    assert render(DEPLOY) == render(DEPLOY / "overlays/procfs")


def test_the_local_control_plane_command_serves_the_install(tmp_path: Path) -> None:
    """`python -m e2e.controlplane run --bare` as the README starts it: a kubeconfig kubectl can use, nothing of
    trinet installed, and Ctrl-C stops it with nothing left behind."""
    kubeconfig = tmp_path / "kubeconfig"
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "e2e.controlplane", "run", "--bare", "--kubeconfig",
                                 str(kubeconfig)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops it." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        env = {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "KUBERC": "off"}
        get = subprocess.run([str(build_kubectl()), "get", "crd", "-o", "name"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
        assert (get.returncode, get.stdout) == (0, ""), get.stderr
        assert f"kubectl:           {build_kubectl()}" in log.read_text()
        port = re.search(r"ready at https://127\.0\.0\.1:(\d+)", log.read_text())
        assert port
        (apiserver,) = [c for c in _processes() if f"--secure-port={port[1]} " in c + " "]
        cert_dir = re.search(r"--cert-dir=(\S+)/certs", apiserver)
        assert cert_dir
        workdir = cert_dir[1]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()
    assert not [c for c in _processes() if workdir in c]
    assert not Path(workdir).exists()


def _processes() -> list[str]:
    """Command lines of live processes (to look for a control plane left running)."""
    lines = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit():
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return lines
