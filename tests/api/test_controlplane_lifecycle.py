"""The control plane harness itself: a second instance is independent and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from e2e.controlplane import ControlPlane, Credentials, build_binaries
from e2e.controlplane.runner import running_pids


def _pids_using(workdir: str) -> list[int]:
    """Control-plane processes whose command line names `workdir` (other sessions' control planes may come and
    go while this test runs, so counting every control-plane process would race with them)."""
    found = []
    for pid in running_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if workdir.encode() in cmdline:
            found.append(pid)
    return found


def test_second_control_plane_is_independent_and_cleans_up(control_plane: Credentials) -> None:
    with ControlPlane(build_binaries()) as second:
        creds = second.credentials
        assert creds is not None
        assert creds.url != control_plane.url
        workdir = str(second.workdir)
        assert len(_pids_using(workdir)) == 2  # etcd and kube-apiserver
        with creds.client() as admin:
            assert admin.get("/readyz").status_code == 200
            assert admin.get("/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies").status_code == 200
    assert _pids_using(workdir) == []
    assert not Path(workdir).exists()
