"""Failure paths: a rejected batch changes nothing and names every offending object; limits fail early."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    IP_SADDR,
    IPV4_ADDR,
    Batch,
    BatchTooLarge,
    Chain,
    Family,
    Hook,
    NftSocket,
    Ruleset,
    Set,
    SetElement,
    Table,
    TransactionError,
    dport,
    dump_table,
    in_set,
    jump,
    rule,
)
from tests.kernel.netlink_nft.conftest import nft_json
from tests.kernel.netlink_nft.rulesets import blocklist, install
from tests.support.netns import netns_path

T = Table(Family.INET, "t")
INPUT = Chain(T, "input", Hook.INPUT)


def installed(nft_sock: NftSocket) -> Ruleset:
    return install(nft_sock, blocklist(T, (SetElement.network("192.0.2.0/24"),)))


def test_bad_references_abort_everything_and_are_all_named(netns: str, nft_sock: NftSocket) -> None:
    before = installed(nft_sock)
    listing = nft_json(netns)

    batch = Batch()
    batch.add_chain(Chain(T, "new_chain"))  # fine on its own
    batch.flush_chain(INPUT)
    batch.add_rule(rule(T, "input", dport("tcp", 22), ACCEPT, comment="good rule"))
    batch.add_rule(rule(T, "input", in_set(IP_SADDR, "no_such_set"), DROP, comment="missing set"))
    batch.add_rule(rule(T, "no_such_chain", ACCEPT, comment="missing chain"))
    batch.add_rule(rule(T, "input", jump("no_such_target"), comment="missing jump target"))

    with pytest.raises(TransactionError) as caught:
        nft_sock.apply(batch)

    failures = {str(e.message.subject.comment): e for e in caught.value.errors if e.message}  # type: ignore[union-attr]
    assert set(failures) == {"missing set", "missing chain", "missing jump target"}
    assert {e.errno for e in failures.values()} == {errno.ENOENT}
    assert all(e.offset is not None and e.offset > 20 for e in failures.values())
    assert "'missing set'" in str(caught.value) and "ENOENT" in str(caught.value)
    assert dump_table(nft_sock, T) == before
    assert nft_json(netns) == listing


def test_exclusive_table_creation_reports_eexist(nft_sock: NftSocket) -> None:
    installed(nft_sock)
    batch = Batch()
    batch.add_table(T, exclusive=True)
    with pytest.raises(TransactionError) as caught:
        nft_sock.apply(batch)
    (error,) = caught.value.errors
    assert error.errno == errno.EEXIST
    assert error.message is not None and error.message.subject == T


def test_stale_generation_is_refused(nft_sock: NftSocket) -> None:
    before = installed(nft_sock)
    genid = nft_sock.genid()
    other = Batch()
    other.add_table(Table(Family.IP, "someone_else"))
    nft_sock.apply(other)  # another writer moves the generation on

    batch = Batch()
    batch.flush_chain(INPUT)
    with pytest.raises(TransactionError) as caught:
        nft_sock.apply(batch, genid=genid)
    assert caught.value.generation_changed
    assert dump_table(nft_sock, T) == before

    nft_sock.apply(batch, genid=nft_sock.genid())  # with the fresh generation it goes through
    assert dump_table(nft_sock, T) == Ruleset(T, before.chains, before.sets, ())


def test_oversized_batch_is_refused_before_sending(netns: str) -> None:
    with NftSocket.open(netns_path(netns), max_batch_bytes=64 * 1024) as nft:
        big = Set(T, "big", (IPV4_ADDR,), elements=tuple(SetElement(f"10.0.{i // 256}.{i % 256}") for i in range(5000)))
        batch = Batch()
        batch.add_table(T)
        batch.add_set(big)
        with pytest.raises(BatchTooLarge, match="max_batch_bytes"):
            nft.apply(batch)
        assert dump_table(nft, T) is None


def _threads_outside(netns_inode: int) -> list[str]:
    """Names of this process's threads whose network namespace is not `netns_inode`."""
    return [
        t.name for t in threading.enumerate() if os.stat(f"/proc/self/task/{t.native_id}/ns/net").st_ino != netns_inode
    ]


def test_socket_lives_in_the_target_namespace_and_no_thread_stays_there(netns: str) -> None:
    own_ns = os.stat("/proc/thread-self/ns/net").st_ino
    table = Table(Family.INET, f"only_in_{netns.replace('-', '_')}")
    with NftSocket.open(netns_path(netns)) as inside:
        assert _threads_outside(own_ns) == []
        batch = Batch()
        batch.add_table(table)
        inside.apply(batch)
        assert dump_table(inside, table) == Ruleset(table)
    assert _threads_outside(own_ns) == []
    with NftSocket.open() as here:
        assert dump_table(here, table) is None


def test_missing_namespace_path_is_an_error_not_a_new_namespace(tmp_path: object) -> None:
    missing = "/run/netns/trinet-test-does-not-exist"
    with pytest.raises(FileNotFoundError):
        NftSocket.open(missing)
    assert not os.path.exists(missing)
