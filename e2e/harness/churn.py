"""`python -m e2e churn`: atomicity under churn, measured with real packets across nodes.

While the server's policy is changed back to back (a peer pod relabelled in and out: set-element deltas; the
policy's port list toggled: full swaps), an admitted client floods the server with UDP and an excluded client
floods it too. The receiver never answers, so every datagram is `ct state new` and meets the rules being
replaced. Counts: datagrams the admitted client sent and that arrived (any loss is a gap in enforcement), and
datagrams of the excluded client that arrived (leaks). The daemons' transaction log says how many deltas and
full swaps the kernel committed meanwhile.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from e2e.harness.cluster import Cluster
from e2e.harness.runner import Runner
from e2e.harness.scenario import Expect, Scenario
from tests.support.netns import run_in_netns

PORT = 9000
RATE = 4000
"""Datagrams per second per sender (paced; the point is coverage of every commit, not load)."""

SCENARIO: dict[str, Any] = {
    "name": "churn",
    "namespaces": [{"name": "churn"}],
    "networks": [{"name": "lan", "namespace": "churn", "subnets": ["10.60.0.0/24"]}],
    "pods": [
        {"name": "server", "namespace": "churn", "node": "node-1", "labels": {"app": "server"},
         "networks": ["lan"], "ports": [f"udp/{PORT}"]},
        {"name": "admitted", "namespace": "churn", "node": "node-2", "labels": {"role": "client"},
         "networks": ["lan"]},
        {"name": "excluded", "namespace": "churn", "node": "node-2", "labels": {"role": "none"},
         "networks": ["lan"]},
        {"name": "flapping", "namespace": "churn", "node": "node-1", "labels": {"role": "none"},
         "networks": ["lan"]},
    ],
    "steps": [{"expect": {"matrix": ["* -> * allow"]}}],
}  # fmt: skip


def _policy(ports: list[int]) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
        "metadata": {"name": "clients", "namespace": "churn", "annotations": {"k8s.v1.cni.cncf.io/policy-for": "lan"}},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                              "ports": [{"protocol": "UDP", "port": p} for p in ports]}]},
    }  # fmt: skip


_SENDER = """
import socket, sys, time
src, dev, dst = sys.argv[1:4]
port, seconds, rate = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, 25, dev.encode())
sock.bind((src, 0))
start = time.monotonic()
sent = failed = 0
while (now := time.monotonic()) < start + seconds:
    due = int((now - start) * rate)
    while sent + failed < due:
        try:
            sock.sendto(b"churn", (dst, port))
            sent += 1
        except OSError:
            failed += 1
    time.sleep(0.002)
print(sent, failed)
"""


class Receiver:
    """Counts datagrams per source address on one socket inside the server's namespace."""

    def __init__(self, netns: str, address: str, port: int) -> None:
        self.sock = run_in_netns(netns, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((address, port))
        self.sock.settimeout(0.2)
        self.counts: Counter[str] = Counter()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                _, (source, _port) = self.sock.recvfrom(64)
            except TimeoutError:
                continue
            self.counts[source] += 1

    def close(self) -> None:
        time.sleep(0.5)  # datagrams still in flight after the senders ended (bounded drain, not a wait for effect)
        self._stop = True
        self._thread.join()
        self.sock.close()


def _transactions(log: str, since: int) -> Counter[str]:
    return Counter(re.findall(r"event=transaction pod=churn/server kind=(\w+)", log[since:]))


@dataclass
class ChurnResult:
    updates: Counter[str]
    transactions: Counter[str]
    """The server daemon's transactions on the server's namespace during the churn, by kind (delta, swap...)."""
    admitted_sent: int
    admitted_arrived: int
    excluded_sent: int
    leaked: int

    @property
    def ok(self) -> bool:
        return self.admitted_arrived == self.admitted_sent and self.leaked == 0 and sum(self.transactions.values()) > 0


def main(seconds: float = 20.0, say: Callable[[str], None] = print) -> int:
    result = measure(seconds, say)
    say(f"API writes: {dict(result.updates)}; transactions on the server's netns: {dict(result.transactions)}")
    say(f"admitted client: sent {result.admitted_sent}, arrived {result.admitted_arrived}, "
        f"lost {result.admitted_sent - result.admitted_arrived}")  # fmt: skip
    say(f"excluded client: sent {result.excluded_sent}, arrived (leaked) {result.leaked}")
    say("== PASS: no gap and no leak" if result.ok else "== FAIL")
    return 0 if result.ok else 1


def measure(seconds: float, say: Callable[[str], None] = print) -> ChurnResult:
    scenario = Scenario.model_validate(SCENARIO)
    with Cluster(progress=lambda line: say(f"  {line}")) as cluster:
        runner = Runner(scenario, cluster, lambda line: say(f"  {line}"))
        runner.setup()
        cluster.api.apply(_policy([PORT, PORT + 1]))
        runner._expect(Expect(matrix=["* -> server deny", "admitted -> server allow"], ports=[f"udp/{PORT}"]))
        server = cluster.pods["churn/server"].endpoint("churn/lan", 4)
        assert server is not None
        # the flood goes to PORT + 1: the same rule as the probed PORT, but no conntrack entry from the probes
        receiver = Receiver(server.netns, server.address, PORT + 1)
        log_path = cluster.daemons["node-1"].log_path
        log_start = len(log_path.read_text())
        senders = {}
        for name in ("admitted", "excluded"):
            ep = cluster.pods[f"churn/{name}"].endpoint("churn/lan", 4)
            assert ep is not None
            argv = ["nsenter", f"--net=/run/netns/{ep.netns}", sys.executable, "-c", _SENDER, ep.address, ep.ifname,
                    server.address, str(PORT + 1), str(seconds), str(RATE)]  # fmt: skip
            senders[name] = (ep.address, subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        say(f"== churning for {seconds:.0f}s: relabel a peer in/out (set deltas) and toggle a port (full swaps)")
        updates: Counter[str] = Counter()
        end = time.monotonic() + seconds
        flip = 0
        while time.monotonic() < end:
            flip += 1
            role = "client" if flip % 2 else "none"
            cluster.api.merge_patch("Pod", "flapping", "churn", {"metadata": {"labels": {"role": role}}})
            updates["peer relabel"] += 1
            if flip % 3 == 0:
                ports = [PORT, PORT + 1] + ([PORT + 2] if flip % 6 == 0 else [])
                cluster.api.apply(_policy(ports))
                updates["policy change"] += 1
            time.sleep(0.02)  # pace the API writes so the daemon commits each one
        results = {}
        for name, (address, proc) in senders.items():
            out, _ = proc.communicate(timeout=seconds + 30)
            sent, failed = (int(x) for x in out.split())
            results[name] = (address, sent, failed)
        receiver.close()
        kinds = _transactions(log_path.read_text(), log_start)
        adm_addr, adm_sent, adm_failed = results["admitted"]
        exc_addr, exc_sent, _ = results["excluded"]
        return ChurnResult(updates, kinds, adm_sent + adm_failed, receiver.counts[adm_addr], exc_sent,
                           receiver.counts[exc_addr])  # fmt: skip
