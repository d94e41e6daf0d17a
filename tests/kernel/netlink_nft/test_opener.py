"""The namespace opener: it follows its submitter's CPU, reports the namespace it entered, and serves callers on
every CPU."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from netlink_nft import NftSocket
from netlink_nft._netns import SPIN_SECONDS, _Opener, _spin, socket_and_id_in_netns, wait
from tests.support.netns import netns_path


def _socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)


def _opener_affinity(opener: _Opener) -> set[int]:
    thread = opener._thread
    assert thread is not None and thread.native_id is not None
    return os.sched_getaffinity(thread.native_id)


def test_the_opener_thread_is_moved_to_the_cpu_of_each_submitter(netns: str) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    opener = _Opener()
    seen: list[tuple[int, set[int]]] = []

    def submit_from(cpu: int) -> None:
        os.sched_setaffinity(0, {cpu})  # this thread only
        wait(opener, opener.submit(netns_path(netns), _socket), "test", 10).close()
        seen.append((cpu, _opener_affinity(opener)))

    for cpu in cpus[:2] * 2:  # back and forth (one CPU only: it stays there)
        caller = threading.Thread(target=submit_from, args=(cpu,))
        caller.start()
        caller.join()
    assert seen == [(cpu, {cpu}) for cpu in cpus[:2] * 2]


def test_requests_from_threads_on_every_cpu_are_all_served(netns: str) -> None:
    opener = _Opener(idle=0.0)
    made: list[socket.socket] = []
    lock = threading.Lock()

    def submit_many(cpu: int) -> None:
        os.sched_setaffinity(0, {cpu})
        for _ in range(30):
            sock = wait(opener, opener.submit(netns_path(netns), _socket), "test", 10)
            with lock:
                made.append(sock)

    callers = [threading.Thread(target=submit_many, args=(cpu,)) for cpu in sorted(os.sched_getaffinity(0)) * 2]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(made) == 30 * len(callers)
    own = os.stat("/proc/self/ns/net").st_ino
    for sock in made:
        sock.close()
    assert os.stat("/proc/thread-self/ns/net").st_ino == own


def test_the_namespace_id_is_the_one_the_socket_was_made_in(netns: str) -> None:
    path = netns_path(netns)
    st = os.stat(path)
    sock, ident = socket_and_id_in_netns(path, _socket)
    sock.close()
    assert ident == (st.st_dev, st.st_ino)
    with NftSocket.open(path) as nft, NftSocket.open() as ours:
        assert nft.netns_id == ident
        own = os.stat("/proc/thread-self/ns/net")
        assert ours.netns_id == (own.st_dev, own.st_ino) != ident


def test_the_opener_thread_never_preempts_its_waker(netns: str) -> None:
    opener = _Opener()
    wait(opener, opener.submit(netns_path(netns), _socket), "test", 10).close()
    thread = opener._thread
    assert thread is not None and thread.native_id is not None
    assert os.sched_getscheduler(thread.native_id) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's own policy is untouched


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_opener_thread_ended_by_an_unexpected_error_is_replaced(netns: str) -> None:
    opener = _Opener()
    real = opener._serve_one
    failures: list[int] = []

    def fails_once(own: list[int]) -> bool:
        if not failures:
            failures.append(threading.get_native_id())
            raise RuntimeError("unexpected")
        return real(own)

    opener._serve_one = fails_once  # type: ignore[method-assign]
    request = opener.submit(netns_path(netns), _socket)  # queued; its thread dies before taking it
    wait(opener, request, "test", 10).close()  # the waiting caller starts a successor, which serves it
    thread = opener._thread
    assert failures and thread is not None and thread.native_id != failures[0]


def test_a_caller_yields_only_briefly_then_sleeps() -> None:
    never = threading.Lock()
    never.acquire()
    start = time.perf_counter()
    assert not _spin(never)  # nobody answers: it gives up (the caller then sleeps on the request)
    assert SPIN_SECONDS <= time.perf_counter() - start < SPIN_SECONDS + 0.5
    answered = threading.Lock()
    answered.acquire()
    releaser = threading.Thread(target=answered.release)  # the opener's side: another thread answers
    releaser.start()
    releaser.join()
    assert _spin(answered)
    assert not answered.acquire(False)  # taken by the spin


def test_the_same_socket_whether_the_caller_spins_or_sleeps(netns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = netns_path(netns)
    sock, spun = socket_and_id_in_netns(path, _socket)
    sock.close()
    monkeypatch.setattr("netlink_nft._netns.SPIN_SECONDS", 0.0)  # straight to sleeping
    sock, slept = socket_and_id_in_netns(path, _socket)
    sock.close()
    assert slept == spun
