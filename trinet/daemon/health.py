"""``/healthz`` and ``/readyz`` over HTTP/1.1 (h11 on a trio listener), as kubelet probes expect.

- ``/healthz``: 200 while the event loop runs and every worker has taken or waited for work within the stall
  limit; an answer at all proves the loop is alive.
- ``/readyz``: 200 once the initial sync is done (the store complete, every local pod visited once) and the
  workers are alive; 503 before, with the reason in the body.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import trio

from trinet.daemon.http import serve_http

__all__ = ["Health", "serve_health"]


class Health:
    """Readiness as the daemon reports it; ``check`` returns (ok, reason) per probe path."""

    def __init__(self, workers_alive: Callable[[], bool]) -> None:
        self.synced = False
        self.workers_alive = workers_alive

    def check(self, path: str) -> tuple[int, str] | None:
        if path == "/healthz":
            return (200, "ok\n") if self.workers_alive() else (503, "workers stalled\n")
        if path == "/readyz":
            if not self.synced:
                return 503, "initial sync not done\n"
            return (200, "ok\n") if self.workers_alive() else (503, "workers stalled\n")
        return None


def _answer(health: Health, method: bytes, path: str) -> tuple[int, str, bytes]:
    status, body = health.check(path) or (404, "not found\n")
    return status, "text/plain; charset=utf-8", body.encode()


async def serve_health(
    address: tuple[str, int], health: Health, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; ``task_status.started(port)`` once listening."""
    await serve_http(address, functools.partial(_answer, health), name="health", task_status=task_status)
