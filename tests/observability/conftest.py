"""Fixtures of the daemon-process tests: a simulated node with a macvlan NAD, and the daemon with /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.controlplane import Credentials
from tests.api.helpers import unique_namespace
from tests.conftest import require_root_and_nftables
from tests.daemon.cluster import Daemon, Node, node
from tests.observability.kube import Scraper, free_port


@pytest.fixture
def admin(control_plane: Credentials) -> Iterator[httpx.Client]:
    require_root_and_nftables()
    with control_plane.client() as client:
        yield client


@pytest.fixture
def cluster(admin: httpx.Client) -> Iterator[Node]:
    with node(admin, unique_namespace(admin, "obsd")) as n:
        n.create_nad()
        yield n


@pytest.fixture
def metrics_daemon(control_plane: Credentials, cluster: Node, tmp_path: Path) -> Iterator[tuple[Daemon, Scraper]]:
    port = free_port()
    d = Daemon(
        control_plane, tmp_path, cluster.name, "--resync-period", "1s", "--metrics-bind-address", f"127.0.0.1:{port}"
    )
    yield d, Scraper(port)
    if d.process is not None and d.process.poll() is None:
        d.stop()
