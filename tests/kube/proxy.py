"""A small trio TCP proxy between the client and kube-apiserver that can stall, cut, slow or refuse connections.

TLS passes through untouched (the client still verifies the real server certificate, issued for 127.0.0.1), so
the faults are exactly what a broken network or load balancer would do to a real connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import trio


@dataclass
class _Conn:
    scope: trio.CancelScope
    stalled: bool = False


@dataclass
class FaultProxy:
    upstream_port: int
    port: int = 0
    connections: int = 0
    """Connections accepted so far (refused ones included)."""
    refusing: bool = False
    """New connections are closed at once (the API server looks down)."""
    delay: float = 0.0
    """Seconds to wait before forwarding each chunk (a slow link)."""
    _live: list[_Conn] = field(default_factory=list)

    @property
    def live(self) -> int:
        """Connections open right now."""
        return len(self._live)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stall(self) -> None:
        """Existing connections stop moving bytes (TCP stays open); new connections work normally."""
        for conn in self._live:
            conn.stalled = True

    def cut(self) -> None:
        """Close every existing connection abruptly."""
        for conn in list(self._live):
            conn.scope.cancel()

    async def _pipe(self, conn: _Conn, src: trio.SocketStream, dst: trio.SocketStream) -> None:
        while True:
            data = await src.receive_some(65536)
            if not data:
                await dst.send_eof()
                return
            if self.delay:
                await trio.sleep(self.delay)
            while conn.stalled:
                await trio.sleep_forever()  # until cut() cancels the connection
            await dst.send_all(data)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        if self.refusing:
            await client.aclose()
            return
        conn = _Conn(trio.CancelScope())
        self._live.append(conn)
        try:
            with conn.scope:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
                async with upstream, client, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, conn, client, upstream)
                    nursery.start_soon(self._pipe, conn, upstream, client)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._live.remove(conn)
            with trio.CancelScope(shield=True):
                await client.aclose()


@asynccontextmanager
async def fault_proxy(upstream_url: str) -> AsyncIterator[FaultProxy]:
    """A proxy to `upstream_url` (https://127.0.0.1:PORT) on a free local port, for the duration of the block."""
    proxy = FaultProxy(upstream_port=int(upstream_url.rsplit(":", 1)[1]))
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, proxy._handle, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        try:
            yield proxy
        finally:
            proxy.cut()
            nursery.cancel_scope.cancel()
