"""Set-name generations (DECISIONS 28): what a pod's table holds, and which generation a full swap moves to."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

import netlink_nft as nl
from trinet.policy import ruleset as pm

__all__ = ["Installed", "free_generation", "named_generations", "other", "suffix", "versioned"]


class Installed(NamedTuple):
    """What a pod's table holds: the compiled ruleset, and the generation that names its sets."""

    ruleset: pm.PodRuleset
    generation: int


def suffix(generation: int | None) -> str:
    """``.g<generation>``, the suffix of every named set of that generation ("" for None: unversioned)."""
    return "" if generation is None else f".g{generation}"


def other(generation: int) -> int:
    return 2 if generation == 1 else 1


def free_generation(dumped: nl.Ruleset | None, desired: pm.PodRuleset) -> int:
    """The generation whose set names no dumped set uses (1 when both are free; when a hand-made table uses both,
    the one that reuses fewer names: a reused name only gets an element delta, exact but not generation-safe)."""
    present = {s.name for s in dumped.sets} if dumped is not None else set()
    clashes = {g: sum(s.name + suffix(g) in present for s in desired.table.sets) for g in (1, 2)}
    return min((1, 2), key=lambda g: clashes[g])


def named_generations(dumped: nl.Ruleset) -> tuple[int, ...]:
    """The generations whose names the dumped sets use: the only ones a ruleset found installed can be under (1
    when there are no named sets), so that adopting a table maps the desired ruleset once, not under both."""
    used = tuple(g for g in (1, 2) if any(s.name.endswith(suffix(g)) for s in dumped.sets))
    return used or (1,)


def versioned(ruleset: pm.PodRuleset, generation: int) -> pm.PodRuleset:
    """The ruleset with every named set called ``<name>.g<generation>``; chains and verdict maps keep their names.
    (``to_netlink(ruleset, generation)`` maps the same without building this copy; this is for ``render``.)

    Why sets and only sets (each measured with ``tests/kernel/test_policy_atomic.py``): a packet reads the
    generation once when it enters a base chain and sees the rules of that generation in every chain it jumps to,
    but a set lookup reads the generation when it happens. A full swap therefore installs new sets under the other
    generation's names, so an old rule only ever looks up the old set, whose elements stay active until the commit
    ends. Chains are flushed and refilled in place (consistent by the rule above), and the dispatch maps keep
    their names: deleting a map deactivates its elements at once (an old rule's lookup would then miss and fall
    through to accept), and a map entry jumping to a chain created in the same transaction would meet that
    chain's empty old generation.
    """
    end = suffix(generation)

    def match(m: pm.Match) -> pm.Match:
        if isinstance(m, pm.Addr | pm.AddrPort) and m.set_name is not None:
            return msgspec.structs.replace(m, set_name=m.set_name + end)
        return m

    src = ruleset.table
    chains = tuple(
        msgspec.structs.replace(
            c, rules=tuple(msgspec.structs.replace(r, matches=tuple(match(m) for m in r.matches)) for r in c.rules)
        )
        for c in src.chains
    )
    sets = tuple(msgspec.structs.replace(x, name=x.name + end) for x in src.sets)
    return pm.PodRuleset(msgspec.structs.replace(src, sets=sets, chains=chains))
