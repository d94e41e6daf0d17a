"""Round trips: a ruleset built with netlink_nft is what `nft` builds from the text an operator would write.

For each case the same namespace first loads the operator's text with `nft -f` and records `nft -j list ruleset`,
then gets the netlink_nft ruleset instead: the two listings must be identical (so nft shows our rules exactly as
written), and dumping our table must give back a model equal to the one we built.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    IFNAME,
    IIFNAME,
    INET_SERVICE,
    IP6_DADDR,
    IP6_SADDR,
    IP_DADDR,
    IP_SADDR,
    IPV4_ADDR,
    IPV6_ADDR,
    RETURN,
    TCP_DPORT,
    TCP_SPORT,
    UDP_DPORT,
    VERDICT,
    Chain,
    Counter,
    CtState,
    Family,
    Hook,
    Log,
    NftSocket,
    Policy,
    Ruleset,
    Set,
    SetElement,
    Table,
    between,
    ct_state,
    daddr,
    dport,
    dump_table,
    goto,
    icmp_type,
    icmpv6_type,
    iifname,
    in_set,
    jump,
    l4proto,
    oifname,
    replace_contents,
    rule,
    saddr,
    sport,
    vmap,
)
from tests.kernel.netlink_nft.conftest import nft, nft_json

T = Table(Family.INET, "t")
INPUT = Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT)


def chains_and_verdicts() -> tuple[str, Ruleset]:
    text = """
    table inet t {
        chain input { type filter hook input priority 0; policy accept; jump sub; goto sub; }
        chain output { type filter hook output priority -10; policy drop; accept; }
        chain forward_chain { type filter hook forward priority 100; policy drop; }
        chain sub { return; drop; }
    }"""
    return text, Ruleset(
        T,
        (
            INPUT,
            Chain(T, "output", Hook.OUTPUT, -10, Policy.DROP),
            Chain(T, "forward_chain", Hook.FORWARD, 100, Policy.DROP),
            Chain(T, "sub"),
        ),
        (),
        (
            rule(T, "input", jump("sub")),
            rule(T, "input", goto("sub")),
            rule(T, "output", ACCEPT),
            rule(T, "sub", RETURN),
            rule(T, "sub", DROP),
        ),
    )


def meta_and_ct() -> tuple[str, Ruleset]:
    text = """
    table inet t {
        chain input { type filter hook input priority 0; policy accept;
            ct state established,related accept
            ct state invalid drop
            iifname "lo" accept
            iifname "eth*" oifname "veth0" accept
            meta l4proto udp accept
            meta l4proto tcp tcp dport 22 accept
        }
    }"""
    return text, Ruleset(
        T,
        (INPUT,),
        (),
        (
            rule(T, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
            rule(T, "input", ct_state(CtState.INVALID), DROP),
            rule(T, "input", iifname("lo"), ACCEPT),
            rule(T, "input", iifname("eth*"), oifname("veth0"), ACCEPT),
            rule(T, "input", l4proto("udp"), ACCEPT),
            rule(T, "input", l4proto("tcp"), dport("tcp", 22), ACCEPT),
        ),
    )


def addresses_and_ports() -> tuple[str, Ruleset]:
    text = """
    table inet t {
        chain input { type filter hook input priority 0; policy accept;
            ip saddr 10.1.0.1 ip daddr 10.2.0.0/23 tcp dport 1000-2000 counter accept
            ip saddr 10.9.0.0/16 ip daddr != 192.168.0.0/24 drop
            ip6 saddr 2001:db8::/33 udp sport 53 drop
            ip6 daddr 2001:db8::1 sctp dport 80 accept
            tcp sport != 1-1023 drop
            udp dport 5000-5001 accept
            icmp type echo-request accept
            icmpv6 type nd-neighbor-solicit accept
            ip saddr 0.0.0.0/0 accept
        }
    }"""
    return text, Ruleset(
        T,
        (INPUT,),
        (),
        (
            rule(T, "input", saddr("10.1.0.1"), daddr("10.2.0.0/23"), dport("tcp", (1000, 2000)), Counter(), ACCEPT),
            rule(T, "input", saddr("10.9.0.0/16"), daddr("192.168.0.0/24", negate=True), DROP),
            rule(T, "input", saddr("2001:db8::/33"), sport("udp", 53), DROP),
            rule(T, "input", daddr("2001:db8::1"), dport("sctp", 80), ACCEPT),
            rule(T, "input", between(TCP_SPORT, 1, 1023, negate=True), DROP),
            rule(T, "input", between(UDP_DPORT, 5000, 5001), ACCEPT),
            rule(T, "input", icmp_type(8), ACCEPT),
            rule(T, "input", icmpv6_type(135), ACCEPT),
            rule(T, "input", saddr("0.0.0.0/0"), ACCEPT),
        ),
    )


def named_sets_and_maps() -> tuple[str, Ruleset]:
    text = """
    table inet t {
        set v4 { type ipv4_addr; flags interval;
                 elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.2, 198.51.100.10-198.51.100.20, 255.255.255.0/24 } }
        set v6 { type ipv6_addr; flags interval; elements = { 2001:db8::/32, ffff::/16 } }
        set ports { type inet_service; elements = { 80, 443 } }
        set ifs { type ifname; elements = { "eth0", "eth1" } }
        set pairs { type ipv4_addr . inet_service; flags interval;
                    elements = { 10.1.0.0/16 . 80-90, 10.2.0.1 . 443 } }
        map dispatch { type ifname : verdict; elements = { "eth1" : jump sub, "eth2" : accept } }
        chain input { type filter hook input priority 0; policy accept;
            ip saddr @v4 drop
            ip saddr != @v4 accept
            ip6 saddr @v6 drop
            tcp dport @ports accept
            iifname @ifs accept
            ip saddr . tcp dport @pairs accept
            iifname vmap @dispatch
        }
        chain sub { }
    }"""
    sets = (
        Set(
            T,
            "v4",
            (IPV4_ADDR,),
            interval=True,
            elements=(
                SetElement.network("10.0.0.0/8"),
                SetElement("192.168.1.1"),
                SetElement("192.168.1.2"),  # adjacent: merged (nft keeps them apart unless auto-merge)
                SetElement.interval("198.51.100.10", "198.51.100.20"),
                SetElement.network("255.255.255.0/24"),  # reaches the top of the address space
            ),
        ),
        Set(
            T,
            "v6",
            (IPV6_ADDR,),
            interval=True,
            elements=(SetElement.network("2001:db8::/32"), SetElement.network("ffff::/16")),
        ),
        Set(T, "ports", (INET_SERVICE,), elements=(SetElement(80), SetElement(443))),
        Set(T, "ifs", (IFNAME,), elements=(SetElement("eth0"), SetElement("eth1"))),
        Set(
            T,
            "pairs",
            (IPV4_ADDR, INET_SERVICE),
            interval=True,
            elements=(
                SetElement(("10.1.0.0", 80), ("10.1.255.255", 90)),
                SetElement(("10.2.0.1", 443)),
            ),
        ),
        Set(
            T,
            "dispatch",
            (IFNAME,),
            data=VERDICT,
            elements=(SetElement("eth1", data=jump("sub")), SetElement("eth2", data=ACCEPT)),
        ),
    )
    return text, Ruleset(
        T,
        (INPUT, Chain(T, "sub")),
        sets,
        (
            rule(T, "input", in_set(IP_SADDR, "v4"), DROP),
            rule(T, "input", in_set(IP_SADDR, "v4", negate=True), ACCEPT),
            rule(T, "input", in_set(IP6_SADDR, "v6"), DROP),
            rule(T, "input", in_set(TCP_DPORT, "ports"), ACCEPT),
            rule(T, "input", in_set(IIFNAME, "ifs"), ACCEPT),
            rule(T, "input", in_set((IP_SADDR, TCP_DPORT), "pairs"), ACCEPT),
            rule(T, "input", vmap(IIFNAME, "dispatch")),
        ),
    )


def anonymous_sets_log_comment() -> tuple[str, Ruleset]:
    text = """
    table inet t {
        chain input { type filter hook input priority 0; policy accept;
            tcp dport { 22, 80 } accept
            ip saddr { 10.0.0.0/8, 192.168.0.0/16 } counter drop
            ip daddr 10.9.0.0/16 log prefix "x: " level info drop
            udp dport 53 log prefix "dns " group 3 accept comment "dns in"
            tcp dport 443 log accept
        }
    }"""
    return text, Ruleset(
        T,
        (INPUT,),
        (),
        (
            rule(T, "input", in_set(TCP_DPORT, [22, 80]), ACCEPT),
            rule(
                T,
                "input",
                in_set(IP_SADDR, [SetElement.network("10.0.0.0/8"), SetElement.network("192.168.0.0/16")]),
                Counter(),
                DROP,
            ),
            rule(T, "input", daddr("10.9.0.0/16"), Log(prefix="x: ", level=6), DROP),
            rule(T, "input", dport("udp", 53), Log(prefix="dns ", group=3), ACCEPT, comment="dns in"),
            rule(T, "input", dport("tcp", 443), Log(), ACCEPT),
        ),
    )


def concatenation_without_intervals() -> tuple[str, Ruleset]:
    """A plain (hash) set with a concatenated key: no field lengths may be sent, only interval sets take them."""
    text = """
    table inet t {
        set pairs { type ipv4_addr . inet_service; elements = { 10.2.0.1 . 443, 10.2.0.2 . 80 } }
        set pairs6 { type ipv6_addr . inet_service; elements = { 2001:db8::1 . 443 } }
        chain input { type filter hook input priority 0; policy accept;
            ip daddr . tcp dport @pairs accept
            ip6 daddr . tcp dport @pairs6 accept
        }
    }"""
    pairs = Set(
        T, "pairs", (IPV4_ADDR, INET_SERVICE), elements=(SetElement(("10.2.0.1", 443)), SetElement(("10.2.0.2", 80)))
    )
    pairs6 = Set(T, "pairs6", (IPV6_ADDR, INET_SERVICE), elements=(SetElement(("2001:db8::1", 443)),))
    return text, Ruleset(
        T,
        (INPUT,),
        (pairs, pairs6),
        (
            rule(T, "input", in_set((IP_DADDR, TCP_DPORT), "pairs"), ACCEPT),
            rule(T, "input", in_set((IP6_DADDR, TCP_DPORT), "pairs6"), ACCEPT),
        ),
    )


def ip_family_table() -> tuple[str, Ruleset]:
    t4 = Table(Family.IP, "t4")
    text = """
    table ip t4 {
        chain input { type filter hook input priority 0; policy drop;
            ip saddr 10.0.0.0/8 tcp dport 22 accept
        }
    }"""
    return text, Ruleset(
        t4,
        (Chain(t4, "input", Hook.INPUT, 0, Policy.DROP),),
        (),
        (rule(t4, "input", saddr("10.0.0.0/8"), dport("tcp", 22), ACCEPT),),
    )


CASES: dict[str, Callable[[], tuple[str, Ruleset]]] = {
    f.__name__: f
    for f in (
        chains_and_verdicts,
        meta_and_ct,
        addresses_and_ports,
        named_sets_and_maps,
        concatenation_without_intervals,
        anonymous_sets_log_comment,
        ip_family_table,
    )
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_roundtrip(case: str, netns: str, nft_sock: NftSocket) -> None:
    text, desired = CASES[case]()
    nft(netns, "-f", "-", stdin=text)
    expected = nft_json(netns)
    nft(netns, "flush", "ruleset")

    nft_sock.apply(replace_contents(desired))

    assert nft_json(netns) == expected
    assert dump_table(nft_sock, desired.table) == desired
