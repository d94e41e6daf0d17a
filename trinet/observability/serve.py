"""``GET /metrics`` over HTTP/1.1 (h11 on a trio listener), in the daemon's trio thread.

Serving from the trio thread means the scrape-time collectors read the daemon's state without locks or copies.
The exposition is prometheus-client's own (``generate_latest``), content type included.
"""

from __future__ import annotations

import functools

import trio
from prometheus_client import CONTENT_TYPE_LATEST

from trinet.daemon.http import serve_http
from trinet.observability.metrics import Metrics

__all__ = ["serve_metrics"]


def _answer(metrics: Metrics, method: bytes, path: str) -> tuple[int, str, bytes]:
    if path != "/metrics":
        return 404, "text/plain; charset=utf-8", b"not found\n"
    if method not in (b"GET", b"HEAD"):
        return 405, "text/plain; charset=utf-8", b"method not allowed\n"
    return 200, CONTENT_TYPE_LATEST, metrics.exposition()


async def serve_metrics(
    address: tuple[str, int], metrics: Metrics, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; ``task_status.started(port)`` once listening (port 0 picks a free one)."""
    await serve_http(address, functools.partial(_answer, metrics), name="metrics", task_status=task_status)
