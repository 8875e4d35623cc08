"""One writer per Rollout: a long-lived asyncio task runs its passes one after another.

A change the cache sees wakes the task (kube/cache.py); otherwise the task sleeps until
the plan's requeue_after (a pause that ends, the next measurement, a deadline), and at
most `resync` (5 minutes by default), a guard against a missed event. A Healthy Rollout
with nothing due therefore costs one pass per resync, read from memory. A failing pass is
logged and retried with backoff; it never stops the task or the operator. Passes run in a
pool of `threads` threads (Argo Rollouts runs 10 rollout workers by default), so that a
fleet-wide update is worked through at a bounded pace; the client's rate limit bounds the
writes.

A pass runs in a thread of the pool, and a thread cannot be cancelled: cancelling
the task would leave the pass running while a new task starts another one, two writers for
one Rollout. So a worker is never cancelled: it is asked to close (`forget`, `close_all`,
`stop`), finishes the pass it is in, and leaves its key only once that pass has returned.
A wake-up of a key whose worker is still closing reopens that worker instead of starting a
second; a wake-up that arrives during a pass always causes another pass, even when the pass
found no Rollout (its first event can arrive while a pass started by one of its Deployments
runs). `may_run` (the leader lease, see leader.py) is asked right before every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from nonstop import metrics

log = structlog.get_logger("nonstop.workers")

Key = tuple[str, str]  # (namespace, name)
Pass = Callable[[str, str], float | None]  # sync; returns seconds to next pass, None: gone

MAX_BACKOFF = 60.0
# After an event, let the burst it belongs to (a Deployment, its pods, its EndpointSlice)
# arrive, so that one pass sees it all; a timed pass starts at once.
DEBOUNCE = 0.01
RESYNC = 300.0
# A pass may ask for the next one at once (it only moved the step on). Many such passes in
# a row mean a state that never settles: slow down to one a second rather than spin.
QUICK = 1.0
QUICK_IN_A_ROW = 20


@dataclass
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    closing: bool = False  # leave after the current pass (if any), unless woken again


def _always() -> bool:
    return True


class Workers:
    def __init__(
        self,
        run_pass: Pass,
        may_run: Callable[[], bool] | None = None,
        *,
        threads: int = 10,
        resync: float = RESYNC,
    ) -> None:
        self._run_pass = run_pass
        self._may_run = may_run or _always
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="pass")
        self._resync = resync
        self.passes = 0  # passes run, for the logs and the benchmarks
        self._workers: dict[Key, _Worker] = {}
        self._stopped = False

    def active_keys(self) -> list[Key]:
        """The Rollouts that have a worker (running, waiting or finishing its last pass)."""
        return list(self._workers)

    def wake(self, key: Key) -> None:
        if self._stopped or not self._may_run():
            return  # stopped for good, or not the leader: events start no pass
        worker = self._workers.get(key)
        if worker is None:
            worker = _Worker()
            self._workers[key] = worker
            worker.task = asyncio.create_task(
                self._loop(key, worker), name=f"rollout/{key[0]}/{key[1]}"
            )
        worker.closing = False  # a worker that is finishing its pass is reused, not doubled
        worker.wake.set()

    def forget(self, key: Key) -> None:
        """The Rollout is gone: its worker leaves after the pass it may be in."""
        worker = self._workers.get(key)
        if worker:
            worker.closing = True
            worker.wake.set()  # end the wait for the next pass now

    def close_all(self) -> None:
        """Every worker leaves after its current pass; waiting ones leave at once. Used when
        the lease is lost: returns without waiting for the passes that are running."""
        for key in list(self._workers):
            self.forget(key)

    async def stop(self) -> None:
        """For good: close every worker and return once no pass runs any more."""
        self._stopped = True
        self.close_all()
        tasks = [w.task for w in self._workers.values() if w.task]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pool.shutdown(wait=False)

    async def _loop(self, key: Key, worker: _Worker) -> None:
        try:
            await self._passes(key, worker)
        finally:
            # Only now, with no pass of this worker running, may another worker take the key.
            if self._workers.get(key) is worker:
                del self._workers[key]
                if worker.wake.is_set() and not worker.closing:
                    self.wake(key)  # woken as it was cancelled: the wake-up is not lost

    async def _passes(self, key: Key, worker: _Worker) -> None:
        namespace, name = key
        failures = 0
        quick = 0
        woken = True
        while True:
            if woken:
                await asyncio.sleep(DEBOUNCE)
            if worker.closing or self._stopped or not self._may_run():
                return
            worker.wake.clear()
            try:
                delay = await self._one_pass(namespace, name)
                failures = 0
            except Exception as exc:  # a pass must never kill the worker
                failures += 1
                delay = min(MAX_BACKOFF, 2.0**failures)
                log.warning(
                    "pass failed",
                    namespace=namespace,
                    rollout=name,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=delay,
                )
            if worker.closing:
                return
            quick = quick + 1 if delay is not None and delay < QUICK else 0
            if quick > QUICK_IN_A_ROW:
                if quick == QUICK_IN_A_ROW + 1:
                    log.warning(
                        "passes keep asking to run again at once: one a second now",
                        namespace=namespace,
                        rollout=name,
                    )
                delay = QUICK
            if delay is None:
                if worker.wake.is_set():
                    continue  # woken during the pass: look again (the Rollout may be new)
                return
            woken = False
            with contextlib.suppress(TimeoutError):  # woken early, or time for the next pass
                await asyncio.wait_for(worker.wake.wait(), timeout=min(delay, self._resync))
                woken = True

    async def _one_pass(self, namespace: str, name: str) -> float | None:
        """The pass in a thread. If this task is cancelled meanwhile, keep waiting for the
        thread (it cannot be stopped) and only then let the cancellation through."""
        self.passes += 1
        loop = asyncio.get_running_loop()
        metrics.WORKQUEUE_DEPTH.inc()  # waiting for a thread of the pool, then running
        try:
            running = loop.run_in_executor(self._pool, self._run_pass, namespace, name)
            cancelled = False
            while not running.done():
                try:
                    await asyncio.wait({running})
                except asyncio.CancelledError:
                    cancelled = True
        finally:
            metrics.WORKQUEUE_DEPTH.dec()
        if cancelled:
            raise asyncio.CancelledError
        return running.result()
