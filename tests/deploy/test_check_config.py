"""The DaemonSet's arguments and environment, from the rendered manifests, accepted by the real `trinet check-config`.

The container's filesystem is laid out in a temporary directory (ConfigMap files with the ConfigMap's data, host
paths as symlinks); the one substitution is the API server: TRINET_KUBECONFIG points at the test control plane
with the ServiceAccount's token instead of the in-cluster configuration.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.controlplane import Credentials
from tests.deploy.helpers import DEPLOY, VARIANTS, Doc, container, one, render

TRINET = Path(sys.executable).parent / "trinet"  # the console script the image's ENTRYPOINT names


def check_config(docs: list[Doc], tmp_path: Path, credentials: Credentials) -> subprocess.CompletedProcess[str]:
    """`trinet check-config` with the container's arguments; a hostPath socket the manifest mounts (the runtime's
    CRI socket, which check-config requires to exist) is stood in for by a unix socket listening in `tmp_path`."""
    pod_spec = one(docs, "DaemonSet", "trinet")["spec"]["template"]["spec"]
    host_sockets = [v["hostPath"]["path"] for v in pod_spec["volumes"] if v.get("hostPath", {}).get("type") == "Socket"]
    with contextlib.ExitStack() as stack:
        stand_ins = {}
        for n, path in enumerate(host_sockets):
            listener = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            listener.bind(str(tmp_path / f"runtime-{n}.sock"))
            stand_ins[path] = str(tmp_path / f"runtime-{n}.sock")
        view = container(docs, tmp_path / "container", node_name="node-a", host_paths=stand_ins)
        args, env = view.args, view.env
        assert args[0] == "run"
        kubeconfig = credentials.write_kubeconfig(tmp_path / "kubeconfig", credentials.daemon_token)
        env |= {"TRINET_KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}
        return subprocess.run([str(TRINET), "check-config", *args[1:]], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize("variant", ["default", "procfs", "cri"])
def test_daemonset_configuration_is_accepted(control_plane: Credentials, tmp_path: Path, variant: str) -> None:
    """Every variant's container configuration is accepted (cri needs the image's `cri` extra, grpcio)."""
    proc = check_config(render(VARIANTS[variant]), tmp_path, control_plane)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == "trinet: configuration OK (node node-a, table multi_networkpolicy)"


def test_a_bad_custom_rule_in_the_configmap_is_reported_with_file_and_line(
    control_plane: Credentials, tmp_path: Path
) -> None:
    docs = render(DEPLOY)
    one(docs, "ConfigMap", "trinet-custom-rules")["data"]["v6-egress.rules"] = "# ok\nip6 daddr ::1 frobnicate\n"
    proc = check_config(docs, tmp_path, control_plane)
    assert proc.returncode == 2
    bad = tmp_path / "container/etc/trinet/custom-rules/v6-egress.rules"
    assert f"{bad}:2:" in proc.stderr, proc.stderr


def test_node_name_comes_only_from_the_downward_api(control_plane: Credentials, tmp_path: Path) -> None:
    """Without NODE_NAME (the downward API's spec.nodeName) the same arguments are refused."""
    docs = render(DEPLOY)
    one(docs, "DaemonSet", "trinet")["spec"]["template"]["spec"]["containers"][0]["env"] = []
    proc = check_config(docs, tmp_path, control_plane)
    assert proc.returncode == 2
    assert "--hostname-override: the node name is not set" in proc.stderr
