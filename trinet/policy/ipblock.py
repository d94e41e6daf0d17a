"""Address arithmetic on inclusive integer intervals: ``cidr - except`` and canonical merging (§2.4.24-27).

Intervals are ``(first, last)`` integer pairs of one family; a canonical list is sorted, non-overlapping and
non-adjacent, so equal address sets always have equal representations (deterministic output, exact deltas).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["Interval", "block_intervals", "merge", "network_interval", "to_prefixes"]

Interval = tuple[int, int]
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_interval(net: _Net) -> Interval:
    return int(net.network_address), int(net.broadcast_address)


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Canonical form: sorted, overlapping and adjacent intervals joined."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def block_intervals(cidr: _Net, excepts: Iterable[_Net]) -> tuple[Interval, ...]:
    """Exactly ``cidr`` minus every ``except`` (each clipped to ``cidr``), as canonical intervals."""
    lo, hi = network_interval(cidr)
    holes = merge(network_interval(e) for e in excepts)
    out: list[Interval] = []
    cursor = lo
    for h_lo, h_hi in holes:
        if h_hi < cursor or h_lo > hi:
            continue
        if h_lo > cursor:
            out.append((cursor, h_lo - 1))
        cursor = max(cursor, h_hi + 1)
    if cursor <= hi:
        out.append((cursor, hi))
    return tuple(out)


def to_prefixes(interval: Interval, bits: int) -> list[tuple[int, int]]:
    """Split an interval into the minimal list of ``(address, prefix_length)`` blocks."""
    lo, hi = interval
    out: list[tuple[int, int]] = []
    while lo <= hi:
        size = (lo & -lo).bit_length() - 1 if lo else bits
        while lo + (1 << size) - 1 > hi:
            size -= 1
        out.append((lo, bits - size))
        lo += 1 << size
    return out
