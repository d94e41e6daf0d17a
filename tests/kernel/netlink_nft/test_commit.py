"""Commit confirmation on every kernel: per-message acknowledgements (all kernels), the BATCH_END one (>= 6.10).

A socket with `end_ack=False` confirms commits as it must on 6.1 (every message acknowledged, no error); the
default learns from its first transaction whether the kernel acknowledges BATCH_END. Either way a rejected batch
names its failing objects, and an answer that cannot be read completely is `OutcomeUnknown`, never success.
"""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    IP_SADDR,
    Batch,
    Chain,
    Family,
    Hook,
    KernelFeatures,
    NftSocket,
    OutcomeUnknown,
    Ruleset,
    SetElement,
    Table,
    TransactionError,
    dump_table,
    in_set,
    replace_contents,
    rule,
)
from tests.kernel.netlink_nft.rulesets import blocklist
from tests.support.netns import netns_path

T = Table(Family.INET, "commit")
INPUT = Chain(T, "input", Hook.INPUT)


def ruleset(n: int) -> Ruleset:
    return blocklist(T, (SetElement.network(f"10.{n}.0.0/16"),))


@pytest.mark.parametrize("end_ack", [False, None], ids=["per-message-acks", "default"])
def test_committed_batches_are_confirmed(netns: str, end_ack: bool | None) -> None:
    with NftSocket.open(netns_path(netns), end_ack=end_ack) as nft:
        current = None
        for n in range(3):
            desired = ruleset(n)
            nft.apply(replace_contents(desired, current))  # raises unless confirmed
            assert dump_table(nft, T) == desired
            current = desired


def test_sockets_learn_whether_batch_end_is_acknowledged(netns: str, kernel_features: KernelFeatures) -> None:
    with NftSocket.open(netns_path(netns)) as nft:
        nft.end_ack = None  # as if it were the first socket of the process
        nft.apply(replace_contents(ruleset(0)))
        assert nft.end_ack is kernel_features.end_ack
    with NftSocket.open(netns_path(netns)) as later:  # the kernel is the same in every namespace
        assert later.end_ack is kernel_features.end_ack


def test_per_message_acks_are_requested_until_batch_end_is_known() -> None:
    batch = replace_contents(ruleset(0))
    for ack_each in (False, True):
        data = batch.encode(7, ack_each=ack_each).data
        flags = []
        offset = 0
        while offset < len(data):
            length, _, flag, _, _ = struct.unpack_from("=IHHII", data, offset)
            flags.append(flag)
            offset += (length + 3) & ~3
        acked = [bool(f & 0x4) for f in flags]
        assert acked[0] is False and acked[-1] is True  # BATCH_BEGIN never, BATCH_END always
        assert set(acked[1:-1]) == {ack_each}


@pytest.mark.parametrize("end_ack", [False, True], ids=["per-message-acks", "batch-end-ack"])
def test_rejected_batches_name_their_objects(netns: str, end_ack: bool, kernel_features: KernelFeatures) -> None:
    if end_ack and not kernel_features.end_ack:
        end_ack = False  # before 6.10 the per-message mode is the only one
    with NftSocket.open(netns_path(netns), end_ack=end_ack) as nft:
        before = ruleset(0)
        nft.apply(replace_contents(before))
        batch = Batch()
        batch.flush_chain(INPUT)
        batch.add_rule(rule(T, "input", ACCEPT, comment="fine"))
        batch.add_rule(rule(T, "input", in_set(IP_SADDR, "missing"), DROP, comment="bad"))
        with pytest.raises(TransactionError) as caught:
            nft.apply(batch)
        (error,) = caught.value.errors
        assert error.errno == errno.ENOENT and error.message is not None
        assert error.message.subject.comment == "bad"  # type: ignore[union-attr]
        assert dump_table(nft, T) == before


def test_receive_buffer_overflow_is_outcome_unknown(netns: str) -> None:
    """Acknowledgements lost to a full receive buffer: the batch may have committed; the caller must re-read."""
    with NftSocket.open(netns_path(netns), end_ack=False) as nft:
        nft.apply(replace_contents(ruleset(0)))  # sizes the buffers for a small batch
        desired = Ruleset(T, (INPUT,), (), tuple(rule(T, "input", ACCEPT, comment=str(i)) for i in range(40)))
        batch = replace_contents(desired, dump_table(nft, T))
        _set_rcvbuf(nft, 1)  # the kernel's minimum, behind the socket's back: most acknowledgements are dropped
        with pytest.raises(OutcomeUnknown, match="receive buffer"):
            nft.apply(batch)
        _set_rcvbuf(nft, 1 << 20)
        assert dump_table(nft, T) == desired  # it did commit: unknown is not failed


def _set_rcvbuf(nft: NftSocket, size: int) -> None:
    shared = socket.socket(fileno=nft.fileno())
    try:
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    finally:
        shared.detach()
