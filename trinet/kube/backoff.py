"""Capped exponential backoff with jitter, reset after a quiet period (client-go's reflector defaults)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """`next_delay()` per failure: initial, then times `factor`, up to `cap`; each stretched by up to `jitter`.

    The sequence starts again from `initial` once `reset_after` seconds pass without a failure.
    """

    def __init__(
        self,
        initial: float = 0.8,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.factor, self.cap, self.jitter, self.reset_after = initial, factor, cap, jitter, reset_after
        self._rng = rng
        self._current = initial
        self._last_failure = -1e18

    def next_delay(self) -> float:
        now = time.monotonic()
        if now - self._last_failure > self.reset_after:
            self._current = self.initial
        self._last_failure = now
        base = self._current
        self._current = min(self._current * self.factor, self.cap)
        return min(base * (1.0 + self.jitter * self._rng()), self.cap)
