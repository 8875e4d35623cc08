"""The per-Rollout workers with real asyncio and real threads: passes block on a
threading.Event, so a test can hold a pass open while events arrive, and a counter of the
passes that run at the same moment shows when a key has two writers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from nonstop import workers as workers_module
from nonstop.workers import Workers

KEY = ("team-a", "web")


@pytest.fixture(autouse=True)
def short_debounce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_module, "DEBOUNCE", 0.01)


class Passes:
    """A pass function whose passes wait for `release` (when `hold` is set), counting how many
    run at once. `answers` are the return values of the passes, in order (then `default`)."""

    def __init__(self, answers: list[float | None] | None = None, default: float | None = 30.0):
        self.release = threading.Event()
        self.hold = True
        self.started = threading.Semaphore(0)
        self.answers = list(answers or [])
        self.default = default
        self.calls = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, namespace: str, name: str) -> float | None:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
            answer = self.answers.pop(0) if self.answers else self.default
        self.started.release()
        try:
            if self.hold:
                assert self.release.wait(10), "a pass was never released"
        finally:
            with self._lock:
                self.running -= 1
        return answer

    async def wait_started(self, timeout: float = 5) -> None:
        assert await asyncio.to_thread(self.started.acquire, True, timeout), "no pass started"


async def until(check: Callable[[], bool], timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_forget_then_wake_never_runs_two_passes_of_one_key_at_once() -> None:
    """The Rollout is deleted (forget) and created again (wake) while a pass runs in its
    thread: the new wake must reuse the worker that is finishing, not start a second one."""
    passes = Passes()

    async def scenario() -> None:
        workers = Workers(passes)
        workers.wake(KEY)
        await passes.wait_started()
        workers.forget(KEY)
        await asyncio.sleep(0)
        workers.wake(KEY)
        await asyncio.sleep(0.3)  # ample time for a second pass to start, were it allowed to
        assert passes.running == 1
        passes.release.set()
        await until(lambda: passes.calls == 2)  # the wake after the forget is not lost
        await workers.stop()

    asyncio.run(scenario())
    assert passes.most == 1


def test_stop_returns_only_once_no_pass_runs() -> None:
    """Before the lease is released on shutdown, every pass must have ended: stop() waits
    for the passes in their threads instead of abandoning them."""
    passes = Passes()

    async def scenario() -> None:
        workers = Workers(passes)
        workers.wake(KEY)
        await passes.wait_started()
        stopping = asyncio.create_task(workers.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done(), "stop() returned while a pass was still running"
        passes.release.set()
        await asyncio.wait_for(stopping, 5)
        assert passes.running == 0
        workers.wake(KEY)  # stopped for good: no new pass
        await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert passes.calls == 1


def test_a_wake_during_a_pass_that_found_nothing_runs_another_pass() -> None:
    """A Deployment's event starts a pass that finds no Rollout yet (None); the Rollout's
    first event arrives during that pass: it must get a pass of its own."""
    passes = Passes(answers=[None], default=30.0)

    async def scenario() -> None:
        workers = Workers(passes)
        workers.wake(KEY)  # the Deployment's event
        await passes.wait_started()
        workers.wake(KEY)  # the Rollout's first event, while the pass runs
        passes.release.set()
        await until(lambda: passes.calls == 2)
        await workers.stop()

    asyncio.run(scenario())
    assert passes.calls == 2
    assert passes.most == 1


def test_a_worker_whose_rollout_is_gone_ends_without_another_pass() -> None:
    passes = Passes(answers=[None])
    passes.hold = False

    async def scenario() -> None:
        workers = Workers(passes)
        workers.wake(KEY)
        await until(lambda: passes.calls == 1)
        await asyncio.sleep(0.2)
        assert KEY not in workers.active_keys()

    asyncio.run(scenario())
    assert passes.calls == 1


def test_the_gate_keeps_workers_idle_and_close_all_stops_them_at_once() -> None:
    """Without the lease (may_run False) no pass starts; when it is lost, close_all ends the
    waiting workers at once and the running pass is the last one."""
    passes = Passes()
    leading = False

    async def scenario() -> None:
        nonlocal leading
        workers = Workers(passes, may_run=lambda: leading)
        workers.wake(KEY)
        await asyncio.sleep(0.2)
        assert passes.calls == 0 and not workers.active_keys()

        leading = True
        workers.wake(KEY)
        workers.wake(("team-a", "api"))
        await passes.wait_started()
        await passes.wait_started()
        passes.release.set()  # both passes end and their workers wait 30 s for the next
        await until(lambda: passes.running == 0)

        leading = False
        workers.close_all()
        await until(lambda: not workers.active_keys(), timeout=1)
        workers.wake(KEY)
        await asyncio.sleep(0.2)

    asyncio.run(scenario())
    assert passes.calls == 2


def test_the_gate_is_asked_before_every_pass_not_only_on_wake() -> None:
    """The lease can be lost while a worker sleeps until its next pass: that pass must not
    start."""
    passes = Passes(default=0.05)
    passes.hold = False
    leading = True

    async def scenario() -> None:
        nonlocal leading
        workers = Workers(passes, may_run=lambda: leading)
        workers.wake(KEY)
        await until(lambda: passes.calls >= 2)
        leading = False
        seen = passes.calls
        await asyncio.sleep(0.3)
        assert passes.calls <= seen + 1  # at most the pass that was already starting
        assert not workers.active_keys()

    asyncio.run(scenario())


def test_a_task_cancelled_from_outside_keeps_its_key_until_its_pass_ends() -> None:
    """Cancelling the asyncio task does not stop the pass in its thread (asyncio.to_thread):
    the worker must stay registered until the pass has returned, so that no wake starts a
    second pass meanwhile."""
    passes = Passes()

    async def scenario() -> None:
        workers = Workers(passes)
        workers.wake(KEY)
        await passes.wait_started()
        for task in asyncio.all_tasks():
            if task.get_name() == f"rollout/{KEY[0]}/{KEY[1]}":
                task.cancel()
        await asyncio.sleep(0.05)
        workers.wake(KEY)
        await asyncio.sleep(0.3)
        assert passes.running == 1 and passes.calls == 1
        passes.release.set()
        await until(lambda: passes.calls == 2)  # the wake was kept for after the pass
        await workers.stop()

    asyncio.run(scenario())
    assert passes.most == 1


def test_a_pass_that_keeps_asking_to_run_at_once_is_slowed_to_one_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A state that never settles (each pass asks for another at once) must not spin: after
    QUICK_IN_A_ROW such passes in a row, the worker waits QUICK between passes."""
    monkeypatch.setattr(workers_module, "QUICK", 0.3)
    monkeypatch.setattr(workers_module, "QUICK_IN_A_ROW", 5)
    passes = Passes(default=0.0)
    passes.hold = False

    async def scenario() -> None:
        workers = Workers(passes)
        workers.wake(KEY)
        await asyncio.sleep(1.0)
        await workers.stop()

    asyncio.run(scenario())
    # 6 passes at once, then one per 0.3 s: about 8 or 9 in a second, not hundreds
    assert 6 <= passes.calls <= 12, passes.calls


def test_a_rollout_nothing_wakes_is_passed_again_after_the_resync() -> None:
    """Nothing due (the plan asks for a pass in 300 s) and no event: the resync still
    brings a pass, the guard against a watch event that never came."""
    passes = Passes(default=300.0)
    passes.hold = False

    async def scenario() -> None:
        workers = Workers(passes, resync=0.2)
        workers.wake(KEY)
        await until(lambda: passes.calls >= 3, timeout=3)
        await workers.stop()

    asyncio.run(scenario())
