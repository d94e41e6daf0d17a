"""Create a socket inside another network namespace without leaving any thread there.

`setns(CLONE_NEWNET)` switches only the calling thread, and a socket keeps the namespace it was created in for its
whole life. So a dedicated, short-lived thread enters the namespace, creates the socket, goes back and ends: even
if going back failed, no thread remains in the target namespace (pooled worker threads are never used for this).
Python 3.11 has no `os.setns`, hence ctypes.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable

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


def socket_in_netns(path: str, factory: Callable[[], socket.socket]) -> socket.socket:
    """Call `factory()` inside the network namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`).

    The path must exist: it is opened, never created.
    """
    outcome: list[socket.socket | BaseException] = []

    def enter_create_leave() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _setns(target)
                    try:
                        outcome.append(factory())
                    finally:
                        _setns(own)
                finally:
                    os.close(target)
            finally:
                os.close(own)
        except BaseException as exc:  # handed to the caller's thread
            if outcome and isinstance(outcome[0], socket.socket):
                outcome[0].close()
            outcome[:] = [exc]

    thread = threading.Thread(target=enter_create_leave, name=f"netns-open:{path}", daemon=True)
    thread.start()
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
