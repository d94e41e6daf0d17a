"""The I/O shell: a NETLINK_NETFILTER socket, one `sendmsg` per transaction, replies mapped back to messages.

nf_tables processes a whole batch inside `sendmsg()`: when it returns, the transaction was committed or aborted
and every reply is queued. So replies are drained without blocking; the commit is confirmed by the ACK of
BATCH_END (requested with NLM_F_ACK; kernels >= 6.10 send it only when the commit succeeded), and every
NLMSG_ERROR is mapped by its sequence number to the message, and thus the model object, that caused it.
"""

from __future__ import annotations

import errno as errno_codes
import socket
import struct
import sys
import threading
from dataclasses import dataclass

from netlink_nft import _tlv
from netlink_nft._batch import Batch, EncodedBatch
from netlink_nft._const import (
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NETLINK_NETFILTER,
    NFNL_SUBSYS_NFTABLES,
    NFT_MSG_GETGEN,
    NFTA_GEN_ID,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGERR_ATTR_OFFS,
    SOL_NETLINK,
)
from netlink_nft._errors import BatchTooLarge, MessageError, NftError, OutcomeUnknown, TransactionError
from netlink_nft._netns import netns_id, socket_in_netns

SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
DEFAULT_MAX_BATCH_BYTES = 64 << 20
_NETLINK_OVERHEAD = 32  # netlink refuses a datagram larger than sk_sndbuf - 32
_REPLY_ROOM = 1024  # receive buffer per message of a batch, as nft reserves
_RECV_SIZE = 1 << 18
_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_ERR = struct.Struct("=i")


@dataclass(frozen=True)
class Reply:
    """One nf_tables message of a dump: its NFT_MSG_* type, the table family and the attributes."""

    kind: int
    family: int
    attrs: bytes


def _new_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)


class NftSocket:
    """A NETLINK_NETFILTER socket bound to one network namespace. Thread-safe: calls are serialised.

    `max_batch_bytes` bounds the send buffer this socket may ask for; a larger batch is refused before sending.
    """

    def __init__(self, sock: socket.socket, *, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._seq = 1
        self.max_batch_bytes = max_batch_bytes
        sock.bind((0, 0))
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self._sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self._rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._buf = bytearray(_RECV_SIZE)
        self.netns_id: tuple[int, int] | None = None

    @classmethod
    def open(cls, netns: str | None = None, *, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES) -> NftSocket:
        """A socket in the namespace at path `netns` (`/proc/PID/ns/net`, `/run/netns/NAME`), or in ours."""
        sock = _new_socket() if netns is None else socket_in_netns(netns, _new_socket)
        try:
            nft = cls(sock, max_batch_bytes=max_batch_bytes)
        except BaseException:
            sock.close()
            raise
        nft.netns_id = netns_id(netns or "/proc/thread-self/ns/net")
        return nft

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NftSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_seq(self, count: int) -> int:
        seq = self._seq
        self._seq = (self._seq + count) % (1 << 31) or 1
        return seq

    # --- transactions --------------------------------------------------------------------------------------------

    def apply(self, batch: Batch, *, genid: int | None = None) -> None:
        """Apply the batch as one transaction; raise `TransactionError` (nothing applied) listing every failure.

        With `genid` (from `genid()`), the kernel refuses the batch if the ruleset changed since.
        """
        with self._lock:
            encoded = batch.encode(self._next_seq(len(batch) + 2), genid=genid)
            self._send_batch(encoded)
            self._collect(encoded)

    def _send_batch(self, encoded: EncodedBatch) -> None:
        size = len(encoded.data)
        if size > self.max_batch_bytes:
            raise BatchTooLarge(
                f"batch of {len(encoded.messages)} messages is {size} bytes, above max_batch_bytes="
                f"{self.max_batch_bytes}; split the update or raise the limit"
            )
        if size + _NETLINK_OVERHEAD > self._sndbuf:
            self._sndbuf = self._grow(socket.SO_SNDBUF, SO_SNDBUFFORCE, size + _NETLINK_OVERHEAD)
            if size + _NETLINK_OVERHEAD > self._sndbuf:
                raise BatchTooLarge(
                    f"batch is {size} bytes but the socket send buffer is only {self._sndbuf} bytes "
                    "(SO_SNDBUFFORCE needs CAP_NET_ADMIN; net.core.wmem_max caps SO_SNDBUF)"
                )
        want_rcv = _REPLY_ROOM * (len(encoded.messages) + 2)
        if want_rcv > self._rcvbuf:
            self._rcvbuf = self._grow(socket.SO_RCVBUF, SO_RCVBUFFORCE, want_rcv)
        sent = self._sock.send(encoded.data)
        if sent != size:
            raise OutcomeUnknown(f"short send: {sent} of {size} bytes")

    def _grow(self, option: int, force: int, size: int) -> int:
        """Ask for a buffer of `size` bytes (the kernel doubles the value it is given); return the result."""
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, force, size)
        except PermissionError:
            self._sock.setsockopt(socket.SOL_SOCKET, option, size)
        return int(self._sock.getsockopt(socket.SOL_SOCKET, option))

    def _collect(self, encoded: EncodedBatch) -> None:
        errors: list[MessageError] = []
        committed = False
        first, last = encoded.first_seq, encoded.end_seq
        while True:
            try:
                n = self._sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno_codes.ENOBUFS:
                    raise OutcomeUnknown("netlink receive buffer overflowed; re-read the ruleset") from exc
                raise
            for kind, flags, seq, payload in _messages(self._buf, n):
                if kind != NLMSG_ERROR or not first <= seq <= last:
                    continue
                code = -_ERR.unpack_from(payload)[0]
                if code == 0:
                    committed = committed or seq == last
                    continue
                message = encoded.message_at(seq)
                errors.append(MessageError(message, code, _error_offset(flags, payload)))
        if errors:
            raise TransactionError(tuple(errors))
        if not committed:
            raise OutcomeUnknown("the kernel did not acknowledge the commit (kernel older than 6.10?)")

    # --- requests ------------------------------------------------------------------------------------------------

    def genid(self) -> int:
        """The current ruleset generation of the namespace (for `apply(..., genid=...)`)."""
        (reply,) = self.request(NFT_MSG_GETGEN, 0, b"", dump=False)
        return _tlv.get_be32(_tlv.parse_attrs(reply.attrs)[NFTA_GEN_ID])

    def request(self, kind: int, family: int, attrs: bytes, *, dump: bool = True) -> list[Reply]:
        """Send one GET request (a dump unless `dump=False`) and return its replies."""
        with self._lock:
            seq = self._next_seq(1)
            flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0)
            header = _NLMSGHDR.pack(20 + len(attrs), NFNL_SUBSYS_NFTABLES << 8 | kind, flags, seq, 0)
            self._sock.send(header + _NFGENMSG.pack(family, 0, 0) + attrs)
            replies: list[Reply] = []
            while True:
                n = self._sock.recv_into(self._buf)
                for msg_kind, _, msg_seq, payload in _messages(self._buf, n):
                    if msg_seq != seq:
                        continue
                    if msg_kind == NLMSG_DONE:
                        return replies
                    if msg_kind == NLMSG_ERROR:
                        code = -_ERR.unpack_from(payload)[0]
                        if code:
                            raise OSError(code, f"nf_tables request {kind}: {errno_codes.errorcode.get(code)}")
                        return replies
                    family_, _, _ = _NFGENMSG.unpack_from(payload)
                    replies.append(Reply(msg_kind & 0xFF, family_, payload[4:]))
                    if not dump:
                        return replies


def _messages(buf: bytearray, size: int) -> list[tuple[int, int, int, bytes]]:
    """Split a datagram into (type, flags, seq, payload) netlink messages."""
    out = []
    offset = 0
    while offset + 16 <= size:
        length, kind, flags, seq, _ = _NLMSGHDR.unpack_from(buf, offset)
        if length < 16:
            raise NftError(f"malformed netlink reply at offset {offset}")
        out.append((kind, flags, seq, bytes(buf[offset + 16 : offset + length])))
        offset += (length + 3) & ~3
    return out


def _error_offset(flags: int, payload: bytes) -> int | None:
    """`NLMSGERR_ATTR_OFFS` of an extended ACK (the echoed request is capped to its 16-byte header)."""
    if not flags & NLM_F_ACK_TLVS:
        return None
    echoed_len = _NLMSGHDR.unpack_from(payload, 4)[0]
    tlv_start = 4 + (16 if flags & NLM_F_CAPPED else echoed_len)
    offs = _tlv.parse_attrs(payload, tlv_start).get(NLMSGERR_ATTR_OFFS)
    return None if offs is None else int.from_bytes(offs[:4], sys.byteorder)
