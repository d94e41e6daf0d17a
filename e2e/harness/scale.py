"""`python -m e2e scale`: one simulated cluster of our daemons at size (a benchmark, not part of CI).

Default: 5 nodes x 200 pods (a `sleep` holder per pod, one macvlan each, no listeners), 10 namespaces, 100
policies (each selecting one app label of its namespace and admitting the next one). Measured from outside the
daemons, by reading every affected pod's table over netlink (`netlink_nft.dump_table`):
- initial enforcement: from the last policy written to every pod's table holding its policy's rules;
- a policy created that selects every pod of a namespace (spread over all nodes): time until each of those pods'
  tables holds a rule of the new policy (median and max over rounds), and the same for its deletion;
- each daemon's RSS and CPU time (from /proc) after the initial sync, during the rounds and while idle.
"""

from __future__ import annotations

import errno
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from e2e.harness import names
from e2e.harness.cluster import Cluster
from e2e.harness.scenario import Attachment, Network, Pod
from netlink_nft import Family, NftSocket, RequestError, Table, dump_table

NETWORK = "default/lan"
_TABLE = Table(Family.INET, names.POD_TABLE)
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    rss_mb: float
    cpu_s: float


def _usage(pid: int) -> Usage:
    status = open(f"/proc/{pid}/status").read()  # noqa: SIM115 (one read)
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return Usage(rss_kb / 1024, (int(fields[11]) + int(fields[12])) / _TICK)


def _comments(netns: str) -> set[str]:
    """Names of the policies whose rules the pod's table holds."""
    with NftSocket.open(f"/run/netns/{netns}") as nft:
        for _attempt in range(20):
            try:
                ruleset = dump_table(nft, _TABLE)
                break
            except RequestError as exc:
                # dump_table retries a read torn by a concurrent commit, but not one in which a set listed a
                # moment before is gone (a full swap renames the sets): read again
                if exc.errno != errno.ENOENT:
                    raise
        else:
            raise RuntimeError(f"{netns}: the table kept changing under 20 reads")
    if ruleset is None:
        return set()
    return {r.comment.split(" ", 1)[0] for r in ruleset.rules if r.comment}


def _wait_all(netns: list[str], holds: Callable[[set[str]], bool], timeout: float) -> float:
    """Seconds until `holds(policies named in the table)` is true in every namespace; raise after `timeout`."""
    start = time.monotonic()
    pending = set(netns)
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending:
            done = {ns for ns, ok in zip(pending, pool.map(lambda n: holds(_comments(n)), pending), strict=True)
                    if ok}  # fmt: skip
            pending -= done
            if pending and time.monotonic() - start > timeout:
                raise TimeoutError(f"{len(pending)} of {len(netns)} pods not enforced after {timeout:.0f}s")
    return time.monotonic() - start


def _naming(policy: str, present: bool) -> Callable[[set[str]], bool]:
    def holds(comments: set[str]) -> bool:
        return (policy in comments) == present

    return holds


def _policy(name: str, namespace: str, selector: dict[str, Any], peer_app: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"k8s.v1.cni.cncf.io/policy-for": NETWORK}},
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": peer_app}}}],
                              "ports": [{"protocol": "TCP", "port": port}]}]},
    }  # fmt: skip


def main(
    nodes: int = 5, pods_per_node: int = 200, policies: int = 100, rounds: int = 5, say: Callable[[str], None] = print
) -> int:
    namespaces = 10
    apps = max(1, policies // namespaces)
    total = nodes * pods_per_node
    started = time.monotonic()
    with Cluster(primary=False) as cluster:
        say(f"== {nodes} nodes, {total} pods, {namespaces} namespaces, {policies} policies")
        for n in range(nodes):
            cluster.add_node(f"node-{n + 1}")
        cluster.start_daemons(["--resync-period", "0", "--metrics-per-pod-labels", "false"])
        for daemon in cluster.daemons.values():
            daemon.wait_ready(60)
        for k in range(namespaces):
            cluster.add_namespace(f"scale-{k}", {"scale": "yes"})
        cluster.add_network(Network(name="lan", subnets=["10.70.0.0/16"]))
        t0 = time.monotonic()
        for i in range(total):
            labels = {"app": f"a{(i // namespaces) % apps}"}
            cluster.create_pod(Pod(name=f"p{i}", namespace=f"scale-{i % namespaces}", node=f"node-{i % nodes + 1}",
                                   labels=labels, networks=[Attachment(network=NETWORK)]))  # fmt: skip
            if (i + 1) % 100 == 0:
                say(f"  {i + 1} pods ({time.monotonic() - t0:.0f}s)")
        t1 = time.monotonic()
        for k in range(namespaces):
            for j in range(apps):
                cluster.api.apply(_policy(f"pol-{j}", f"scale-{k}", {"matchLabels": {"app": f"a{j}"}},
                                          f"a{(j + 1) % apps}", 80))  # fmt: skip
        t2 = time.monotonic()
        netns = {key: state.sandbox.netns for key, state in cluster.pods.items()}
        want = {key: f"{key.split('/')[0]}/pol-{cluster.pods[key].spec.labels['app'][1:]}" for key in netns}
        initial = _wait_all(list(netns.values()), bool, 600)
        say(f"  pods created in {t1 - t0:.0f}s; {namespaces * apps} policies written in {t2 - t1:.1f}s; "
            f"every pod enforced {initial:.2f}s after the last write")  # fmt: skip
        missing = [k for k, ns in netns.items() if want[k] not in _comments(ns)]
        if missing:
            say(f"  WRONG: {len(missing)} pods lack their policy's rules, e.g. {missing[:3]}")
        pids = {name: d.proc.pid for name, d in cluster.daemons.items() if d.proc is not None}
        after_sync = {name: _usage(pid) for name, pid in pids.items()}
        creates, deletes = [], []
        for r in range(rounds):
            ns = f"scale-{r % namespaces}"
            affected = [netns[k] for k in netns if k.startswith(ns + "/")]
            name = f"probe-{r}"
            t = time.monotonic()
            cluster.api.apply(_policy(name, ns, {}, "a0", 443))
            creates.append(time.monotonic() - t + _wait_all(affected, _naming(f"{ns}/{name}", True), 120))
            t = time.monotonic()
            cluster.api.delete("MultiNetworkPolicy", name, ns)
            deletes.append(time.monotonic() - t + _wait_all(affected, _naming(f"{ns}/{name}", False), 120))
        after_rounds = {name: _usage(pid) for name, pid in pids.items()}
        idle_start = time.monotonic()
        time.sleep(10)  # idle CPU is measured over a fixed window by definition
        idle = time.monotonic() - idle_start
        after_idle = {name: _usage(pid) for name, pid in pids.items()}
        per_ns = total // namespaces
        say(f"\npolicy selecting {per_ns} pods on {nodes} nodes, {rounds} rounds (API write -> last pod's table):")
        say(f"  create: median {statistics.median(creates):.3f}s, max {max(creates):.3f}s")
        say(f"  delete: median {statistics.median(deletes):.3f}s, max {max(deletes):.3f}s")
        say(f"\n{'daemon':8} {'pods':>5} {'RSS MB':>7} {'CPU s sync':>11} {'CPU s rounds':>13} {'idle CPU %':>11}")
        for name in pids:
            local = sum(1 for s in cluster.pods.values() if s.spec.node == name)
            idle_pct = 100 * (after_idle[name].cpu_s - after_rounds[name].cpu_s) / idle
            say(f"{name:8} {local:>5} {after_idle[name].rss_mb:>7.1f} {after_sync[name].cpu_s:>11.2f} "
                f"{after_rounds[name].cpu_s - after_sync[name].cpu_s:>13.2f} {idle_pct:>11.2f}")  # fmt: skip
        say(f"\n== scale run done in {time.monotonic() - started:.0f}s (teardown follows)")
    return 1 if missing else 0
