"""``/healthz`` and ``/readyz`` over HTTP/1.1 (h11 on a trio listener), as kubelet probes expect.

- ``/healthz``: 200 while the event loop runs and every worker has taken or waited for work within the stall
  limit; an answer at all proves the loop is alive.
- ``/readyz``: 200 once the initial sync is done (the store complete, every local pod visited once) and the
  workers are alive; 503 before, with the reason in the body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import h11
import trio

from trinet.daemon.logs import event

__all__ = ["Health", "serve_health"]

log = logging.getLogger("trinet.health")
_MAX_REQUEST = 16 * 1024


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


async def _handle(stream: trio.SocketStream, health: Health) -> None:
    conn = h11.Connection(h11.SERVER)
    with trio.move_on_after(10):
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                data = await stream.receive_some(4096)
                if len(data) > _MAX_REQUEST:
                    return
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(ev, h11.Request):
                path = ev.target.decode("ascii", "replace").split("?", 1)[0]
                status, body = health.check(path) or (404, "not found\n")
                payload = body.encode() if ev.method != b"HEAD" else b""
                headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body))),
                           ("connection", "close")]  # fmt: skip
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                await stream.send_all(conn.send(h11.Data(data=payload)) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            return


async def serve_health(
    address: tuple[str, int], health: Health, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; ``task_status.started(port)`` once listening."""
    host, port = address
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    bound = listeners[0].socket.getsockname()[1]
    event(log, logging.INFO, "health-listening", address=f"{host}:{bound}")
    task_status.started(bound)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await _handle(stream, health)
        except (h11.ProtocolError, trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    await trio.serve_listeners(handler, listeners)  # type: ignore[arg-type]
