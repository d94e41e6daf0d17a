"""Pod UIDs in /proc/PID/cgroup, both kubelet cgroup drivers, cgroup v1 and v2."""

from __future__ import annotations

from trinet.daemon.netns import pod_uids_in_cgroup

UID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def test_cgroupfs_driver_v1() -> None:
    text = f"12:pids:/kubepods/besteffort/pod{UID}/0123abcd\n11:memory:/kubepods/besteffort/pod{UID}/0123abcd\n"
    assert pod_uids_in_cgroup(text) == {UID}


def test_systemd_driver_v2() -> None:
    slice_ = f"kubepods-burstable-pod{UID.replace('-', '_')}.slice"
    text = f"0::/kubepods.slice/kubepods-burstable.slice/{slice_}/cri-containerd-0123.scope\n"
    assert pod_uids_in_cgroup(text) == {UID}


def test_guaranteed_pod_directly_under_kubepods_and_upper_case() -> None:
    assert pod_uids_in_cgroup(f"0::/kubepods/pod{UID.upper()}\n") == {UID}


def test_no_pod() -> None:
    assert pod_uids_in_cgroup("0::/system.slice/containerd.service\n1:name=systemd:/\n") == set()
    assert pod_uids_in_cgroup(f"0::/kubepods/pod{UID}x/\n") == set()  # not a whole UID
