"""The minimal change from an applied ``PodRuleset`` to a desired one.

When only set elements differ (peer pods came, went or changed address), the change is a list of element removals
and additions per named set; otherwise the whole table is swapped. Interval sets are canonical (merged), so the
element diff is exact; removals must be applied before additions in the same transaction, which guarantees that an
added interval never overlaps one still present.
"""

from __future__ import annotations

import msgspec

from trinet.policy.diff import sorted_diff
from trinet.policy.elements import Elements
from trinet.policy.ipblock import Interval
from trinet.policy.ruleset import PodRuleset, Table

__all__ = ["Delta", "ElementDelta", "FullSwap", "NoChange", "SetElementChange", "delta"]

Element = tuple[Interval, ...]


class NoChange(msgspec.Struct, frozen=True):
    pass


class FullSwap(msgspec.Struct, frozen=True):
    """Replace the whole table (or delete it, when ``ruleset.enforces`` is false)."""

    ruleset: PodRuleset


class SetElementChange(msgspec.Struct, frozen=True):
    set_name: str
    removed: tuple[Element, ...]
    added: tuple[Element, ...]


class ElementDelta(msgspec.Struct, frozen=True):
    """Only set elements changed; ``changes`` lists each changed set, in table order."""

    changes: tuple[SetElementChange, ...]


Delta = NoChange | FullSwap | ElementDelta


def _bare(table: Table) -> Table:
    return msgspec.structs.replace(table, sets=tuple(msgspec.structs.replace(s, elements=()) for s in table.sets))


def delta(old: PodRuleset | None, new: PodRuleset) -> Delta:
    """What to send to turn the applied ``old`` (None: unknown or absent) into ``new``.

    Each set's elements are compared once (``sorted_diff``), so a peer change costs a pass of C comparisons over the
    unchanged elements and Python work only for the change."""
    if old is None or _bare(old.table) != _bare(new.table):
        return FullSwap(new)
    changes = []
    for before, after in zip(old.table.sets, new.table.sets, strict=True):
        if before.elements is not after.elements:
            removed, added = _element_diff(before.elements, after.elements)
            if removed or added:
                changes.append(SetElementChange(after.name, removed, added))
    return ElementDelta(tuple(changes)) if changes else NoChange()


def _element_diff(
    old: tuple[Element, ...] | Elements[Element], new: tuple[Element, ...] | Elements[Element]
) -> tuple[tuple[Element, ...], tuple[Element, ...]]:
    """Chunked versions (``Elements``, the peer sets a patched snapshot gives) are diffed chunk by chunk: the cost
    of a peer change then grows with the change only; anything else with one ``sorted_diff`` pass."""
    if isinstance(old, Elements) and isinstance(new, Elements):
        return old.diff(new)
    return sorted_diff(tuple(old), tuple(new))
