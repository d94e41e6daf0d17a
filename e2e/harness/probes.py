"""Real packets between pods: listeners that answer, and probes that decide allowed or blocked.

Listeners are sockets created inside the pods' namespaces and served by one thread of the harness: TCP accepts,
UDP echoes every datagram back (so a UDP flow blocked in either direction is told apart from one that arrived),
and per namespace and family a raw SCTP socket records the initiate tag of every INIT that reaches the pod (this
kernel has no SCTP sockets; `machine-facts.md`). A probe runs in the source pod's namespace, bound to its
interface and address, and waits with a bound: `allowed` when the handshake, the echo, the INIT or the ICMP echo
reply came through, `blocked` when nothing did, `refused` when a TCP RST came back (nobody listens: a harness error,
never counted as blocked).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import ipaddress
import itertools
import os
import random
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

from tests.support.netns import run_in_netns
from tests.support.traffic import IPPROTO_SCTP, sctp_init

PROTOCOLS = ("tcp", "udp", "sctp", "icmp")
SO_BINDTODEVICE = 25


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    REFUSED = "refused"


@dataclass(frozen=True)
class Endpoint:
    """Where a probe starts: a pod's namespace, its interface and one of its addresses."""

    netns: str
    ifname: str
    address: str


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _socket(netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    return run_in_netns(netns, socket.socket, family, kind, proto)


def _bound(src: Endpoint, kind: int, proto: int = 0) -> socket.socket:
    sock = _socket(src.netns, family_of(src.address), kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, src.ifname.encode())
        sock.bind((src.address, 0))
    except BaseException:
        sock.close()
        raise
    return sock


class Listeners:
    """Every listening socket of a run, served by one daemon thread until `close()`."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._lock = threading.Lock()
        self._pending: list[tuple[str, socket.socket | None, str]] = []
        self._by_netns: dict[str, list[socket.socket]] = {}
        self._keys: set[tuple[str, str, str, int]] = set()
        self._sctp_raw: set[tuple[str, int]] = set()
        self._sctp_seen: set[int] = set()
        self._sctp_cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="e2e-listeners", daemon=True)
        self._thread.start()

    def listen(self, netns: str, address: str, proto: str, port: int) -> None:
        """Make `address:port` answer `proto` inside `netns` (idempotent)."""
        key = (netns, address, proto, port)
        if proto == "icmp" or key in self._keys:
            return
        family = family_of(address)
        if proto == "sctp":
            if (netns, family) not in self._sctp_raw:
                self._add(netns, _socket(netns, family, socket.SOCK_RAW, IPPROTO_SCTP), "sctp")
                self._sctp_raw.add((netns, family))
            self._keys.add(key)
            return
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = _socket(netns, family, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            if proto == "tcp":
                sock.listen(128)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self._add(netns, sock, proto)
        self._keys.add(key)

    def forget(self, netns: str) -> None:
        """Close every listener of a namespace (the pod goes away or changes addresses)."""
        self._keys = {k for k in self._keys if k[0] != netns}
        self._sctp_raw = {k for k in self._sctp_raw if k[0] != netns}
        with self._lock:
            self._pending.append(("forget", None, netns))
        self._wake_w.send(b"x")

    def _add(self, netns: str, sock: socket.socket, proto: str) -> None:
        with self._lock:
            self._pending.append((proto, sock, netns))
        self._wake_w.send(b"x")

    def sctp_arrived(self, tag: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._sctp_cond:
            while tag not in self._sctp_seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._sctp_cond.wait(remaining)
            self._sctp_seen.discard(tag)
            return True

    def close(self) -> None:
        self._closed = True
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        for socks in self._by_netns.values():
            for sock in socks:
                sock.close()
        self._by_netns.clear()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for proto, sock, netns in pending:
            if sock is None:  # forget
                for old in self._by_netns.pop(netns, []):
                    self._selector.unregister(old)
                    old.close()
                continue
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, (proto, sock))
            self._by_netns.setdefault(netns, []).append(sock)

    def _serve(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select(timeout=1.0):
                proto, sock = key.data
                with contextlib.suppress(OSError):
                    if proto == "wake":
                        while self._wake_r.recv(4096):
                            pass
                    elif proto == "tcp":
                        conn, _ = sock.accept()
                        conn.close()
                    elif proto == "udp":
                        data, peer = sock.recvfrom(2048)
                        sock.sendto(data, peer)
                    elif proto == "sctp":
                        self._record_sctp(sock)
            self._apply_pending()

    def _record_sctp(self, sock: socket.socket) -> None:
        packet = sock.recv(65535)
        sctp = packet[(packet[0] & 0x0F) * 4 :] if sock.family == socket.AF_INET else packet
        if len(sctp) >= 20 and sctp[12] == 1:  # chunk type INIT: initiate tag at offset 16
            (tag,) = struct.unpack("!I", sctp[16:20])
            with self._sctp_cond:
                self._sctp_seen.add(tag)
                self._sctp_cond.notify_all()


_tags = itertools.count(random.randrange(1, 1 << 30))


def probe(listeners: Listeners, src: Endpoint, dst: str, proto: str, port: int, timeout: float) -> Outcome:
    """Send one flow from `src` to `dst:port`; decide within `timeout` seconds."""
    if proto == "tcp":
        return _tcp(src, dst, port, timeout)
    if proto == "udp":
        return _udp(src, dst, port, timeout)
    if proto == "sctp":
        return _sctp(listeners, src, dst, port, timeout)
    if proto == "icmp":
        return _icmp(src, dst, timeout)
    raise ValueError(f"unknown protocol {proto!r}")


def _tcp(src: Endpoint, dst: str, port: int, timeout: float) -> Outcome:
    with _bound(src, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        code = sock.connect_ex((dst, port))
    if code == 0:
        return Outcome.ALLOWED
    return Outcome.REFUSED if code == errno.ECONNREFUSED else Outcome.BLOCKED


def _udp(src: Endpoint, dst: str, port: int, timeout: float) -> Outcome:
    nonce = os.urandom(12)
    deadline = time.monotonic() + timeout
    with _bound(src, socket.SOCK_DGRAM) as sock:
        for _attempt in range(3):
            with contextlib.suppress(OSError):  # EPERM: dropped by our own egress filter
                sock.sendto(nonce, (dst, port))
            slice_end = min(deadline, time.monotonic() + timeout / 3)
            while (remaining := slice_end - time.monotonic()) > 0:
                sock.settimeout(remaining)
                try:
                    data, _ = sock.recvfrom(2048)
                except (TimeoutError, OSError):
                    break
                if data == nonce:
                    return Outcome.ALLOWED
    return Outcome.BLOCKED


def _sctp(listeners: Listeners, src: Endpoint, dst: str, port: int, timeout: float) -> Outcome:
    tag = next(_tags) & 0xFFFFFFFF
    with _bound(src, socket.SOCK_RAW, IPPROTO_SCTP) as sock:
        for attempt in range(3):
            with contextlib.suppress(OSError):
                sock.sendto(sctp_init(40000 + attempt, port, tag), (dst, 0))
            if listeners.sctp_arrived(tag, timeout / 3):
                return Outcome.ALLOWED
    return Outcome.BLOCKED


def _icmp(src: Endpoint, dst: str, timeout: float) -> Outcome:
    v6 = family_of(dst) == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    request, reply = (128, 129) if v6 else (8, 0)
    ident = next(_tags) & 0xFFFF
    message = struct.pack("!BBHHH", request, 0, 0, ident, 1) + b"trinet-e2e"
    if not v6:  # the kernel computes the ICMPv6 checksum (pseudo-header); ICMPv4 is ours
        message = message[:2] + struct.pack("!H", _inet_checksum(message)) + message[4:]
    deadline = time.monotonic() + timeout
    with _bound(src, socket.SOCK_RAW, proto) as sock:
        with contextlib.suppress(OSError):
            sock.sendto(message, (dst, 0))
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                packet = sock.recv(2048)
            except (TimeoutError, OSError):
                break
            icmp = packet if v6 else packet[(packet[0] & 0x0F) * 4 :]
            if len(icmp) >= 6 and icmp[0] == reply and struct.unpack("!H", icmp[4:6])[0] == ident:
                return Outcome.ALLOWED
    return Outcome.BLOCKED


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
