"""``GET /metrics`` over HTTP/1.1 (h11 on a trio listener), in the daemon's trio thread.

Serving from the trio thread means the scrape-time collectors read the daemon's state without locks or copies.
The exposition is prometheus-client's own (``generate_latest``), content type included.
"""

from __future__ import annotations

import logging

import h11
import trio
from prometheus_client import CONTENT_TYPE_LATEST

from trinet.daemon.logs import event
from trinet.observability.metrics import Metrics

__all__ = ["serve_metrics"]

log = logging.getLogger("trinet.metrics")
_MAX_REQUEST = 16 * 1024


def _answer(metrics: Metrics, method: bytes, path: str) -> tuple[int, str, bytes]:
    if path != "/metrics":
        return 404, "text/plain; charset=utf-8", b"not found\n"
    if method not in (b"GET", b"HEAD"):
        return 405, "text/plain; charset=utf-8", b"method not allowed\n"
    return 200, CONTENT_TYPE_LATEST, metrics.exposition()


async def _handle(stream: trio.SocketStream, metrics: Metrics) -> None:
    conn = h11.Connection(h11.SERVER)
    received = 0
    with trio.move_on_after(10):
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                data = await stream.receive_some(4096)
                received += len(data)
                if not data or received > _MAX_REQUEST:
                    return
                conn.receive_data(data)
                continue
            if isinstance(ev, h11.Request):
                path = ev.target.decode("ascii", "replace").split("?", 1)[0]
                status, content_type, body = _answer(metrics, ev.method, path)
                headers = [("content-type", content_type), ("content-length", str(len(body))), ("connection", "close")]
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                await stream.send_all(conn.send(h11.Data(data=body if ev.method != b"HEAD" else b"")) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            return


async def serve_metrics(
    address: tuple[str, int], metrics: Metrics, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; ``task_status.started(port)`` once listening (port 0 picks a free one)."""
    host, port = address
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    bound = listeners[0].socket.getsockname()[1]
    event(log, logging.INFO, "metrics-listening", address=f"{host}:{bound}")
    task_status.started(bound)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await _handle(stream, metrics)
        except (h11.ProtocolError, trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    await trio.serve_listeners(handler, listeners)  # type: ignore[arg-type]
