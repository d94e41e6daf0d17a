"""The daemon as a real process against a real API server, pods as namespaces with processes in pod cgroups."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.controlplane import Credentials
from tests.conftest import require_root_and_nftables
from tests.daemon.cluster import V2_ROOT, Daemon, Node, nft_in, node_fixtures, table_text, wait_for
from tests.support.traffic import tcp_connects
from trinet.daemon.worker import SANDBOX_POLL

SERVER_POLICY = {
    "podSelector": {"matchLabels": {"app": "server"}},
    "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 80}]}],
}


admin, cluster = node_fixtures("dmn")


@pytest.fixture
def daemon(control_plane: Credentials, cluster: Node, tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(control_plane, tmp_path, cluster.name, "--resync-period", "0")
    yield d
    if d.process is not None and d.process.poll() is None:
        d.stop()


def _ip(pod_address: str) -> str:
    return pod_address.split("/", maxsplit=1)[0]


def same_rules(netns: str, expected: str | None) -> bool:
    """The table holds ``expected`` up to the generation suffix of set names (a repair may switch generations)."""
    text = table_text(netns)
    return text is not None and expected is not None and _no_generation(text) == _no_generation(expected)


def _no_generation(text: str) -> str:
    return re.sub(r"\.g[12]\b", ".gN", text)


def root_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def test_policy_enforced_on_selected_local_pods_only_then_delta_then_removed(cluster: Node, daemon: Daemon) -> None:
    root_before = root_tables()
    server = cluster.pod("server", {"app": "server"})
    client = cluster.pod("client", {"app": "client"}, cgroup_driver="cgroupfs")
    other_node = cluster.pod("remote", {"app": "server"}, node="some-other-node")
    host_net = cluster.pod("hostnet", {"app": "server"}, host_network=True)
    daemon.start().wait_ready()
    assert daemon.get("/healthz") == 200
    cluster.policy("allow-client", SERVER_POLICY)

    wait_for(lambda: table_text(server.netns), "server's table installed")
    assert tcp_connects(client.netns, server.netns, _ip(server.address), 80, timeout=2)
    assert not tcp_connects(client.netns, server.netns, _ip(server.address), 81)
    assert _ip(client.address) in (table_text(server.netns) or "")
    for untouched in (client, other_node, host_net):
        assert table_text(untouched.netns) is None
    assert root_tables() == root_before  # the node's own namespace is never touched

    mark = daemon.mark()
    peer = cluster.pod("client2", {"app": "client"})
    wait_for(lambda: _ip(peer.address) in (table_text(server.netns) or ""), "new peer's address in the server's set")
    (txn,) = wait_for(lambda: daemon.since(mark, "transaction", pod=f"{cluster.namespace}/server"), "delta logged")
    assert txn["kind"] == "delta"
    assert txn["ops"] == "NEWSETELEM:1", txn  # only the element: no table, chain, set or rule message
    assert tcp_connects(peer.netns, server.netns, _ip(server.address), 80, timeout=2)

    cluster.delete_policy("allow-client")
    wait_for(lambda: table_text(server.netns) is None, "server's table removed after the policy is deleted")
    assert tcp_connects(client.netns, server.netns, _ip(server.address), 81, timeout=2)
    assert daemon.stop() == 0


def test_restart_removes_orphans_and_costs_nothing_for_unchanged_pods(cluster: Node, daemon: Daemon) -> None:
    kept = cluster.pod("kept", {"app": "server"})
    orphan = cluster.pod("orphan", {"app": "db"})
    cluster.policy("servers", SERVER_POLICY)
    cluster.policy("dbs", {**SERVER_POLICY, "podSelector": {"matchLabels": {"app": "db"}}})
    daemon.start().wait_ready()
    wait_for(lambda: table_text(kept.netns) and table_text(orphan.netns), "both tables installed")
    kept_rules = table_text(kept.netns)

    assert daemon.stop(signal.SIGTERM) == 0
    assert table_text(kept.netns) == kept_rules  # SIGTERM leaves the rules in place
    assert any(e.get("event") == "stopping" for e in daemon.events())
    cluster.delete_policy("dbs")  # while the daemon is down: no delete event will ever reach it

    daemon.start().wait_ready()
    wait_for(lambda: table_text(orphan.netns) is None, "orphaned table removed at start-up")
    assert table_text(kept.netns) == kept_rules
    kept_key = f"{cluster.namespace}/kept"
    assert daemon.since(0, "transaction", pod=kept_key) == []  # adopted as it was: no transaction
    (removal,) = daemon.since(0, "transaction", pod=f"{cluster.namespace}/orphan")
    assert removal["kind"] == "remove"


def test_hand_edits_are_repaired_at_the_next_resync(control_plane: Credentials, cluster: Node, tmp_path: Path) -> None:
    server = cluster.pod("server", {"app": "server"})
    client = cluster.pod("client", {"app": "client"})
    cluster.policy("allow-client", SERVER_POLICY)
    daemon = Daemon(control_plane, tmp_path, cluster.name, "--resync-period", "1s").start()
    try:
        daemon.wait_ready()
        wait_for(lambda: table_text(server.netns), "table installed")
        good = table_text(server.netns)

        mark = daemon.mark()
        assert nft_in(server.netns, "flush", "table", "inet", "multi_networkpolicy").returncode == 0
        assert tcp_connects(client.netns, server.netns, _ip(server.address), 81)  # open while flushed
        wait_for(lambda: same_rules(server.netns, good), "flushed table repaired")
        assert daemon.since(mark, "drift-detected", pod=f"{cluster.namespace}/server")
        assert not tcp_connects(client.netns, server.netns, _ip(server.address), 81)

        handles = nft_in(server.netns, "-a", "list", "chain", "inet", "multi_networkpolicy", "ingress-net1").stdout
        handle = next(line.rsplit("# handle ", 1)[1] for line in handles.splitlines() if "drop" in line)
        assert nft_in(server.netns, "delete", "rule", "inet", "multi_networkpolicy", "ingress-net1",
                      "handle", handle).returncode == 0  # fmt: skip
        wait_for(lambda: same_rules(server.netns, good), "deleted rule repaired")
    finally:
        daemon.stop()


def test_invalid_policy_keeps_isolation_and_logs_the_reason(cluster: Node, daemon: Daemon) -> None:
    server = cluster.pod("server", {"app": "server"})
    client = cluster.pod("client", {"app": "client"})
    daemon.start().wait_ready()
    bad_peer = {"podSelector": {"matchExpressions": [{"key": "app", "operator": "Bogus", "values": ["client"]}]}}
    cluster.policy("bad", {**SERVER_POLICY, "ingress": [{"from": [bad_peer], "ports": [{"port": 80}]}]})

    wait_for(lambda: table_text(server.netns), "server isolated")
    assert not tcp_connects(client.netns, server.netns, _ip(server.address), 80)
    (logged,) = wait_for(lambda: daemon.since(0, "policy-invalid", policy=f"{cluster.namespace}/bad"), "reason")
    assert "Bogus" in logged["errors"]


def test_a_vanished_namespace_fails_alone(cluster: Node, daemon: Daemon) -> None:
    doomed = cluster.pod("doomed", {"app": "server"})
    healthy = cluster.pod("healthy", {"app": "server"})
    daemon.start().wait_ready()
    cluster.policy("allow-client", SERVER_POLICY)
    wait_for(lambda: table_text(doomed.netns) and table_text(healthy.netns), "both enforced")

    doomed.process.kill()  # the sandbox's last process is gone: no process of the pod is left to find
    doomed.process.wait()
    mark = daemon.mark()
    peer = cluster.pod("client", {"app": "client"})
    wait_for(lambda: _ip(peer.address) in (table_text(healthy.netns) or ""), "the healthy pod still enforced")
    wait_for(lambda: daemon.since(mark, "netns-unavailable", pod=f"{cluster.namespace}/doomed"), "failure logged")
    assert wait_for(lambda: daemon.since(mark, "retry-scheduled", pod=f"{cluster.namespace}/doomed"), "retried")
    assert daemon.get("/healthz") == 200


def test_a_transaction_the_kernel_rejects_is_retried(cluster: Node, daemon: Daemon) -> None:
    daemon.start().wait_ready()
    cluster.policy("allow-client", SERVER_POLICY)
    # A pod known to have no table (visited, read back: none) whose namespace then gets our table with a set of
    # the name trinet uses but of another type: the create-from-nothing batch is rejected whole, then the retry
    # reads the table back and repairs it.
    key = f"{cluster.namespace}/server"
    server = cluster.pod("server", {"app": "other"})
    wait_for(lambda: daemon.since(0, "table-adopted", pod=key, reason="first-seen"), "the pod seen, no table")
    leftover = "table inet multi_networkpolicy {\nset ingress-net1-0.g1 {\ntype inet_service\nelements = { 1 }\n}\n}\n"
    subprocess.run(["ip", "netns", "exec", server.netns, "nft", "-f", "-"], input=leftover, text=True, check=True)
    mark = daemon.mark()
    cluster.patch_pod("server", {"metadata": {"labels": {"app": "server"}}})
    (rejected,) = wait_for(lambda: daemon.since(mark, "transaction-rejected", pod=key)[:1], "rejection logged")
    assert "NEWSET" in rejected["error"], rejected
    (applied,) = wait_for(lambda: daemon.since(mark, "transaction", pod=key), "retried and applied")
    assert applied["kind"] == "repair"  # the retry read the table back and replaced what was there
    text = table_text(server.netns) or ""
    assert "ingress-net1-0.g1" not in text
    assert "chain ingress-net1" in text


def test_health_endpoints(control_plane: Credentials, cluster: Node, tmp_path: Path) -> None:
    bad = tmp_path / "bad.kubeconfig"
    bad.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": [
        {"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}))  # fmt: skip
    unreachable = Daemon(control_plane, tmp_path, cluster.name)
    unreachable.argv[unreachable.argv.index("--kubeconfig") + 1] = str(bad)
    unreachable.start()
    try:
        wait_for(lambda: unreachable.get("/healthz") == 200, "/healthz answers before the store is synced")
        assert unreachable.get("/readyz") == 503  # the API server cannot be reached: never synced
        assert unreachable.get("/nothing") == 404
    finally:
        unreachable.stop()


def test_triggers_the_go_peer_misses(cluster: Node, daemon: Daemon, admin: httpx.Client) -> None:
    """Pending pods, a NAD created after its policy, namespaceSelector-only peers, namespace relabels."""
    daemon.start().wait_ready()
    from_team = {
        "podSelector": {"matchLabels": {"app": "server"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": cluster.namespace}}}]}],
    }
    cluster.policy("from-team", from_team, network="late-net")
    server = cluster.pod("server", {"app": "server"}, network="late-net", phase="Pending")
    client = cluster.pod("client", {"app": "client"}, network="late-net")
    assert table_text(server.netns) is None  # the NAD does not exist yet: its type is unknown, nothing policed
    cluster.create_nad("late-net")
    wait_for(lambda: table_text(server.netns), "Pending pod enforced once its NAD exists")
    assert _ip(client.address) not in (table_text(server.netns) or "")

    admin.patch(f"/api/v1/namespaces/{cluster.namespace}", json={"metadata": {"labels": {"team": cluster.namespace}}},
                headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()  # fmt: skip
    wait_for(lambda: _ip(client.address) in (table_text(server.netns) or ""), "namespace relabel brings the peers")
    assert tcp_connects(client.netns, server.netns, _ip(server.address), 80, timeout=2)
    newcomer = cluster.pod("newcomer", {"any": "labels"}, network="late-net")
    wait_for(lambda: _ip(newcomer.address) in (table_text(server.netns) or ""), "namespaceSelector-only peer added")


def test_cleanup_removes_every_table_of_the_node(control_plane: Credentials, cluster: Node, daemon: Daemon) -> None:
    a = cluster.pod("a", {"app": "server"})
    b = cluster.pod("b", {"app": "server"}, cgroup_driver="cgroupfs")
    plain = cluster.pod("plain", {"app": "none"})
    cluster.policy("servers", SERVER_POLICY)
    daemon.start().wait_ready()
    wait_for(lambda: table_text(a.netns) and table_text(b.netns), "both enforced")
    assert daemon.stop() == 0
    assert table_text(a.netns) and table_text(b.netns)  # left in place

    argv = [*daemon.argv[:3], "cleanup", *daemon.argv[4:8]]  # python -m trinet cleanup --kubeconfig K --hostname...
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert table_text(a.netns) is None and table_text(b.netns) is None and table_text(plain.netns) is None
    assert "table-removed" in proc.stderr


def test_a_recreated_sandbox_is_enforced_again(cluster: Node, daemon: Daemon) -> None:
    """Same Pod object, new sandbox (new netns, same UID): noticed at the pod's next event, not only at resync."""
    cluster.pod("server", {"app": "server"})
    client = cluster.pod("client", {"app": "client"})
    cluster.policy("allow-client", SERVER_POLICY)
    daemon.start().wait_ready()
    wait_for(lambda: table_text(cluster.pods["server"].netns), "enforced")

    mark = daemon.mark()
    fresh = cluster.recreate_sandbox("server")
    wait_for(lambda: table_text(fresh.netns), "the new sandbox enforced")
    assert daemon.since(mark, "sandbox-changed", pod=f"{cluster.namespace}/server")
    client_fresh = cluster.recreate_sandbox("client")  # a peer's new address reaches the server's set
    wait_for(lambda: _ip(client_fresh.address) in (table_text(fresh.netns) or ""), "peer's new address")
    assert tcp_connects(client_fresh.netns, fresh.netns, _ip(fresh.address), 80, timeout=2)
    assert not tcp_connects(client_fresh.netns, fresh.netns, _ip(fresh.address), 81)
    assert client.process.poll() is not None  # the old client sandbox is gone


def test_a_health_address_in_use_is_one_clear_error(control_plane: Credentials, tmp_path: Path) -> None:
    require_root_and_nftables()
    import socket  # noqa: PLC0415

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = Daemon(control_plane, tmp_path, "some-node")
        d.argv[d.argv.index("--health-probe-bind-address") + 1] = f"127.0.0.1:{port}"
        proc = subprocess.run(d.argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "trinet: cannot run: [Errno 98] Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_sandbox_that_appears_after_network_status_is_polled_not_backed_off(cluster: Node, daemon: Daemon) -> None:
    """network-status first, the pod's process later, and no API change when it comes: the daemon polls for it
    at a short fixed interval (exponential backoff would leave the pod open for up to 5 s)."""
    cluster.policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []})
    daemon.start().wait_ready()
    sandbox = cluster.pod("late", annotate=False)
    assert sandbox.cgroup is not None
    (V2_ROOT / "cgroup.procs").write_text(str(sandbox.process.pid))  # out of the pod's cgroup: "not started yet"
    mark = daemon.mark()
    cluster.annotate_network_status("late")
    key = f"{cluster.namespace}/late"
    wait_for(lambda: any(e["attempt"] >= 8 for e in daemon.since(mark, "retry-scheduled", pod=key)), "8 lookups")
    retries = daemon.since(mark, "retry-scheduled", pod=key)
    assert {e["delay_s"] for e in retries} == {SANDBOX_POLL}, retries
    assert {e["reason"] for e in daemon.since(mark, "netns-unavailable", pod=key)} == {"no-process"}
    assert table_text(sandbox.netns) is None

    (sandbox.cgroup / "cgroup.procs").write_text(str(sandbox.process.pid))  # the process joins the pod's cgroup
    wait_for(lambda: table_text(sandbox.netns), "enforced once its process is in the pod's cgroup")
    assert daemon.since(mark, "transaction", pod=key, kind="create")


FOREIGN_TABLE = """table inet multi_networkpolicy {
    set smi-x { type ifname; elements = { "net1" }; }
    chain input { type filter hook input priority filter; policy accept; iifname @smi-x jump ingress; }
    chain ingress { ct state established,related accept; jump common-ingress; drop; }
    chain common-ingress { }
}
"""


def _write_foreign_table(netns: str, tmp_path: Path) -> None:
    rules = tmp_path / "foreign.nft"
    rules.write_text(FOREIGN_TABLE)
    proc = nft_in(netns, "-f", str(rules))
    assert proc.returncode == 0, proc.stderr


def test_a_pod_first_seen_after_start_up_has_its_table_read_back(cluster: Node, daemon: Daemon, tmp_path: Path) -> None:
    """A table already in a pod the daemon meets after start-up (a Go peer's, a stale one) is adopted like at
    start-up: foreign chains and sets go in the first transaction; an unselected pod's table is removed."""
    cluster.policy("allow-client", SERVER_POLICY)
    daemon.start().wait_ready()
    server = cluster.pod("server", {"app": "server"}, annotate=False)  # not yet seen by the daemon
    other = cluster.pod("other", {"app": "other"}, annotate=False)
    for sandbox in (server, other):
        _write_foreign_table(sandbox.netns, tmp_path)
    mark = daemon.mark()
    cluster.annotate_network_status("server")
    cluster.annotate_network_status("other")

    key = f"{cluster.namespace}/server"
    (first,) = wait_for(lambda: daemon.since(mark, "transaction", pod=key), "the server's first transaction")
    assert first["kind"] == "repair", first
    text = table_text(server.netns) or ""
    chains, sets = set(re.findall(r"chain (\S+) \{", text)), set(re.findall(r"set (\S+) \{", text))
    assert not chains & {"ingress", "common-ingress"} and "smi-x" not in sets, text
    assert "ingress-net1" in chains
    wait_for(lambda: table_text(other.netns) is None, "the unselected pod's stale table removed")
    assert [e["kind"] for e in daemon.since(mark, "transaction", pod=f"{cluster.namespace}/other")] == ["remove"]


def test_api_watch_log_lines_are_named_events(control_plane: Credentials, tmp_path: Path) -> None:
    """One named event per line, also from trinet.kube: a refused token gives `api-credentials-refused` with the
    resource, the error and the retry delay as fields (JSON), and `event=<name> key=value ...` in text."""
    require_root_and_nftables()
    for fmt in ("json", "text"):
        d = Daemon(control_plane, tmp_path, "some-node")
        control_plane.write_kubeconfig(d.kubeconfig, "not-a-valid-token")
        d.argv[d.argv.index("--log-format") + 1] = fmt
        d.start()
        try:
            if fmt == "json":
                refused = wait_for(lambda d=d: d.since(0, "api-credentials-refused"), "the 401 logged")  # type: ignore[misc]
                assert {"resource", "code", "error", "retry_in"} <= refused[0].keys(), refused[0]
                assert refused[0]["code"] == 401 and refused[0]["logger"].startswith("trinet.kube")
                named = [e for e in d.events() if e.get("logger", "").startswith("trinet")]
                assert named and all(re.fullmatch(r"[a-z][a-z0-9-]*", e["event"]) for e in named), named
            else:
                line = wait_for(
                    lambda d=d: next(
                        (
                            x
                            for x in d.log_path.read_text().splitlines()  # type: ignore[misc]
                            if "event=api-credentials-refused " in x
                        ),
                        None,
                    ),
                    "text line",
                )
                assert re.match(r"ts=\S+ level=error event=api-credentials-refused resource=\w+ code=401 ", line)
                assert "retry_in=" in line and "logger=trinet.kube.reflector" in line
        finally:
            d.stop()
