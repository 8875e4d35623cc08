"""Benchmark of the pure planner: how long one reconcile decision takes, and how many passes
a whole rolling update needs, for several sizes. Prints figures; asserts nothing.

    make bench        (or: .venv/bin/python bench/planner.py)
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sim import World, rollout_raw

from nonstop.plan import plan
from nonstop.plan.views import rollout_view

# the in-memory world runs the real reconcile pass, which logs every action: not figures
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def time_one_pass(replicas: int, repeats: int = 2000) -> float:
    """Median microseconds of plan() in the middle of a rolling update."""
    world = World(rollout_raw(replicas=replicas, max_surge="25%"))
    world.run_until("Healthy")
    world.set_image("web:2")
    world.step(settle=False)
    view, observed = rollout_view(world.raw), world.observed()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan(view, observed, world.now)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def passes_to_finish(replicas: int, surge: int | str) -> int:
    world = World(rollout_raw(replicas=replicas, max_surge=surge))
    world.run_until("Healthy")
    world.set_image("web:2")
    world.history.clear()
    world.run_until("Healthy", limit=10_000)
    return len(world.history)


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    print(
        f"{'replicas':>8} {'plan() median':>14} {'passes (surge 1)':>17} {'passes (surge 25%)':>19}"
    )
    for replicas in (1, 4, 10, 50, 200):
        micros = time_one_pass(replicas)
        print(
            f"{replicas:>8} {micros:>11.0f} us {passes_to_finish(replicas, 1):>17}"
            f" {passes_to_finish(replicas, '25%'):>19}"
        )


if __name__ == "__main__":
    main()
