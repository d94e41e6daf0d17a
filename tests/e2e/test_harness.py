"""The e2e harness itself, without the daemon: open pods are observed open, rules installed by hand are observed
blocked with real packets (TCP, UDP both ways, SCTP, ICMP, IPv4 and IPv6, across nodes), pods are what the
kubelet and Multus would write, a wrong expectation fails with both matrices, and nothing is left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.harness import names, runner, scenario, sweep
from e2e.harness.cluster import Cluster
from tests.conftest import require_root_and_nftables

REPO = Path(__file__).resolve().parents[2]

NET = {"name": "lan", "namespace": "default", "subnets": ["2.2.6.0/24", "2001:db8:6::/64"]}
PODS = [
    {"name": "server", "namespace": "demo", "node": "node-1", "labels": {"app": "server"}, "networks": ["default/lan"],
     "ports": ["tcp/5555", "udp/53", "sctp/80", {"name": "http", "port": 8080}]},
    {"name": "client-a", "namespace": "demo", "node": "node-2", "labels": {"app": "a"}, "networks": ["default/lan"]},
    {"name": "client-b", "namespace": "demo", "node": "node-1", "labels": {"app": "b"}, "networks": ["default/lan"]},
]  # fmt: skip
ALL_PORTS = ["tcp/5555", "udp/53", "sctp/80", "icmp"]


def _scenario(steps: list[dict[str, Any]]) -> scenario.Scenario:
    return scenario.Scenario.model_validate({
        "name": "harness", "namespaces": [{"name": "demo"}], "networks": [NET], "pods": PODS, "steps": steps,
    })  # fmt: skip


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    require_root_and_nftables()
    if shutil.which("go") is None:
        pytest.skip("the control plane needs go")
    from e2e.controlplane import build_binaries  # noqa: PLC0415

    return build_binaries()


@pytest.fixture
def cluster(bin_dir: Path) -> Iterator[tuple[Cluster, runner.Runner]]:
    sc = _scenario([{"note": "placeholder", "expect": {"matrix": ["* -> * allow"]}}])
    with Cluster(bin_dir=bin_dir) as cl:
        run = runner.Runner(sc, cl, lambda _line: None, daemons=False, check_oracle=False)  # rules made by hand
        run.setup()
        yield cl, run


def _nft(netns: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=script, text=True, check=True)


def test_open_cluster_is_open_on_every_protocol_and_family(cluster: tuple[Cluster, runner.Runner]) -> None:
    _cl, run = cluster
    run._expect(scenario.Expect(ports=ALL_PORTS, matrix=["* -> * allow"], timeout=10))
    assert run.result.expects == 1
    assert run.result.probes >= 2 * 6 * 4 * 2  # two rounds, 6 ordered pairs, 4 protocols, 2 families


def test_rules_installed_by_hand_are_observed_blocked(cluster: tuple[Cluster, runner.Runner]) -> None:
    cl, run = cluster
    server = cl.pods["demo/server"].sandbox.netns
    b4, b6 = cl.pods["demo/client-b"].on("default/lan").interface.ips  # type: ignore[union-attr]
    _nft(
        server,
        f"""
table inet handmade {{
  chain input {{ type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname "net1" ip saddr {b4} drop
    iifname "net1" ip6 saddr {b6} icmpv6 type echo-request drop
    iifname "net1" ip6 saddr {b6} tcp dport 5555 drop
    iifname "net1" ip6 saddr {b6} udp dport 53 drop
    iifname "net1" ip6 saddr {b6} meta l4proto sctp drop
  }}
  chain output {{ type filter hook output priority 0; policy accept;
    oifname "net1" udp dport 53 drop
  }}
}}""",
    )
    run._expect(scenario.Expect(ports=ALL_PORTS, timeout=10, matrix=[
        "* -> * allow",
        "client-b -> server deny",           # all of v4; on v6 a rule per protocol
        "server -> *:udp/53 deny",           # egress drop: the echo never leaves
    ]))  # fmt: skip
    assert run.result.expects == 1
    # a wrong expectation fails at its deadline, showing both matrices
    with pytest.raises(runner.StepFailed) as failure:
        run._expect(scenario.Expect(families=[4], ports=["tcp/5555"], timeout=1, matrix=["client-a -> server deny"]))
    text = str(failure.value)
    assert "1 of 1 cells" in text and "allow!deny" in text and "expected:" in text


def test_pods_are_written_as_kubelet_and_multus_would(cluster: tuple[Cluster, runner.Runner]) -> None:
    cl, _run = cluster
    state = cl.pods["demo/server"]
    pod = cl.api.get("Pod", "server", "demo")
    assert pod is not None
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["status"]["phase"] == "Running"
    assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "default/lan"
    status = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    net1 = next(e for e in status if e["interface"] == "net1")
    assert net1["name"] == "default/lan"
    assert net1["ips"] == ["2.2.6.10", "2001:db8:6::a"]
    link = json.loads(subprocess.run(["ip", "-j", "-n", state.sandbox.netns, "link", "show", "net1"],
                                     capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert net1["mac"] == link[0]["address"]
    assert [e.get("default", False) for e in status] == [True, False]
    assert {"containerPort": 8080, "protocol": "TCP", "name": "http"} in pod["spec"]["containers"][0]["ports"]
    # the procfs resolver's view: a process whose cgroup path carries the UID, inside the pod's netns
    holder = state.sandbox.holder
    assert holder is not None
    cgroup = Path(f"/proc/{holder.pid}/cgroup").read_text()
    assert f"kubepods-besteffort-pod{pod['metadata']['uid'].replace('-', '_')}.slice" in cgroup
    assert os.stat(f"/proc/{holder.pid}/ns/net").st_ino == os.stat(f"/run/netns/{state.sandbox.netns}").st_ino


def test_deleted_pod_address_is_reused_and_nothing_is_left(bin_dir: Path) -> None:
    with Cluster(bin_dir=bin_dir) as cl:
        sc = _scenario([{"expect": {"matrix": ["* -> * allow"]}}])
        runner.Runner(sc, cl, lambda _line: None, daemons=False).setup()
        run_id = cl.run_id
        old = cl.pods["demo/client-a"].on("default/lan").interface.ips  # type: ignore[union-attr]
        cl.delete_pod("demo/client-a")
        assert cl.api.get("Pod", "client-a", "demo") is None
        again = cl.create_pod(sc.pods[1])
        assert again.on("default/lan").interface.ips == old  # type: ignore[union-attr]
    assert run_id not in _netns_list()
    assert not [s for s in sweep.run_scopes() if s.name.startswith(run_id)]
    assert not (names.STATE_DIR / run_id).exists()


def test_unknown_key_is_an_error_naming_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npods: [{name: a, nmae: b}]\nsteps: [{expect: {matrix: ['a -> b allow']}}]\n")
    with pytest.raises(scenario.ScenarioError, match=r"pods\.0\.nmae: unknown key"):
        scenario.load(bad)
    bad.write_text("name: x\nsteps: [{expect: {matrix: ['a => b allow']}}]\n")
    with pytest.raises(scenario.ScenarioError, match=r"steps\.0\.expect\.matrix"):
        scenario.load(bad)


def test_catalogue_files_are_valid() -> None:
    files = sorted((REPO / "e2e" / "scenarios").glob("*.yaml"))
    assert files
    for path in files:
        scenario.load(path)


def _slow_scenario(tmp_path: Path) -> Path:
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "name: slow\nnamespaces: [{name: demo}]\nnetworks: [{name: lan}]\n"
        "pods: [{name: a, namespace: demo, networks: [default/lan]},\n"
        "       {name: b, namespace: demo, node: node-2, networks: [default/lan]}]\n"
        "steps: [{expect: {ports: [tcp/1], matrix: ['a -> b deny'], timeout: 120, oracle: false}}]\n"
    )
    return slow


def _start_slow_run(tmp_path: Path) -> subprocess.Popen[str]:
    """A run that sits in its first (never holding) expectation until it is stopped."""
    child = subprocess.Popen([sys.executable, "-m", "e2e", "run", "--no-daemon", str(_slow_scenario(tmp_path))],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("step 1"):
            break
    return child


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_everything_itself(bin_dir: Path, tmp_path: Path, signum: int) -> None:
    del bin_dir
    child = _start_slow_run(tmp_path)
    run_prefix = f"{names.PREFIX}-{child.pid}-"
    (state,) = names.STATE_DIR.glob(f"{run_prefix}*")
    workdir = (state / "controlplane-workdir").read_text().strip()
    child.send_signal(signum)
    assert child.wait(timeout=60) != 0
    assert child.stdout is not None
    child.stdout.close()
    assert run_prefix not in _netns_list()
    assert not list(names.STATE_DIR.glob(f"{run_prefix}*"))
    assert not [s for s in sweep.run_scopes() if s.name.startswith(run_prefix)]
    assert not sweep._pids_with_arg(workdir)
    assert not Path(workdir).exists()
    assert not list(Path(tempfile.gettempdir()).glob(f"{run_prefix}*-logs-*"))


def test_sweep_removes_what_a_killed_run_left(bin_dir: Path, tmp_path: Path) -> None:
    del bin_dir  # built; the child finds it in the cache
    child = _start_slow_run(tmp_path)
    assert child.stdout is not None
    run_prefix = f"{names.PREFIX}-{child.pid}-"
    assert run_prefix in _netns_list()
    (state,) = names.STATE_DIR.glob(f"{run_prefix}*")
    workdir = (state / "controlplane-workdir").read_text().strip()
    assert sweep._pids_with_arg(workdir)  # the control plane runs
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    done = sweep.sweep()
    assert any("removed netns" in line for line in done)
    assert run_prefix not in _netns_list()
    assert not list(names.STATE_DIR.glob(f"{run_prefix}*"))
    assert not [s for s in sweep.run_scopes() if s.name.startswith(run_prefix)]
    deadline = time.monotonic() + 10
    while sweep._pids_with_arg(workdir) and time.monotonic() < deadline:  # SIGKILLed, reaped by init
        time.sleep(0.1)
    assert not sweep._pids_with_arg(workdir)
    assert not Path(workdir).exists()
    assert not list(Path(tempfile.gettempdir()).glob(f"{run_prefix}*-logs-*"))


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
