"""`replace_contents`: the update transaction turns what is installed into the desired ruleset, in one batch."""

from __future__ import annotations

import dataclasses

from netlink_nft import (
    ACCEPT,
    DROP,
    IFNAME,
    IIFNAME,
    IP_SADDR,
    IPV4_ADDR,
    IPV6_ADDR,
    SADDR,
    VERDICT,
    Chain,
    Family,
    Hook,
    NftSocket,
    Policy,
    Ruleset,
    Set,
    SetElement,
    Table,
    dport,
    dump_table,
    in_set,
    jump,
    replace_contents,
    rule,
    vmap,
)
from netlink_nft._const import NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM

T = Table(Family.INET, "t")


def generation(n: int, blocked: tuple[str, ...], policy: Policy = Policy.ACCEPT) -> Ruleset:
    """A versioned ruleset like the daemon's: the base chain jumps into the chain of generation `n`."""
    chain = f"ingress_g{n}"
    allow = Set(T, f"allow_g{n}", (IPV4_ADDR,), interval=True, elements=(SetElement.network(f"10.{n}.0.0/16"),))
    blocked_set = Set(T, "blocked", (IPV4_ADDR,), interval=True, elements=tuple(SetElement.network(c) for c in blocked))
    return Ruleset(
        T,
        (Chain(T, "input", Hook.INPUT, 0, policy), Chain(T, chain)),
        (allow, blocked_set),
        (
            rule(T, "input", in_set(IP_SADDR, "blocked"), DROP),
            rule(T, "input", jump(chain)),
            rule(T, chain, in_set(IP_SADDR, f"allow_g{n}"), dport("tcp", 80), ACCEPT),
        ),
    )


def test_first_install_then_generations(nft_sock: NftSocket) -> None:
    first = generation(1, ("192.0.2.0/24",))
    nft_sock.apply(replace_contents(first))
    assert dump_table(nft_sock, T) == first

    for n, desired in enumerate(
        (
            generation(2, ("192.0.2.0/24", "198.51.100.7")),
            generation(3, ("198.51.100.7",), Policy.DROP),
            generation(4, ()),
        ),
        start=2,
    ):
        current = dump_table(nft_sock, T)
        nft_sock.apply(replace_contents(desired, current))
        got = dump_table(nft_sock, T)
        assert got == desired, f"generation {n}"
        assert {c.name for c in got.chains} == {"input", f"ingress_g{n}"}  # the previous generation is gone


def test_install_over_an_existing_table_without_knowing_it(nft_sock: NftSocket) -> None:
    nft_sock.apply(replace_contents(generation(1, ("192.0.2.0/24",))))
    desired = generation(1, ("203.0.113.0/24",))
    nft_sock.apply(replace_contents(desired))  # no current state: flush and refill what we manage
    assert dump_table(nft_sock, T) == desired


def test_changed_set_definition_is_recreated(nft_sock: NftSocket) -> None:
    first = generation(1, ("192.0.2.0/24",))
    nft_sock.apply(replace_contents(first))
    v6 = Set(T, "blocked", (IPV6_ADDR,), interval=True, elements=(SetElement.network("2001:db8::/32"),))
    desired = Ruleset(
        T,
        first.chains,
        (first.sets[0], v6),
        (rule(T, "input", in_set(SADDR[6], "blocked"), DROP), *(r for r in first.rules if r.chain != "input")),
    )
    nft_sock.apply(replace_contents(desired, dump_table(nft_sock, T)))
    assert dump_table(nft_sock, T) == desired


def test_one_element_change_sends_only_the_delta(nft_sock: NftSocket) -> None:
    big = tuple(SetElement(f"10.{i // 256}.{i % 256}.1") for i in range(10_000))
    base = generation(1, ())
    sets = (base.sets[0], dataclasses.replace(base.sets[1], elements=big))
    before = Ruleset(T, base.chains, sets, base.rules)
    nft_sock.apply(replace_contents(before))

    after = Ruleset(T, base.chains, (sets[0], sets[1].with_elements((*big[1:], SetElement("192.0.2.1")))), base.rules)
    batch = replace_contents(after, dump_table(nft_sock, T))
    element_messages = [m for m in batch.messages if m.kind in (NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM)]
    assert len(element_messages) == 2  # one deletion, one addition: independent of the set size
    nft_sock.apply(batch)
    assert dump_table(nft_sock, T) == after


def test_dropping_a_verdict_map_and_the_chain_it_jumps_to(nft_sock: NftSocket) -> None:
    """The map goes before the chain in the same batch: a chain a map still references cannot be deleted."""
    dispatch = Set(T, "dispatch", (IFNAME,), data=VERDICT, elements=(SetElement("net1", data=jump("ingress-net1")),))
    with_map = Ruleset(
        T,
        (Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT), Chain(T, "ingress-net1")),
        (dispatch,),
        (rule(T, "input", vmap(IIFNAME, "dispatch")), rule(T, "ingress-net1", DROP)),
    )
    nft_sock.apply(replace_contents(with_map))
    without = Ruleset(T, (with_map.chains[0],), (), ())
    nft_sock.apply(replace_contents(without, dump_table(nft_sock, T)))
    assert dump_table(nft_sock, T) == without
