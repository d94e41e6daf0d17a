"""Run one scenario against a fresh cluster: set it up, execute the steps in order, report what was seen."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.harness.cluster import Cluster
from e2e.harness.daemons import DaemonError
from e2e.harness.matrix import Cell, expected_cells, mismatches, network_of, observe, render
from e2e.harness.oracle_check import judge
from e2e.harness.probes import Outcome
from e2e.harness.scenario import DaemonArgs, Expect, Scenario, Step, Tables

DEFAULT_DAEMON_ARGS: list[str] = []
DAEMON_READY_TIMEOUT = 60.0
POLL_INTERVAL = 0.1
"""Pause between two probing rounds of an expectation that does not hold yet."""


class StepFailed(AssertionError):
    """An expectation did not hold before its deadline; the message shows what was observed."""


@dataclass
class Result:
    name: str
    passed: bool = False
    error: str = ""
    probes: int = 0
    expects: int = 0
    convergence: list[float] = field(default_factory=list)
    """Seconds from the last change before an `expect` to the first round in which every cell held."""
    seconds: float = 0.0
    logs: Path | None = None


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        cluster: Cluster,
        say: Callable[[str], None],
        *,
        daemons: bool = True,
        oracle: bool = False,
        check_oracle: bool = True,
    ) -> None:
        self.scenario = scenario
        self.oracle = oracle
        self.check_oracle = check_oracle or oracle
        self.daemons = daemons and not oracle
        self.args = [*DEFAULT_DAEMON_ARGS, *scenario.daemon_args]
        """The daemons' current arguments (what the oracle check needs to know)."""
        self.cluster = cluster
        self.say = say
        self.result = Result(scenario.name)
        self._changed_at = time.monotonic()
        self._measured = False
        """Whether an expectation already timed the last change (only the first one after a change does)."""

    # -- setup -------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        sc, cl = self.scenario, self.cluster
        for node in sc.nodes:
            cl.add_node(node)
        cl.write_files(sc.files)
        if self.daemons:
            cl.start_daemons(self.args)
            for daemon in cl.daemons.values():
                daemon.wait_ready(DAEMON_READY_TIMEOUT)
        for ns in sc.namespaces:
            cl.add_namespace(ns.name, ns.labels)
        for net in sc.networks:
            cl.add_network(net)
        for pod in sc.pods:
            if pod.create:
                cl.create_pod(pod)
        for obj in sc.policies:
            cl.api.apply(_namespaced(obj))
        self._changed_at = time.monotonic()

    # -- steps -------------------------------------------------------------------------------------------------

    def run_step(self, index: int, step: Step) -> None:
        action = step.action
        label = f"step {index} {action}" + (f" ({step.note})" if step.note else "")
        self.say(label)
        handler: Callable[[Any], None] = getattr(self, f"_{action}")
        handler(getattr(step, action))
        if action not in ("expect", "tables"):
            self._changed_at = time.monotonic()
            self._measured = False

    def _apply(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            self.cluster.api.apply(_namespaced(obj))

    def _patch(self, ref: Any) -> None:
        self.cluster.api.merge_patch(ref.kind, ref.name, ref.namespace, ref.patch)

    def _delete(self, ref: Any) -> None:
        self.cluster.api.delete(ref.kind, ref.name, ref.namespace)

    def _create_pods(self, refs: list[str]) -> None:
        for ref in refs:
            matches = [p for p in self.scenario.pods if ref in (p.key, p.name)]
            if len(matches) != 1:
                raise StepFailed(f"create_pods: {ref!r} names {len(matches)} pods of the scenario")
            self.cluster.create_pod(matches[0])

    def _pod_key(self, ref: str) -> str:
        matches = [k for k in self.cluster.pods if ref in (k, k.split("/", 1)[1])]
        if len(matches) != 1:
            raise StepFailed(f"{ref!r} names {len(matches)} live pods")
        return matches[0]

    def _delete_pods(self, refs: list[str]) -> None:
        for ref in refs:
            self.cluster.delete_pod(self._pod_key(ref))

    def _set_ips(self, spec: Any) -> None:
        self.cluster.set_ips(self._pod_key(spec.pod), spec.network, spec.ips)

    def _restart_daemon(self, spec: DaemonArgs) -> None:
        self.cluster.stop_daemons(spec.node)
        self._start_daemon(spec)

    def _stop_daemon(self, spec: DaemonArgs) -> None:
        self.cluster.stop_daemons(spec.node)

    def _start_daemon(self, spec: DaemonArgs) -> None:
        if spec.args is not None:
            self.args = [*DEFAULT_DAEMON_ARGS, *spec.args]
        if not self.daemons:
            return
        for daemon in self.cluster.node_daemons(spec.node):
            args = daemon.args if spec.args is None else [*DEFAULT_DAEMON_ARGS, *spec.args]
            daemon.start([a.replace("{files}", str(self.cluster.files)) for a in args])
        for daemon in self.cluster.node_daemons(spec.node):
            daemon.wait_ready(DAEMON_READY_TIMEOUT)

    def _check_daemons(self) -> None:
        dead = self.cluster.dead_daemons()
        if dead:
            raise StepFailed("daemon exited: " + "; ".join(
                f"{d.node} (code {d.proc.returncode if d.proc else '?'}):\n{d.log_tail()}" for d in dead))  # fmt: skip

    def _expect(self, expect: Expect) -> None:
        cl = self.cluster
        network = network_of(cl, expect)
        cells = expected_cells(cl, expect, network)
        if not cells:
            raise StepFailed(f"the matrix covers no cell on {network} (no pods with addresses there?)")
        # a matrix the oracle disputes is a wrong scenario, whatever the daemon does
        if self.check_oracle and expect.oracle:
            self._judge(cells, network)
        if self.oracle:
            return
        deadline = time.monotonic() + expect.timeout
        confirmed = 0
        recorded = False
        while True:
            self._check_daemons()
            if expect.flush_neighbours:
                cl.flush_neighbours()
            round_start = time.monotonic()
            observed = observe(cl, network, cells)
            self.result.probes += len(cells)
            wrong = mismatches(cells, observed)
            if not wrong:
                if confirmed == 0 and not self._measured:
                    # every probe sent its first packet at round_start: a flow blocked then was blocked by then
                    self.result.convergence.append(round_start - self._changed_at)
                    self._measured = recorded = True
                confirmed += 1
                if confirmed == 2:  # the matrix held in two consecutive rounds
                    self.result.expects += 1
                    n_allow = sum(cells.values())
                    self.say(f"  {len(cells)} cells hold ({n_allow} allowed, {len(cells) - n_allow} blocked)")
                    return
                continue
            if recorded:  # it held once, then not: that round did not time the change
                self.result.convergence.pop()
                self._measured = recorded = False
            confirmed = 0
            if time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
            else:
                refused = [c for c in wrong if observed[c] is Outcome.REFUSED]
                raise StepFailed(
                    f"{len(wrong)} of {len(cells)} cells on {network} did not hold after {expect.timeout:.0f}s"
                    + (f" ({len(refused)} refused: nobody listening)" if refused else "")
                    + "\nobserved (x!y: observed x, expected y):\n"
                    + render(cells, observed, colour=False)
                    + "\nexpected:\n"
                    + render(cells, colour=False)
                    + "".join(
                        f"\n--- {key}: nft list table ---\n{cl.table_text(cl.pods[key].sandbox.netns)}"
                        for key in sorted({c.src for c in wrong} | {c.dst for c in wrong})
                    )
                )

    def _judge(self, cells: dict[Cell, bool], network: str | list[str]) -> None:
        verdicts = judge(self.cluster, cells, network, self.args)
        wrong = [c for c, v in verdicts.items() if cells[c] != v]
        if self.oracle:
            self.result.expects += 1
            self.result.probes += len(verdicts)
        if wrong:
            as_seen = {c: Outcome.ALLOWED if v else Outcome.BLOCKED for c, v in verdicts.items()}
            raise StepFailed(
                f"the oracle disagrees with {len(wrong)} of {len(cells)} cells on {network}\n"
                "oracle (x!y: oracle x, scenario y):\n" + render(cells, as_seen, colour=False)
            )
        if self.oracle:
            self.say(f"  oracle agrees on {len(verdicts)} of {len(cells)} cells")

    def _tables(self, spec: Tables) -> None:
        if self.oracle:
            return
        cl = self.cluster
        want = {self._pod_key(p): True for p in spec.present} | {self._pod_key(p): False for p in spec.absent}
        deadline = time.monotonic() + spec.timeout
        while True:
            self._check_daemons()
            seen = {k: cl.has_table(cl.pods[k].sandbox.netns) for k in want}
            wrong = [k for k, v in want.items() if seen[k] != v]
            nodes = [n for n, node in cl.topology.nodes.items() if spec.nodes_untouched and cl.has_table(node.netns)]
            if not wrong and not nodes:
                return
            if time.monotonic() >= deadline:
                raise StepFailed(
                    "tables: "
                    + ", ".join(f"{k} {'has no' if want[k] else 'has a'} table" for k in wrong)
                    + "".join(f", node {n} has a table" for n in nodes)
                )
            time.sleep(0.1)


def _namespaced(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") in ("Namespace", "Node"):
        return obj
    meta = dict(obj.get("metadata") or {})
    meta.setdefault("namespace", "default")
    return {**obj, "metadata": meta}


def run(
    scenario: Scenario,
    *,
    bin_dir: Path | None = None,
    say: Callable[[str], None] = print,
    daemons: bool = True,
    oracle: bool = False,
) -> Result:
    """Set up a cluster for `scenario`, run its steps, tear everything down; a failing step gives a failed
    `Result` (with the daemons' log tails), never an exception. The logs of a failed run are kept."""
    started = time.monotonic()
    cluster = Cluster(bin_dir=bin_dir, progress=lambda line: say(f"  {line}"))
    runner = Runner(scenario, cluster, say, daemons=daemons, oracle=oracle)
    result = runner.result
    try:
        with cluster:
            try:
                runner.setup()
                for index, step in enumerate(scenario.steps, start=1):
                    runner.run_step(index, step)
                result.passed = True
            except Exception:
                cluster.keep_logs = True  # a failure: its logs stay (an interrupt removes them with the rest)
                result.error = "".join(
                    f"\n--- daemon {d.node} log tail ---\n{d.log_tail()}" for d in cluster.daemons.values()
                )
                raise
    except (StepFailed, DaemonError) as exc:
        result.error = str(exc) + result.error
    except Exception:
        result.error = traceback.format_exc() + result.error
    result.seconds = time.monotonic() - started
    result.logs = cluster.logs if cluster.keep_logs else None
    return result
