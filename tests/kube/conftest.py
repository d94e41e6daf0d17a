"""Fixtures for trinet.kube tests against the real control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from e2e.controlplane import Credentials
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
