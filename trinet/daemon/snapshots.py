"""The daemon's one ``Snapshot`` of the store, kept up to date change by change.

Pod changes (the churn of a cluster) are applied to the previous snapshot with ``Snapshot.with_pods``, whose cost
grows with the change, not with the cluster; a change of anything else (namespace labels, a policy, a NAD) or a
large burst of pod changes rebuilds the snapshot from the store, reusing what is unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from trinet.daemon.logs import event
from trinet.kube import Change, ClusterStore
from trinet.policy import Snapshot

__all__ = ["SnapshotCache"]

log = logging.getLogger("trinet.daemon")

PATCH_LIMIT = 64  # distinct pods changed above which one rebuild is cheaper (a patch: ~1 us per pod per peer set)


class SnapshotCache:
    """One ``Snapshot`` of the store; ``changed`` records what the store changed, ``current`` brings it up to date.

    The pods patched in are read from the store when ``current`` is called (not from the change records), so the
    snapshot always holds the store's present objects for them, whatever order the records arrive in."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store
        self._snapshot: Snapshot | None = None
        self._rebuild = True
        self._pods: set[str] = set()  # keys of pods changed since the snapshot was brought up to date

    def changed(self, change: Change[Any]) -> None:
        if change.resource == "namespaces" and _same_labels(change):
            return  # nothing a snapshot reads of a namespace changed
        if change.resource != "pods" or self._rebuild:
            self._rebuild = True
        elif change.key in self._pods or len(self._pods) < PATCH_LIMIT:
            self._pods.add(change.key)
        else:  # a burst: one rebuild costs less than patching every pod
            self._rebuild = True

    def current(self) -> Snapshot:
        if self._rebuild or self._snapshot is None:
            self._snapshot = self._rebuilt()
        elif self._pods:
            pods = self.store.pods
            changed = {key: pods.get(key) for key in self._pods}
            try:
                self._snapshot = self._snapshot.with_pods(changed)
            except Exception as exc:  # a bug of ours: never stop enforcing for it, rebuild and say so
                event(log, logging.ERROR, "snapshot-patch-failed", error=repr(exc), effect="rebuilt from the store")
                self._snapshot = self._rebuilt()
            self._pods.clear()
        return self._snapshot

    def _rebuilt(self) -> Snapshot:
        """A snapshot of the whole store; the pending changes are cleared only once it is made (if making it
        raises, the next ``current`` tries again)."""
        s = self.store
        snapshot = Snapshot(
            s.pods.values(), s.namespaces.values(), s.policies.values(), s.nads.values(), previous=self._snapshot
        )
        self._rebuild = False
        self._pods.clear()
        return snapshot


def _same_labels(change: Change[Any]) -> bool:
    old, new = change.old, change.new
    return old is not None and new is not None and old.metadata.labels == new.metadata.labels
