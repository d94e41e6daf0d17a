"""The CRI netns source against a CRI test server built from k8s.io/cri-api (pods not in any pod cgroup, so only
the runtime can tell where their namespaces are)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.controlplane import Credentials
from tests.conftest import require_root_and_nftables
from tests.daemon.cluster import Daemon, FakePodNetwork, Node, node_fixtures, table_text, wait_for
from tests.daemon.cri_server.build import build_cri_server
from tests.daemon.test_daemon import SERVER_POLICY

admin, cluster = node_fixtures("cri")


@pytest.fixture
def cri(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(socket, state file) of a running CRI test server."""
    binary = build_cri_server()
    socket, state = tmp_path / "cri.sock", tmp_path / "cri-state.json"
    state.write_text('{"sandboxes": []}')
    server = subprocess.Popen([str(binary), "--listen", str(socket), "--state", str(state)], stderr=subprocess.PIPE)
    try:
        wait_for(socket.exists, "CRI test server listening", timeout=10)
        yield socket, state
    finally:
        server.terminate()
        server.wait()


def sandbox_entry(pod: FakePodNetwork, name: str, namespace: str, how: str) -> dict[str, object]:
    entry: dict[str, object] = {"id": f"sb-{name}", "uid": pod.uid, "name": name, "namespace": namespace,
                                "ready": True, "pid": 0, "netns": "", "containers": []}  # fmt: skip
    if how == "netns-path":  # containerd/CRI-O: the runtime spec names the namespace
        entry["netns"] = f"/run/netns/{pod.netns}"
    elif how == "sandbox-pid":
        entry["pid"] = pod.process.pid
    else:  # nothing in the sandbox's status: a running container's pid
        entry["containers"] = [{"id": f"c-{name}-old", "pid": 0, "running": False},
                               {"id": f"c-{name}", "pid": pod.process.pid, "running": True}]  # fmt: skip
    return entry


def test_namespaces_found_through_the_runtime(
    control_plane: Credentials, cluster: Node, cri: tuple[Path, Path], tmp_path: Path
) -> None:
    socket, state = cri
    ways = ("netns-path", "sandbox-pid", "container-pid")
    pods = {how: cluster.pod(f"s-{how}", {"app": "server"}, cgroup_driver="none") for how in ways}
    client = cluster.pod("client", {"app": "client"}, cgroup_driver="none")
    entries = [sandbox_entry(p, f"s-{how}", cluster.namespace, how) for how, p in pods.items()]
    entries.append(sandbox_entry(client, "client", cluster.namespace, "netns-path"))
    state.write_text(json.dumps({"sandboxes": entries}))
    cluster.policy("allow-client", SERVER_POLICY)
    daemon = Daemon(control_plane, tmp_path, cluster.name, "--netns-source", "cri",
                    "--container-runtime-endpoint", f"unix://{socket}")  # fmt: skip
    daemon.start()
    try:
        daemon.wait_ready()
        for how, pod in pods.items():
            wait_for(lambda pod=pod: table_text(pod.netns), f"pod found by {how} enforced")  # type: ignore[misc]
        assert table_text(client.netns) is None
        assert any(e.get("netns_source") == "cri" for e in daemon.since(0, "starting"))
    finally:
        daemon.stop()


def test_a_pod_the_runtime_does_not_know_is_retried(
    control_plane: Credentials, cluster: Node, cri: tuple[Path, Path], tmp_path: Path
) -> None:
    socket, _ = cri
    cluster.pod("unknown", {"app": "server"}, cgroup_driver="none")
    cluster.policy("allow-client", SERVER_POLICY)
    daemon = Daemon(control_plane, tmp_path, cluster.name, "--netns-source", "cri",
                    "--container-runtime-endpoint", str(socket))  # fmt: skip
    daemon.start()
    try:
        daemon.wait_ready()  # visited once (and failed): ready all the same
        key = f"{cluster.namespace}/unknown"
        (failure,) = wait_for(lambda: daemon.since(0, "netns-unavailable", pod=key)[:1], "failure logged")
        assert failure["reason"] == "no-sandbox"
        wait_for(lambda: daemon.since(0, "retry-scheduled", pod=key), "retried")
    finally:
        daemon.stop()


def test_run_refuses_a_cri_socket_that_does_not_exist(control_plane: Credentials, tmp_path: Path) -> None:
    """Else every pod would fail to resolve forever while /readyz said 200: nothing enforced, silently."""
    require_root_and_nftables()
    missing = tmp_path / "containerd.sock"
    daemon = Daemon(control_plane, tmp_path, "some-node", "--netns-source", "cri",
                    "--container-runtime-endpoint", str(missing))  # fmt: skip
    proc = subprocess.run(daemon.argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"--container-runtime-endpoint: {missing}: No such file or directory" in proc.stderr
