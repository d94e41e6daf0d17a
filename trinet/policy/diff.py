"""The difference of two sorted sequences of distinct elements, in time that grows with the differences."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["sorted_diff"]

T = TypeVar("T", bound=tuple[Any, ...])


def sorted_diff(old: Sequence[T], new: Sequence[T]) -> tuple[tuple[T, ...], tuple[T, ...]]:
    """(in ``old`` only, in ``new`` only) of two sorted sequences of distinct elements, in order.

    Python work grows with the number of differences (times log n), not with the length: runs that both share are
    skipped with slice comparisons, which CPython does in C (by identity when the elements are the same objects).
    That C pass is still O(n): about 4 ns per element shared by identity, 20-35 ns per element of equal value
    (benchmarks/bench_peer_churn.py); two tuples cannot be diffed without reading them (``Elements`` can)."""
    removed: list[T] = []
    added: list[T] = []
    i = j = 0
    while i < len(old) and j < len(new):
        run = _common_run(old, i, new, j)
        i, j = i + run, j + run
        if i == len(old) or j == len(new):
            break
        if old[i] < new[j]:  # old[i:k] all lie below new[j], and earlier new elements matched earlier old ones
            k = bisect_left(old, new[j], i)
            removed.extend(old[i:k])
            i = k
        else:
            k = bisect_left(new, old[i], j)
            added.extend(new[j:k])
            j = k
    removed.extend(old[i:])
    added.extend(new[j:])
    return tuple(removed), tuple(added)


_FIRST_STEP = 8
_MAX_STEP = 1024  # the gallop's stride stops doubling here, so the search for a difference rescans at most this


def _common_run(a: Sequence[T], i: int, b: Sequence[T], j: int) -> int:
    """The largest t with a[i:i+t] == b[j:j+t]: gallop (strides doubling up to ``_MAX_STEP``), then halve the last
    stride. Each element of the run is compared once, plus at most ``_MAX_STEP`` for the halving; an uncapped gallop
    would compare a run of length t about twice."""
    limit = min(len(a) - i, len(b) - j)
    known, step = 0, _FIRST_STEP  # a[i:i+known] == b[j:j+known]
    while known < limit:
        end = min(known + step, limit)
        if a[i + known : i + end] != b[j + known : j + end]:
            break
        known, step = end, min(step * 2, _MAX_STEP)
    else:
        return known
    high = min(known + step, limit)  # the first difference lies in [known, high)
    while high - known > 1:
        mid = (known + high) // 2
        if a[i + known : i + mid] == b[j + known : j + mid]:
            known = mid
        else:
            high = mid
    return known
