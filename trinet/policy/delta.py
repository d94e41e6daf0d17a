"""The minimal change from an applied ``PodRuleset`` to a desired one.

When only set elements differ (peer pods came, went or changed address), the change is a list of element removals
and additions per named set; otherwise the whole table is swapped. Interval sets are canonical (merged), so the
element diff is exact; removals must be applied before additions in the same transaction, which guarantees that an
added interval never overlaps one still present.
"""

from __future__ import annotations

import msgspec

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
    """What to send to turn the applied ``old`` (None: unknown or absent) into ``new``."""
    if old == new:
        return NoChange()
    if old is None or not old.enforces or not new.enforces or _bare(old.table) != _bare(new.table):
        return FullSwap(new)
    changes = []
    for before, after in zip(old.table.sets, new.table.sets, strict=True):
        if before.elements != after.elements:
            was, now = set(before.elements), set(after.elements)
            changes.append(
                SetElementChange(after.name, tuple(e for e in before.elements if e not in now),
                                 tuple(e for e in after.elements if e not in was))
            )  # fmt: skip
    return ElementDelta(tuple(changes))
