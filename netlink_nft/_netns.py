"""Create a socket inside another network namespace without leaving any thread there.

`setns(CLONE_NEWNET)` switches only the calling thread, and a socket keeps the namespace it was created in for its
whole life. So one dedicated thread, which does nothing else, enters the namespace, creates the socket and goes
back. If it ever cannot go back, it ends at once (a new one is started for the next request): no thread that runs
other work is ever inside a pod's namespace, and none stays there. Python 3.11 has no `os.setns`, hence ctypes.

No request is ever lost: the thread decides to end (idle, or stranded) under the same lock under which requests are
queued; what is still queued is served by a successor, started by the next submitter or by a waiting caller (never
by the stranded thread: a thread inherits its creator's namespace). Callers wait at most `timeout` seconds.
"""

from __future__ import annotations

import ctypes
import errno
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from netlink_nft._errors import NetlinkIOError, io_error

CLONE_NEWNET = 0x40000000
OPEN_TIMEOUT = 10.0  # seconds; entering a namespace and creating a socket takes tens of microseconds
IDLE_SECONDS = 30.0  # the opener thread ends after this long without requests
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _unshare_net() -> None:
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")


def netns_id(path: str) -> tuple[int, int]:
    """(device, inode) of a namespace file: equal ids mean the same namespace."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


class _Stranded(Exception):
    """The opener thread could not return to its own namespace and must end."""


Factory = Callable[[], socket.socket]
_Request = tuple[str | None, Factory, "Future[socket.socket]"]


def _create_in(path: str | None, factory: Factory) -> socket.socket:
    """`factory()` inside the namespace at `path`, or inside a new, empty namespace for None (it lives as long as
    the socket)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        # never created: a missing path is an error
        target = None if path is None else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if target is None:
                _unshare_net()
            else:
                _setns(target)
            try:
                return factory()
            finally:
                try:
                    _setns(own)
                except OSError as exc:
                    raise _Stranded(exc) from exc
        finally:
            if target is not None:
                os.close(target)
    finally:
        os.close(own)


class _Opener:
    """One serving thread at a time, started on demand; it ends when idle or stranded."""

    def __init__(self, idle: float = IDLE_SECONDS) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.idle = idle

    def submit(self, path: str | None, factory: Factory) -> Future[socket.socket]:
        future: Future[socket.socket] = Future()
        with self._lock:
            self._requests.put((path, factory, future))
            if self._thread is None:
                self._start()
        return future

    def resume(self) -> None:
        """Start a serving thread if requests wait and none serves them (after a stranded thread ended)."""
        with self._lock:
            if self._thread is None and not self._requests.empty():
                self._start()

    def _start(self) -> None:
        """Start a serving thread (caller holds the lock)."""
        self._thread = threading.Thread(target=self._serve, name="netlink_nft-netns-opener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                path, factory, future = self._requests.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    if self._requests.empty():  # nothing can be queued while we hold the lock: safe to end
                        self._thread = None
                        return
                continue
            if not future.set_running_or_notify_cancel():
                continue  # the caller gave up before we started
            try:
                future.set_result(_create_in(path, factory))
            except _Stranded as exc:
                # This thread is in a foreign namespace: end it. Its successor must not be started from here (a
                # new thread inherits the namespace and capabilities of the thread that creates it): the next
                # submitter or a waiting caller starts it (`resume`).
                with self._lock:
                    self._thread = None
                future.set_exception(NetlinkIOError(errno.EPERM, f"could not leave network namespace {path}: {exc}"))
                return
            except OSError as exc:
                future.set_exception(io_error(exc, f"creating a socket in network namespace {path}"))
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)


_opener = _Opener()


def _close_when_done(future: Future[socket.socket]) -> None:
    if future.exception() is None:
        future.result().close()


_RESUME_SECONDS = 0.05


def wait(opener: _Opener, future: Future[socket.socket], what: str, timeout: float) -> socket.socket:
    """The future's socket, waiting at most `timeout` seconds; meanwhile restart the opener if it stopped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return future.result(max(0.0, min(_RESUME_SECONDS, deadline - time.monotonic())))
        except FutureTimeout:
            if time.monotonic() >= deadline:
                break
            opener.resume()
    if not future.cancel():  # already running: close the socket it will produce, nobody will take it
        future.add_done_callback(_close_when_done)
    raise NetlinkIOError(errno.ETIMEDOUT, f"{what}: no answer within {timeout} s")


def socket_in_netns(path: str, factory: Factory, *, timeout: float = OPEN_TIMEOUT) -> socket.socket:
    """Call `factory()` inside the network namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`)."""
    return wait(_opener, _opener.submit(path, factory), f"opening a socket in {path}", timeout)


def socket_in_new_netns(factory: Factory, *, timeout: float = OPEN_TIMEOUT) -> socket.socket:
    """Call `factory()` inside a new, empty network namespace, which goes away with the last socket in it."""
    return wait(_opener, _opener.submit(None, factory), "opening a socket in a new namespace", timeout)
