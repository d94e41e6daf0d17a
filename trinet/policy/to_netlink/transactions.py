"""Choosing the one transaction: from what we installed (``transaction``), from what the kernel holds (``adopt``),
or away (``removal``). No message needs NFT_MSG_DESTROY* (kernels before 6.3 lack them)."""

from __future__ import annotations

import netlink_nft as nl
from trinet.policy import ruleset as pm
from trinet.policy.delta import ElementDelta, NoChange, delta
from trinet.policy.to_netlink.generations import Installed, free_generation, named_generations, other
from trinet.policy.to_netlink.mapping import elements, set_definition, to_netlink

__all__ = ["adopt", "removal", "transaction"]


def transaction(applied: Installed | None, desired: pm.PodRuleset) -> tuple[nl.Batch | None, Installed | None]:
    """The one transaction that turns what is ``applied`` into ``desired``, and what is installed afterwards. The
    batch is None when nothing changes. ``applied`` None means: nothing installed by us that we know of (a fresh
    netns); when the state is *unknown* (restart, ``OutcomeUnknown``) dump the table and call ``adopt`` instead.

    - Peer churn (``delta`` finds only element changes): element deletions then additions in the sets of the
      installed generation, nothing else; its cost grows with the change, not with the sets. Rules do not change,
      so any mix of old and new elements that a packet racing the commit sees is allowed by the old or by the new
      ruleset.
    - A pod that no longer needs enforcing: its table is removed (``removal``, whether it exists or not; also
      when ``applied`` is None).
    - Any other change: a full swap in one transaction: chains and maps kept and refilled, the sets created
      under the other generation's names (``versioned``) and the old generation's sets deleted.
    - ``applied`` None: everything is created if missing, flushed and refilled (NEWTABLE is create-or-keep); the
      table is never deleted, so an enforcing table has no gap. Leftovers the batch cannot reuse (a set of the same
      name but another type) make it fail whole, the old rules intact: then ``adopt`` a dump.
    """
    if not desired.enforces:
        return removal(desired.table.name), None
    if applied is None:
        return nl.replace_contents(to_netlink(desired, 1)), Installed(desired, 1)
    change = delta(applied.ruleset, desired)
    if isinstance(change, NoChange):
        return None, applied
    if isinstance(change, ElementDelta):
        return _element_batch(applied.generation, desired, change), Installed(desired, applied.generation)
    generation = other(applied.generation)
    old = to_netlink(applied.ruleset, applied.generation)
    return nl.replace_contents(to_netlink(desired, generation), old), Installed(desired, generation)


def removal(table_name: str) -> nl.Batch:
    """Delete the table whether it exists or not, without NFT_MSG_DESTROYTABLE: NEWTABLE (create-or-keep) then
    DELTABLE, in one transaction. Removing a table stops enforcement for its pod; that is what is asked."""
    table = nl.Table(nl.Family.INET, table_name)
    batch = nl.Batch()
    batch.add_table(table)
    batch.delete_table(table)
    return batch


def adopt(dumped: nl.Ruleset | None, desired: pm.PodRuleset) -> tuple[nl.Batch | None, Installed | None]:
    """Reconcile ``desired`` with what the kernel actually holds (``dumped``, from ``netlink_nft.dump_table``; None
    when the table does not exist): at start-up, at every resync (drift repair) and after ``OutcomeUnknown``.

    - ``dumped`` is ``desired`` installed under generation 1 or 2: no batch, ``Installed(desired, g)``. Counter
      values do not take part in the comparison, so an unchanged pod never costs a transaction.
    - ``desired`` does not enforce: the table is removed if it exists.
    - Anything else (drift, hand edits, another trinet version, no table): one gap-free batch from that actual
      state, ``replace_contents`` with the sets under the generation the dumped sets do not use, so no packet meets
      an old rule with new set contents. The table and its base chains are kept, never deleted and recreated.
    """
    if not desired.enforces:
        return (removal(desired.table.name) if dumped is not None else None), None
    if dumped is not None:
        for generation in named_generations(dumped):
            if dumped == to_netlink(desired, generation):
                return None, Installed(desired, generation)
    generation = free_generation(dumped, desired)
    return nl.replace_contents(to_netlink(desired, generation), dumped), Installed(desired, generation)


def _element_batch(generation: int, desired: pm.PodRuleset, change: ElementDelta) -> nl.Batch:
    table = nl.Table(nl.Family.INET, desired.table.name)
    by_name = {s.name: s for s in desired.table.sets}
    batch = nl.Batch()
    for item in change.changes:
        model = by_name[item.set_name]
        target = set_definition(table, model, generation)
        if item.removed:
            batch.delete_elements(target, elements(model, item.removed))
        if item.added:
            batch.add_elements(target, elements(model, item.added))
    return batch
