"""Create a socket inside another network namespace without leaving any thread there.

`setns(CLONE_NEWNET)` switches only the calling thread, and a socket keeps the namespace it was created in for its
whole life. So one dedicated thread, which does nothing else, enters the namespace, creates the socket and goes
back. If it ever cannot go back, it ends at once (a new one is started for the next request): no thread that runs
other work is ever inside a pod's namespace, and none stays there. Python 3.11 has no `os.setns`, hence ctypes.

No request is ever lost: the thread decides to end (idle, or stranded) under the same lock under which requests are
queued; what is still queued is served by a successor, started by the next submitter or by a waiting caller (never
by the stranded thread: a thread inherits its creator's namespace). Callers wait at most `timeout` seconds; a
socket made for a caller that gave up is closed.

Latency: a request is two thread wake-ups (caller -> opener -> caller). Waking a thread on the other CPU costs far
more than switching on the same one (≈40 µs against ≈12 µs for the round trip on an idle 2-vCPU VM), so each
submitter moves the opener thread to the CPU it is running on before queueing (only when that CPU changed), and
the caller then yields that CPU rather than sleeping (for at most `SPIN_SECONDS`, see `_spin`): the opener runs in
its place and the caller goes on as soon as the answer is there (warm: 42 -> 16 µs per request). And the opener
runs as SCHED_BATCH, which never preempts the thread that wakes it: otherwise it would run before the submitter had
released the GIL, wait for it and be switched out again (≈7 µs per request). Both only trade scheduling latency:
the opener does microseconds of work per request; on a CPU kept busy by something else it waits for its turn
(milliseconds at most) instead of moving.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import queue
import socket
import threading
import time
from collections.abc import Callable

from netlink_nft._errors import NetlinkIOError, io_error

CLONE_NEWNET = 0x40000000
OPEN_TIMEOUT = 10.0  # seconds; entering a namespace and creating a socket takes tens of microseconds
IDLE_SECONDS = 30.0  # the opener thread ends after this long without requests
SPIN_SECONDS = 0.0005  # a caller yields its CPU this long before it sleeps on its request (see `_spin`)
_libc = ctypes.CDLL(None, use_errno=True)
_OWN_NETNS = "/proc/thread-self/ns/net"


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _unshare_net() -> None:
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")


def _cpu_getter() -> Callable[[], int]:
    """sched_getcpu(): the CPU the calling thread runs on (-1 if unknown), prepared once (typed, no errno copy)."""
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except AttributeError:  # a libc without it
        return lambda: -1
    getcpu.argtypes = ()
    getcpu.restype = ctypes.c_int
    return getcpu  # type: ignore[no-any-return]


_current_cpu = _cpu_getter()


def netns_id(path: str) -> tuple[int, int]:
    """(device, inode) of a namespace file: equal ids mean the same namespace."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


class _Stranded(Exception):
    """The opener thread could not return to its own namespace and must end."""


Factory = Callable[[], socket.socket]

_QUEUED, _RUNNING, _DONE, _CANCELLED = range(4)


class Request:
    """One socket to create: its state moves under the opener's lock; `done` is released once it is answered."""

    __slots__ = ("abandoned", "done", "error", "factory", "ident", "path", "sock", "state")

    def __init__(self, path: str | None, factory: Factory) -> None:
        self.path = path
        self.factory = factory
        self.done = threading.Lock()
        self.done.acquire()
        self.state = _QUEUED
        self.abandoned = False  # the caller gave up while the request ran: close what it makes
        self.sock: socket.socket | None = None
        self.ident: tuple[int, int] | None = None  # `netns_id` of the namespace the socket was made in
        self.error: BaseException | None = None


def _create_in(own: int, path: str | None, factory: Factory) -> tuple[socket.socket, tuple[int, int] | None]:
    """`factory()` inside the namespace at `path`, or inside a new, empty namespace for None (it lives as long as
    the socket), and the `netns_id` of the namespace entered (None for a new one); `own` is an open descriptor of
    the calling thread's namespace, to go back to."""
    # never created: a missing path is an error
    target = None if path is None else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if target is None:
            _unshare_net()
            ident = None
        else:
            st = os.fstat(target)  # the namespace this descriptor holds, whatever happens to the path meanwhile
            ident = st.st_dev, st.st_ino
            _setns(target)
        try:
            return factory(), ident
        finally:
            try:
                _setns(own)
            except OSError as exc:
                raise _Stranded(exc) from exc
    finally:
        if target is not None:
            os.close(target)


class _Opener:
    """One serving thread at a time, started on demand; it ends when idle or stranded."""

    def __init__(self, idle: float = IDLE_SECONDS) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._cpu = -1  # the CPU the serving thread is pinned to, -1 for none
        self.idle = idle

    def submit(self, path: str | None, factory: Factory) -> Request:
        request = Request(path, factory)
        cpu = _current_cpu()
        with self._lock:
            if self._thread is None:
                self._start()
            if cpu != self._cpu and cpu >= 0:
                self._pin(cpu)
            self._requests.put(request)
        return request

    def resume(self) -> None:
        """Start a serving thread if requests wait and none serves them (after a stranded thread ended)."""
        with self._lock:
            if self._thread is None and not self._requests.empty():
                self._start()

    def _start(self) -> None:
        """Start a serving thread (caller holds the lock)."""
        self._thread = threading.Thread(target=self._serve, name="netlink_nft-netns-opener", daemon=True)
        self._thread.start()
        self._cpu = -1  # it runs wherever its creator may

    def _pin(self, cpu: int) -> None:
        """Move the serving thread to `cpu` (caller holds the lock, so the thread has not ended: its id is its)."""
        assert self._thread is not None and self._thread.native_id is not None
        try:
            os.sched_setaffinity(self._thread.native_id, (cpu,))
        except OSError:
            return  # only a matter of speed
        self._cpu = cpu

    def _serve(self) -> None:
        own: list[int] = []  # a descriptor of this thread's own namespace, opened with the first request
        with contextlib.suppress(OSError):  # only a matter of speed
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # this thread only
        try:
            while self._serve_one(own):
                pass
        finally:
            for fd in own:
                os.close(fd)
            with self._lock:  # ended by an unexpected error: let a successor start (and never pin a dead thread id)
                if self._thread is threading.current_thread():
                    self._thread = None

    def _serve_one(self, own: list[int]) -> bool:
        """Answer the next request; False when this thread must end (idle with nothing queued, or stranded)."""
        try:
            request = self._requests.get(timeout=self.idle)
        except queue.Empty:
            with self._lock:
                if self._requests.empty():  # nothing can be queued while we hold the lock: safe to end
                    self._thread = None
                    return False
            return True
        with self._lock:
            if request.state == _CANCELLED:  # the caller gave up before we started
                return True
            request.state = _RUNNING
        go_on = True
        try:
            if not own:
                own.append(os.open(_OWN_NETNS, os.O_RDONLY | os.O_CLOEXEC))
            request.sock, request.ident = _create_in(own[0], request.path, request.factory)
        except _Stranded as exc:
            # This thread is in a foreign namespace: end it. Its successor must not be started from here (a new
            # thread inherits the namespace and capabilities of the thread that creates it): the next submitter or
            # a waiting caller starts it (`resume`).
            with self._lock:
                self._thread = None
            request.error = NetlinkIOError(errno.EPERM, f"could not leave network namespace {request.path}: {exc}")
            go_on = False
        except OSError as exc:
            request.error = io_error(exc, f"creating a socket in network namespace {request.path}")
        except BaseException as exc:  # handed to the caller's thread
            request.error = exc
        with self._lock:
            request.state = _DONE
            abandoned = request.abandoned
        if abandoned and request.sock is not None:
            request.sock.close()  # nobody will take it
        request.done.release()
        return go_on


_opener = _Opener()
_RESUME_SECONDS = 0.05


def wait(opener: _Opener, request: Request, what: str, timeout: float) -> socket.socket:
    """The request's socket (`request.ident` then tells its namespace), waiting at most `timeout` seconds;
    meanwhile restart the opener if it stopped."""
    if _spin(request.done):
        return _answer(request)
    deadline = time.monotonic() + timeout
    while not request.done.acquire(timeout=max(0.0, min(_RESUME_SECONDS, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            with opener._lock:
                answered = request.state == _DONE  # just now: `done` is about to be released
                if request.state == _QUEUED:
                    request.state = _CANCELLED
                elif request.state == _RUNNING:
                    request.abandoned = True
            if not answered:
                raise NetlinkIOError(errno.ETIMEDOUT, f"{what}: no answer within {timeout} s")
            request.done.acquire()
            break
        opener.resume()
    return _answer(request)


def _spin(done: threading.Lock) -> bool:
    """Take `done` if it is released within `SPIN_SECONDS`, yielding the CPU meanwhile instead of sleeping.

    A caller that sleeps is woken by the opener thread while that thread still runs, and the scheduler then moves
    it to the other CPU, if idle, for a wake-up that costs more than the whole request (≈35 µs on a 2-vCPU VM,
    against ≈11 µs of work). A yielding caller stays runnable where it is: the opener (pinned to this CPU) runs in
    its place and the caller carries on as soon as the answer is there. Bounded: past `SPIN_SECONDS` (an opener
    on a busy or other CPU) the caller sleeps as before."""
    until = time.perf_counter() + SPIN_SECONDS
    while not done.acquire(False):
        if time.perf_counter() > until:
            return False
        os.sched_yield()
    return True


def _answer(request: Request) -> socket.socket:
    if request.error is not None:
        raise request.error
    assert request.sock is not None
    return request.sock


def socket_in_netns(path: str, factory: Factory, *, timeout: float = OPEN_TIMEOUT) -> socket.socket:
    """Call `factory()` inside the network namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`)."""
    return wait(_opener, _opener.submit(path, factory), f"opening a socket in {path}", timeout)


def socket_and_id_in_netns(
    path: str, factory: Factory, *, timeout: float = OPEN_TIMEOUT
) -> tuple[socket.socket, tuple[int, int]]:
    """`socket_in_netns`, and the `netns_id` of the namespace the socket was created in."""
    request = _opener.submit(path, factory)
    sock = wait(_opener, request, f"opening a socket in {path}", timeout)
    assert request.ident is not None
    return sock, request.ident


def socket_in_new_netns(factory: Factory, *, timeout: float = OPEN_TIMEOUT) -> socket.socket:
    """Call `factory()` inside a new, empty network namespace, which goes away with the last socket in it."""
    return wait(_opener, _opener.submit(None, factory), "opening a socket in a new namespace", timeout)
