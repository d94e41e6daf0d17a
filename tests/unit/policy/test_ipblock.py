"""Interval arithmetic behind ipBlock (semantics.md §2.4.24-27)."""

from __future__ import annotations

import ipaddress
import itertools

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policy.builders import property_settings
from trinet.policy.ipblock import block_intervals, merge, to_prefixes

net = ipaddress.ip_network


def test_2_4_24_block_minus_excepts() -> None:
    assert block_intervals(net("10.0.0.0/24"), [net("10.0.0.0/25"), net("10.0.0.200/30")]) == (
        (0x0A000080, 0x0A0000C7),
        (0x0A0000CC, 0x0A0000FF),
    )
    assert block_intervals(net("10.0.0.0/24"), [net("10.0.0.0/24")]) == ()


def test_merge_joins_adjacent_and_overlapping() -> None:
    assert merge([(5, 6), (1, 2), (3, 3), (10, 12), (11, 20)]) == ((1, 3), (5, 6), (10, 20))


def test_to_prefixes_is_minimal() -> None:
    assert to_prefixes((0x0A000080, 0x0A0000C7), 32) == [(0x0A000080, 26), (0x0A0000C0, 29)]
    assert to_prefixes((0, 2**128 - 1), 128) == [(0, 0)]


@property_settings
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), max_size=8), st.integers(0, 400))
def test_merge_keeps_membership_and_is_canonical(raw: list[tuple[int, int]], probe: int) -> None:
    intervals = [(lo, lo + width) for lo, width in raw]
    canonical = merge(intervals)
    assert any(lo <= probe <= hi for lo, hi in canonical) == any(lo <= probe <= hi for lo, hi in intervals)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(canonical))


@property_settings
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_to_prefixes_covers_exactly(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    blocks = to_prefixes((lo, hi), 32)
    assert blocks[0][0] == lo
    end = lo
    for addr, plen in blocks:
        assert addr == end and addr % (1 << (32 - plen)) == 0
        end = addr + (1 << (32 - plen))
    assert end == hi + 1
