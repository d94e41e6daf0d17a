"""`python -m e2e demo`: a two-node cluster with the real daemon, the connectivity matrix before and after a sample
policy (measured with real packets), `trinet explain` for one blocked and one allowed flow, then teardown."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from e2e.harness.cluster import Cluster
from e2e.harness.daemons import trinet_command
from e2e.harness.matrix import Cell, expected_cells, observe, render
from e2e.harness.oracle_check import judge
from e2e.harness.probes import Outcome
from e2e.harness.runner import Runner
from e2e.harness.scenario import Expect, Scenario

NETWORK = "demo/lan"
SCENARIO: dict[str, Any] = {
    "name": "demo",
    "namespaces": [{"name": "demo", "labels": {"team": "shop"}}],
    "networks": [{"name": "lan", "namespace": "demo", "subnets": ["10.50.0.0/24", "2001:db8:50::/64"]}],
    "pods": [
        {"name": "frontend", "namespace": "demo", "node": "node-1", "labels": {"app": "frontend"},
         "networks": ["lan"], "ports": [{"name": "http", "port": 80}]},
        {"name": "backend", "namespace": "demo", "node": "node-2", "labels": {"app": "backend"},
         "networks": ["lan"], "ports": [{"name": "api", "port": 8080}]},
        {"name": "database", "namespace": "demo", "node": "node-1", "labels": {"app": "database"},
         "networks": ["lan"], "ports": [{"name": "pg", "port": 5432}]},
        {"name": "intruder", "namespace": "demo", "node": "node-2", "labels": {"app": "intruder"},
         "networks": ["lan"], "ports": [80]},
    ],
    "steps": [{"expect": {"matrix": ["* -> * allow"]}}],
}  # fmt: skip
POLICIES: list[dict[str, Any]] = [
    {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
     "metadata": {"name": "backend-from-frontend", "namespace": "demo",
                  "annotations": {"k8s.v1.cni.cncf.io/policy-for": "lan"}},
     "spec": {"podSelector": {"matchLabels": {"app": "backend"}}, "policyTypes": ["Ingress"],
              "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                           "ports": [{"port": "api"}]}]}},
    {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
     "metadata": {"name": "database-from-backend", "namespace": "demo",
                  "annotations": {"k8s.v1.cni.cncf.io/policy-for": "lan"}},
     "spec": {"podSelector": {"matchLabels": {"app": "database"}}, "policyTypes": ["Ingress", "Egress"],
              "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "backend"}}}],
                           "ports": [{"protocol": "TCP", "port": 5432}]}],
              "egress": []}},
]  # fmt: skip
BLOCKED = ("demo/intruder", "demo/backend", 8080)
ALLOWED = ("demo/frontend", "demo/backend", 8080)


def _as_bools(observed: dict[Cell, Outcome]) -> dict[Cell, bool]:
    return {c: o is Outcome.ALLOWED for c, o in observed.items()}


def _explain(cluster: Cluster, flow: tuple[str, str, int], say: Callable[[str], None]) -> None:
    src, dst, port = flow
    node = cluster.pods[dst].spec.node
    argv = [*trinet_command(), "explain", "--kubeconfig", str(cluster.state / "kubeconfig"),
            "--hostname-override", node, "--protocol", "TCP", "--port", str(port), "--network", NETWORK,
            "--family", "4", src, dst]  # fmt: skip
    say(f"$ trinet explain --protocol TCP --port {port} --network {NETWORK} --family 4 {src} {dst}")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    say((proc.stdout + proc.stderr).rstrip() or f"(exit code {proc.returncode}, no output)")


def main(say: Callable[[str], None] = print) -> int:
    started = time.monotonic()
    colour = sys.stdout.isatty()
    scenario = Scenario.model_validate(SCENARIO)
    with Cluster(progress=lambda line: say(f"  {line}")) as cluster:
        runner = Runner(scenario, cluster, lambda line: say(f"  {line}"))
        say("== bringing up: control plane, 2 nodes with a trinet daemon each, 4 pods on a dual-stack macvlan network")
        runner.setup()
        cells = expected_cells(cluster, Expect(families=[4], matrix=["* -> * allow"]), NETWORK)
        before = _as_bools(observe(cluster, NETWORK, cells))
        say(f"\n== connectivity on {NETWORK} (IPv4, each pod's declared ports), no policy yet:")
        say(render(before, colour=colour))
        say("\n== applying: backend accepts its `api` port from frontend only; database accepts 5432 from backend"
            " and sends nothing")  # fmt: skip
        applied = time.monotonic()
        for policy in POLICIES:
            cluster.api.apply(policy)
        want = judge(cluster, cells, NETWORK, runner.args)
        deadline = applied + 30
        while True:
            round_start = time.monotonic()
            after = _as_bools(observe(cluster, NETWORK, cells))
            if after == want or round_start > deadline:
                break
            time.sleep(0.05)
        enforced = after == want
        say(f"\n== connectivity after the policy ({'enforced' if enforced else 'NOT as expected'} "
            f"{round_start - applied:.2f}s after the API write; * marks what changed):")  # fmt: skip
        say(render(after, colour=colour, changed=before))
        say("\n== why is one flow blocked and another allowed?")
        _explain(cluster, BLOCKED, say)
        _explain(cluster, ALLOWED, say)
        say("\n== tearing down")
    say(f"== done in {time.monotonic() - started:.1f}s")
    return 0 if enforced else 1
