"""Fixtures of the daemon-process tests: a simulated node with a macvlan NAD, and the daemon with /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.controlplane import Credentials
from tests.daemon.cluster import Daemon, Node, node_fixtures
from tests.observability.kube import Scraper, free_port

admin, cluster = node_fixtures("obsd")


@pytest.fixture
def metrics_daemon(control_plane: Credentials, cluster: Node, tmp_path: Path) -> Iterator[tuple[Daemon, Scraper]]:
    port = free_port()
    d = Daemon(
        control_plane, tmp_path, cluster.name, "--resync-period", "1s", "--metrics-bind-address", f"127.0.0.1:{port}"
    )
    yield d, Scraper(port)
    if d.process is not None and d.process.poll() is None:
        d.stop()
