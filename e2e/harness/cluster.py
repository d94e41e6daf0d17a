"""A whole simulated cluster: the real control plane, nodes, NADs, pods as the kubelet and Multus make them, and
the daemons; `close()` removes everything it made, whatever happened before."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from e2e.controlplane import ControlPlane, build_binaries
from e2e.harness import names
from e2e.harness.daemons import ApiForwarder, Daemon
from e2e.harness.kube import Kube
from e2e.harness.probes import Endpoint, Listeners
from e2e.harness.scenario import Network, Pod, qualify
from e2e.harness.topology import Interface, Sandbox, Topology, master_name

CLUSTER_NETWORK = "cluster"
"""The primary (eth0) network every non-hostNetwork pod has, as the cluster's default CNI would give it."""
CLUSTER_STATUS_NAME = "trinet-e2e-default"
_CLUSTER_SUBNETS = ("10.244.0.0/16", "fd00:10:244::/64")


class Allocator:
    """Lowest free host number per subnet from `offset` on, so a deleted pod's address is the next one given."""

    def __init__(self, subnets: list[str], offset: int) -> None:
        self.subnets = [ipaddress.ip_network(s) for s in subnets]
        self.offset = offset
        self.used: set[int] = set()

    def allocate(self) -> tuple[int, list[str]]:
        n = self.offset
        while n in self.used:
            n += 1
        self.used.add(n)
        return n, [f"{net.network_address + n}/{net.prefixlen}" for net in self.subnets]

    def release(self, n: int) -> None:
        self.used.discard(n)


@dataclass
class Attached:
    network: str
    """`namespace/name` of the NAD, or CLUSTER_NETWORK."""
    interface: Interface
    slot: int | None = None
    """The allocator's host number (None for explicit addresses)."""


@dataclass
class PodState:
    spec: Pod
    uid: str
    sandbox: Sandbox
    attached: list[Attached] = field(default_factory=list)

    def on(self, network: str | list[str]) -> Attached | None:
        wanted = [network] if isinstance(network, str) else network
        return next((a for a in self.attached if a.network in wanted), None)

    def endpoint(self, network: str | list[str], family: int) -> Endpoint | None:
        att = self.on(network)
        if att is None:
            return None
        for address in att.interface.ips:
            if ipaddress.ip_address(address).version == family:
                return Endpoint(self.sandbox.netns, att.interface.name, address)
        return None


def _with_prefix(address: str, subnets: list[str]) -> str:
    if "/" in address:
        return address
    ip = ipaddress.ip_address(address)
    for subnet in subnets:
        net = ipaddress.ip_network(subnet)
        if ip.version == net.version:
            return f"{address}/{net.prefixlen}"
    return f"{address}/{32 if ip.version == 4 else 128}"


def nad_object(network: Network) -> dict[str, Any]:
    """The NAD as a user would write it for this fabric (host-local IPAM over the network's subnets)."""
    config = network.config or {
        "cniVersion": "0.3.1",
        "name": network.name,
        "type": network.type,
        "master": master_name(network.segment),
        "mode": "bridge",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": s}] for s in network.subnets]},
    }
    if network.type == "bond" and network.config is None:
        config = {"cniVersion": "0.3.1", "name": network.name, "type": "bond", "mode": "active-backup",
                  "linksInContainer": True, "links": [{"name": "link1"}, {"name": "link2"}],
                  "ipam": config["ipam"]}  # fmt: skip
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": network.name, "namespace": network.namespace},
        "spec": {"config": json.dumps(config)},
    }


class Cluster:
    """Use as a context manager; `progress` receives one line per stage."""

    def __init__(
        self, *, bin_dir: Path | None = None, progress: Callable[[str], None] | None = None, primary: bool = True
    ) -> None:
        self.primary = primary
        """Give every pod an eth0 on the cluster network (False: secondary networks only, lighter pods)."""
        self.run_id = names.new_run_id() + f"-{uuid.uuid4().hex[:4]}"
        self.progress = progress or (lambda _line: None)
        self.bin_dir = bin_dir
        self.state = names.STATE_DIR / self.run_id
        self.logs = Path(tempfile.mkdtemp(prefix=f"{self.run_id}-logs-"))
        self.keep_logs = False
        self.topology = Topology(self.run_id)
        self.listeners = Listeners()
        self.control_plane: ControlPlane | None = None
        self.kube: Kube | None = None
        self.daemons: dict[str, Daemon] = {}
        self.networks: dict[str, Network] = {}
        self.allocators: dict[str, Allocator] = {CLUSTER_NETWORK: Allocator(list(_CLUSTER_SUBNETS), 10)}
        self.pods: dict[str, PodState] = {}
        self._forwarders: list[ApiForwarder] = []
        self._daemon_kubeconfig: Path | None = None
        self._api_port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.progress("control plane: starting kube-apiserver + etcd")
        bin_dir = self.bin_dir or build_binaries()
        self.control_plane = ControlPlane(bin_dir)
        (self.state / "controlplane-workdir").write_text(str(self.control_plane.workdir))
        creds = self.control_plane.start()
        self.kube = Kube(creds.client(timeout=30))
        self._api_port = int(creds.url.rsplit(":", 1)[1])
        self._daemon_kubeconfig = creds.write_kubeconfig(self.state / "kubeconfig-daemon", creds.daemon_token)
        creds.write_kubeconfig(self.state / "kubeconfig")
        self.progress(f"control plane: ready at {creds.url} (admin kubeconfig {self.state / 'kubeconfig'})")

    def close(self) -> None:
        """Stop the daemons, remove pods, nodes and the control plane. Never raises."""
        for daemon in self.daemons.values():
            try:
                daemon.stop()
            except Exception as exc:
                print(f"e2e: stopping daemon {daemon.node}: {exc}")
        for forwarder in self._forwarders:
            forwarder.close()
        self._forwarders.clear()
        self.listeners.close()
        self.topology.close()
        if self.kube is not None:
            self.kube.client.close()
        if self.control_plane is not None:
            self.control_plane.stop()
        shutil.rmtree(self.state, ignore_errors=True)
        if not self.keep_logs:
            shutil.rmtree(self.logs, ignore_errors=True)

    @property
    def api(self) -> Kube:
        assert self.kube is not None, "cluster not started"
        return self.kube

    # -- nodes and daemons -------------------------------------------------------------------------------------

    def add_node(self, name: str) -> None:
        node = self.topology.add_node(name)
        self._forwarders.append(ApiForwarder(node.netns, self._api_port))
        index = len(self.topology.nodes)
        self.api.apply({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        })  # fmt: skip
        self.api.merge_patch("Node", name, None, {"status": {
            "addresses": [{"type": "InternalIP", "address": f"192.0.2.{index}"}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated"}],
        }}, status=True)  # fmt: skip
        assert self._daemon_kubeconfig is not None
        self.daemons[name] = Daemon(name, node.netns, self._daemon_kubeconfig, self.logs / f"daemon-{name}.log", [])

    @property
    def files(self) -> Path:
        """Where scenario files live; `{files}` in daemon arguments."""
        return self.state / "files"

    def write_files(self, files: dict[str, str]) -> None:
        self.files.mkdir(exist_ok=True)
        for name, text in files.items():
            (self.files / name).write_text(text)

    def start_daemons(self, args: list[str], node: str | None = None) -> None:
        for daemon in self.node_daemons(node):
            daemon.start([a.replace("{files}", str(self.files)) for a in args])

    def node_daemons(self, node: str | None) -> list[Daemon]:
        return list(self.daemons.values()) if node is None else [self.daemons[node]]

    def stop_daemons(self, node: str | None = None) -> None:
        for daemon in self.node_daemons(node):
            daemon.stop()

    def dead_daemons(self) -> list[Daemon]:
        """Daemons that exited without being asked to (a stopped daemon is not dead)."""
        return [d for d in self.daemons.values() if d.proc is not None and d.proc.poll() is not None]

    # -- namespaces, networks ------------------------------------------------------------------------------------

    def add_namespace(self, name: str, labels: dict[str, str]) -> None:
        self.api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})

    def add_network(self, network: Network) -> None:
        self.networks[network.ref] = network
        self.allocators[network.ref] = Allocator(network.subnets, network.offset)
        if network.create:
            self.api.apply(nad_object(network))

    # -- pods ------------------------------------------------------------------------------------------------------

    def create_pod(self, spec: Pod) -> PodState:
        """Sandbox and interfaces (CNI), then the Pod object, Multus' network-status, the kubelet's status."""
        node = self.topology.nodes[spec.node]
        pod_object = self._pod_object(spec)
        created = self.api.create(pod_object)
        uid = str(created["metadata"]["uid"])
        sandbox = self.topology.add_sandbox(node, uid, host_network=spec.host_network)
        state = PodState(spec, uid, sandbox)
        self.pods[spec.key] = state
        if not spec.host_network:
            if self.primary:
                slot, addresses = self.allocators[CLUSTER_NETWORK].allocate()
                eth0 = self.topology.add_interface(sandbox, "cluster", "eth0", addresses)
                state.attached.append(Attached(CLUSTER_NETWORK, eth0, slot))
            for index, att in enumerate(spec.networks, start=1):
                ref = qualify(att.network, spec.namespace)
                network = self.networks[ref]
                explicit_slot: int | None = None
                if att.ips is not None:
                    addresses = [_with_prefix(a, network.subnets) for a in att.ips]
                else:
                    explicit_slot, addresses = self.allocators[ref].allocate()
                iface = self.topology.add_interface(sandbox, network.segment, att.interface or f"net{index}", addresses)
                state.attached.append(Attached(ref, iface, explicit_slot))
            self._write_network_status(state)
        self._write_running(state)
        self.progress(f"pod {spec.key} on {spec.node}: " + ", ".join(
            f"{a.interface.name}={'/'.join(a.interface.ips)}" for a in state.attached) if state.attached
            else f"pod {spec.key} on {spec.node} (hostNetwork)")  # fmt: skip
        return state

    def _pod_object(self, spec: Pod) -> dict[str, Any]:
        containers: dict[str, list[dict[str, Any]]] = {"app": []}
        for port in spec.ports:
            entry: dict[str, Any] = {"containerPort": port.port, "protocol": port.protocol}
            if port.name:
                entry["name"] = port.name
            containers.setdefault(port.container, []).append(entry)
        annotations: dict[str, str] = {}
        if spec.networks:
            if any(a.interface or a.ips for a in spec.networks):
                items = []
                for index, att in enumerate(spec.networks, start=1):
                    ns, _, name = qualify(att.network, spec.namespace).partition("/")
                    item: dict[str, Any] = {"name": name, "namespace": ns, "interface": att.interface or f"net{index}"}
                    if att.ips:
                        item["ips"] = att.ips
                    items.append(item)
                annotations["k8s.v1.cni.cncf.io/networks"] = json.dumps(items)
            else:
                annotations["k8s.v1.cni.cncf.io/networks"] = ",".join(a.network for a in spec.networks)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": spec.labels,
                         "annotations": annotations},
            "spec": {
                "nodeName": spec.node,
                "hostNetwork": spec.host_network,
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": name, "image": "registry.invalid/trinet-e2e/app:1", "ports": ports}
                               for name, ports in containers.items()],
            },
        }  # fmt: skip

    def _write_network_status(self, state: PodState) -> None:
        entries = []
        for att in state.attached:
            entry: dict[str, Any] = {
                "name": CLUSTER_STATUS_NAME if att.network == CLUSTER_NETWORK else att.network,
                "interface": att.interface.name,
                "ips": att.interface.ips,
                "mac": att.interface.mac,
                "dns": {},
            }
            if att.network == CLUSTER_NETWORK:
                entry["default"] = True
            entries.append(entry)
        self.api.merge_patch("Pod", state.spec.name, state.spec.namespace, {
            "metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": json.dumps(entries, indent=4)}}
        })  # fmt: skip

    def _write_running(self, state: PodState) -> None:
        node_index = list(self.topology.nodes).index(state.spec.node) + 1
        host_ip = f"192.0.2.{node_index}"
        primary = state.on(CLUSTER_NETWORK)
        ips = primary.interface.ips if primary else [host_ip]
        ready = {"type": "Ready", "status": "True"}
        self.api.merge_patch("Pod", state.spec.name, state.spec.namespace, {"status": {
            "phase": "Running", "hostIP": host_ip, "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips],
            "conditions": [ready, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": [{"name": c["name"], "ready": True, "restartCount": 0, "image": c["image"],
                                   "imageID": "", "state": {"running": {}}}
                                  for c in self._pod_object(state.spec)["spec"]["containers"]],
        }}, status=True)  # fmt: skip

    def delete_pod(self, key: str) -> None:
        """Graceful delete, sandbox teardown (CNI DEL frees the addresses), then the kubelet's final delete."""
        state = self.pods.pop(key)
        self.api.delete("Pod", state.spec.name, state.spec.namespace)
        self.listeners.forget(state.sandbox.netns)
        self.topology.remove_sandbox(state.sandbox)
        for att in state.attached:
            if att.slot is not None:
                self.allocators[att.network].release(att.slot)
        self.api.delete("Pod", state.spec.name, state.spec.namespace, grace=0)

    def set_ips(self, key: str, network: str, ips: list[str]) -> None:
        state = self.pods[key]
        ref = qualify(network, state.spec.namespace)
        att = state.on(ref)
        if att is None:
            raise ValueError(f"pod {key} has no interface on {ref}")
        addresses = [_with_prefix(a, self.networks[ref].subnets) for a in ips]
        self.listeners.forget(state.sandbox.netns)
        self.topology.set_addresses(state.sandbox, att.interface.name, addresses)
        if att.slot is not None:
            self.allocators[ref].release(att.slot)
            att.slot = None
        self._write_network_status(state)

    def flush_neighbours(self) -> None:
        for state in self.pods.values():
            if not state.sandbox.host_network:
                subprocess.run(["ip", "-n", state.sandbox.netns, "neigh", "flush", "all"], capture_output=True,
                               check=False)  # fmt: skip

    def table_text(self, netns: str) -> str:
        """`nft list table` of the daemon's table in `netns` (for failure reports), or why there is none."""
        proc = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet", names.POD_TABLE],
                              capture_output=True, text=True, check=False)  # fmt: skip
        return proc.stdout if proc.returncode == 0 else f"(no table: {proc.stderr.strip()})"

    def has_table(self, netns: str) -> bool:
        """Does `netns` hold the daemon's table? (`nft` as the test oracle.)"""
        proc = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet", names.POD_TABLE],
                              capture_output=True, check=False)  # fmt: skip
        return proc.returncode == 0
