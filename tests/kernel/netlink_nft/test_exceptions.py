"""One exception root, and no call that can hang: the namespace opener serves every request it accepts."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
import time
from collections.abc import Callable

import pytest

from netlink_nft import (
    ACCEPT,
    Batch,
    Family,
    InvalidValue,
    Match,
    NamespaceNotFound,
    NetlinkIOError,
    NftError,
    NftSocket,
    RequestError,
    Table,
    dport,
    rule,
    saddr,
)
from netlink_nft._const import NFT_MSG_GETTABLE, NFTA_TABLE_NAME
from netlink_nft._netns import Request, _Opener, wait
from netlink_nft._tlv import strz
from tests.support.netns import netns_path

T = Table(Family.INET, "t")
CAP_SYS_ADMIN = 21
_libc = ctypes.CDLL(None, use_errno=True)


def test_os_failures_are_nft_errors_and_still_os_errors(netns: str) -> None:
    with pytest.raises(NamespaceNotFound) as missing:
        NftSocket.open("/run/netns/trinet-test-no-such-namespace")
    assert isinstance(missing.value, NftError) and isinstance(missing.value, FileNotFoundError)

    nft = NftSocket.open(netns_path(netns))
    with pytest.raises(RequestError) as absent:
        nft.request(NFT_MSG_GETTABLE, Family.INET, strz(NFTA_TABLE_NAME, "absent"), dump=False)
    assert absent.value.errno == errno.ENOENT and isinstance(absent.value, OSError)

    nft.close()
    batch = Batch()
    batch.add_table(T)
    for call in (lambda: nft.apply(batch), nft.genid):
        with pytest.raises(NetlinkIOError) as closed:
            call()
        assert closed.value.errno == errno.EBADF


def test_bad_model_values_are_nft_errors_and_still_value_errors() -> None:
    builds: list[Callable[[], Match]] = [
        lambda: saddr("10.0.0.300/8"),
        lambda: saddr("10.0.0.0/33"),
        lambda: dport("tcp", 70_000),
    ]
    for build in builds:
        with pytest.raises(InvalidValue) as caught:
            rule(T, "input", build(), ACCEPT)
        assert isinstance(caught.value, NftError) and isinstance(caught.value, ValueError)


def _socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)


def test_requests_racing_an_idle_opener_thread_are_all_served(netns: str) -> None:
    """idle=0: the thread ends whenever its queue runs dry, so submissions keep racing its exit."""
    opener = _Opener(idle=0.0)
    futures: list[Request] = []
    lock = threading.Lock()

    def submit_many() -> None:
        for _ in range(50):
            future = opener.submit(netns_path(netns), _socket)
            with lock:
                futures.append(future)

    callers = [threading.Thread(target=submit_many) for _ in range(6)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    sockets = [wait(opener, f, "test", 10) for f in futures]  # a lost request would time out here
    assert len(sockets) == 300
    for sock in sockets:
        sock.close()


def _drop_sys_admin() -> socket.socket:
    """A factory that leaves the opener thread unable to go back (setns needs CAP_SYS_ADMIN, per thread)."""

    class Header(ctypes.Structure):
        _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

    class Data(ctypes.Structure):
        _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))

    header, data = Header(0x20080522, 0), (Data * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~(1 << CAP_SYS_ADMIN)
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    return _socket()


def test_a_stranded_opener_thread_ends_and_hands_queued_requests_on(netns: str) -> None:
    opener = _Opener()
    stranded = opener.submit(netns_path(netns), _drop_sys_admin)
    queued = [opener.submit(netns_path(netns), _socket) for _ in range(5)]  # queued while the first one runs
    with pytest.raises(NetlinkIOError, match="could not leave"):
        wait(opener, stranded, "stranded", 10)
    for future in queued:
        wait(opener, future, "queued", 10).close()
    own = os.stat("/proc/thread-self/ns/net").st_ino
    deadline = time.monotonic() + 5
    while (foreign := _opener_threads_outside(own)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the stranded thread is returning
    assert foreign == []


def _opener_threads_outside(netns_inode: int) -> list[str]:
    outside = []
    for thread in threading.enumerate():
        if thread.name == "netlink_nft-netns-opener" and thread.native_id is not None:
            try:
                if os.stat(f"/proc/self/task/{thread.native_id}/ns/net").st_ino != netns_inode:
                    outside.append(f"{thread.name}/{thread.native_id}")
            except FileNotFoundError:
                pass  # it has just ended
    return outside


def test_waiting_for_a_socket_times_out_and_the_late_socket_is_closed(netns: str) -> None:
    opener = _Opener()
    release = threading.Event()
    made: list[socket.socket] = []

    def slow() -> socket.socket:
        release.wait(10)
        made.append(_socket())
        return made[-1]

    future = opener.submit(netns_path(netns), slow)
    with pytest.raises(NetlinkIOError, match="no answer within") as caught:
        wait(opener, future, "slow", 0.2)
    assert caught.value.errno == errno.ETIMEDOUT and isinstance(caught.value, NftError)
    release.set()
    deadline = time.monotonic() + 5
    while not (made and made[0].fileno() == -1) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert made and made[0].fileno() == -1, "the socket nobody waited for was not closed"
