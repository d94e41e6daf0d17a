"""A big transaction: 1,000 rules and a 10,000-range set in one batch (chunked elements, grown socket buffers)."""

from __future__ import annotations

from netlink_nft import (
    ACCEPT,
    DROP,
    IP_SADDR,
    IPV4_ADDR,
    Chain,
    CtState,
    Family,
    Hook,
    NftSocket,
    Policy,
    Ruleset,
    Set,
    SetElement,
    Table,
    ct_state,
    dport,
    dump_table,
    in_set,
    replace_contents,
    rule,
    saddr,
)
from netlink_nft._const import NFT_MSG_NEWSETELEM
from tests.kernel.netlink_nft.conftest import nft


def big_ruleset(rules: int = 1_000, ranges: int = 10_000) -> Ruleset:
    t = Table(Family.IP, "bench")
    blocked = Set(
        t,
        "blk",
        (IPV4_ADDR,),
        interval=True,
        elements=tuple(
            SetElement.interval(f"11.{i // 256}.{i % 256}.0", f"11.{i // 256}.{i % 256}.99") for i in range(ranges)
        ),
    )
    body = [
        rule(t, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
        rule(t, "input", in_set(IP_SADDR, "blk"), DROP),
    ]
    body += [
        rule(t, "input", saddr(f"10.{i // 256}.{i % 256}.0/24"), dport("tcp", 1000 + i), ACCEPT)
        for i in range(rules - 2)
    ]
    chains = (
        Chain(t, "input", Hook.INPUT, 0, Policy.DROP),
        Chain(t, "output", Hook.OUTPUT, 0, Policy.ACCEPT),
        Chain(t, "forward", Hook.FORWARD, 0, Policy.DROP),
    )
    return Ruleset(t, chains, (blocked,), tuple(body))


def test_big_batch_round_trips(netns: str, nft_sock: NftSocket) -> None:
    desired = big_ruleset()
    batch = replace_contents(desired)
    assert sum(m.kind == NFT_MSG_NEWSETELEM for m in batch.messages) > 1  # elements were split into chunks
    nft_sock.apply(batch)
    assert dump_table(nft_sock, desired.table) == desired
    listing = nft(netns, "list", "set", "ip", "bench", "blk")
    assert "11.39.15.0-11.39.15.99" in listing
