"""The procfs resolver against real processes in kubelet-style cgroups (no API server needed)."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import require_root_and_nftables
from tests.daemon.cluster import V2_ROOT, make_sandbox
from tests.support.netns import ip, throwaway_netns
from trinet.daemon.netns import NetnsError, ProcfsResolver, own_netns


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    require_root_and_nftables()
    with contextlib.ExitStack() as s:
        yield s


@pytest.mark.parametrize("driver", ["systemd", "cgroupfs"])
def test_finds_the_namespace_and_checks_interfaces(stack: contextlib.ExitStack, driver: str) -> None:
    fabric = stack.enter_context(throwaway_netns("trinet-test-dfab"))
    ip("link", "add", "br0", "type", "bridge", netns=fabric)
    uid = str(uuid.uuid4())
    sandbox = make_sandbox(stack, fabric, uid, driver)
    resolver = ProcfsResolver()
    found = resolver.resolve(uid, ["net1"])
    assert found.pid == sandbox.process.pid
    assert found.ident != own_netns()
    with pytest.raises(NetnsError) as missing:
        resolver.resolve(uid, ["net1", "net9"])
    assert missing.value.reason == "missing-interfaces"
    sandbox.process.kill()
    sandbox.process.wait()
    with pytest.raises(NetnsError) as gone:
        resolver.resolve(uid, ["net1"])  # the cached pid is dead: rescanned, nothing left
    assert gone.value.reason == "no-process"


def test_a_process_still_in_the_node_namespace_is_never_taken(stack: contextlib.ExitStack) -> None:
    """runc joins the pod's cgroup before the pod's namespace: such a process must not be mistaken for the pod."""
    uid = str(uuid.uuid4())
    cgroup = V2_ROOT / "kubepods.slice" / f"kubepods-pod{uid.replace('-', '_')}.slice" / "cri-containerd-x.scope"
    cgroup.mkdir(parents=True)
    process = subprocess.Popen(["sleep", "infinity"])  # the daemon's (node's) namespace
    try:
        (cgroup / "cgroup.procs").write_text(str(process.pid))
        with pytest.raises(NetnsError) as refused:
            ProcfsResolver().resolve(uid, [])
        assert refused.value.reason == "own-netns"
    finally:
        process.kill()
        process.wait()
        cgroup.rmdir()
        cgroup.parent.rmdir()


def test_lookups_of_absent_pods_share_a_recent_scan(stack: contextlib.ExitStack) -> None:
    """Pods polled for a late sandbox cost one /proc scan per interval between them, not one each; a pod's first
    lookup always scans (its process may have started a moment ago)."""
    uids = [str(uuid.uuid4()) for _ in range(3)]
    for reuse, scans in ((3600.0, 3), (0.0, 6)):
        resolver = ProcfsResolver(scan_reuse=reuse)
        for _ in range(2):  # first lookups, then the polls of the same (still absent) pods
            for uid in uids:
                with pytest.raises(NetnsError):
                    resolver.resolve(uid, [])
        assert resolver.scans == scans, reuse
    shared = ProcfsResolver(scan_reuse=3600)
    with pytest.raises(NetnsError):
        shared.resolve(uids[0], [])
    fabric = stack.enter_context(throwaway_netns("trinet-test-dfab"))
    ip("link", "add", "br0", "type", "bridge", netns=fabric)
    started = make_sandbox(stack, fabric, str(uuid.uuid4()))
    found = shared.resolve(started.uid, ["net1"])  # first lookup of this pod: a fresh scan, not the recent one
    assert found.pid == started.process.pid
    assert shared.scans == 2
