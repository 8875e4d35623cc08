"""One writer per Rollout: a long-lived asyncio task runs its passes one after another.

Events on the Rollout or its Deployments only wake the task early; the task itself decides
when to run next (the plan's requeue_after). A failing pass is logged and retried with
backoff; it never stops the task or the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("nonstop.workers")

Key = tuple[str, str]  # (namespace, name)
Pass = Callable[[str, str], float | None]  # sync; returns seconds to next pass, None: gone

MAX_BACKOFF = 60.0
DEBOUNCE = 0.2


@dataclass
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Workers:
    def __init__(self, run_pass: Pass) -> None:
        self._run_pass = run_pass
        self._workers: dict[Key, _Worker] = {}

    def wake(self, key: Key) -> None:
        worker = self._workers.get(key)
        if worker is None or worker.task is None or worker.task.done():
            worker = _Worker()
            self._workers[key] = worker
            worker.task = asyncio.create_task(
                self._loop(key, worker), name=f"rollout/{key[0]}/{key[1]}"
            )
        worker.wake.set()

    def forget(self, key: Key) -> None:
        worker = self._workers.pop(key, None)
        if worker and worker.task:
            worker.task.cancel()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    async def _loop(self, key: Key, worker: _Worker) -> None:
        namespace, name = key
        failures = 0
        while True:
            await asyncio.sleep(DEBOUNCE)  # let a burst of events settle into one pass
            worker.wake.clear()
            try:
                delay = await asyncio.to_thread(self._run_pass, namespace, name)
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
            if delay is None:
                self._workers.pop(key, None)
                return
            with contextlib.suppress(TimeoutError):  # woken early, or time for the next pass
                await asyncio.wait_for(worker.wake.wait(), timeout=delay)
