"""A node as the daemon sees one: pods that are network namespaces with a process in a kubelet-style cgroup
carrying the pod UID, Pod objects in a real API server, and the daemon as a real process (`python -m trinet run`).

Every pod gets a veth `net1` into a shared "fabric" namespace with a bridge, so pods reach each other by IP. The
pod's process is `sleep infinity` started in the namespace and moved into
`/sys/fs/cgroup/unified/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/...` (cgroup
v2, systemd driver) or `/sys/fs/cgroup/pids/kubepods/besteffort/pod<uid>/...` (cgroup v1, cgroupfs driver).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from e2e.controlplane import Credentials
from tests.api.helpers import unique_namespace
from tests.conftest import require_root_and_nftables
from tests.support.netns import ip, throwaway_netns, unique_name

T = TypeVar("T")
NAD_CONFIG = '{"cniVersion": "0.3.1", "type": "macvlan", "mode": "bridge"}'
V2_ROOT = Path("/sys/fs/cgroup/unified")
V1_ROOT = Path("/sys/fs/cgroup/pids")
_counter = itertools.count(10)


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(interval)


def nft_in(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", *args], capture_output=True, text=True, check=False)


def table_text(netns: str, table: str = "multi_networkpolicy") -> str | None:
    """`nft list table inet TABLE` in the namespace, or None when the table does not exist."""
    proc = nft_in(netns, "list", "table", "inet", table)
    return proc.stdout if proc.returncode == 0 else None


@dataclass
class FakePodNetwork:
    """The pod's sandbox: its namespace, process and cgroup (removed by ``close``)."""

    netns: str
    address: str
    mac: str
    process: subprocess.Popen[bytes]
    cgroup: Path | None  # None: not in a pod cgroup (found through CRI only)
    cgroup_root: Path
    uid: str = ""

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        if self.cgroup is None:
            return
        path = self.cgroup
        while path != self.cgroup_root and path.is_relative_to(self.cgroup_root):
            with contextlib.suppress(OSError):
                path.rmdir()  # fails while a sibling pod still uses a shared parent; that is fine
            path = path.parent


def make_sandbox(stack: contextlib.ExitStack, fabric: str, uid: str, driver: str = "systemd") -> FakePodNetwork:
    """A pod sandbox on the bridge of ``fabric``: netns, veth ``net1``, a process in the pod UID's cgroup."""
    netns = stack.enter_context(throwaway_netns("trinet-test-dpod"))
    n = next(_counter)
    address = f"10.77.{n // 250}.{n % 250 + 2}/16"
    host_end = f"tdh{os.getpid() % 10000}x{n}"
    ip("link", "add", host_end, "type", "veth", "peer", "name", "net1", "netns", netns)
    ip("link", "set", host_end, "netns", fabric)
    ip("link", "set", host_end, "master", "br0", "up", netns=fabric)
    ip("addr", "add", address, "dev", "net1", netns=netns)
    ip("link", "set", "net1", "up", netns=netns)
    mac = json.loads(ip("-j", "link", "show", "net1", netns=netns))[0]["address"]
    cgroup: Path | None
    if driver == "none":
        root, cgroup = V2_ROOT, None
    elif driver == "systemd":
        root = V2_ROOT
        slice_ = f"kubepods-besteffort-pod{uid.replace('-', '_')}.slice"
        cgroup = root / "kubepods.slice" / "kubepods-besteffort.slice" / slice_ / f"cri-containerd-{n}.scope"
    else:
        root = V1_ROOT
        cgroup = root / "kubepods" / "besteffort" / f"pod{uid}" / f"ctr{n}"
    process = subprocess.Popen(["ip", "netns", "exec", netns, "sleep", "infinity"])
    if cgroup is not None:
        cgroup.mkdir(parents=True, exist_ok=True)
        (cgroup / "cgroup.procs").write_text(str(process.pid))
    sandbox = FakePodNetwork(netns, address, mac, process, cgroup, root, uid)
    stack.callback(sandbox.close)
    return sandbox


@dataclass
class Node:
    """Pods of one test on node ``name`` (and pods of other nodes, for negative checks)."""

    admin: httpx.Client
    namespace: str
    name: str
    fabric: str
    stack: contextlib.ExitStack
    pods: dict[str, FakePodNetwork] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)

    def create_nad(self, name: str = "macnet", cni_type: str = "macvlan") -> None:
        config = NAD_CONFIG.replace("macvlan", cni_type)
        body = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name}, "spec": {"config": config}}  # fmt: skip
        r = self.admin.post(f"/apis/k8s.cni.cncf.io/v1/namespaces/{self.namespace}/network-attachment-definitions",
                            json=body)  # fmt: skip
        r.raise_for_status()

    def pod(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        *,
        node: str | None = None,
        host_network: bool = False,
        cgroup_driver: str = "systemd",
        network: str = "macnet",
        phase: str = "Running",
        annotate: bool = True,
    ) -> FakePodNetwork:
        """Create a Pod object, then its sandbox (netns, interface, process in the pod's cgroup), then annotate it
        with network-status, in the order kubelet and multus do."""
        body = {
            "metadata": {"name": name, "labels": labels or {},
                         "annotations": {"k8s.v1.cni.cncf.io/networks": network}},
            "spec": {"nodeName": node or self.name, "hostNetwork": host_network,
                     "containers": [{"name": "c", "image": "example.invalid/none"}]},
        }  # fmt: skip
        r = self.admin.post(f"/api/v1/namespaces/{self.namespace}/pods", json=body)
        r.raise_for_status()
        uid = r.json()["metadata"]["uid"]
        sandbox = self._sandbox(uid, cgroup_driver)
        self.pods[name] = sandbox
        self.networks[name] = network
        if annotate:
            self.annotate_network_status(name)
        self.admin.patch(
            f"/api/v1/namespaces/{self.namespace}/pods/{name}/status",
            json={"status": {"phase": phase}},
            headers={"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()
        return sandbox

    def recreate_sandbox(self, name: str, *, reannotate: bool = True) -> FakePodNetwork:
        """The pod's sandbox dies and a new one (new netns, same pod UID) takes its place, as after a node reboot
        or a sandbox crash; Multus then rewrites network-status (the new address)."""
        old = self.pods[name]
        old.close()
        self.pods[name] = make_sandbox(self.stack, self.fabric, old.uid)
        if reannotate:
            self.annotate_network_status(name)
        return self.pods[name]

    def annotate_network_status(self, name: str) -> None:
        """Write the pod's network-status annotation, as Multus does once the sandbox's interfaces exist."""
        sandbox = self.pods[name]
        status = [
            {"name": "default-net", "interface": "eth0", "ips": ["10.244.0.9"], "default": True},
            {"name": f"{self.namespace}/{self.networks[name]}", "interface": "net1",
             "ips": [sandbox.address.split("/")[0]], "mac": sandbox.mac},
        ]  # fmt: skip
        self.patch_pod(name, {"metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": json.dumps(status)}}})

    def patch_pod(self, name: str, patch: dict[str, Any]) -> None:
        self.admin.patch(
            f"/api/v1/namespaces/{self.namespace}/pods/{name}",
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()

    def _sandbox(self, uid: str, driver: str) -> FakePodNetwork:
        return make_sandbox(self.stack, self.fabric, uid, driver)

    def policy(self, name: str, spec: dict[str, Any], network: str = "macnet") -> None:
        body = {
            "apiVersion": "k8s.cni.cncf.io/v1beta1",
            "kind": "MultiNetworkPolicy",
            "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/policy-for": network}},
            "spec": spec,
        }
        r = self.admin.post(f"/apis/k8s.cni.cncf.io/v1beta1/namespaces/{self.namespace}/multi-networkpolicies",
                            json=body)  # fmt: skip
        r.raise_for_status()

    def delete_policy(self, name: str) -> None:
        self.admin.delete(
            f"/apis/k8s.cni.cncf.io/v1beta1/namespaces/{self.namespace}/multi-networkpolicies/{name}"
        ).raise_for_status()


@contextlib.contextmanager
def node(admin: httpx.Client, namespace: str) -> Iterator[Node]:
    with contextlib.ExitStack() as stack:
        fabric = stack.enter_context(throwaway_netns("trinet-test-dfab"))
        ip("link", "add", "br0", "type", "bridge", netns=fabric)
        ip("link", "set", "br0", "up", netns=fabric)
        yield Node(admin, namespace, unique_name("node"), fabric, stack)


@contextlib.contextmanager
def nad_node(admin: httpx.Client, prefix: str) -> Iterator[Node]:
    """A node whose pods go in a fresh namespace named after ``prefix``, holding the macvlan NAD ``macnet``."""
    with node(admin, unique_namespace(admin, prefix)) as n:
        n.create_nad()
        yield n


def node_fixtures(prefix: str) -> tuple[Any, Any]:
    """The fixtures ``admin`` (an API client; skipped, or failed in CI, without root and nf_tables) and
    ``cluster`` (a ``nad_node`` in a namespace named after ``prefix``), for a test module or conftest to bind
    under those names::

        admin, cluster = node_fixtures("dmn")
    """

    @pytest.fixture
    def admin(control_plane: Credentials) -> Iterator[httpx.Client]:
        require_root_and_nftables()
        with control_plane.client() as client:
            yield client

    @pytest.fixture
    def cluster(admin: httpx.Client) -> Iterator[Node]:
        with nad_node(admin, prefix) as n:
            yield n

    return admin, cluster


class Daemon:
    """`python -m trinet run` as a real process, its JSON log lines collected from a file."""

    def __init__(self, creds: Credentials, workdir: Path, node_name: str, *extra: str) -> None:
        self.kubeconfig = creds.write_kubeconfig(workdir / "kubeconfig", creds.daemon_token)
        self.log_path = workdir / f"daemon-{next(_counter)}.log"
        self.health_port = _free_port()
        self.argv = [
            sys.executable, "-m", "trinet", "run", "--kubeconfig", str(self.kubeconfig),
            "--hostname-override", node_name, "--log-format", "json", "--log-level", "debug",
            "--health-probe-bind-address", f"127.0.0.1:{self.health_port}", "--metrics-bind-address", "0",
            "--workers", "2", *extra,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self._read = 0

    def start(self) -> Daemon:
        self._read = 0
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"event": "non-json", "line": line})
        return out

    def mark(self) -> int:
        """The number of log events so far: pass to ``since`` to see only what comes after."""
        return len(self.events())

    def since(self, mark: int, name: str | None = None, **fields: object) -> list[dict[str, Any]]:
        return [
            e for e in self.events()[mark:]
            if (name is None or e.get("event") == name) and all(e.get(k) == v for k, v in fields.items())
        ]  # fmt: skip

    def get(self, path: str) -> int:
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            return self.get("/readyz") == 200

        try:
            wait_for(ready, "daemon /readyz 200", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- daemon log ---\n{self.log_path.read_text()[-6000:]}") from None


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
