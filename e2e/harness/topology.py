"""The simulated machines: a fabric namespace with one bridge per L2 segment, node namespaces with a veth into
each segment, and pod sandboxes (a namespace, macvlan interfaces on the node's veth, a holder process in a
kubelet-style cgroup carrying the pod UID).

The kernel here has no ipvlan, dummy or bonding (`machine-facts.md`), so every attachment is a macvlan in bridge
mode whose parent is the node's end of its segment veth; pods on one node talk through the macvlan bridge, pods on
different nodes through the fabric bridge. Nothing is created in the root namespace except the namespaces
themselves and the holder's cgroup, so parallel runs never collide on interface names.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from e2e.harness import names
from tests.support.netns import ip, run_in_netns


def _ip_quiet(*args: str, netns: str | None = None) -> None:
    subprocess.run(["ip", *(["-n", netns] if netns else []), *args], capture_output=True, check=False)


def write_sysctl(netns: str, key: str, value: str) -> None:
    """Write /proc/sys/<key with dots as slashes> as seen from inside `netns`."""

    def write() -> None:
        Path("/proc/sys", *key.split(".")).write_text(value)

    run_in_netns(netns, write)


def master_name(segment: str) -> str:
    """The node's interface on a segment, the same on every node (a NAD's `master`)."""
    return f"tn-{segment}"[:15]


@dataclass
class Interface:
    name: str
    mac: str
    addresses: list[str]
    """With prefix length, e.g. `2.2.6.10/24`, `2001:db8::a/64`."""

    @property
    def ips(self) -> list[str]:
        return [a.split("/")[0] for a in self.addresses]


@dataclass
class Node:
    name: str
    netns: str
    segments: set[str] = field(default_factory=set)
    _macvlans: int = 0

    def temp_ifname(self) -> str:
        self._macvlans += 1
        return f"mv{self._macvlans}"


@dataclass
class Sandbox:
    """A pod's network namespace (the node's for hostNetwork pods) and its holder process."""

    netns: str
    node: Node
    uid: str
    host_network: bool
    holder: subprocess.Popen[bytes] | None = None
    cgroup: Path | None = None
    interfaces: dict[str, Interface] = field(default_factory=dict)


class Topology:
    """Owns every namespace, link, process and cgroup of one run; `close()` removes them all."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.fabric = f"{run_id}-fab"
        self.nodes: dict[str, Node] = {}
        self.sandboxes: list[Sandbox] = []
        self._pod_counter = 0
        self._fabric_up = False
        self._bridges: set[str] = set()

    # -- fabric and nodes ----------------------------------------------------------------------------------------

    def _ensure_fabric(self) -> None:
        if not self._fabric_up:
            ip("netns", "add", self.fabric)
            self._fabric_up = True
            ip("link", "set", "lo", "up", netns=self.fabric)

    def _ensure_bridge(self, segment: str) -> str:
        self._ensure_fabric()
        bridge = f"br-{segment}"[:15]
        if segment not in self._bridges:
            ip("link", "add", bridge, "type", "bridge", "mcast_snooping", "0", netns=self.fabric)
            ip("link", "set", bridge, "up", netns=self.fabric)
            self._bridges.add(segment)
        return bridge

    def add_node(self, name: str) -> Node:
        netns = f"{self.run_id}-n{len(self.nodes)}"
        ip("netns", "add", netns)
        node = Node(name, netns)
        self.nodes[name] = node
        ip("link", "set", "lo", "up", netns=netns)
        return node

    def connect(self, node: Node, segment: str) -> str:
        """Give `node` an interface on `segment` (idempotent); return its name (the macvlan parent)."""
        master = master_name(segment)
        if segment in node.segments:
            return master
        bridge = self._ensure_bridge(segment)
        fabric_end = f"v{list(self.nodes).index(node.name)}-{segment}"[:15]
        ip("link", "add", fabric_end, "type", "veth", "peer", "name", master, "netns", node.netns, netns=self.fabric)
        ip("link", "set", fabric_end, "master", bridge, "up", netns=self.fabric)
        ip("link", "set", master, "up", netns=node.netns)
        node.segments.add(segment)
        return master

    # -- pods ------------------------------------------------------------------------------------------------------

    def add_sandbox(self, node: Node, uid: str, *, host_network: bool = False) -> Sandbox:
        """A pod sandbox with its holder process already in the pod's cgroup (as runc does before the app)."""
        if host_network:
            sandbox = Sandbox(node.netns, node, uid, True)
        else:
            self._pod_counter += 1
            netns = f"{self.run_id}-p{self._pod_counter}"
            ip("netns", "add", netns)
            sandbox = Sandbox(netns, node, uid, False)
            self.sandboxes.append(sandbox)
            ip("link", "set", "lo", "up", netns=netns)
            for key in ("net.ipv6.conf.default.accept_dad", "net.ipv6.conf.all.accept_dad"):
                write_sysctl(netns, key, "0")
        if host_network:
            self.sandboxes.append(sandbox)
        self._start_holder(sandbox)
        return sandbox

    def _start_holder(self, sandbox: Sandbox) -> None:
        cgroup = names.pod_cgroup(sandbox.uid, self.run_id)
        cgroup.mkdir(parents=True, exist_ok=True)
        sandbox.cgroup = cgroup
        sandbox.holder = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{sandbox.netns}", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C on the terminal reaches the harness, which removes the holders
        )
        (cgroup / "cgroup.procs").write_text(str(sandbox.holder.pid))

    def add_interface(self, sandbox: Sandbox, segment: str, ifname: str, addresses: list[str]) -> Interface:
        """A macvlan (bridge mode) on the node's `segment` interface, moved into the pod as `ifname`."""
        node = sandbox.node
        master = self.connect(node, segment)
        temp = node.temp_ifname()
        ip("link", "add", "link", master, "name", temp, "type", "macvlan", "mode", "bridge", netns=node.netns)
        ip("link", "set", temp, "netns", sandbox.netns, netns=node.netns)
        ip("link", "set", temp, "name", ifname, netns=sandbox.netns)
        for address in addresses:
            ip("addr", "add", address, "dev", ifname, *(["nodad"] if ":" in address else []), netns=sandbox.netns)
        ip("link", "set", ifname, "up", netns=sandbox.netns)
        mac = json.loads(ip("-j", "link", "show", "dev", ifname, netns=sandbox.netns))[0]["address"]
        interface = Interface(ifname, mac, list(addresses))
        sandbox.interfaces[ifname] = interface
        return interface

    def set_addresses(self, sandbox: Sandbox, ifname: str, addresses: list[str]) -> None:
        """Replace the addresses of one interface (a pod whose IPs change, e.g. a re-run IPAM)."""
        interface = sandbox.interfaces[ifname]
        for old in interface.addresses:
            ip("addr", "del", old, "dev", ifname, netns=sandbox.netns)
        for address in addresses:
            ip("addr", "add", address, "dev", ifname, *(["nodad"] if ":" in address else []), netns=sandbox.netns)
        interface.addresses = list(addresses)

    def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Kill the holder, remove its cgroup and (unless hostNetwork) the namespace with its interfaces."""
        if sandbox.holder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sandbox.holder.pid, signal.SIGKILL)
            sandbox.holder.wait()
            sandbox.holder = None
        if sandbox.cgroup is not None:
            remove_cgroup(sandbox.cgroup)
            sandbox.cgroup = None
        if not sandbox.host_network:
            _ip_quiet("netns", "del", sandbox.netns)
        with contextlib.suppress(ValueError):
            self.sandboxes.remove(sandbox)

    def close(self) -> None:
        """Remove everything, pods first (their holders), then nodes, then the fabric. Never raises."""
        for sandbox in list(self.sandboxes):
            try:
                self.remove_sandbox(sandbox)
            except Exception as exc:  # keep removing the rest
                print(f"e2e: removing {sandbox.netns}: {exc}")
        for node in self.nodes.values():
            _ip_quiet("netns", "del", node.netns)
        self.nodes.clear()
        if self._fabric_up:
            _ip_quiet("netns", "del", self.fabric)
            self._fabric_up = False


def remove_cgroup(scope: Path) -> None:
    """rmdir the holder's scope and the pod slice above it if empty (another process may still use it)."""
    for directory in (scope, scope.parent):
        with contextlib.suppress(OSError):
            directory.rmdir()
