"""``Elements``: the sorted elements of a large set, kept in chunks, so that one change costs O(change).

A peer set may hold 100,000 addresses. As one tuple, each version is a full copy and telling two versions apart
reads both. As chunks (tuples of at most ``2 * CHUNK`` consecutive elements), a version made by ``spliced``
rebuilds only the chunks it changes plus the short tuple of chunks, and shares every other chunk *by identity*
with the version it came from; ``diff`` of two such versions compares the chunk tuples (shared chunks compare by
identity, in C) and then only the elements of the chunks that differ. That is correct because each side's
elements are distinct and sorted: if old = C + R and new = C + A for the shared chunks C, then
old - new = R - A and new - old = A - R.

``Elements`` is an immutable ``Sequence`` equal to (and hashing like) the tuple of its elements, so whoever reads
a set's elements may iterate, index, slice (slices are tuples), search and compare it for equality as a tuple. It
is not a tuple: no ``+``, no ordering comparisons, and ``isinstance(x, tuple)`` is false.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice, pairwise
from operator import itemgetter
from typing import Any, TypeVar, overload

from trinet.policy.diff import sorted_diff

__all__ = ["CHUNK", "Elements"]

CHUNK = 256  # a chunk holds CHUNK // 4 .. 2 * CHUNK elements (the first one may hold fewer)

E = TypeVar("E", bound=tuple[Any, ...])
_FIRST = itemgetter(0)


class Elements(Sequence[E]):
    """Sorted, distinct set elements in chunks. Build with ``of``; change with ``spliced``; compare with ``diff``."""

    __slots__ = ("_chunks", "_firsts", "_hash", "_len")

    def __init__(self, chunks: tuple[tuple[E, ...], ...], length: int) -> None:
        """From non-empty ``chunks`` whose concatenation (of ``length`` elements) is sorted and distinct; use
        ``of`` and ``spliced``."""
        self._chunks = chunks
        self._firsts = tuple(map(_FIRST, chunks))
        self._len = length
        self._hash: int | None = None

    @classmethod
    def of(cls, elements: Iterable[E]) -> Elements[E]:
        """From sorted, distinct ``elements``."""
        flat = tuple(elements)
        return cls(tuple(_parts(flat)), len(flat))

    # -- reading, as a tuple -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[E]:
        return chain.from_iterable(self._chunks)

    @overload
    def __getitem__(self, index: int) -> E: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[E, ...]: ...
    def __getitem__(self, index: int | slice) -> E | tuple[E, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("Elements index out of range")
        for chunk in self._chunks:
            if index < len(chunk):
                return chunk[index]
            index -= len(chunk)
        raise AssertionError("unreachable")  # pragma: no cover

    def _locate(self, element: object) -> tuple[int, int] | None:
        """(chunk index, index in the chunk) of ``element``, None if absent."""
        try:
            i = bisect_right(self._firsts, element) - 1  # type: ignore[call-overload]
            if i < 0:
                return None
            chunk = self._chunks[i]
            j = bisect_left(chunk, element)  # type: ignore[call-overload]
        except TypeError:  # not comparable with the elements: not one of them (as with a tuple)
            return None
        return (i, j) if j < len(chunk) and chunk[j] == element else None

    def __contains__(self, element: object) -> bool:
        return self._locate(element) is not None

    def __reversed__(self) -> Iterator[E]:
        return chain.from_iterable(map(reversed, reversed(self._chunks)))

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """The position of ``value`` (``ValueError`` if absent), found by binary search."""
        found = self._locate(value)
        if found is not None:
            i, j = found
            position = sum(map(len, self._chunks[:i])) + j
            if start <= position and (stop is None or position < stop):
                return position
        raise ValueError(f"{value!r} is not in the elements")

    def count(self, value: Any) -> int:
        return int(value in self)

    def __eq__(self, other: object) -> bool:
        if other is self:  # the usual case: sets of the same peers share their elements (msgspec compares fields
            return True  # with ==, which does not look at identity first)
        if isinstance(other, Elements):
            return self._len == other._len and bool(self._chunks == other._chunks or tuple(self) == tuple(other))
        if isinstance(other, tuple):
            return self._len == len(other) and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        """The hash of the tuple of the elements (equal values hash equal): computed once, on first use."""
        if self._hash is None:
            self._hash = hash(tuple(self))
        return self._hash

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, islice(self, 4)))
        return f"Elements({self._len} in {len(self._chunks)} chunks: {shown}{', ...' if self._len > 4 else ''})"

    # -- changing and comparing versions -----------------------------------------------------------------------

    def spliced(self, removed: Iterable[E], added: Iterable[E]) -> Elements[E]:
        """These elements without ``removed`` (each present) and with ``added`` (each absent): the chunks that
        change are rebuilt (a chunk that grows too long is split, one that shrinks too short joins its
        predecessor), every other chunk is shared with ``self``. Raises ``ValueError`` for an element to remove
        that is absent or one to add that is present."""
        firsts = self._firsts
        edits: dict[int, list[E]] = {}  # chunk index -> its new elements, for the chunks that change
        length = self._len
        for element, adding in chain(((e, False) for e in removed), ((e, True) for e in added)):
            i = max(0, bisect_right(firsts, element) - 1)
            chunk = edits.get(i)
            if chunk is None:
                chunk = edits[i] = list(self._chunks[i]) if self._chunks else []
            j = bisect_left(chunk, element)
            present = j < len(chunk) and chunk[j] == element
            if present == adding:
                raise ValueError(f"{element!r} is {'already' if adding else 'not'} in the set")
            if adding:
                chunk.insert(j, element)
                length += 1
            else:
                del chunk[j]
                length -= 1
        if not edits:
            return self
        chunks = self._chunks
        pieces: list[tuple[E, ...]] = []
        start = 0
        for i in sorted(edits):
            pieces.extend(chunks[start:i])
            start = i + 1
            edited = edits[i]
            if pieces and 0 < len(edited) < CHUNK // 4:  # too short: joins the chunk before it (an empty one goes)
                edited = [*pieces.pop(), *edited]
            if len(edited) > 2 * CHUNK:  # too long: parts of CHUNK / 2 .. CHUNK elements
                pieces.extend(_parts(tuple(edited)))
            elif edited:
                pieces.append(tuple(edited))
        pieces.extend(chunks[start:])
        return Elements(tuple(pieces), length)

    def diff(self, other: Elements[E]) -> tuple[tuple[E, ...], tuple[E, ...]]:
        """(in ``self`` only, in ``other`` only), each sorted. Between versions that share chunks (one made from
        the other by ``spliced``), it costs the number of chunks plus the elements of the chunks they do not
        share; between versions that share none (built apart), one pass over the elements."""
        a, b = self._chunks, other._chunks
        probes = ((0, 0), (len(a) // 2, len(b) // 2), (-1, -1)) if a and b else ()
        if not any(a[i] is b[j] for i, j in probes) and set(map(id, a)).isdisjoint(map(id, b)):
            return sorted_diff(tuple(self), tuple(other))  # built apart: comparing chunks would only add work
        mine, theirs = sorted_diff(a, b)
        return sorted_diff(tuple(chain.from_iterable(mine)), tuple(chain.from_iterable(theirs)))


def _parts(flat: tuple[E, ...]) -> Iterator[tuple[E, ...]]:
    """``flat`` cut into chunks of equal length (within one), CHUNK at most: CHUNK / 2 at least unless shorter."""
    count = max(1, -(-len(flat) // CHUNK))
    cuts = [len(flat) * k // count for k in range(count + 1)]
    return (flat[a:b] for a, b in pairwise(cuts) if b > a)
