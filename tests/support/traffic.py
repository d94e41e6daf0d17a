"""Traffic probes between network namespaces: did a TCP, UDP, SCTP or ICMP flow get through?

Every probe creates its sockets inside the namespaces (a socket stays in the namespace it was created in) and
then waits for the evidence with a bound: `True`/a count means packets arrived, `False`/0 means nothing arrived
within `timeout`. A blocked flow therefore costs `timeout` seconds; allowed flows return as soon as they succeed.

SCTP has no socket support on our kernels, so an SCTP INIT chunk is built by hand (with its CRC32c, which
conntrack verifies) and sent over a raw IP socket; a raw SCTP socket in the destination counts what arrives.
ICMP echo uses raw sockets too (`ping` may be missing).
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

from tests.support.netns import run_in_netns

DEFAULT_TIMEOUT = 0.4
IPPROTO_SCTP = 132


def _family(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def _sock(netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    return run_in_netns(netns, socket.socket, family, kind, proto)


def tcp_connects(
    client_ns: str, server_ns: str, server_addr: str, port: int, *, timeout: float = DEFAULT_TIMEOUT
) -> bool:
    """Does a TCP handshake from `client_ns` to `server_addr:port` (listening in `server_ns`) complete?"""
    family = _family(server_addr)
    with _sock(server_ns, family, socket.SOCK_STREAM) as server, _sock(client_ns, family, socket.SOCK_STREAM) as client:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((server_addr, port))
        server.listen(1)
        client.settimeout(timeout)
        if client.connect_ex((server_addr, port)) != 0:
            return False
        readable, _, _ = select.select([server], [], [], timeout)
        if not readable:
            return False
        conn, _ = server.accept()
        conn.close()
        return True


def udp_delivered(
    client_ns: str, server_ns: str, server_addr: str, port: int, *, count: int = 3, timeout: float = DEFAULT_TIMEOUT
) -> int:
    """How many of `count` UDP datagrams sent from `client_ns` reach a socket bound in `server_ns`."""
    family = _family(server_addr)
    with _sock(server_ns, family, socket.SOCK_DGRAM) as server, _sock(client_ns, family, socket.SOCK_DGRAM) as client:
        server.bind((server_addr, port))
        for i in range(count):
            client.sendto(b"probe %d" % i, (server_addr, port))
        return _drain(server, count, timeout)


def _drain(sock: socket.socket, limit: int, timeout: float, accept: Callable[[bytes], bool] = lambda _: True) -> int:
    """Count datagrams that satisfy `accept`, until `limit` or `timeout` without any new one."""
    received = 0
    deadline = time.monotonic() + timeout
    while received < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            break
        if accept(sock.recv(65535)):
            received += 1
    return received


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_echo_answered(client_ns: str, dst_addr: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Does `dst_addr` answer an ICMP (or ICMPv6) echo request sent from `client_ns`?"""
    v6 = _family(dst_addr) == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    ident = os.getpid() & 0xFFFF
    request_type, reply_type = (128, 129) if v6 else (8, 0)
    header = struct.pack("!BBHHH", request_type, 0, 0, ident, 1) + b"trinet-probe"
    if not v6:  # the kernel fills in the ICMPv6 checksum (it needs the pseudo-header)
        header = header[:2] + struct.pack("!H", _checksum(header)) + header[4:]
    with _sock(client_ns, _family(dst_addr), socket.SOCK_RAW, proto) as sock:
        sock.sendto(header, (dst_addr, 0))

        def is_reply(packet: bytes) -> bool:
            icmp = packet if v6 else packet[(packet[0] & 0x0F) * 4 :]
            return icmp[0] == reply_type and struct.unpack("!H", icmp[4:6])[0] == ident

        return _drain(sock, 1, timeout, is_reply) == 1


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_init(src_port: int, dst_port: int, tag: int = 0x5EED) -> bytes:
    """An SCTP packet (common header + INIT chunk) with a correct CRC32c checksum."""
    init = struct.pack("!BBHIIHHI", 1, 0, 20, tag, 65535, 1, 1, tag)  # type INIT, len 20, tag, a_rwnd, streams, TSN
    packet = struct.pack("!HHII", src_port, dst_port, 0, 0) + init
    checksum = crc32c(packet)
    return packet[:8] + struct.pack("<I", checksum) + packet[12:]


def sctp_delivered(
    client_ns: str, server_ns: str, server_addr: str, port: int, *, count: int = 3, timeout: float = DEFAULT_TIMEOUT
) -> int:
    """How many of `count` SCTP INIT packets to `server_addr:port` arrive in `server_ns` (seen by a raw socket)."""
    family = _family(server_addr)
    v4 = family == socket.AF_INET
    with (
        _sock(server_ns, family, socket.SOCK_RAW, IPPROTO_SCTP) as server,
        _sock(client_ns, family, socket.SOCK_RAW, IPPROTO_SCTP) as client,
    ):
        for i in range(count):
            client.sendto(sctp_init(40000 + i, port), (server_addr, 0))

        def to_port(packet: bytes) -> bool:
            sctp = packet[(packet[0] & 0x0F) * 4 :] if v4 else packet  # IPv4 raw sockets include the IP header
            return struct.unpack("!H", sctp[2:4])[0] == port

        return _drain(server, count, timeout, to_port)


_FLOOD = """
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end, sent, target = time.monotonic() + float(sys.argv[1]), 0, (sys.argv[2], int(sys.argv[3]))
while time.monotonic() < end:
    for _ in range(200):
        try:
            sock.sendto(b"x", target)
        except OSError:
            pass
    sent += 200
print(sent)
"""


def flood_while(
    sender_ns: str, receiver_ns: str, addr: str, port: int, seconds: float, update: Callable[[int], None]
) -> tuple[int, int, int]:
    """Flood UDP from `sender_ns` to `addr:port` (received in `receiver_ns`) for `seconds`, calling `update(i)`
    back to back until the flood ends: (packets sent, updates, packets that arrived). Bounded by `seconds`."""
    receiver = run_in_netns(receiver_ns, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
    with receiver:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        receiver.bind((addr, port))
        receiver.setblocking(False)
        flood = subprocess.Popen(
            ["ip", "netns", "exec", sender_ns, sys.executable, "-c", _FLOOD, str(seconds), addr, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        updates = arrived = 0
        while flood.poll() is None:
            update(updates)
            updates += 1
            arrived += _count_queued(receiver)
        sent = int(flood.communicate()[0])
        arrived += _count_queued(receiver)
    return sent, updates, arrived


def _count_queued(receiver: socket.socket) -> int:
    """Datagrams already queued on a non-blocking socket."""
    count = 0
    try:
        while receiver.recv(16):
            count += 1
    except BlockingIOError:
        pass
    return count
