"""Canonical set elements: conversion, sorting, merging of overlapping and adjacent ranges."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings

from netlink_nft import (
    ACCEPT,
    DROP,
    IFNAME,
    INET_SERVICE,
    IPV4_ADDR,
    IPV6_ADDR,
    VERDICT,
    Family,
    Set,
    SetElement,
    Table,
)
from tests.unit.netlink_nft.strategies import covered_networks, interval_elements, is_canonical

T = Table(Family.INET, "t")


def v4set(*elements: SetElement, interval: bool = True) -> Set:
    return Set(T, "s", (IPV4_ADDR,), interval=interval, elements=elements)


@settings(max_examples=300, deadline=None)
@given(interval_elements(4, max_size=40))
def test_ipv4_intervals_are_merged_into_a_canonical_cover(elements: list[SetElement]) -> None:
    got = v4set(*elements).elements
    assert is_canonical(got)
    assert covered_networks(got) == covered_networks(elements)


@settings(max_examples=300, deadline=None)
@given(interval_elements(6, max_size=40))
def test_ipv6_intervals_are_merged_into_a_canonical_cover(elements: list[SetElement]) -> None:
    got = Set(T, "s", (IPV6_ADDR,), interval=True, elements=tuple(elements)).elements
    assert is_canonical(got)
    assert covered_networks(got) == covered_networks(elements)


def test_adjacent_and_overlapping_ranges_merge() -> None:
    s = v4set(
        SetElement.interval("10.0.0.0", "10.0.0.9"),
        SetElement("10.0.0.10"),
        SetElement.network("10.0.0.8/29"),
        SetElement("192.0.2.1"),
    )
    assert s.elements == (
        SetElement(ipaddress.IPv4Address("10.0.0.0"), ipaddress.IPv4Address("10.0.0.15")),
        SetElement(ipaddress.IPv4Address("192.0.2.1")),
    )


def test_equal_sets_built_differently_compare_and_hash_equal() -> None:
    a = v4set(SetElement.network("10.0.0.0/24"), SetElement.network("10.0.1.0/24"))
    b = v4set(SetElement.interval("10.0.0.0", "10.0.1.255"))
    assert a == b and hash(a) == hash(b)


def test_plain_sets_are_sorted_and_deduplicated() -> None:
    s = Set(T, "p", (INET_SERVICE,), elements=(SetElement(443), SetElement(80), SetElement(443)))
    assert s.elements == (SetElement(80), SetElement(443))


@pytest.mark.parametrize(
    "build",
    [
        lambda: v4set(SetElement.interval("10.0.0.5", "10.0.0.1")),  # reversed range
        lambda: v4set(SetElement("2001:db8::1")),  # wrong family
        lambda: v4set(SetElement.network("10.0.0.0/8"), interval=False),  # a range in a plain set
        lambda: Set(T, "p", (INET_SERVICE,), elements=(SetElement(70_000),)),
        lambda: Set(T, "i", (IFNAME,), elements=(SetElement("a-very-long-interface-name"),)),
        lambda: Set(T, "m", (IFNAME,), data=VERDICT, elements=(SetElement("eth0"),)),  # map element without data
        lambda: Set(
            T, "m", (IFNAME,), data=VERDICT, elements=(SetElement("eth0", data=ACCEPT), SetElement("eth0", data=DROP))
        ),  # one key, two verdicts
        lambda: Set(
            T,
            "m",
            (IPV4_ADDR,),
            interval=True,
            data=VERDICT,
            elements=(SetElement("10.0.0.0", "10.0.0.9", ACCEPT), SetElement("10.0.0.5", None, DROP)),
        ),  # overlapping ranges that map to different verdicts
    ],
)
def test_invalid_elements_are_rejected(build: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        build()  # type: ignore[operator]
