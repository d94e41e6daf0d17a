"""The recommended update transaction: make a table hold exactly a desired `Ruleset`, gap-free.

Base chains are created once and kept (recreating one registers a second netfilter hook and lets a few packets
through at the switch); their rules, the regular chains and the sets are replaced in the *same* transaction, so a
packet sees either the old or the new ruleset, never a mix or nothing (netlink-wire.md §4). When the current
state is known, sets whose definition did not change only receive the element delta, which keeps the cost of a
one-address change independent of the set size.
"""

from __future__ import annotations

from netlink_nft._batch import Batch
from netlink_nft._elements import SetElement
from netlink_nft._model import Chain, Ruleset, Set


def _same_chain_definition(a: Chain, b: Chain) -> bool:
    """Chains the kernel can update in place (a base chain's policy may change; hook, priority, type may not)."""
    return (a.hook, a.priority, a.type) == (b.hook, b.priority, b.type)


def _same_set_definition(a: Set, b: Set) -> bool:
    return (a.key, a.interval, a.constant, a.data) == (b.key, b.interval, b.constant, b.data)


def _element_delta(
    old: tuple[SetElement, ...], new: tuple[SetElement, ...]
) -> tuple[list[SetElement], list[SetElement]]:
    """(removed, added). Elements shared by identity are matched first: a desired set derived from the previous
    one (`with_elements`) keeps its unchanged element objects, so a small change to a huge set is found without
    comparing every element by value."""
    old_by_id, new_by_id = dict(zip(map(id, old), old, strict=True)), dict(zip(map(id, new), new, strict=True))
    old_rest = [old_by_id[i] for i in old_by_id.keys() - new_by_id.keys()]  # order does not matter: the batch
    new_rest = [new_by_id[i] for i in new_by_id.keys() - old_by_id.keys()]  # sorts elements when it encodes them
    old_values, new_values = set(old_rest), set(new_rest)
    return [e for e in old_rest if e not in new_values], [e for e in new_rest if e not in old_values]


def replace_contents(desired: Ruleset, current: Ruleset | None = None, *, into: Batch | None = None) -> Batch:
    """One batch (appended to `into` if given) that turns `current` (as dumped; None if unknown or absent) into
    `desired`.

    Without `current` every desired chain and set is created if missing, flushed and refilled; nothing else in
    the table is touched. With `current`, objects that are no longer desired are deleted, changed definitions are
    recreated, and unchanged sets get only their element delta.

    Packet-level atomicity: base chains are kept and refilled, so no packet ever meets an empty hook. But a set
    lookup reads the generation at lookup time, so a packet racing the commit can meet an *old* rule with a set's
    *new* elements. When rules change, give the sets and chains they reference new names (versions) and let the
    old ones be deleted here; element-only changes under unchanged rules are safe as they are.
    """
    batch = into if into is not None else Batch()
    table = desired.table
    batch.add_table(table)
    old_chains = {c.name: c for c in current.chains} if current else {}
    old_sets = {s.name: s for s in current.sets} if current else {}

    if current is not None and old_chains:
        recreated_chains = [
            c for c in desired.chains if c.name in old_chains and not _same_chain_definition(c, old_chains[c.name])
        ]
        # 1. no rule may reference what is about to change: flush every existing chain we manage
        for chain in current.chains:
            batch.flush_chain(chain)
        for chain in recreated_chains:
            batch.delete_chain(old_chains[chain.name])
    if current is None:  # nothing known (a daemon's start-up): everything made afresh, in bulk
        # 2. chains: create or update (idempotent), then flush (a chain may exist already)
        batch.add_chains(desired.chains, flush=True)
        # 3. sets: create (an identical one may exist), empty, fill
        batch.add_sets(desired.sets, flush=True)
    else:
        # 2. chains: create or update (idempotent)
        batch.add_chains(desired.chains)
        # 3. sets: delta when the definition is unchanged, else (re)create
        for set_ in desired.sets:
            old = old_sets.get(set_.name)
            if old is not None and _same_set_definition(old, set_):
                removed, added = _element_delta(old.elements, set_.elements)
                if removed:
                    batch.delete_elements(set_, removed)
                if added:
                    batch.add_elements(set_, added)
                continue
            if old is not None:
                batch.delete_set(old)
            batch.add_set(set_)
    # 4. the new rules, base chains included, in the same transaction
    batch.add_rules(desired.rules)
    # 5. what is no longer wanted (no rule references it any more): sets and maps first, since a verdict map's
    #    elements reference chains, and a chain still referenced cannot be deleted (EBUSY)
    if old_sets:
        wanted_sets = {s.name for s in desired.sets}
        for name, set_ in old_sets.items():
            if name not in wanted_sets:
                batch.delete_set(set_)
    if old_chains:
        wanted_chains = {c.name for c in desired.chains}
        for name, chain in old_chains.items():
            if name not in wanted_chains:
                batch.delete_chain(chain)
    return batch
