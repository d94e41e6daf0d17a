"""Session-scoped real control plane (kube-apiserver + etcd) for API tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator

import pytest

from e2e.controlplane import ControlPlane, Credentials, build_binaries


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[Credentials]:
    """URL, CA file, admin token and the deploy/ ServiceAccount token of a control plane started for this run."""
    if shutil.which("go") is None or shutil.which("openssl") is None:
        pytest.skip("the test control plane needs go and openssl")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # show build progress: a cold build takes minutes
        bin_dir = build_binaries(progress=sys.stderr)
    with ControlPlane(bin_dir) as cp:
        assert cp.credentials is not None
        yield cp.credentials
