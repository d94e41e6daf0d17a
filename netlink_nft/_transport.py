"""The I/O shell: a NETLINK_NETFILTER socket, one `sendmsg` per transaction, replies mapped back to messages.

nf_tables processes a whole batch inside `sendmsg()`: when it returns, the transaction was committed or aborted
and every reply is queued. So replies are drained without blocking, and every NLMSG_ERROR is mapped by its
sequence number to the message, and thus the model object, that caused it.

Commit confirmation works on every kernel, as google/nftables does it: each message of the batch requests an
acknowledgement (NLM_F_ACK). The kernel queues the acknowledgements only once the batch is committed or aborted,
and an aborted batch always carries at least one error; so "no error and every requested acknowledgement" means
committed. Kernels >= 6.10 also acknowledge BATCH_END exactly when the commit succeeded: a socket that has seen
that acknowledgement once stops asking for the per-message ones (one reply per batch instead of one per
message). Anything less (a missing acknowledgement, a receive-buffer overflow, a short send) is `OutcomeUnknown`.
"""

from __future__ import annotations

import errno as errno_codes
import select
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
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGERR_ATTR_OFFS,
    SOL_NETLINK,
)
from netlink_nft._errors import (
    BatchTooLarge,
    MessageError,
    NetlinkIOError,
    NftError,
    OutcomeUnknown,
    RequestError,
    TransactionError,
    io_error,
)
from netlink_nft._netns import netns_id, socket_and_id_in_netns

SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
DEFAULT_MAX_BATCH_BYTES = 64 << 20
_NETLINK_OVERHEAD = 32  # netlink refuses a datagram larger than sk_sndbuf - 32
_REPLY_ROOM = 1024  # receive buffer per message of a batch, as nft reserves
_RECV_SIZE = 1 << 16  # the kernel sends at most 32 KiB per dump datagram; acknowledgements are capped (CAP_ACK)
_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_ERR = struct.Struct("=i")
_DONTWAIT, _TRUNC = int(socket.MSG_DONTWAIT), int(socket.MSG_TRUNC)  # plain ints: IntFlag's `|` is Python code
REQUEST_TIMEOUT = 10.0  # seconds a GET request may wait for the kernel's next reply (it answers at once)


@dataclass(frozen=True)
class Reply:
    """One nf_tables message of a dump: its NFT_MSG_* type, the table family and the attributes."""

    kind: int
    family: int
    attrs: bytes


class _Learnt:
    """What this process has seen of the kernel: the same in every namespace."""

    end_ack: bool | None = None


_learnt = _Learnt()


class _ReceiveBuffer(threading.local):
    """One receive buffer per thread, shared by the sockets it uses (replies are copied out of it at once): a
    socket per pod does not allocate and zero 64 KiB each."""

    def __init__(self) -> None:
        self.buf = bytearray(_RECV_SIZE)


_receive_buffer = _ReceiveBuffer()


def _new_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)


@dataclass(frozen=True)
class Dump:
    """The replies to one GET request; `interrupted` if the kernel flagged any of them NLM_F_DUMP_INTR (the
    objects changed while they were being dumped: the replies may be inconsistent)."""

    replies: list[Reply]
    interrupted: bool


class NftSocket:
    """A NETLINK_NETFILTER socket bound to one network namespace. Thread-safe: calls are serialised.

    `max_batch_bytes` bounds the send buffer this socket may ask for; a larger batch is refused before sending.
    `end_ack` says whether the kernel acknowledges BATCH_END (>= 6.10; `KernelFeatures.end_ack`): if so, a
    commit is confirmed by that one reply, else by one per message. None (the default) takes what this process
    has already learnt about the kernel (all namespaces share it), or learns it from this socket's first
    transaction (which asks for every acknowledgement); False keeps the per-message confirmation for good.
    """

    def __init__(
        self, sock: socket.socket, *, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES, end_ack: bool | None = None
    ) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._seq = 1
        self.max_batch_bytes = max_batch_bytes
        self.end_ack = _learnt.end_ack if end_ack is None else end_ack
        try:  # not bound: the first send binds it to a port id the kernel picks, as bind((0, 0)) would
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            self._rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError as exc:
            raise io_error(exc, "setting up the netlink socket") from exc
        self.netns_id: tuple[int, int] | None = None

    @classmethod
    def open(
        cls, netns: str | None = None, *, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES, end_ack: bool | None = None
    ) -> NftSocket:
        """A socket in the namespace at path `netns` (`/proc/PID/ns/net`, `/run/netns/NAME`), or in ours."""
        try:
            if netns is None:
                sock, ident = _new_socket(), None
            else:
                sock, ident = socket_and_id_in_netns(netns, _new_socket)
        except OSError as exc:
            if isinstance(exc, NftError):
                raise
            raise io_error(exc, f"opening a netlink socket in {netns or 'our namespace'}") from exc
        try:
            nft = cls(sock, max_batch_bytes=max_batch_bytes, end_ack=end_ack)
            nft.netns_id = ident or netns_id("/proc/thread-self/ns/net")
        except OSError as exc:
            sock.close()
            if isinstance(exc, NftError):
                raise
            raise io_error(exc, f"reading the namespace id of {netns}") from exc
        except BaseException:
            sock.close()
            raise
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
        """Apply the batch as one transaction; raise `TransactionError` (nothing applied) listing every failure,
        `OutcomeUnknown` if the commit could not be confirmed.

        With `genid` (from `genid()`), the kernel refuses the batch if the ruleset changed since.
        """
        with self._lock:
            encoded = batch.encode(self._next_seq(len(batch) + 2), genid=genid, ack_each=self.end_ack is not True)
            self._send_batch(encoded)
            self._collect(encoded)

    def _send_batch(self, encoded: EncodedBatch) -> None:
        size = len(encoded.data)
        if size > self.max_batch_bytes:
            raise BatchTooLarge(
                f"batch of {encoded.count} messages is {size} bytes, above max_batch_bytes="
                f"{self.max_batch_bytes}; split the update or raise the limit"
            )
        try:
            if size + _NETLINK_OVERHEAD > self._sndbuf:
                self._sndbuf = self._grow(socket.SO_SNDBUF, SO_SNDBUFFORCE, size + _NETLINK_OVERHEAD)
            want_rcv = _REPLY_ROOM * (encoded.count + 2)
            if want_rcv > self._rcvbuf:
                self._rcvbuf = self._grow(socket.SO_RCVBUF, SO_RCVBUFFORCE, want_rcv)
        except OSError as exc:
            raise io_error(exc, "sizing the socket buffers") from exc
        if size + _NETLINK_OVERHEAD > self._sndbuf:
            raise BatchTooLarge(
                f"batch is {size} bytes but the socket send buffer is only {self._sndbuf} bytes "
                "(SO_SNDBUFFORCE needs CAP_NET_ADMIN; net.core.wmem_max caps SO_SNDBUF)"
            )
        try:
            sent = self._sock.send(encoded.data)
        except OSError as exc:  # refused before the kernel saw the batch (EMSGSIZE, ENOBUFS, ENOMEM, ...)
            raise io_error(exc, f"sending a batch of {size} bytes") from exc
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
        end_acked = False
        acked = 0  # acknowledgements (error 0) of the batch's object messages
        first, last = encoded.first_seq, encoded.end_seq
        while True:
            try:
                messages = self._receive(_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno_codes.ENOBUFS:
                    self._discard_queued()  # replies are lost: drop the rest, so later requests are answered
                    raise OutcomeUnknown("netlink receive buffer overflowed; re-read the ruleset") from exc
                raise OutcomeUnknown(f"reading the kernel's answer failed: {exc}") from exc
            except NftError as exc:  # a reply that does not fit: the answer cannot be read completely
                raise OutcomeUnknown(str(exc)) from exc
            for kind, flags, seq, payload in messages:
                if kind != NLMSG_ERROR or not first <= seq <= last:
                    continue  # a reply to an earlier request, or not an acknowledgement
                code = -_ERR.unpack_from(payload)[0]
                if code == 0:
                    if seq == last:
                        end_acked = True
                    elif seq != first:
                        acked += 1
                    continue
                message = encoded.message_at(seq)
                errors.append(MessageError(message, code, _error_offset(flags, payload)))
            if end_acked:  # the kernel queues BATCH_END's acknowledgement after every other reply to the batch
                break
        if errors:
            raise TransactionError(tuple(errors))
        if end_acked:
            if self.end_ack is None:
                self.end_ack = _learnt.end_ack = True
            return
        if encoded.acked_each and acked == encoded.count:
            if self.end_ack is None:  # committed, and this kernel does not acknowledge BATCH_END (before 6.10)
                self.end_ack = _learnt.end_ack = False
            return
        if encoded.acked_each:
            raise OutcomeUnknown(
                f"{acked} of {encoded.count} requested acknowledgements arrived and no error: "
                "the commit cannot be confirmed"
            )
        raise OutcomeUnknown("the kernel did not acknowledge the commit (BATCH_END)")

    def _receive(self, flags: int) -> list[tuple[int, int, int, bytes]]:
        """The messages of one datagram. A datagram larger than the buffer would be cut: refuse it."""
        buf = _receive_buffer.buf
        n = self._sock.recv_into(buf, 0, flags | _TRUNC)
        if n > len(buf):
            raise NftError(f"a netlink reply of {n} bytes does not fit the {len(buf)}-byte receive buffer")
        return _messages(buf, n)

    def _discard_queued(self) -> None:
        """Empty the receive queue (the kernel drops every further reply while it is congested)."""
        while True:
            try:
                self._sock.recv_into(_receive_buffer.buf, 0, _DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno_codes.ENOBUFS:
                    return

    # --- requests ------------------------------------------------------------------------------------------------

    def genid(self) -> int:
        """The current ruleset generation of the namespace (for `apply(..., genid=...)`)."""
        (reply,) = self.request(NFT_MSG_GETGEN, 0, b"", dump=False)
        return _tlv.get_be32(_tlv.parse_attrs(reply.attrs)[NFTA_GEN_ID])

    def request(self, kind: int, family: int, attrs: bytes, *, dump: bool = True) -> list[Reply]:
        """Send one GET request (a dump unless `dump=False`) and return its replies."""
        return self.dump(kind, family, attrs, dump=dump).replies

    def dump(self, kind: int, family: int, attrs: bytes, *, dump: bool = True) -> Dump:
        """Like `request`, also telling whether the kernel flagged the dump as interrupted (NLM_F_DUMP_INTR).

        Raises `RequestError` when the kernel answers with an error, `NetlinkIOError` when the socket fails or
        no reply comes within `REQUEST_TIMEOUT` seconds.
        """
        with self._lock:
            seq = self._next_seq(1)
            flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0)
            header = _NLMSGHDR.pack(20 + len(attrs), NFNL_SUBSYS_NFTABLES << 8 | kind, flags, seq, 0)
            try:
                self._sock.send(header + _NFGENMSG.pack(family, 0, 0) + attrs)
                return self._replies(kind, seq, dump)
            except OSError as exc:
                if isinstance(exc, NftError):
                    raise
                raise io_error(exc, f"nf_tables request {kind}") from exc

    def _replies(self, kind: int, seq: int, dump: bool) -> Dump:
        replies: list[Reply] = []
        interrupted = False
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        while True:
            if not poller.poll(REQUEST_TIMEOUT * 1000):
                raise NetlinkIOError(errno_codes.ETIMEDOUT, f"nf_tables request {kind}: no reply")
            try:
                messages = self._receive(_DONTWAIT)
            except BlockingIOError:
                continue
            for msg_kind, msg_flags, msg_seq, payload in messages:
                if msg_seq != seq:
                    continue
                interrupted = interrupted or bool(msg_flags & NLM_F_DUMP_INTR)
                if msg_kind == NLMSG_DONE:
                    # a dump the kernel had to end early (the set or table vanished between two of its replies,
                    # say) says so in its DONE: the replies so far are not the whole answer
                    code = -_ERR.unpack_from(payload)[0] if len(payload) >= 4 else 0
                    if code > 0:
                        name = errno_codes.errorcode.get(code, str(code))
                        raise RequestError(code, f"nf_tables request {kind} ended early: {name}")
                    return Dump(replies, interrupted)
                if msg_kind == NLMSG_ERROR:
                    code = -_ERR.unpack_from(payload)[0]
                    if code:
                        name = errno_codes.errorcode.get(code, str(code))
                        raise RequestError(code, f"nf_tables request {kind}: {name}")
                    return Dump(replies, interrupted)
                family_, _, _ = _NFGENMSG.unpack_from(payload)
                replies.append(Reply(msg_kind & 0xFF, family_, payload[4:]))
                if not dump:
                    return Dump(replies, interrupted)


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
