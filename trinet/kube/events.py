"""Kubernetes Events (events.k8s.io/v1) about cluster objects: de-duplicated into series and rate-limited.

An event identical to a recent one (same object, type, reason, action and note, within `series_window`) is not
written again: the first repetition turns the stored Event into a series (``series.count``, as kubectl shows
"x N over ..."), later repetitions update the count at most every `series_update_interval` seconds (the count
is carried until then). New events pass a global token bucket and one per object, so an invalid policy that is
re-evaluated in a loop cannot flood the API server. `emit` never raises on API errors: it logs them.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import msgspec

from trinet.kube.client import ApiClient, ApiError
from trinet.kube.resources import resource_for
from trinet.logs import event

__all__ = ["EventWriter", "TokenBucket"]

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
_MAX_NOTE = 1024


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; `take()` spends one if there is one."""

    def __init__(self, burst: float, rate: float) -> None:
        self.burst, self.rate = burst, rate
        self._tokens = burst
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class _Series:
    namespace: str
    name: str
    count: int
    first: float
    last_seen: float
    last_written: float
    written_count: int


def _micro_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventWriter:
    def __init__(
        self,
        api: ApiClient,
        component: str = "trinet",
        host: str = "",
        *,
        burst: int = 25,
        rate: float = 1.0,
        per_object_burst: int = 5,
        per_object_rate: float = 1 / 60,
        series_window: float = 360.0,
        series_update_interval: float = 30.0,
        cache_size: int = 4096,
    ) -> None:
        self.api = api
        self.component = component
        self.instance = f"{component}-{host}" if host else component
        self.series_window, self.series_update_interval = series_window, series_update_interval
        self._global = TokenBucket(burst, rate)
        self._per_object_limits = (float(per_object_burst), per_object_rate)
        self._per_object: OrderedDict[tuple[str, ...], TokenBucket] = OrderedDict()
        self._series: OrderedDict[tuple[str, ...], _Series] = OrderedDict()
        self._cache_size = cache_size
        self.dropped = 0
        """Events not written because of the rate limit."""

    async def emit(self, obj: Any, *, type: EventType, reason: str, note: str, action: str) -> None:
        """Record an event about `obj` (an object of trinet.objects); de-duplicated, rate-limited, never raises."""
        try:
            await self._emit(obj, type, reason, note[:_MAX_NOTE], action)
        except (ApiError, httpx.HTTPError, msgspec.DecodeError, TypeError) as exc:
            event(log, logging.WARNING, "event-write-failed", reason=reason, action=action, regarding=_describe(obj),
                  error=str(exc))  # fmt: skip

    async def _emit(self, obj: Any, type_: str, reason: str, note: str, action: str) -> None:
        resource = resource_for(obj)
        meta = obj.metadata
        regarding = (resource.api_version, resource.kind, meta.namespace, meta.name, meta.uid)
        key = (*regarding, type_, reason, action, note)
        now = time.time()
        series = self._series.get(key)
        if series is not None and now - series.last_seen <= self.series_window:
            series.count += 1
            series.last_seen = now
            self._series.move_to_end(key)
            if now - series.last_written >= self.series_update_interval or series.written_count == 1:
                await self._write_series(series, now)
            return
        if not (self._global.take() and self._object_bucket(regarding).take()):
            self.dropped += 1
            event(log, logging.DEBUG, "event-rate-limited", reason=reason, regarding=_describe(obj))
            return
        namespace = meta.namespace or "default"
        name = f"{meta.name}.{time.time_ns():x}"
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "eventTime": _micro_time(now),
            "reportingController": self.component,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "note": note,
            "type": type_,
            "regarding": {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "namespace": meta.namespace or None,
                "name": meta.name,
                "uid": meta.uid or None,
                "resourceVersion": meta.resource_version or None,
            },
        }
        self._series[key] = _Series(namespace, name, 1, now, now, now, 1)
        if len(self._series) > self._cache_size:
            self._series.popitem(last=False)
        await self.api.request(
            "POST",
            f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
            content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"},
        )

    async def _write_series(self, series: _Series, now: float) -> None:
        if not self._global.take():
            return  # the count is carried to the next update
        series.last_written, series.written_count = now, series.count
        patch = {"series": {"count": series.count, "lastObservedTime": _micro_time(now)}}
        await self.api.request(
            "PATCH",
            f"/apis/events.k8s.io/v1/namespaces/{series.namespace}/events/{series.name}",
            content=msgspec.json.encode(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def _object_bucket(self, regarding: tuple[str, ...]) -> TokenBucket:
        bucket = self._per_object.get(regarding)
        if bucket is None:
            bucket = self._per_object[regarding] = TokenBucket(*self._per_object_limits)
            if len(self._per_object) > self._cache_size:
                self._per_object.popitem(last=False)
        else:
            self._per_object.move_to_end(regarding)
        return bucket


def _describe(obj: Any) -> str:
    meta = getattr(obj, "metadata", None)
    if meta is None:
        return type(obj).__name__
    return f"{type(obj).__name__} {meta.namespace + '/' if meta.namespace else ''}{meta.name}"
