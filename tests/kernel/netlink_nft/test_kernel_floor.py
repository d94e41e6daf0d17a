"""The start-up kernel probe, and the kernel differences it covers (set sizing, commit confirmation)."""

from __future__ import annotations

import errno
import os

import pytest

from netlink_nft import (
    ACCEPT,
    IP_SADDR,
    KERNEL_FLOOR,
    TCP_DPORT,
    Chain,
    Family,
    Hook,
    KernelFeatures,
    KernelTooOld,
    NftError,
    NftSocket,
    Ruleset,
    SetElement,
    Table,
    dump_table,
    in_set,
    probe_kernel,
    replace_contents,
    require_supported_kernel,
    rule,
)
from tests.support.netns import netns_path
from tests.support.nft import nft


def test_probe_in_a_namespace_leaves_nothing_behind(netns: str) -> None:
    with NftSocket.open(netns_path(netns)) as sock:
        genid = sock.genid()
        features = probe_kernel(netns_path(netns))
        assert sock.genid() > genid  # it did run transactions there
    assert features.missing == ()
    assert features.release == os.uname().release
    assert nft(netns, "list", "ruleset") == ""


def test_probe_in_its_own_namespace_touches_ours_not() -> None:
    own = os.stat("/proc/thread-self/ns/net").st_ino
    with NftSocket.open() as here:
        before = here.genid()
        features = require_supported_kernel()
        assert here.genid() == before
    assert os.stat("/proc/thread-self/ns/net").st_ino == own
    assert features.rulesets and features.verdict_maps and features.interval_concatenations


def test_this_kernel_is_above_the_floor(kernel_features: KernelFeatures) -> None:
    major, minor = (int(part) for part in kernel_features.release.split(".")[:2])
    assert (major, minor) >= tuple(int(p) for p in KERNEL_FLOOR.split("."))
    assert kernel_features.require() is kernel_features
    assert kernel_features.destroy == ((major, minor) >= (6, 3))
    assert kernel_features.end_ack == ((major, minor) >= (6, 10))


def test_below_the_floor_is_a_clear_error(kernel_features: KernelFeatures) -> None:
    old = KernelFeatures(
        release="5.4.0",
        end_ack=False,
        destroy=False,
        rulesets=True,
        verdict_maps=True,
        interval_concatenations=False,
        errors={"interval_concatenations": errno.EINVAL},
    )
    with pytest.raises(KernelTooOld, match=rf"5\.4\.0 .*interval_concatenations \(EINVAL\).*{KERNEL_FLOOR}"):
        old.require()
    assert issubclass(KernelTooOld, NftError)


@pytest.mark.parametrize("end_ack", [False, None], ids=["per-message-acks", "learn"])
def test_anonymous_interval_sets_of_many_ranges_commit(netns: str, end_ack: bool | None) -> None:
    """Kernels before 6.12.13 count starts and ends against the declared size (ENFILE if it is the range count)."""
    t = Table(Family.INET, "sizes")
    ports = [SetElement.interval(1000 + 10 * i, 1000 + 10 * i + 4) for i in range(300)]
    prefixes = [SetElement.network(f"10.{i}.0.0/16") for i in range(200)]
    desired = Ruleset(
        t,
        (Chain(t, "input", Hook.INPUT),),
        (),
        (rule(t, "input", in_set(IP_SADDR, prefixes), in_set(TCP_DPORT, ports), ACCEPT),),
    )
    with NftSocket.open(netns_path(netns), end_ack=end_ack) as sock:
        sock.apply(replace_contents(desired))
        assert dump_table(sock, t) == desired
