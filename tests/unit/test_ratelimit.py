"""The client-side token bucket: the pure arithmetic on a clock of the test's own, the
thread-safe limiter with an injected clock and sleep, and Kube's requests going through it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from nonstop import __version__
from nonstop.kube.client import Kube
from nonstop.kube.ratelimit import Bucket, TokenBucket, full, refill, reserve, try_take


class Clock:
    """A clock that moves only when told to; sleeping moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_new_bucket_is_full() -> None:
    assert full(80, 5.0) == Bucket(80.0, 5.0)
    assert full(0, 5.0).tokens == 1.0  # a burst below 1 would never let a request through


def test_refill_at_qps_up_to_burst() -> None:
    empty = Bucket(0.0, 0.0)
    assert refill(empty, 0.5, qps=10, burst=80).tokens == pytest.approx(5.0)
    assert refill(empty, 100.0, qps=10, burst=80).tokens == 80.0  # capped at burst
    # a clock that goes back adds nothing, and does not move the bucket's time back
    assert refill(Bucket(3.0, 10.0), 9.0, qps=10, burst=80) == Bucket(3.0, 10.0)


def test_the_burst_is_free_then_each_request_waits_one_interval() -> None:
    bucket, now, waits = full(3, 0.0), 0.0, []
    for _ in range(6):
        bucket, wait = reserve(bucket, now, qps=2, burst=3)
        waits.append(wait)
    # three tokens in the bucket, then one every 1/2 s: the waiters queue up in order
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0, 1.5])
    # after those are served (at 1.5 s) and another second passes, two tokens are back
    bucket, wait = reserve(bucket, 2.5, qps=2, burst=3)
    assert wait == 0.0
    assert bucket.tokens == pytest.approx(1.0)


def test_qps_zero_or_less_is_unlimited() -> None:
    bucket = Bucket(0.0, 0.0)
    for qps in (0.0, -1.0):
        assert reserve(bucket, 0.0, qps=qps, burst=1) == (bucket, 0.0)


def test_try_take_never_waits() -> None:
    bucket = try_take(full(2, 0.0), 0.0, qps=1, burst=2)
    assert bucket is not None
    bucket = try_take(bucket, 0.0, qps=1, burst=2)
    assert bucket is not None
    assert try_take(bucket, 0.5, qps=1, burst=2) is None  # half a token is not one
    assert try_take(bucket, 1.0, qps=1, burst=2) is not None


def test_acquire_sleeps_only_past_the_burst() -> None:
    clock = Clock()
    limiter = TokenBucket(10, 5, clock=clock, sleep=clock.sleep)
    waited = [limiter.acquire() for _ in range(7)]
    assert waited[:5] == [0.0] * 5
    assert waited[5:] == pytest.approx([0.1, 0.1])  # each sleep moved the clock to its token
    assert clock.slept == pytest.approx([0.1, 0.1])


def test_acquire_unlimited_never_sleeps() -> None:
    clock = Clock()
    limiter = TokenBucket(0, 1, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(100)] == [0.0] * 100
    assert clock.slept == []


def test_acquire_from_threads_hands_out_each_token_once() -> None:
    """Real clock and sleep, a few ms: 8 threads x 5 requests at 2000/s with burst 10 take
    at least (40 - 10) / 2000 = 15 ms in all, and the reservations add up."""
    start = time.monotonic()
    limiter = TokenBucket(2000, 10)
    waits: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waits) == 40
    assert sum(1 for w in waits if w == 0.0) >= 10
    assert time.monotonic() - start >= 30 / 2000  # no token was handed out twice


class FakeResponse:
    status = 200
    reason = "OK"
    data = b"{}"

    def read(self) -> None:
        pass


class FakeApi:
    """What Kube._request uses of ApiClient, recording the order of things."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.user_agent = "OpenAPI-Generator"

    def param_serialize(self, method: str, path: str, **_: Any) -> tuple[Any, ...]:
        return (method, path, {}, None, None)

    def call_api(self, method: str, url: str, *_: Any, **__: Any) -> FakeResponse:
        self.log.append(f"{method} {url}")
        return FakeResponse()


class CountingLimiter:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def acquire(self) -> float:
        self.log.append("token")
        return 0.0


def test_every_kube_request_takes_a_token_first() -> None:
    log: list[str] = []
    kube = Kube(FakeApi(log))  # type: ignore[arg-type]
    kube.limiter = CountingLimiter(log)  # type: ignore[assignment]
    kube.get_rollout("shop", "web")
    kube.scale_deployment("shop", "web", 3)
    assert log[0::2] == ["token", "token"]
    assert log[1].startswith("GET ") and log[3].startswith("PATCH ")


def test_kube_defaults_and_user_agent() -> None:
    kube = Kube(FakeApi([]))  # type: ignore[arg-type]
    assert (kube.limiter.qps, kube.limiter.burst) == (40.0, 80)
    assert kube.api.user_agent == f"nonstop/{__version__}"
    kube = Kube(FakeApi([]), qps=5, burst=10)  # type: ignore[arg-type]
    assert (kube.limiter.qps, kube.limiter.burst) == (5, 10)
