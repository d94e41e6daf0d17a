"""Suite-wide policy: markers by directory, and in CI a skipped kernel or API test is a failure."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.netns import throwaway_netns

if TYPE_CHECKING:
    from e2e.controlplane import Credentials

IN_CI = os.environ.get("CI", "").lower() == "true"
# tests/<dir>/... gets the marker; kube, daemon and deploy tests need the real API server (daemon tests the kernel too)
_GROUP_BY_DIR = {"kernel": "kernel", "api": "api", "kube": "api", "daemon": "api", "deploy": "api", "e2e": "kernel"}
_GROUP_BY_DIR["observability"] = "api"  # render/explain/metrics against the real API server


def pytest_report_header() -> str:
    """Name the kernel in the header: the kernel tests also run on an older kernel in a VM (tests/oldkernel/)."""
    return f"kernel: {os.uname().release}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        for directory, marker in _GROUP_BY_DIR.items():
            if directory in parts:
                item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if IN_CI and report.skipped and ({"kernel", "api"} & {m.name for m in item.iter_markers()}):
        report.outcome = "failed"
        report.longrepr = f"CI=true: a kernel/API test must run, but it was skipped: {report.longrepr}"
    return report


def require_root_and_nftables() -> None:
    """Skip (fail in CI) unless we are root on a kernel with nf_tables and `ip netns` support."""
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root")
    if not Path("/proc/net/netfilter").exists() and not Path("/sys/module/nf_tables").exists():
        pytest.skip("kernel has no nf_tables")


@pytest.fixture
def netns() -> Iterator[str]:
    """A throwaway network namespace (name usable with `ip -n`, path /run/netns/NAME); always deleted."""
    require_root_and_nftables()
    with throwaway_netns() as name:
        yield name


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    """Two throwaway network namespaces; both always deleted."""
    require_root_and_nftables()
    with throwaway_netns() as a, throwaway_netns() as b:
        yield a, b


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[Credentials]:
    """URL, CA file, admin token and the deploy/ ServiceAccount token of a control plane started for this run."""
    from e2e.controlplane import ControlPlane, build_binaries  # noqa: PLC0415 (the CI-skip pytester test copies this file alone)

    if shutil.which("go") is None or shutil.which("openssl") is None:
        pytest.skip("the test control plane needs go and openssl")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # show build progress: a cold build takes minutes
        bin_dir = build_binaries(progress=sys.stderr)
    with ControlPlane(bin_dir) as cp:
        assert cp.credentials is not None
        yield cp.credentials
