"""Matchers insert nft's guards once, in the right place, and only where nft does."""

from __future__ import annotations

from netlink_nft import (
    ACCEPT,
    IP_SADDR,
    TCP_DPORT,
    Cmp,
    CmpOp,
    Family,
    Meta,
    MetaKey,
    Payload,
    PayloadBase,
    Table,
    daddr,
    dport,
    in_set,
    l4proto,
    rule,
    saddr,
    sport,
)

INET = Table(Family.INET, "t")
IP = Table(Family.IP, "t")
NFPROTO_V4 = (Meta(MetaKey.NFPROTO), Cmp(CmpOp.EQ, b"\x02"))
TCP = (Meta(MetaKey.L4PROTO), Cmp(CmpOp.EQ, b"\x06"))


def test_inet_address_matches_share_one_family_guard() -> None:
    r = rule(INET, "c", saddr("10.0.0.1"), daddr("10.1.0.0/16"), ACCEPT)
    assert r.exprs[:2] == NFPROTO_V4
    assert sum(e == Meta(MetaKey.NFPROTO) for e in r.exprs) == 1
    assert Payload(PayloadBase.NETWORK, 16, 2) in r.exprs  # byte-aligned prefix: shortened load, as nft does


def test_ip_tables_need_no_family_guard_but_keep_the_l4_guard() -> None:
    r = rule(IP, "c", saddr("10.0.0.1"), dport("tcp", 22), ACCEPT)
    assert Meta(MetaKey.NFPROTO) not in r.exprs
    assert r.exprs[2:4] == TCP


def test_transport_guard_once_and_satisfied_by_an_explicit_l4proto() -> None:
    r = rule(INET, "c", l4proto("tcp"), dport("tcp", 22), sport("tcp", (1024, 65535)), ACCEPT)
    assert sum(e == Meta(MetaKey.L4PROTO) for e in r.exprs) == 1


def test_concatenation_guards_come_first_and_fields_fill_consecutive_registers() -> None:
    r = rule(INET, "c", in_set((IP_SADDR, TCP_DPORT), "pairs"), ACCEPT)
    assert r.exprs[:4] == NFPROTO_V4 + TCP
    assert r.exprs[4] == Payload(PayloadBase.NETWORK, 12, 4, dreg=1)
    assert r.exprs[5] == Payload(PayloadBase.TRANSPORT, 2, 2, dreg=9)
