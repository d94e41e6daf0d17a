"""Fixtures for trinet.kube tests against the real control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from e2e.controlplane import ControlPlane, Credentials
from tests.kube.helpers import admin_client
from trinet.kube import ApiClient, KubeConfig


@pytest.fixture
def daemon_config(control_plane: Credentials) -> KubeConfig:
    """The daemon's own identity (the deploy/ ServiceAccount): what trinet runs with."""
    return KubeConfig(server=control_plane.url, ca_file=str(control_plane.ca_file), token=control_plane.daemon_token)


@pytest.fixture
async def admin(control_plane: Credentials) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(control_plane) as client:
        yield client


@pytest.fixture
async def api(daemon_config: KubeConfig) -> AsyncIterator[ApiClient]:
    async with ApiClient(daemon_config) as client:
        yield client


@pytest.fixture(scope="session")
def uncached_plane(control_plane: Credentials) -> Iterator[ControlPlane]:
    """A second control plane whose kube-apiserver has no watch cache and no WatchList.

    Watches go to etcd, so compacting etcd makes an old resourceVersion expire (410) deterministically
    (kube-api.md §3b); sendInitialEvents is refused (422), as on servers with the gate off. Tests may restart it.
    """
    from e2e.controlplane import build_binaries  # noqa: PLC0415

    with ControlPlane(build_binaries(), extra_args=["--watch-cache=false", "--feature-gates=WatchList=false"]) as plane:
        yield plane
