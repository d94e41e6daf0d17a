"""The control plane harness itself: a second instance is independent and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from e2e.controlplane import ControlPlane, Credentials, build_binaries
from e2e.controlplane.runner import running_pids


def test_second_control_plane_is_independent_and_cleans_up(control_plane: Credentials) -> None:
    before = running_pids()
    with ControlPlane(build_binaries()) as second:
        creds = second.credentials
        assert creds is not None
        assert creds.url != control_plane.url
        workdir = second.workdir
        assert len(running_pids()) == len(before) + 2
        with creds.client() as admin:
            assert admin.get("/readyz").status_code == 200
            assert admin.get("/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies").status_code == 200
    assert running_pids() == before
    assert not Path(workdir).exists()
