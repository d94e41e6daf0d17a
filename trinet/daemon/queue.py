"""The dirty-pod queue: coalescing, one worker per pod at a time, delayed retries with per-pod backoff.

Semantics of client-go's workqueue: a key added while it is already waiting is not added twice (the worker reads
the newest state when it gets to it); a key added while a worker holds it is remembered and handed out again once
that worker calls ``done``, so no two workers ever work on the same pod and no change is lost. Keys are pod keys
("namespace/name").
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import trio

__all__ = ["Backoff", "DirtyQueue"]


class Backoff:
    """Per-key exponential backoff: ``base * 2**failures``, capped at ``cap`` seconds."""

    def __init__(self, base: float = 0.05, cap: float = 5.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def next_delay(self, key: str) -> float:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        return min(self.cap, self.base * math.pow(2, count))

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class DirtyQueue:
    def __init__(self) -> None:
        self._order: deque[str] = deque()
        self._waiting: set[str] = set()
        self._processing: set[str] = set()
        self._dirty_while_processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._seq = 0
        self._wakeup = trio.Event()
        self._timer_changed = trio.Event()

    def __len__(self) -> int:
        """Keys waiting to be handed out (delayed retries not included)."""
        return len(self._order)

    @property
    def idle(self) -> bool:
        """Nothing waiting, nothing being worked on (delayed retries may remain)."""
        return not self._order and not self._processing

    def add(self, key: str) -> None:
        if key in self._processing:
            self._dirty_while_processing.add(key)
            return
        if key in self._waiting:
            return
        self._waiting.add(key)
        self._order.append(key)
        self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (``run_timers`` must be running)."""
        self._seq += 1
        heapq.heappush(self._delayed, (trio.current_time() + delay, self._seq, key))
        self._timer_changed.set()

    async def get(self) -> str:
        while not self._order:
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        key = self._order.popleft()
        self._waiting.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty_while_processing:
            self._dirty_while_processing.discard(key)
            self.add(key)

    async def run_timers(self) -> None:
        """Move delayed keys into the queue when they are due. Runs until cancelled."""
        while True:
            self._timer_changed = trio.Event()
            now = trio.current_time()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, key = heapq.heappop(self._delayed)
                self.add(key)
            deadline = self._delayed[0][0] if self._delayed else math.inf
            with trio.move_on_at(deadline):
                await self._timer_changed.wait()
