"""Create a socket inside another network namespace without leaving any thread there.

`setns(CLONE_NEWNET)` switches only the calling thread, and a socket keeps the namespace it was created in for its
whole life. So one dedicated thread, which does nothing else, enters the namespace, creates the socket and goes
back. If it ever cannot go back, it ends at once (a new one is started for the next request): no thread that runs
other work is ever inside a pod's namespace, and none stays there. Python 3.11 has no `os.setns`, hence ctypes.
"""

from __future__ import annotations

import ctypes
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_id(path: str) -> tuple[int, int]:
    """(device, inode) of a namespace file: equal ids mean the same namespace."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


class _Stranded(Exception):
    """The opener thread could not return to its own namespace and must end."""


_Request = tuple[str, Callable[[], socket.socket], "Future[socket.socket]"]


def _create_in(path: str, factory: Callable[[], socket.socket]) -> socket.socket:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # never created: a missing path is an error
        try:
            _setns(target)
            try:
                return factory()
            finally:
                try:
                    _setns(own)
                except OSError as exc:
                    raise _Stranded(exc) from exc
        finally:
            os.close(target)
    finally:
        os.close(own)


def _serve(requests: queue.SimpleQueue[_Request]) -> None:
    while True:
        path, factory, future = requests.get()
        try:
            future.set_result(_create_in(path, factory))
        except _Stranded as exc:
            future.set_exception(OSError(f"could not leave network namespace {path}: {exc}"))
            return  # this thread is in a foreign namespace: end it, never reuse it
        except BaseException as exc:  # handed to the caller's thread
            future.set_exception(exc)


class _Opener:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, path: str, factory: Callable[[], socket.socket]) -> Future[socket.socket]:
        future: Future[socket.socket] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._requests = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=_serve, args=(self._requests,), name="netlink_nft-netns-opener", daemon=True
                )
                self._thread.start()
            self._requests.put((path, factory, future))
        return future


_opener = _Opener()


def socket_in_netns(path: str, factory: Callable[[], socket.socket]) -> socket.socket:
    """Call `factory()` inside the network namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`)."""
    return _opener.submit(path, factory).result()
