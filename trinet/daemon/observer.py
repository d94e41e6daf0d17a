"""What the daemon reports about its work, for metrics and Kubernetes Events (issue 10 plugs in here).

The daemon calls an ``Observer`` at every point an operator may want to count or see; ``NullObserver`` does
nothing. Logs are written separately (``logs.py``), so an observer only adds counters, histograms or Events.
Every method must return quickly and never raise: it is called from the workers' hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

__all__ = ["NullObserver", "Observer", "TransactionKind", "TransactionOutcome"]

TransactionKind = Literal["create", "delta", "swap", "repair", "remove"]
"""create: a table from nothing; delta: set elements only; swap: full gap-free swap; repair: drift found by a
read-back (resync, start-up adoption or after an unknown outcome) fixed; remove: our table deleted."""
TransactionOutcome = Literal["ok", "rejected", "unknown", "error"]


class Observer(Protocol):
    def transaction(self, pod: str, kind: TransactionKind, outcome: TransactionOutcome, messages: int) -> None:
        """One transaction was sent to a pod's namespace (``messages``: nf_tables messages in the batch)."""

    def apply_latency(self, pod: str, seconds: float) -> None:
        """Time one transaction took in the kernel (send to confirmed commit)."""

    def enforced_latency(self, pod: str, seconds: float) -> None:
        """Time from the pod being queued dirty to its desired rules being in place (queueing included)."""

    def failure(self, pod: str, reason: str) -> None:
        """Working on a pod failed (``reason``: netns reason, ``rejected``, ``unknown``, ``error``); it is retried."""

    def netns_failure(self, pod: str, reason: str) -> None:
        """The pod's network namespace could not be resolved or used (``reason`` as ``NetnsError.reason``)."""

    def drift_repaired(self, pod: str) -> None:
        """A read-back found the pod's table differing from what trinet installed, and it was repaired."""

    def adopted(self, pod: str, unchanged: bool) -> None:
        """A pod's table was read back and adopted (``unchanged``: no transaction was needed)."""

    def queue_depth(self, depth: int) -> None:
        """Pods waiting in the dirty queue, sampled whenever a worker takes one."""

    def invalid_policy(self, policy: str, reasons: tuple[str, ...]) -> None:
        """A policy has validation errors (items dropped, isolation kept); reported once per policy version."""

    def policed_pods(self, count: int) -> None:
        """Local pods whose table trinet currently enforces."""

    def ready(self, ready: bool) -> None:
        """Readiness changed."""

    def dropped(self, pod: str, counters: Mapping[tuple[str, str], int]) -> None:
        """Drop counters read back from the pod's table: packets isolation dropped per (interface, direction)."""


class NullObserver:
    """The default: observes nothing."""

    def transaction(self, pod: str, kind: TransactionKind, outcome: TransactionOutcome, messages: int) -> None:
        pass

    def apply_latency(self, pod: str, seconds: float) -> None:
        pass

    def enforced_latency(self, pod: str, seconds: float) -> None:
        pass

    def failure(self, pod: str, reason: str) -> None:
        pass

    def netns_failure(self, pod: str, reason: str) -> None:
        pass

    def drift_repaired(self, pod: str) -> None:
        pass

    def adopted(self, pod: str, unchanged: bool) -> None:
        pass

    def queue_depth(self, depth: int) -> None:
        pass

    def invalid_policy(self, policy: str, reasons: tuple[str, ...]) -> None:
        pass

    def policed_pods(self, count: int) -> None:
        pass

    def ready(self, ready: bool) -> None:
        pass

    def dropped(self, pod: str, counters: Mapping[tuple[str, str], int]) -> None:
        pass
