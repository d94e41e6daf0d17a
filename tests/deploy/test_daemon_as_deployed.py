"""`trinet run` exactly as the rendered DaemonSet starts it, in a container made of the manifest's own parts.

The "container" is a new PID and mount namespace (no hostPID) in which the manifest's hostPath volumes are
bind-mounted (read-only where the manifest says so), its ConfigMap is files, and the process runs as the
securityContext's uid with only the capabilities the manifest adds (every other one dropped, no_new_privs as
allowPrivilegeEscalation says). The API server is the bare one the manifests were installed into with kubectl,
and the token is the ServiceAccount's, asked for with `kubectl create token`. Substitutions, all forced by
sharing one machine: the in-cluster configuration becomes TRINET_KUBECONFIG, the container's ports map to free
ports of the host network (no pod network here), and the node is a name no other test uses. Not reproduced: the
read-only root filesystem, the seccomp profile, the image itself (the checkout's console script runs).

The pod is a network namespace with `net1`, whose sandbox process runs as uid 65535 (as pause does) in a
kubelet-style cgroup: resolving it needs SYS_PTRACE, and the test without it shows that.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from e2e.controlplane import Credentials, kubectl
from tests.conftest import require_root_and_nftables
from tests.deploy.helpers import DEPLOY, NAMESPACE, VARIANTS, Container, Doc, container, daemon_container, one, render
from tests.support.netns import ip, throwaway_netns, unique_name

T = TypeVar("T")
TRINET = Path(sys.executable).parent / "trinet"
CGROUP_V2 = Path("/sys/fs/cgroup/unified")
NAD = '{"cniVersion": "0.3.1", "type": "macvlan", "mode": "bridge"}'


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for: {what}"
        time.sleep(0.1)
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    netns: str
    uid: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def pod_sandbox(admin: httpx.Client, namespace: str, node: str, name: str) -> Iterator[Sandbox]:
    """A Pod object on `node` with a secondary interface `net1`, and its sandbox: a namespace holding `net1` and
    a uid-65535 process in the pod's cgroup (systemd driver, cgroup v2)."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/networks": "macnet"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "example.invalid/none"}]},
    }
    created = admin.post(f"/api/v1/namespaces/{namespace}/pods", json=body)
    created.raise_for_status()
    uid = created.json()["metadata"]["uid"]
    with throwaway_netns() as netns:
        ip("link", "add", "net1", "type", "veth", "peer", "name", "peer1", netns=netns)
        ip("addr", "add", "10.78.0.2/24", "dev", "net1", netns=netns)
        ip("link", "set", "net1", "up", netns=netns)
        pod_slice = CGROUP_V2 / "kubepods.slice" / f"kubepods-pod{uid.replace('-', '_')}.slice"
        cgroup = pod_slice / "cri-containerd-sandbox.scope"
        cgroup.mkdir(parents=True)
        process = subprocess.Popen(["ip", "netns", "exec", netns, "setpriv", "--reuid=65535", "--regid=65535",
                                    "--clear-groups", "sleep", "infinity"])  # fmt: skip
        try:
            (cgroup / "cgroup.procs").write_text(str(process.pid))
            status = [{"name": f"{namespace}/macnet", "interface": "net1", "ips": ["10.78.0.2"]}]
            merge = {"Content-Type": "application/merge-patch+json"}
            annotations = {"k8s.v1.cni.cncf.io/network-status": json.dumps(status)}
            admin.patch(f"/api/v1/namespaces/{namespace}/pods/{name}", headers=merge,
                        json={"metadata": {"annotations": annotations}}).raise_for_status()  # fmt: skip
            admin.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", headers=merge,
                        json={"status": {"phase": "Running"}}).raise_for_status()  # fmt: skip
            yield Sandbox(netns, uid, process)
        finally:
            process.kill()
            process.wait()
            for directory in (cgroup, pod_slice):
                wait_for(lambda d=directory: _rmdir(d), f"{directory} removable", timeout=10)  # type: ignore[misc]


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def table(netns: str) -> str | None:
    proc = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet", "multi_networkpolicy"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return proc.stdout if proc.returncode == 0 else None


class ContainerProcess:
    """The container's command as PID 1 of a new PID and mount namespace, with the manifest's privileges."""

    def __init__(self, view: Container, env: dict[str, str], log: Path, drop: set[str]) -> None:
        security = view.security
        caps = [c for c in security["capabilities"]["add"] if c not in drop]
        assert security["capabilities"]["drop"] == ["ALL"]
        setpriv = [
            "setpriv", f"--reuid={security['runAsUser']}", f"--regid={security['runAsGroup']}", "--clear-groups",
            "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all" + "".join(f",+{c.lower()}" for c in caps),
        ]  # fmt: skip
        if security.get("allowPrivilegeEscalation") is False:
            setpriv.append("--no-new-privs")
        script = []
        for host, target, read_only in view.binds:
            # recursive, as kubelet binds hostPath volumes (a namespace file in /var/run/netns is a mount itself)
            script.append(f"mount --rbind {shlex.quote(host)} {shlex.quote(str(target))}")
            if read_only:
                script.append(f"mount -o remount,bind,ro {shlex.quote(str(target))}")
        script.append("mount -t proc proc /proc")  # the container's own /proc: its PID namespace only
        script.append(shlex.join(["exec", *setpriv, str(TRINET), *view.args]))
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--kill-child",
             "sh", "-euc", " && ".join(script)],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **view.env, **env},
            stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) if line.startswith("{") else {"event": "non-json", "line": line} for line in lines]

    def stop(self) -> int:
        """SIGTERM to the container's processes (PID 1 is trinet), as kubelet stops a container."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        self._out.close()
        return code


@dataclass
class Deployed:
    cluster: Credentials
    namespace: str
    node: str
    docs: list[Doc]
    env: dict[str, str]


@pytest.fixture
def deployed(installed: Credentials, tmp_path: Path) -> Deployed:
    require_root_and_nftables()
    token = kubectl(installed, "create", "token", "trinet", "-n", NAMESPACE, "--duration=1h").stdout.strip()
    kubeconfig = installed.write_kubeconfig(tmp_path / "kubeconfig", token)
    namespace = unique_name("deploy")
    with installed.client() as admin:
        admin.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).raise_for_status()
        admin.post(f"/apis/k8s.cni.cncf.io/v1/namespaces/{namespace}/network-attachment-definitions",
                   json={"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                         "metadata": {"name": "macnet"}, "spec": {"config": NAD}}).raise_for_status()  # fmt: skip
        policy = {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
                  "metadata": {"name": "deny-ingress", "annotations": {"k8s.v1.cni.cncf.io/policy-for": "macnet"}},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}  # fmt: skip
        policies = f"/apis/k8s.cni.cncf.io/v1beta1/namespaces/{namespace}/multi-networkpolicies"
        admin.post(policies, json=policy).raise_for_status()
        # a policy for a network that does not exist: the daemon reports it with an Event
        policy["metadata"] = {"name": "for-missing", "annotations": {"k8s.v1.cni.cncf.io/policy-for": "missing"}}
        admin.post(policies, json=policy).raise_for_status()
    env = {"TRINET_KUBECONFIG": str(kubeconfig)}
    return Deployed(installed, namespace, unique_name("node"), render(DEPLOY), env)


def _start(
    d: Deployed,
    root: Path,
    docs: list[Doc] | None = None,
    name: str = "trinet",
    drop: frozenset[str] = frozenset(),
    host_paths: dict[str, str] | None = None,
) -> tuple[ContainerProcess, dict[str, int]]:
    """Start container `name` of the DaemonSet in `docs` (default: the default install); returns it and its
    container ports mapped to free host ports."""
    docs = docs or d.docs
    view = container(docs, root / "rootfs", d.node, bind=True, name=name, host_paths=host_paths)
    ports = {p["name"]: p["containerPort"] for p in daemon_container(docs).get("ports", [])}
    mapped = {port_name: _free_port() for port_name in ports}
    for index, arg in enumerate(view.args):
        flag, _, value = arg.partition("=")
        if flag.endswith("-bind-address"):  # every listener moves to a free port (0 would disable it)
            port = next((n for n, p in ports.items() if value == f":{p}"), None)
            view.args[index] = f"{flag}=127.0.0.1:{mapped[port] if port else _free_port()}"
    return ContainerProcess(view, d.env, root / f"{name}.log", set(drop)), mapped


def _probe(d: Deployed, kind: str, mapped: dict[str, int]) -> int:
    probe = daemon_container(d.docs)[kind]["httpGet"]
    try:
        return httpx.get(f"http://127.0.0.1:{mapped[probe['port']]}{probe['path']}", timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_daemon_enforces_under_the_manifests_privileges_and_token(deployed: Deployed, tmp_path: Path) -> None:
    with deployed.cluster.client() as admin, pod_sandbox(admin, deployed.namespace, deployed.node, "p") as pod:
        daemon, mapped = _start(deployed, tmp_path)
        try:
            wait_for(lambda: _probe(deployed, "livenessProbe", mapped) == 200, "livenessProbe 200")
            wait_for(lambda: _probe(deployed, "readinessProbe", mapped) == 200, "readinessProbe 200")
            wait_for(lambda: '"net1"' in (table(pod.netns) or ""), "trinet's table for net1 in the pod's namespace")
            events_path = f"/apis/events.k8s.io/v1/namespaces/{deployed.namespace}/events"
            written = wait_for(
                lambda: [e for e in admin.get(events_path).json()["items"] if e["reason"] == "PolicyNetworkMissing"],
                "an Event written with the ServiceAccount's token",
            )
            assert written[0]["regarding"]["name"] == "for-missing"
            assert written[0]["reportingController"] == "trinet"
            metrics = httpx.get(f"http://127.0.0.1:{mapped['metrics']}/metrics", timeout=5)
            assert metrics.status_code == 200
            assert "trinet_" in metrics.text
            events = daemon.events()
            assert {"starting", "store-synced", "ready"} <= {e.get("event") for e in events}
            assert not [e for e in events if e.get("level") in {"error", "ERROR"}], events
        finally:
            assert daemon.stop() == 0, daemon.log.read_text()
        installed = table(pod.netns)
        assert installed is not None, "stopping the daemon must leave the rules in place"

        # the rolling update's next pod: it adopts the installed table without a transaction
        upgraded, mapped = _start(deployed, tmp_path / "upgrade")
        try:
            wait_for(lambda: _probe(deployed, "readinessProbe", mapped) == 200, "new daemon ready")
            key = f"{deployed.namespace}/p"
            assert [e for e in upgraded.events() if e.get("event") == "transaction" and e.get("pod") == key] == []
            assert table(pod.netns) == installed
        finally:
            assert upgraded.stop() == 0, upgraded.log.read_text()

        # uninstall: the cleanup overlay's init container, as README "Upgrade and uninstall" runs it
        cleanup, _ = _start(deployed, tmp_path / "cleanup", render(VARIANTS["cleanup"]), name="cleanup")
        assert cleanup.process.wait(timeout=60) == 0, cleanup.log.read_text()
        cleanup.stop()
        assert table(pod.netns) is None


def test_without_sys_ptrace_the_pod_namespace_cannot_be_resolved(deployed: Deployed, tmp_path: Path) -> None:
    """Why the procfs overlay adds SYS_PTRACE: the sandbox process belongs to another user."""
    with deployed.cluster.client() as admin, pod_sandbox(admin, deployed.namespace, deployed.node, "p") as pod:
        daemon, _ = _start(deployed, tmp_path, drop=frozenset({"SYS_PTRACE"}))
        try:
            key = f"{deployed.namespace}/p"
            wait_for(lambda: [e for e in daemon.events() if e.get("event") == "netns-unavailable"
                              and e.get("pod") == key], "netns-unavailable for the pod")  # fmt: skip
            assert table(pod.netns) is None
        finally:
            daemon.stop()


def test_cri_overlay_enforces_through_the_runtime_socket(deployed: Deployed, tmp_path: Path) -> None:
    """The cri overlay as rendered: the runtime socket (a CRI test server built from k8s.io/cri-api stands in for
    containerd's, the one host path substituted) and the host's /var/run/netns, no host /proc, no SYS_PTRACE.
    The runtime names the sandbox's namespace by path, as containerd does."""
    docs = render(VARIANTS["cri"])
    volumes = one(docs, "DaemonSet", "trinet")["spec"]["template"]["spec"]["volumes"]
    (socket_volume,) = [v for v in volumes if v.get("hostPath", {}).get("type") == "Socket"]
    assert "SYS_PTRACE" not in daemon_container(docs)["securityContext"]["capabilities"]["add"]
    with deployed.cluster.client() as admin, pod_sandbox(admin, deployed.namespace, deployed.node, "p") as pod, \
            cri_server(tmp_path) as (socket, state):  # fmt: skip
        sandbox = {"id": "sb-p", "uid": pod.uid, "name": "p", "namespace": deployed.namespace, "ready": True,
                   "pid": 0, "netns": f"/var/run/netns/{pod.netns}", "containers": []}  # fmt: skip
        state.write_text(json.dumps({"sandboxes": [sandbox]}))
        daemon, mapped = _start(deployed, tmp_path, docs, host_paths={socket_volume["hostPath"]["path"]: str(socket)})
        try:
            wait_for(lambda: _probe(deployed, "readinessProbe", mapped) == 200, "readinessProbe 200")
            wait_for(lambda: '"net1"' in (table(pod.netns) or ""), "trinet's table for net1 in the pod's namespace")
            assert [e.get("netns_source") for e in daemon.events() if e.get("event") == "starting"] == ["cri"]
        finally:
            assert daemon.stop() == 0, daemon.log.read_text()


@contextlib.contextmanager
def cri_server(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(socket, state file) of the daemon tests' CRI test server."""
    from tests.daemon.cri_server.build import build_cri_server  # noqa: PLC0415 (builds with Go on first use)

    socket, state = tmp_path / "cri.sock", tmp_path / "cri-state.json"
    state.write_text('{"sandboxes": []}')
    server = subprocess.Popen([str(build_cri_server()), "--listen", str(socket), "--state", str(state)])
    try:
        wait_for(socket.exists, "CRI test server listening", timeout=10)
        yield socket, state
    finally:
        server.terminate()
        server.wait()
