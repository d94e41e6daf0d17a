"""The daemon as a real process: /metrics, drop counters from real blocked packets, and render against the kernel.

Pods are network namespaces with a process in a kubelet-style cgroup (tests/daemon/cluster.py), the API server is
real, the daemon is ``python -m trinet run`` with /metrics on a free port.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from e2e.controlplane import Credentials
from tests.daemon.cluster import Daemon, Node, nft_in, table_text, wait_for
from tests.observability.kube import Scraper, free_port, trinet
from tests.support.nft import listing, nft
from tests.support.traffic import tcp_connects, udp_delivered
from trinet.observability.metrics import FAMILIES

SERVER_POLICY = {
    "podSelector": {"matchLabels": {"app": "server"}},
    "policyTypes": ["Ingress", "Egress"],
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 80}]}],
    "egress": [],
}


def _ip(address: str) -> str:
    return address.split("/", maxsplit=1)[0]


def _tx(scraper: Scraper, kind: str, outcome: str) -> float:
    return scraper.value("trinet_transactions", "trinet_transactions_total", kind=kind, outcome=outcome)


def test_every_family_is_served_and_counters_move(
    cluster: Node, metrics_daemon: tuple[Daemon, Scraper], admin: httpx.Client
) -> None:
    daemon, scraper = metrics_daemon
    server = cluster.pod("server", {"app": "server"})
    doomed = cluster.pod("doomed", {"app": "server"})
    cluster.pod("client", {"app": "client"})
    cluster.policy("servers", SERVER_POLICY)
    daemon.start().wait_ready()

    families = scraper.families()
    for doc in FAMILIES:
        assert doc.name.removesuffix("_total") in families, f"{doc.name} not served"
    wait_for(lambda: _tx(scraper, "create", "ok") >= 2, "two tables created")
    wait_for(lambda: scraper.value("trinet_policed_pods") == 2, "two policed pods")
    assert scraper.value("trinet_ready") == 1
    assert scraper.value("trinet_watch_synced", resource="policies") == 1
    assert scraper.value("trinet_apply_duration_seconds", "trinet_apply_duration_seconds_count") >= 2
    programming = "trinet_network_programming_duration_seconds"
    assert scraper.value(programming, f"{programming}_count") >= 2
    ns = cluster.namespace
    assert scraper.value("trinet_pod_rules", namespace=ns, pod="server") > 0

    # drift: a flushed table is found at the next resync and repaired
    drift_before = scraper.value("trinet_drift_repairs", "trinet_drift_repairs_total")
    repairs_before = _tx(scraper, "repair", "ok")
    assert nft_in(server.netns, "flush", "table", "inet", "multi_networkpolicy").returncode == 0
    wait_for(
        lambda: scraper.value("trinet_drift_repairs", "trinet_drift_repairs_total") == drift_before + 1,
        "drift repair counted",
    )
    assert _tx(scraper, "repair", "ok") >= repairs_before + 1

    # failures: a transaction the kernel rejects (a leftover set of trinet's name but another type)
    rejected_before = scraper.value("trinet_failures", "trinet_failures_total", reason="rejected")
    late = cluster.pod("late", {"app": "other"})
    key = f"{cluster.namespace}/late"  # visited first (read back: no table), so the later create is from "nothing"
    wait_for(lambda: daemon.since(0, "table-adopted", pod=key, reason="first-seen"), "the late pod seen, no table")
    leftover = "table inet multi_networkpolicy {\nset ingress-net1-0.g1 {\ntype inet_service\nelements = { 1 }\n}\n}\n"
    subprocess.run(["ip", "netns", "exec", late.netns, "nft", "-f", "-"], input=leftover, text=True, check=True)
    cluster.patch_pod("late", {"metadata": {"labels": {"app": "server"}}})
    wait_for(
        lambda: scraper.value("trinet_failures", "trinet_failures_total", reason="rejected") >= rejected_before + 1,
        "rejected transaction counted as a failure",
    )
    assert _tx(scraper, "create", "rejected") >= 1

    # netns resolution: the pod's last process is gone
    doomed.process.kill()
    doomed.process.wait()
    family = "trinet_netns_resolution_failures"
    wait_for(
        lambda: scraper.value(family, f"{family}_total", reason="no-process") >= 1,
        "netns resolution failure counted",
    )
    assert scraper.value("trinet_failures", "trinet_failures_total", reason="netns") >= 1


def _drops(scraper: Scraper, ns: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["pod"], s.labels["interface"], s.labels["direction"]): s.value
        for s in scraper.series("trinet_dropped_packets")
        if s.labels["namespace"] == ns
    }


def _quiet(netns: str) -> None:
    """No IPv6 on the pod's interface: its link-local chatter would be counted too."""
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], check=True)


def test_drop_counters_rise_by_the_blocked_packets_on_the_right_pod_interface_and_direction(
    cluster: Node, metrics_daemon: tuple[Daemon, Scraper]
) -> None:
    daemon, scraper = metrics_daemon
    target = cluster.pod("target", {"app": "server"})
    bystander = cluster.pod("bystander", {"app": "server"})
    intruder = cluster.pod("intruder", {"app": "intruder"})
    for pod in (target, bystander, intruder):
        _quiet(pod.netns)
    cluster.policy("servers", SERVER_POLICY)
    daemon.start().wait_ready()
    ns = cluster.namespace
    every = {(p, "net1", d) for p in ("target", "bystander") for d in ("ingress", "egress")}
    wait_for(lambda: set(_drops(scraper, ns)) == every, "drop counters of both isolated pods read back")
    before = _drops(scraper, ns)

    sent = 7
    assert udp_delivered(intruder.netns, target.netns, _ip(target.address), 9999, count=sent) == 0
    expected = {**before, ("target", "net1", "ingress"): before["target", "net1", "ingress"] + sent}
    wait_for(lambda: _drops(scraper, ns) == expected, f"exactly {sent} more drops on target's net1 ingress")
    adoptions = scraper.value("trinet_adoptions", "trinet_adoptions_total", result="unchanged")
    wait_for(
        lambda: scraper.value("trinet_adoptions", "trinet_adoptions_total", result="unchanged") >= adoptions + 4,
        "two more resyncs of both pods",
    )
    assert _drops(scraper, ns) == expected  # nothing else was dropped, nowhere else


def test_render_prints_what_the_daemon_installs(
    cluster: Node, metrics_daemon: tuple[Daemon, Scraper], netns: str
) -> None:
    daemon, _ = metrics_daemon
    server = cluster.pod("server", {"app": "server"})
    cluster.pod("client", {"app": "client"})
    cluster.policy("servers", SERVER_POLICY)
    daemon.start().wait_ready()
    installed = wait_for(lambda: table_text(server.netns), "server table installed")
    done = trinet(daemon.kubeconfig, "render", f"{cluster.namespace}/server")
    assert done.returncode == 0, done.stderr
    assert "set ingress-net1-" in done.stdout and "counter drop" in done.stdout
    nft(netns, "-f", "-", stdin=done.stdout)  # what render prints, loaded by nft itself ...
    assert listing(netns) == listing(server.netns)  # ... is what the daemon installed, object for object
    assert installed is not None and "10.77." in installed


def test_explain_agrees_with_real_probes(cluster: Node, metrics_daemon: tuple[Daemon, Scraper]) -> None:
    daemon, _ = metrics_daemon
    ns = cluster.namespace
    server = cluster.pod("server", {"app": "server"})
    pods = {"client": cluster.pod("client", {"app": "client"}), "other": cluster.pod("other", {"app": "other"})}
    selected = {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]}
    from_client = [{"podSelector": {"matchLabels": {"app": "client"}}}]
    cluster.policy("web", {**selected, "ingress": [{"from": from_client, "ports": [{"port": 80}]}]})
    cluster.policy("tls", {**selected, "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 443}]}]})
    daemon.start().wait_ready()
    wait_for(
        lambda: all(_ip(p.address) in (table_text(server.netns) or "") for p in pods.values()),
        "server enforced with both peers",
    )
    cases = [  # (source, port, allowed, reason)
        ("client", 80, True, f"allowed by {ns}/web ingress[0]"),
        ("other", 80, False, f"denied: the direction is isolated and no rule of {ns}/tls, {ns}/web matches"),
        ("other", 443, True, f"allowed by {ns}/tls ingress[0]"),
        ("client", 81, False, "denied: the direction is isolated"),
    ]
    for source, port, allowed, reason in cases:
        done = trinet(daemon.kubeconfig, "explain", f"{ns}/{source}", f"{ns}/server", "--protocol", "TCP",
                      "--port", str(port))  # fmt: skip
        assert done.returncode == (0 if allowed else 1), done.stdout + done.stderr
        assert reason in done.stdout and "BUG" not in done.stdout, done.stdout
        probe = tcp_connects(pods[source].netns, server.netns, _ip(server.address), port)
        assert probe is allowed, f"{source} -> server:{port}: explain says {allowed}, the kernel {probe}"


def test_per_pod_labels_off_gives_node_totals(control_plane: Credentials, cluster: Node, tmp_path: Path) -> None:
    port = free_port()
    daemon = Daemon(control_plane, tmp_path, cluster.name, "--resync-period", "1s",
                    "--metrics-bind-address", f"127.0.0.1:{port}", "--metrics-per-pod-labels", "false")  # fmt: skip
    scraper = Scraper(port)
    for name in ("a", "b"):
        cluster.pod(name, {"app": "server"})
    cluster.policy("servers", SERVER_POLICY)
    try:
        daemon.start().wait_ready()
        wait_for(lambda: scraper.value("trinet_policed_pods") == 2, "two policed pods")
        [rules] = scraper.series("trinet_pod_rules")
        assert rules.labels == {} and rules.value > 0
        drops = wait_for(lambda: scraper.series("trinet_dropped_packets"), "drop counters read back")
        assert {tuple(sorted(s.labels)) for s in drops} == {("direction", "interface")}
        assert {s.labels["direction"] for s in drops} == {"ingress", "egress"}
    finally:
        daemon.stop()
