"""A client-side token bucket, like client-go's (k8s.io/client-go/util/flowcontrol).

The bucket holds at most `burst` tokens and refills at `qps` tokens a second; a request
takes one. A caller that finds the bucket empty reserves the next token (the count goes
below zero) and sleeps until it is due, as golang.org/x/time/rate's Wait does: callers are
served in the order they asked, and no one spins. QPS <= 0 means no limit.

The arithmetic is pure (`reserve`, `try_take`, on a `Bucket` value and a time), so tests
drive it with a clock of their own; `TokenBucket` adds the lock, the clock and the sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    """`tokens` as of clock time `at` (negative: tokens already promised to waiters)."""

    tokens: float
    at: float


def full(burst: int, now: float) -> Bucket:
    """A new bucket: full, as client-go's starts."""
    return Bucket(float(max(1, burst)), now)


def refill(bucket: Bucket, now: float, qps: float, burst: int) -> Bucket:
    """The bucket at `now`: `qps` tokens a second since `bucket.at`, at most `burst`.

    A clock that goes back adds nothing (and does not move `at` back)."""
    elapsed = max(0.0, now - bucket.at)
    tokens = min(float(max(1, burst)), bucket.tokens + elapsed * qps)
    return Bucket(tokens, max(now, bucket.at))


def reserve(bucket: Bucket, now: float, qps: float, burst: int) -> tuple[Bucket, float]:
    """Take one token at `now`: the bucket after, and the seconds to wait until it is due."""
    if qps <= 0:
        return bucket, 0.0
    after = refill(bucket, now, qps, burst)
    tokens = after.tokens - 1.0
    wait = -tokens / qps if tokens < 0 else 0.0
    return Bucket(tokens, after.at), wait


def try_take(bucket: Bucket, now: float, qps: float, burst: int) -> Bucket | None:
    """Take one token at `now` if one is there (client-go's TryAccept); None if not."""
    after = refill(bucket, now, qps, burst) if qps > 0 else bucket
    if after.tokens < 1.0:
        return None
    return Bucket(after.tokens - 1.0, after.at)


class TokenBucket:
    """The thread-safe limiter: `acquire()` returns once a token is the caller's."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._bucket = full(burst, clock())

    def acquire(self) -> float:
        """Block until a token is free; the seconds waited for it (0.0 when there was one)."""
        if self.qps <= 0:
            return 0.0
        with self._lock:  # the reservation is made under the lock, the sleep outside it
            self._bucket, wait = reserve(self._bucket, self._clock(), self.qps, self.burst)
        if wait > 0:
            self._sleep(wait)
        return wait
