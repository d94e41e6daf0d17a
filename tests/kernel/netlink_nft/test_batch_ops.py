"""Every Batch operation against the kernel: add, flush, delete, destroy per object; element add and delete.

The destroy operations need kernel 6.3 and are marked `needs_destroy`; everything else runs on every kernel.
"""

from __future__ import annotations

import dataclasses

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    INET_SERVICE,
    TCP_DPORT,
    Batch,
    Chain,
    Family,
    Hook,
    NftSocket,
    Ruleset,
    Set,
    SetElement,
    Table,
    TransactionError,
    dump_table,
    in_set,
    replace_contents,
    rule,
)
from tests.kernel.netlink_nft.rulesets import install

T = Table(Family.INET, "ops")
INPUT = Chain(T, "input", Hook.INPUT)
SUB = Chain(T, "sub")
PORTS = Set(T, "ports", (INET_SERVICE,), elements=(SetElement(22), SetElement(80)))
RULES = (rule(T, "input", in_set(TCP_DPORT, "ports"), ACCEPT, comment="first"), rule(T, "input", DROP, comment="2nd"))


@pytest.fixture
def installed(nft_sock: NftSocket) -> Ruleset:
    return install(nft_sock, Ruleset(T, (INPUT, SUB), (PORTS,), RULES))


def apply(nft_sock: NftSocket, *steps: tuple[str, object]) -> Ruleset | None:
    batch = Batch()
    for method, arg in steps:
        getattr(batch, method)(arg)
    nft_sock.apply(batch)
    return dump_table(nft_sock, T)


def test_delete_a_rule_by_its_handle(nft_sock: NftSocket, installed: Ruleset) -> None:
    dumped = dump_table(nft_sock, T)
    assert dumped is not None and all(r.handle is not None for r in dumped.rules)
    first, second = dumped.rules
    assert apply(nft_sock, ("delete_rule", first)) == dataclasses.replace(installed, rules=(RULES[1],))
    assert apply(nft_sock, ("delete_rule", second)) == dataclasses.replace(installed, rules=())


def test_flush_chain_and_table(nft_sock: NftSocket, installed: Ruleset) -> None:
    assert apply(nft_sock, ("flush_chain", INPUT)) == dataclasses.replace(installed, rules=())
    nft_sock.apply(replace_contents(installed))
    assert apply(nft_sock, ("flush_table", T)) == dataclasses.replace(installed, rules=())


def test_sets_and_elements(nft_sock: NftSocket, installed: Ruleset) -> None:
    batch = Batch()
    batch.delete_elements(PORTS, [SetElement(22)])
    batch.add_elements(PORTS, [SetElement(443)])
    nft_sock.apply(batch)
    got = dump_table(nft_sock, T)
    assert got is not None and got.sets == (PORTS.with_elements([SetElement(80), SetElement(443)]),)

    assert apply(nft_sock, ("flush_set", PORTS)).sets == (PORTS.with_elements(()),)  # type: ignore[union-attr]
    with pytest.raises(TransactionError):  # still used by a rule
        apply(nft_sock, ("delete_set", PORTS))
    assert apply(nft_sock, ("flush_chain", INPUT), ("delete_set", PORTS)).sets == ()  # type: ignore[union-attr]


def test_chains_and_tables(nft_sock: NftSocket, installed: Ruleset) -> None:
    assert apply(nft_sock, ("delete_chain", SUB)).chains == (INPUT,)  # type: ignore[union-attr]
    with pytest.raises(TransactionError) as caught:
        apply(nft_sock, ("delete_chain", SUB))
    assert caught.value.errors[0].message is not None and caught.value.errors[0].message.subject == SUB
    assert apply(nft_sock, ("delete_table", T)) is None


def test_replace_table_without_destroy_whether_present_or_not(nft_sock: NftSocket, installed: Ruleset) -> None:
    """NEWTABLE + DELTABLE in one batch removes the table on every kernel, present or absent (no DESTROY)."""
    for _ in range(2):  # present, then absent
        assert apply(nft_sock, ("add_table", T), ("delete_table", T)) is None


@pytest.mark.needs_destroy
def test_destroy_deletes_what_exists_and_ignores_what_does_not(nft_sock: NftSocket, installed: Ruleset) -> None:
    second = dump_table(nft_sock, T).rules[1]  # type: ignore[union-attr]
    assert apply(nft_sock, ("destroy_rule", second)) == dataclasses.replace(installed, rules=(RULES[0],))
    apply(nft_sock, ("flush_chain", INPUT), ("delete_set", PORTS))
    assert apply(nft_sock, ("destroy_set", PORTS)).sets == ()  # type: ignore[union-attr]  # absent: fine
    assert apply(nft_sock, ("destroy_chain", SUB)).chains == (INPUT,)  # type: ignore[union-attr]
    assert apply(nft_sock, ("destroy_chain", SUB)).chains == (INPUT,)  # type: ignore[union-attr]  # absent: fine
    assert apply(nft_sock, ("destroy_table", T)) is None
    assert apply(nft_sock, ("destroy_table", T)) is None  # absent: fine
