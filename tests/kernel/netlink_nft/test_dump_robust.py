"""dump_table never fails on what it does not model, and never returns a dump torn by a concurrent writer."""

from __future__ import annotations

import threading
import time

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    IP_SADDR,
    IPV4_ADDR,
    Batch,
    Chain,
    DumpInterrupted,
    Family,
    Hook,
    Meta,
    MetaKey,
    NftError,
    NftSocket,
    Ruleset,
    Set,
    SetElement,
    Table,
    Unknown,
    dump_table,
    in_set,
    replace_contents,
    rule,
)
from tests.support.netns import netns_path
from tests.support.nft import nft

HAND = Table(Family.INET, "hand")
HAND_MADE = """
table inet hand {
	set macs { type ether_addr; elements = { 02:00:00:00:00:01 } }
	set marks { type mark; elements = { 1, 2 } }
	map qm { type ipv4_addr : mark; elements = { 10.0.0.1 : 5 } }
	set withall { type ipv4_addr; elements = { 10.0.0.1, * } }
	chain ing { type filter hook ingress device "lo" priority 0; policy accept; }
	chain input {
		type filter hook input priority 0; policy accept;
		meta priority 1:2 accept
		ct zone 3 accept
		meta mark set 0x10
		limit rate 10/second accept
		numgen inc mod 2 vmap { 0 : accept, 1 : drop }
		tcp dport 22 reject
	}
}
"""


def test_hand_made_table_dumps_with_unknowns_that_equal_nothing_we_build(netns: str, nft_sock: NftSocket) -> None:
    nft(netns, "-f", "-", stdin=HAND_MADE)
    dumped = dump_table(nft_sock, HAND)
    assert dumped is not None
    assert [c.name for c in dumped.chains] == ["ing", "input"]
    assert [s.name for s in dumped.sets] == ["macs", "marks", "qm", "withall"]
    unknown = [[e for e in r.exprs if isinstance(e, Unknown)] for r in dumped.rules]
    assert all(unknown), dumped.rules  # every rule holds something we do not model
    names = [e.name for found in unknown for e in found]  # meta priority, ct zone, meta mark *set*, ...
    assert names == ["meta", "ct", "meta", "limit", "numgen", "reject"]
    assert all(Meta(key) != e for e in unknown[0] for key in MetaKey)  # type: ignore[comparison-overlap]
    marks = next(s for s in dumped.sets if s.name == "marks")
    assert marks != Set(HAND, "marks", (IPV4_ADDR,), elements=(SetElement("0.0.0.1"), SetElement("0.0.0.2")))

    # drift repair from such a state works and leaves exactly ours
    ours = Ruleset(
        HAND,
        (Chain(HAND, "input", Hook.INPUT),),
        (Set(HAND, "blocked", (IPV4_ADDR,), interval=True, elements=(SetElement.network("192.0.2.0/24"),)),),
        (rule(HAND, "input", in_set(IP_SADDR, "blocked"), DROP),),
    )
    assert dumped != ours
    nft_sock.apply(replace_contents(ours, dumped))
    assert dump_table(nft_sock, HAND) == ours


T = Table(Family.INET, "big")


def state(flip: int) -> Ruleset:
    """A table big enough that its dumps take several replies; the two states differ in one element and rule."""
    elements = [SetElement(f"10.{i // 250}.{i % 250}.1") for i in range(4_000)]
    elements.append(SetElement(f"11.0.0.{flip}"))
    rules = tuple(rule(T, "input", in_set(IP_SADDR, "peers"), ACCEPT, comment=f"r{i}") for i in range(300))
    return Ruleset(
        T,
        (Chain(T, "input", Hook.INPUT),),
        (Set(T, "peers", (IPV4_ADDR,), elements=tuple(elements)),),
        (*rules, rule(T, "input", DROP, comment=f"flip {flip}")),
    )


def test_concurrent_writer_never_yields_a_torn_dump(netns: str, nft_sock: NftSocket) -> None:
    states = (state(0), state(1))
    nft_sock.apply(replace_contents(states[0]))
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        with NftSocket.open(netns_path(netns)) as other:
            current = states[0]
            while not stop.is_set():
                desired = states[(writes + 1) % 2]
                other.apply(replace_contents(desired, current))
                current = desired
                writes += 1
                stop.wait(0.03)  # paced (a read takes ~40 ms), so that some reads also get through whole

    reasons: list[str] = []
    thread = threading.Thread(target=writer)
    thread.start()
    dumps = exhausted = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (any("DUMP_INTR" in r for r in reasons) and dumps >= 5):
            try:
                got = dump_table(nft_sock, T, on_retry=reasons.append)
            except DumpInterrupted:
                exhausted += 1  # allowed (bounded retries under a writer that never pauses), never a torn result
                continue
            assert got in states, "a torn dump was returned"
            dumps += 1
    finally:
        stop.set()
        thread.join()
    assert writes > 0 and dumps >= 5, (writes, dumps, exhausted)
    assert any("DUMP_INTR" in r for r in reasons), f"no interrupted dump seen in {len(reasons)} retries: {reasons[:3]}"


def test_table_deleted_mid_read_is_read_again_never_an_error(netns: str, nft_sock: NftSocket) -> None:
    """A table removed between the table request and the set/rule dumps is read again (then absent: None)."""
    present = state(0)
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        with NftSocket.open(netns_path(netns)) as other:
            while not stop.is_set():
                batch = replace_contents(present) if writes % 2 == 0 else Batch()
                if writes % 2:
                    batch.add_table(T)
                    batch.delete_table(T)
                other.apply(batch)
                writes += 1
                stop.wait(0.04 if writes % 2 else 0.01)  # the table stays long enough to be read whole, too

    reasons: list[str] = []
    seen: set[bool] = set()
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (any("vanished" in r for r in reasons) and len(seen) == 2):
            try:
                got = dump_table(nft_sock, T, on_retry=reasons.append)
            except DumpInterrupted:
                continue
            assert got is None or got == present, "a torn dump was returned"
            seen.add(got is None)
    finally:
        stop.set()
        thread.join()
    assert seen == {True, False}, (writes, seen)
    assert any("vanished" in r for r in reasons), f"no mid-read deletion seen in {len(reasons)} retries"


def test_retries_are_bounded(netns: str, nft_sock: NftSocket) -> None:
    nft_sock.apply(replace_contents(state(0)))
    calls = 0
    genid = nft_sock.genid

    def moving_genid() -> int:  # another writer commits between every two reads of the generation
        nonlocal calls
        calls += 1
        other = replace_contents(state(calls % 2))
        nft_sock.apply(other)
        return genid()

    nft_sock.genid = moving_genid  # type: ignore[method-assign]
    with pytest.raises(DumpInterrupted, match="3 reads") as caught:
        dump_table(nft_sock, T, attempts=3)
    assert isinstance(caught.value, NftError)
