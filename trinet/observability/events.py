"""Kubernetes Events for what trinet ignores: invalid policies, policies naming missing or unsupported NADs, pods
whose annotations are malformed. Every note says what was ignored and that isolation was kept.

``audit`` is pure: it reads a ``Snapshot`` and returns ``Finding``s. ``Reporter`` runs it whenever the daemon's
snapshot changes (at most once per ``interval``) and hands each *new* finding to the Event writer of
``trinet.kube`` (which de-duplicates repeats into series and rate-limits). A finding that goes away is forgotten,
so the same problem coming back is reported again; standing findings are handed over again every ``REFRESH``
seconds, so one the rate limit dropped is not lost for good.

Which daemon reports what: every node sees every policy, so a policy's problems are reported by the daemons of
nodes that run a pod of the policy's namespace, and a pod's by the daemon of its node only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import trio

from trinet.objects import MultiNetworkPolicy, Pod
from trinet.observability.metrics import Metrics
from trinet.policy import Snapshot

__all__ = ["NOTE_LIMIT", "EventSink", "Finding", "Reporter", "audit"]

NOTE_LIMIT = 1024  # events.k8s.io/v1 rejects longer notes
REFRESH = 600.0  # standing problems are reported again this often (a series update, or a retry after the limit)
Reason = Literal["InvalidPolicy", "PolicyNetworkMissing", "PolicyNetworkUnsupported", "MalformedAnnotation"]


class EventSink(Protocol):
    """``trinet.kube.EventWriter``'s interface."""

    async def emit(
        self, obj: Any, *, type: Literal["Normal", "Warning"], reason: str, note: str, action: str
    ) -> None: ...


@dataclass(frozen=True)
class Finding:
    resource: Literal["policies", "pods"]
    key: str
    reason: Reason
    note: str
    action: str


def _note(text: str) -> str:
    return text if len(text) <= NOTE_LIMIT else text[: NOTE_LIMIT - 1] + "…"


def _local_pods(snapshot: Snapshot, node: str) -> list[Pod]:
    return [p for p in snapshot.pods.values() if p.spec.node_name == node and not p.spec.host_network]


def audit(snapshot: Snapshot, node: str, network_plugins: Iterable[str]) -> list[Finding]:
    """Every problem this node's daemon reports, in a stable order."""
    plugins = sorted(network_plugins)
    local = _local_pods(snapshot, node)
    namespaces = {p.metadata.namespace for p in local}
    out: list[Finding] = []
    for key, policy in sorted(snapshot.policies.items()):
        if policy.namespace not in namespaces:
            continue
        if policy.errors:
            out.append(Finding("policies", key, "InvalidPolicy", _note(
                "; ".join(policy.errors) + ". Ignored: these items (they allow nothing); isolation kept: the "
                "policy still isolates the pods it selects."
            ), "Validate"))  # fmt: skip
        for network in sorted(policy.networks):
            if network not in snapshot.nad_types:
                out.append(Finding("policies", key, "PolicyNetworkMissing", _note(
                    f"policy-for names {network}, which does not exist. Ignored: the policy on {network} until the "
                    "NetworkAttachmentDefinition exists; isolation kept on its other networks."
                ), "Resolve"))  # fmt: skip
                continue
            cni_type = snapshot.nad_types[network]
            if cni_type not in plugins:
                what = f"of CNI type {cni_type!r}" if cni_type else "of unknown CNI type"
                out.append(Finding("policies", key, "PolicyNetworkUnsupported", _note(
                    f"policy-for names {network}, {what}, which trinet does not police (network plugins: "
                    f"{', '.join(plugins)}). Ignored: the policy on {network}; isolation kept on its other networks."
                ), "Resolve"))  # fmt: skip
    for pod in sorted(local, key=lambda p: (p.metadata.namespace, p.metadata.name)):
        problems = snapshot.info(pod).problems
        if problems:
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            out.append(Finding("pods", key, "MalformedAnnotation", _note(
                "; ".join(problems) + ". Ignored: the malformed entries; isolation kept: interfaces that policies "
                "select stay isolated."
            ), "Parse"))  # fmt: skip
    return out


ObjectLookup = Callable[[str, str], MultiNetworkPolicy | Pod | None]


class Reporter:
    """Emits each new ``Finding`` once; ``lookup(resource, key)`` gives the object the Event is about."""

    def __init__(self, sink: EventSink, metrics: Metrics, lookup: ObjectLookup) -> None:
        self.sink = sink
        self.metrics = metrics
        self.lookup = lookup
        self.reported: dict[tuple[str, str, str], str] = {}  # (resource, key, reason) -> note

    async def report(self, findings: Iterable[Finding]) -> int:
        """Emit the findings not reported yet (or whose note changed); forget those that went away."""
        current: dict[tuple[str, str, str], Finding] = {(f.resource, f.key, f.reason): f for f in findings}
        for gone in set(self.reported) - set(current):
            del self.reported[gone]
        emitted = 0
        for ident, finding in current.items():
            if self.reported.get(ident) == finding.note:
                continue
            obj = self.lookup(finding.resource, finding.key)
            if obj is None:
                continue
            self.reported[ident] = finding.note
            await self.sink.emit(obj, type="Warning", reason=finding.reason, note=finding.note, action=finding.action)
            self.metrics.event(finding.reason)
            emitted += 1
        return emitted

    async def run(
        self,
        snapshots: Callable[[], Snapshot],
        node: str,
        network_plugins: Iterable[str],
        interval: float = 1.0,
        refresh: float = REFRESH,
    ) -> None:
        """Audit every new snapshot (``snapshots()`` returns the same object while nothing changed). Every
        ``refresh`` seconds every standing finding is handed to the writer again: it counts the repeat in the
        Event's series, and a finding the rate limit dropped gets another chance."""
        plugins = tuple(network_plugins)
        last: Snapshot | None = None
        refreshed = trio.current_time()
        while True:
            snapshot = snapshots()
            if trio.current_time() - refreshed >= refresh:
                self.reported.clear()
                refreshed = trio.current_time()
                last = None
            if snapshot is not last:
                last = snapshot
                await self.report(audit(snapshot, node, plugins))
            await trio.sleep(interval)
