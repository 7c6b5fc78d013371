"""Sliding-window rate limits, per source, context and credential, in real time."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    window_seconds: float
    retry_after: int  # seconds, for a refused request
    reset_epoch: int  # when the oldest request in the window leaves it


class SlidingWindowLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, key: tuple[str, str], limit: int, window_seconds: float) -> Decision:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window_seconds:
                hits.popleft()
            if limit <= 0 or len(hits) < limit:
                hits.append(now)
                oldest = hits[0]
                return Decision(
                    True,
                    limit,
                    max(0, limit - len(hits)),
                    window_seconds,
                    0,
                    int(time.time() + (oldest + window_seconds - now)),
                )
            wait = hits[0] + window_seconds - now
            return Decision(False, limit, 0, window_seconds, max(1, math.ceil(wait)), int(time.time() + wait))

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
