"""One reflector per resource: LIST (or a streaming WatchList) into the store, then WATCH from its resourceVersion.

The loop follows client-go's reflector (reference: shared/reference/kube-api.md §1.5, §1.6, §4):

- sync: a WatchList stream (``sendInitialEvents``) when the server offers it, else a paginated consistent LIST
  (an expired ``continue`` token restarts the list). The store is replaced with the result and the *true*
  deltas are emitted (objects gone during a gap are reported as deletions; unchanged objects keep identity).
- watch from the last resourceVersion with bookmarks and a randomised ``timeoutSeconds``; a stream that ends
  cleanly is re-opened from the last resourceVersion without a relist; no byte within ``inactivity_timeout``
  (a stalled stream) cancels it and re-watches.
- 410 (HTTP or an ERROR event) -> relist; 429 -> wait Retry-After; 5xx, other errors and connection failures ->
  capped exponential backoff with jitter; 401 -> the client reloads the token once, then we back off.

The store is updated first, then the changes of that step are sent to the channel (back-pressure: the reflector
waits for the consumer). Objects that fail to decode are logged and skipped.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import trio

from trinet.kube.backoff import Backoff
from trinet.kube.client import ApiClient, ApiError, Status
from trinet.kube.resources import Resource
from trinet.kube.store import Change, ClusterStore
from trinet.logs import event

__all__ = ["Reflector", "ReflectorOptions", "ReflectorStats"]

log = logging.getLogger(__name__)

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_status_decoder = msgspec.json.Decoder(Status)


@dataclass(frozen=True)
class ReflectorOptions:
    """Tunables; the defaults are client-go's (tests shorten them)."""

    page_size: int = 500
    watch_timeout: tuple[int, int] = (300, 600)
    """Server-side timeoutSeconds of each watch, drawn uniformly from this range."""
    inactivity_timeout: float = 90.0
    """A watch stream that delivers no byte for this long is stalled: cancel it and re-watch."""
    watch_list: bool = True
    """Try the streaming WatchList (sendInitialEvents) for syncs; falls back to LIST if the server refuses it."""
    backoff_initial: float = 0.8
    backoff_cap: float = 30.0
    backoff_reset_after: float = 120.0
    min_watch_duration: float = 1.0
    """A watch that ends sooner than this with no event counts as a failure (backoff), not a clean end."""


@dataclass
class ReflectorStats:
    """Requests made, for health reporting and for tests that assert what the reflector did."""

    lists: int = 0
    """LIST requests (pages count one each)."""
    watches: int = 0
    watch_lists: int = 0
    bookmarks: int = 0
    stalls: int = 0
    errors: int = 0
    skipped: int = 0
    """Events whose object could not be decoded."""


class _WatchListRefused(Exception):
    """The server does not serve sendInitialEvents for this request."""


def _split_namespace(field_selector: str | None) -> tuple[str | None, str | None]:
    """Move a `metadata.namespace=NS` term of a field selector into the URL path.

    kube-apiserver 1.36 paginates such a cluster-wide LIST wrongly: the continue token of the first page is taken
    relative to the namespace and the next page repeats or loses items (seen on the test server). The
    namespaced collection path paginates correctly and means the same.
    """
    if not field_selector:
        return None, field_selector
    namespace = None
    rest = []
    for term in field_selector.split(","):
        name, sep, value = term.partition("==") if "==" in term else term.partition("=")
        if sep and name.strip() == "metadata.namespace" and not name.endswith("!"):
            namespace = value.strip()
        else:
            rest.append(term)
    return namespace, ",".join(rest) or None


class Reflector:
    def __init__(
        self,
        resource: Resource[Any],
        api: ApiClient,
        store: ClusterStore,
        changes: trio.MemorySendChannel[Change[Any]],
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        options: ReflectorOptions | None = None,
    ) -> None:
        self.resource, self.api, self.changes = resource, api, changes
        self.options = options or ReflectorOptions()
        self.store = store.store_for(resource.name)
        self.health = store.health_state(resource.name)
        namespace, field_selector = _split_namespace(field_selector) if resource.namespaced else (None, field_selector)
        self.selectors = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        self.stats = ReflectorStats()
        self.synced = trio.Event()
        self.resource_version = ""
        self._watch_list = self.options.watch_list
        self._need_sync = True
        self._initial: dict[str, Any] | None = None
        self._backoff = Backoff(
            initial=self.options.backoff_initial,
            cap=self.options.backoff_cap,
            reset_after=self.options.backoff_reset_after,
        )
        self._path = resource.collection_path(namespace)

    async def run(self) -> None:
        """Keep the store in sync until cancelled; `self.synced` is set once the first sync is complete."""
        name = self.resource.name
        while True:
            delay = 0.0
            try:
                await self._step()
            except httpx.TimeoutException as exc:
                self.stats.stalls += 1
                event(log, logging.WARNING, "watch-stalled", resource=name, error=type(exc).__name__,
                      action="re-watching")  # fmt: skip
                if self._need_sync:
                    delay = self._failed()
            except ApiError as exc:
                if exc.expired:
                    event(log, logging.INFO, "watch-expired", resource=name, resource_version=self.resource_version,
                          error=str(exc), action="relisting")  # fmt: skip
                    self._need_sync = True
                    continue
                delay = self._failed()
                if exc.code == 429:
                    delay = max(delay, exc.retry_after or 0.0)
                    event(log, logging.WARNING, "api-throttled", resource=name, code=429, retry_in=round(delay, 1))
                elif exc.code in (401, 403):
                    event(log, logging.ERROR, "api-credentials-refused", resource=name, code=exc.code, error=str(exc),
                          retry_in=round(delay, 1))  # fmt: skip
                else:
                    event(log, logging.WARNING, "api-error", resource=name, code=exc.code, error=str(exc),
                          retry_in=round(delay, 1))  # fmt: skip
            except (httpx.TransportError, msgspec.DecodeError) as exc:
                delay = self._failed()
                event(log, logging.WARNING, "api-connection-error", resource=name, error=repr(exc),
                      retry_in=round(delay, 1))  # fmt: skip
            if delay:
                await trio.sleep(delay)

    def _failed(self) -> float:
        self.stats.errors += 1
        return self._backoff.next_delay()

    async def _step(self) -> None:
        """One sync-or-watch round; returns on a clean stream end, raises on anything else."""
        if self._need_sync:
            if self._watch_list:
                try:
                    await self._watch(initial=True)
                except _WatchListRefused as exc:
                    event(log, logging.INFO, "watch-list-unavailable", resource=self.resource.name, error=str(exc),
                          action="using LIST")  # fmt: skip
                    self._watch_list = False
                else:
                    return
            await self._list()
        await self._watch(initial=False)

    async def _list(self) -> None:
        items: list[Any] = []
        cont = ""
        while True:
            params = {"limit": str(self.options.page_size), **self.selectors}
            if cont:
                params["continue"] = cont
            self.stats.lists += 1
            try:
                body = await self.api.request("GET", self._path, params=params)
            except ApiError as exc:
                if exc.expired and cont:
                    event(log, logging.INFO, "list-continue-expired", resource=self.resource.name,
                          action="restarting the list")  # fmt: skip
                    items, cont = [], ""
                    continue
                raise
            meta, page = self.resource.decode_list(body)
            items.extend(page)
            event(log, logging.DEBUG, "list-page", resource=self.resource.name, items=len(page), total=len(items),
                  more=bool(meta.continue_))  # fmt: skip
            cont = meta.continue_
            if not cont:
                break
        await self._synced(items, meta.resource_version)

    async def _synced(self, items: Any, resource_version: str) -> None:
        changes = self.store.replace(items)
        self.resource_version = resource_version
        self._need_sync = False
        if self.health.synced:
            self.health.relists += 1
        self.health.synced = True
        self.health.saw_event()
        self.synced.set()
        for change in changes:
            await self.changes.send(change)

    async def _watch(self, *, initial: bool) -> None:
        """One watch stream; `initial` makes it a WatchList that first replays the state (then keeps watching)."""
        low, high = self.options.watch_timeout
        timeout = random.randint(low, high)
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout), **self.selectors}
        if initial:
            params["sendInitialEvents"] = "true"
            params["resourceVersionMatch"] = "NotOlderThan"
            self.stats.watch_lists += 1
            self._initial = {}
        else:
            params["resourceVersion"] = self.resource_version
            self.stats.watches += 1
        started, events = time.monotonic(), 0
        # Whole-stream guard against a server that trickles bytes forever past its own deadline.
        with trio.move_on_after(timeout + self.options.inactivity_timeout + 30) as guard:
            try:
                async with self.api.stream(
                    self._path, params=params, read_timeout=self.options.inactivity_timeout
                ) as response:
                    events = await self._consume(response)
            except ApiError as exc:
                if initial and 400 <= exc.code < 500 and exc.code not in (401, 403, 408, 410, 429):
                    raise _WatchListRefused(str(exc)) from exc
                raise
            finally:
                self._initial = None
        if guard.cancelled_caught:
            raise httpx.ReadTimeout("watch outlived its deadline")
        if initial and self._need_sync:  # a server that accepts sendInitialEvents but never ends the replay
            raise _WatchListRefused("the stream ended before the initial-events-end bookmark")
        if events == 0 and time.monotonic() - started < self.options.min_watch_duration:
            raise httpx.RemoteProtocolError("watch ended immediately without any event")

    async def _consume(self, response: httpx.Response) -> int:
        buf = bytearray()
        events = 0
        async for chunk in response.aiter_bytes():
            buf += chunk
            start = 0
            while (end := buf.find(b"\n", start)) != -1:
                if end > start:
                    await self._handle(bytes(buf[start:end]))
                    events += 1
                start = end + 1
            if start:
                del buf[:start]
        if buf.strip():
            await self._handle(bytes(buf))
            events += 1
        return events

    async def _handle(self, line: bytes) -> None:
        kind, obj, raw = self.resource.decode_event(line)
        if kind == "ERROR":
            status = _status_decoder.decode(raw or b"{}")
            raise ApiError.from_status(status)
        self.health.saw_event()
        if obj is None:
            self.stats.skipped += 1
            return
        meta = obj.metadata
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
            if self._initial is not None and meta.annotations.get(INITIAL_EVENTS_END) == "true":
                initial, self._initial = self._initial, None
                await self._synced(initial.values(), meta.resource_version)
            elif self._initial is None:
                self.resource_version = meta.resource_version
            return
        change: Change[Any] | None
        if kind in ("ADDED", "MODIFIED"):
            if self._initial is not None:
                self._initial[self.store.key_of(obj)] = obj
                return
            change = self.store.upsert(obj)
        elif kind == "DELETED":
            if self._initial is not None:
                self._initial.pop(self.store.key_of(obj), None)
                return
            change = self.store.delete(self.store.key_of(obj))
        else:
            event(log, logging.WARNING, "watch-event-unknown", resource=self.resource.name, type=kind,
                  action="ignored")  # fmt: skip
            return
        self.resource_version = meta.resource_version
        if change is not None:
            await self.changes.send(change)
