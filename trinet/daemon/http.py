"""A minimal HTTP/1.1 server (h11 on a trio listener) for the daemon's probe and metrics endpoints.

One request per connection, answered by a pure function of (method, path); bodies are small and computed in the
daemon's trio thread, so handlers read its state without locks. Requests over 16 KiB or slower than 10 s are
dropped: these ports face kubelet and Prometheus, not the internet, but must not let a client pin memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import h11
import trio

from trinet.daemon.logs import event

__all__ = ["Answer", "serve_http"]

log = logging.getLogger("trinet.http")
_MAX_REQUEST = 16 * 1024
_REQUEST_DEADLINE = 10.0

Answer = Callable[[bytes, str], tuple[int, str, bytes]]
"""(method, path without query) -> (status, content type, body); HEAD gets the same headers and no body."""


async def _handle(stream: trio.SocketStream, answer: Answer) -> None:
    conn = h11.Connection(h11.SERVER)
    received = 0
    with trio.move_on_after(_REQUEST_DEADLINE):
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
                status, content_type, body = answer(ev.method, path)
                headers = [("content-type", content_type), ("content-length", str(len(body))), ("connection", "close")]
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                await stream.send_all(conn.send(h11.Data(data=body if ev.method != b"HEAD" else b"")) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            return


async def serve_http(
    address: tuple[str, int],
    answer: Answer,
    *,
    name: str,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; logs ``<name>-listening`` and calls ``task_status.started(port)`` once listening
    (port 0 picks a free one)."""
    host, port = address
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    bound = listeners[0].socket.getsockname()[1]
    event(log, logging.INFO, f"{name}-listening", address=f"{host}:{bound}")
    task_status.started(bound)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await _handle(stream, answer)
        except (h11.ProtocolError, trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    await trio.serve_listeners(handler, listeners)  # type: ignore[arg-type]
