"""Work on one pod: resolve its netns -> compile -> compare with what is installed -> at most one transaction.

What happens when a transaction fails, read here alone:

- ``TransactionError`` (the kernel rejected the batch): nothing of it was applied, the previous rules are intact
  and what we believe installed stays as it was. The failure is counted and the pod retried with backoff.
- ``OutcomeUnknown`` (the commit could not be confirmed): we assume neither outcome. The pod's state becomes
  unknown, and the retry reads the table back (``dump_table``) and reconciles with ``adopt``.
- The pod's namespace cannot be found or used (``NetnsError``, ``OSError``: not started, gone, interfaces not
  there yet): nothing is sent, the pod is retried, no other pod is affected. A sandbox that is not there *yet*
  (``SANDBOX_PENDING`` reasons) is polled every ``SANDBOX_POLL`` seconds for ``SANDBOX_WAIT`` seconds, since
  nothing in the API announces it (procfs scans are shared between the waiting pods); then, and for every other
  failure, the pod backs off exponentially.
- Any other error (a bug): logged with the pod's name, retried with backoff; the other pods go on.

A failure therefore never leaves a pod more open than before: the last good rules stay until a transaction that
replaces them as a whole succeeds.

State per pod (``PodState``): the ``Installed`` we believe the table holds, and whether that belief is *known*
(we made it, or read it back) or must be checked by reading the table back (start-up adoption, a pod first seen
after start-up, periodic resync, unknown outcome). A pod first seen is never assumed to have no table: a stale or
foreign one is read back and reconciled (``adopt``) in its first transaction. A known, unchanged pod costs a
compile and nothing else: no netns lookup, no syscall.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

import trio

import netlink_nft as nl
from trinet.daemon.logs import event
from trinet.daemon.netns import NetnsError, NetnsResolver, PodNetns, own_netns
from trinet.daemon.observer import Observer, TransactionKind
from trinet.daemon.queue import Backoff, DirtyQueue
from trinet.daemon.snapshots import SnapshotCache
from trinet.kube import ClusterStore
from trinet.objects import Pod
from trinet.policy import CompileOptions, PodRuleset, compile
from trinet.policy.to_netlink import Installed, adopt, drop_counters, transaction

__all__ = ["PodState", "PodWorker", "SocketCloser", "WorkResult"]

log = logging.getLogger("trinet.worker")

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
INLINE_BATCH = 64  # messages; a batch up to this size is sent from the event loop's thread, larger ones in a worker
ReadBack = Literal["adopt", "first-seen", "resync", "unknown-outcome", "after-rejection", "sandbox-changed"]
WorkResult = Literal["ok", "retry"]
SANDBOX_PENDING = frozenset({"no-process", "own-netns", "missing-interfaces", "no-sandbox", "cri-no-netns"})
SANDBOX_POLL = 0.15  # seconds between the lookups of a sandbox that is not there yet
SANDBOX_WAIT = 120.0  # seconds of such polling before falling back to the exponential backoff


@dataclass(frozen=True)
class PodState:
    """What we believe a pod's table holds. ``installed`` None: no table. ``check`` set: read it back first."""

    uid: str
    installed: Installed | None
    check: ReadBack | None = None
    netns: tuple[int, int] | None = None  # the namespace (device, inode) this belief is about


def _kind(before: Installed | None, after: Installed | None, desired: PodRuleset) -> TransactionKind:
    if not desired.enforces:
        return "remove"
    if before is None:
        return "create"
    if after is not None and after.generation == before.generation:
        return "delta"
    return "swap"


def _summary(batch: nl.Batch) -> str:
    counts: dict[str, int] = {}
    for message in batch.messages:
        name = message.describe().split(" ", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    return ",".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def _logged_attempt(attempt: int) -> bool:
    """Attempts 1, 2, 4, 8, ... of a pod polled for its sandbox are logged at their level, the others at debug."""
    return attempt & (attempt - 1) == 0


def dispatched_interfaces(desired: PodRuleset) -> set[str]:
    """The interfaces the ruleset polices (entries of its dispatch maps): they must exist in the netns."""
    return {ifname for m in desired.table.maps for ifname, _ in m.entries}


class SocketCloser:
    """Closes netlink sockets off the workers' path.

    Closing a NETLINK_NETFILTER socket after a commit that deleted anything (set elements, sets, a table) waits in
    the kernel for an RCU grace period (nf_tables flushes its deferred destroy work when a socket is released),
    about 15 ms: done inline, a peer leaving 100 pods' sets took 2 s instead of 60 ms. ``run`` closes them in
    threads; without it running (tests driving ``work`` directly) sockets are closed inline.
    """

    def __init__(self, parallel: int = 16) -> None:
        self._send, self._receive = trio.open_memory_channel[nl.TrioNftSocket](math.inf)
        self._limiter = trio.CapacityLimiter(parallel)
        self.running = False

    def close(self, sock: nl.TrioNftSocket) -> None:
        if self.running:
            self._send.send_nowait(sock)
        else:
            sock.close()

    async def run(self) -> None:
        self.running = True
        try:
            async with trio.open_nursery() as nursery:
                async for sock in self._receive:
                    nursery.start_soon(self._close, sock)
        finally:
            self.running = False

    async def _close(self, sock: nl.TrioNftSocket) -> None:
        await trio.to_thread.run_sync(sock.close, limiter=self._limiter)


class _Retry(Exception):
    def __init__(self, reason: str, *, sandbox_pending: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sandbox_pending = sandbox_pending  # the pod's sandbox is not there yet: poll it (SANDBOX_POLL)


class PodWorker:
    """Everything the workers share (``work`` one pod, then ``finished``); runs in the daemon's trio thread."""

    def __init__(
        self,
        *,
        store: ClusterStore,
        node_name: str,
        options: CompileOptions,
        resolver: NetnsResolver,
        queue: DirtyQueue,
        observer: Observer,
        snapshots: SnapshotCache,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_socket: Callable[[str], Awaitable[nl.TrioNftSocket]] = nl.TrioNftSocket.open,
    ) -> None:
        self.store = store
        self.node_name = node_name
        self.options = options
        self.resolver = resolver
        self.queue = queue
        self.observer = observer
        self.snapshots = snapshots
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.open_socket = open_socket  # a pod's netns path -> socket (tests wrap it to force outcomes)
        self.closer = SocketCloser()
        self.states: dict[str, PodState] = {}  # written through _set_state (keeps _policed in step)
        self._policed: set[str] = set()
        self.dirty_since: dict[str, float] = {}
        self.sandbox_waits: dict[str, float] = {}  # pod -> since when its sandbox has not been found (clock)
        self.initial: set[str] = set()  # pods to visit once before the daemon is ready
        self.initial_done = trio.Event()
        self.table = nl.Table(nl.Family.INET, options.table)
        self._own_netns = own_netns()

    # -- what the daemon calls --------------------------------------------------------------------------------

    def mark_dirty(self, key: str) -> None:
        self.dirty_since.setdefault(key, self.clock())
        self.queue.add(key)

    def expect_read_back(self, key: str, reason: ReadBack) -> None:
        """Read the pod's table back at its next visit (start-up adoption, periodic resync)."""
        pod = self.store.pods.get(key)
        if pod is None:
            return
        old = self.states.get(key)
        installed = old.installed if old is not None and old.uid == pod.metadata.uid else None
        self._set_state(key, PodState(pod.metadata.uid, installed, reason))

    def start_initial_sync(self, keys: set[str]) -> None:
        self.initial = set(keys)
        for key in sorted(keys):
            self.expect_read_back(key, "adopt")
            self.mark_dirty(key)
        if not self.initial:
            self.initial_done.set()

    def finished(self, key: str, result: WorkResult) -> None:
        """After ``work``: schedule the retry of a failed pod (with its backoff), count the initial visit."""
        if result == "retry":
            polling = self._polling(key)
            delay = self.backoff.next_delay(key)
            delay = SANDBOX_POLL if polling else delay
            attempt = self.backoff.failures(key)
            level = logging.DEBUG if polling and not _logged_attempt(attempt) else logging.INFO
            event(log, level, "retry-scheduled", pod=key, delay_s=round(delay, 3), attempt=attempt)
            self.queue.add_after(key, delay)
        else:
            self.backoff.forget(key)
        if key in self.initial:
            self.initial.discard(key)
            if not self.initial:
                self.initial_done.set()

    def _polling(self, key: str) -> bool:
        """Is the pod's sandbox polled for (not there yet, for less than ``SANDBOX_WAIT``)?"""
        waiting = self.sandbox_waits.get(key)
        return waiting is not None and self.clock() - waiting < SANDBOX_WAIT

    def policed_count(self) -> int:
        return len(self._policed)

    def _set_state(self, key: str, state: PodState) -> None:
        self.states[key] = state
        if state.installed is not None:
            self._policed.add(key)
        else:
            self._policed.discard(key)

    # -- one pod ----------------------------------------------------------------------------------------------

    async def work(self, key: str) -> WorkResult:
        try:
            await self._work(key)
        except _Retry as exc:
            if exc.sandbox_pending:
                self.sandbox_waits.setdefault(key, self.clock())
            else:
                self.sandbox_waits.pop(key, None)
            self.observer.failure(key, exc.reason)
            return "retry"
        except Exception as exc:  # a bug must not stop the other pods: report, retry this one
            self.sandbox_waits.pop(key, None)
            log.exception("pod-error", extra={"fields": {"pod": key}})
            self.observer.failure(key, f"error: {type(exc).__name__}")
            return "retry"
        self.dirty_since.pop(key, None)
        self.sandbox_waits.pop(key, None)
        return "ok"

    def _local(self, pod: Pod | None) -> Pod | None:
        if pod is None or pod.spec.node_name != self.node_name or pod.spec.host_network:
            return None
        return pod

    def _forget(self, key: str) -> None:
        state = self.states.pop(key, None)
        self._policed.discard(key)
        self.sandbox_waits.pop(key, None)
        if state is not None:
            self.resolver.forget(state.uid)
            event(log, logging.DEBUG, "pod-forgotten", pod=key)

    async def _work(self, key: str) -> None:
        pod = self._local(self.store.pods.get(key))
        if pod is None:  # gone, moved, or hostNetwork (the node's own netns): never touched
            self._forget(key)
            return
        uid = pod.metadata.uid
        state = self.states.get(key)
        if state is not None and state.uid != uid:  # recreated under the same name: a new netns, no table yet
            self.resolver.forget(state.uid)
            state = None
        if state is None and NETWORK_STATUS not in pod.metadata.annotations:
            return  # no sandbox network yet: nothing installed, nothing to check interfaces against
        desired = compile(self.snapshots.current(), pod, self.options)
        if pod.status.phase in ("Succeeded", "Failed") and (state is None or state.installed is None):
            self._set_state(key, PodState(uid, None))  # finished, nothing of ours installed: its sandbox is going
            return
        if state is None:  # first seen (after start-up): a stale or foreign table may be there, read it back
            state = PodState(uid, None, "first-seen")
        before = state.installed
        planned: tuple[nl.Batch, Installed | None] | None = None
        if state.check is None:  # what the table holds is known
            if before is None and not desired.enforces:
                self._set_state(key, PodState(uid, None, netns=state.netns))
                return
            batch, after = transaction(before, desired)
            if batch is None and state.netns is None:
                self._set_state(key, PodState(uid, after))
                return
            planned = (batch, after) if batch is not None else None
        netns = await self._resolve(key, uid, desired)
        if state.netns is not None and state.netns != netns.ident:
            # the sandbox was recreated under the same pod: what its new namespace holds is unknown
            event(log, logging.INFO, "sandbox-changed", pod=key)
            state = PodState(uid, None, "sandbox-changed")
            planned = None
        elif planned is None and state.check is None:
            return  # unchanged, in the same namespace: nothing to send
        try:
            sock = await self.open_socket(netns.path)
        except OSError as exc:
            self._netns_failed(key, "gone", str(exc))
        try:
            await self._with_socket(key, uid, state, netns, sock, desired, before, planned)
        finally:
            self.closer.close(sock)

    async def _with_socket(
        self,
        key: str,
        uid: str,
        state: PodState,
        netns: PodNetns,
        sock: nl.TrioNftSocket,
        desired: PodRuleset,
        before: Installed | None,
        planned: tuple[nl.Batch, Installed | None] | None,
    ) -> None:
        """Read back (when the state is not known) and send the one transaction, over ``sock``."""
        if sock.sync.netns_id != netns.ident or sock.sync.netns_id == self._own_netns:
            self._netns_failed(key, "changed", f"namespace of pid {netns.pid} changed while opening it")
        if planned is None:
            batch, after, kind = await self._read_back(key, sock, state, desired)
            if batch is None:
                self._set_state(key, PodState(uid, after, netns=netns.ident))
                return
        else:
            batch, after = planned
            kind = _kind(before, after, desired)
        await self._apply(key, uid, netns.ident, sock, batch, kind, before, after)

    async def _resolve(self, key: str, uid: str, desired: PodRuleset) -> PodNetns:
        interfaces = dispatched_interfaces(desired) if desired.enforces else set()
        known = self.resolver.cached(uid, interfaces)
        if known is not None:  # the usual case: one stat, no thread
            return known
        try:
            return await trio.to_thread.run_sync(self.resolver.resolve, uid, interfaces)
        except NetnsError as exc:
            self._netns_failed(key, exc.reason, str(exc))
        except OSError as exc:
            self._netns_failed(key, "gone", str(exc))

    def _netns_failed(self, key: str, reason: str, message: str) -> NoReturn:
        self.observer.netns_failure(key, reason)
        pending = reason in SANDBOX_PENDING
        quiet = pending and self._polling(key) and not _logged_attempt(self.backoff.failures(key) + 1)
        level = logging.DEBUG if quiet else logging.WARNING
        event(log, level, "netns-unavailable", pod=key, reason=reason, detail=message)
        raise _Retry(f"netns: {reason}", sandbox_pending=pending)

    async def _read_back(
        self, key: str, sock: nl.TrioNftSocket, state: PodState, desired: PodRuleset
    ) -> tuple[nl.Batch | None, Installed | None, TransactionKind]:
        try:
            dumped = await sock.dump_table(self.table)
        except (nl.NftError, OSError) as exc:
            event(log, logging.WARNING, "read-back-failed", pod=key, error=str(exc))
            raise _Retry("read-back") from exc
        if dumped is not None:
            self.observer.dropped(key, drop_counters(dumped))
        batch, after = adopt(dumped, desired)
        if batch is None:
            self.observer.adopted(key, unchanged=True)
            event(log, logging.DEBUG, "table-adopted", pod=key, reason=state.check, unchanged=True)
            return None, after, "repair"
        self.observer.adopted(key, unchanged=False)
        if not desired.enforces:
            kind: TransactionKind = "remove"
        elif dumped is None:
            kind = "create"
        else:
            kind = "repair"
        believed = state.installed.ruleset if state.installed is not None else None
        in_sync = believed == desired if desired.enforces else believed is None
        if state.check not in ("adopt", "first-seen") and in_sync:
            self.observer.drift_repaired(key)
            event(log, logging.WARNING, "drift-detected", pod=key, reason=state.check,
                  table="absent" if dumped is None else "differs")  # fmt: skip
        return batch, after, kind

    async def _apply(
        self,
        key: str,
        uid: str,
        ident: tuple[int, int],
        sock: nl.TrioNftSocket,
        batch: nl.Batch,
        kind: TransactionKind,
        before: Installed | None,
        after: Installed | None,
    ) -> None:
        started = self.clock()
        try:
            if len(batch) <= INLINE_BATCH:  # a small commit takes ~0.1 ms: cheaper than a thread hand-off
                sock.sync.apply(batch)
            else:
                await sock.apply(batch)
        except nl.TransactionError as exc:  # nothing applied: the previous rules are intact
            self.observer.transaction(key, kind, "rejected", len(batch))
            self._set_state(key, PodState(uid, before, "after-rejection", ident))  # the retry reads the table back
            event(log, logging.ERROR, "transaction-rejected", pod=key, kind=kind, messages=len(batch), error=str(exc))
            raise _Retry("rejected") from exc
        except nl.OutcomeUnknown as exc:  # read back before deciding anything
            self.observer.transaction(key, kind, "unknown", len(batch))
            self._set_state(key, PodState(uid, before, "unknown-outcome", ident))
            event(log, logging.WARNING, "transaction-outcome-unknown", pod=key, kind=kind, error=str(exc))
            raise _Retry("unknown") from exc
        except (nl.NftError, OSError) as exc:
            self.observer.transaction(key, kind, "error", len(batch))
            self._set_state(key, PodState(uid, before, "unknown-outcome", ident))
            event(log, logging.ERROR, "transaction-failed", pod=key, kind=kind, error=str(exc))
            raise _Retry("error") from exc
        elapsed = self.clock() - started
        self._set_state(key, PodState(uid, after, netns=ident))
        self.observer.transaction(key, kind, "ok", len(batch))
        self.observer.apply_latency(key, elapsed)
        since = self.dirty_since.get(key)
        if since is not None:
            self.observer.enforced_latency(key, self.clock() - since)
        self.observer.policed_pods(self.policed_count())
        event(log, logging.INFO, "transaction", pod=key, kind=kind, messages=len(batch), ops=_summary(batch),
              generation=after.generation if after else None, apply_ms=round(elapsed * 1000, 2))  # fmt: skip
