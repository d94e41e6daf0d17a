"""Atomicity under load: while a UDP flood runs against a drop rule, the recommended update transaction is applied
back to back; not one packet may get through. A control run with the same update split in two transactions
shows that the counter does see leaks when there is a gap.

Bounded by the flood's duration and judged by counts (packets sent, replacements, packets leaked), not by time.
"""

from __future__ import annotations

from collections.abc import Callable

from netlink_nft import (
    ACCEPT,
    DROP,
    INET_SERVICE,
    UDP_DPORT,
    Batch,
    Chain,
    Family,
    Hook,
    NftSocket,
    Policy,
    Ruleset,
    Set,
    SetElement,
    Table,
    in_set,
    jump,
    replace_contents,
    rule,
)
from tests.support import traffic

T = Table(Family.INET, "t")
PORT = 9999


def generation(n: int) -> Ruleset:
    """Versioned chain and set, as the daemon swaps them; the flood's port is dropped in every generation."""
    ports = Set(T, f"drop_g{n}", (INET_SERVICE,), elements=(SetElement(PORT), SetElement(20_000 + n)))
    return Ruleset(
        T,
        (Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT), Chain(T, f"guard_g{n}")),
        (ports,),
        (rule(T, "input", jump(f"guard_g{n}")), rule(T, f"guard_g{n}", in_set(UDP_DPORT, f"drop_g{n}"), DROP)),
    )


def flood_while(netns: str, seconds: float, update: Callable[[int], None]) -> tuple[int, int, int]:
    """The flood on loopback inside `netns`: (packets sent, updates, packets leaked)."""
    return traffic.flood_while(netns, netns, "127.0.0.1", PORT, seconds, update)


def test_recommended_transaction_leaks_nothing(netns: str, nft_sock: NftSocket) -> None:
    current = generation(0)
    nft_sock.apply(replace_contents(current))

    def swap(i: int) -> None:
        nonlocal current
        desired = generation((i + 1) % 2)
        nft_sock.apply(replace_contents(desired, current))
        current = desired

    sent, updates, leaked = flood_while(netns, 3.0, swap)
    assert sent > 10_000 and updates > 100, (sent, updates)
    assert leaked == 0, f"{leaked} of {sent} packets leaked during {updates} transactions"


def test_control_two_transactions_do_leak(netns: str, nft_sock: NftSocket) -> None:
    nft_sock.apply(replace_contents(generation(0)))

    def delete_then_create(i: int) -> None:
        delete = Batch()
        delete.delete_table(T)
        nft_sock.apply(delete)
        nft_sock.apply(replace_contents(generation(i % 2)))

    sent, updates, leaked = flood_while(netns, 0.5, delete_then_create)
    assert updates > 10 and leaked > 0, (sent, updates, leaked)


def test_accept_rule_lets_the_flood_through(netns: str, nft_sock: NftSocket) -> None:
    """The receiver does count packets that are not dropped (so 0 above means dropped, not lost)."""
    allow = Ruleset(T, (Chain(T, "input", Hook.INPUT),), (), (rule(T, "input", ACCEPT),))
    nft_sock.apply(replace_contents(allow))
    sent, _, leaked = flood_while(netns, 0.2, lambda _: None)
    assert leaked > 0 and sent > 0
