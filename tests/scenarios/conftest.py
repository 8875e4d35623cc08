"""Shared Given/When helpers of the scenario suite ported from peers (issue 9).

Every scenario runs in the in-memory world of tests/sim.py: the planner pass after pass, the
Deployment, ReplicaSet and EndpointSlice controllers played just enough. The helpers here only
build worlds and read what a user would look at (pods by revision, the route's weights, which
revision a Service selects, the Events); they never look inside the planner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from nonstop.plan import Observed
from nonstop.plan.model import REVISION_LABEL
from nonstop.traffic import read_mirror_percent, read_weights
from tests.sim import World, http_route, rollout_raw

PASS = 2.0  # seconds between passes while a rollout runs, as the operator requeues


def metric(name: str = "error-rate", **extra: Any) -> dict[str, Any]:
    """A Prometheus metric whose value the world answers from World.metrics[name]."""
    return {
        "name": name,
        "provider": {
            "prometheus": {"address": "http://127.0.0.1:9", "query": f"{name}{{{{revision}}}}"}
        },
        "interval": "5s",
        "count": 3,
        "failureCondition": "result > 0.05",
        **extra,
    }


def healthy(world: World) -> World:
    """The first revision goes straight to full size."""
    world.run_until("Healthy")
    return world


def rolling_world(replicas: int = 4, **kwargs: Any) -> World:
    return healthy(World(rollout_raw(replicas=replicas, **kwargs)))


def canary_world(
    steps: Sequence[object],
    replicas: int = 4,
    deadline: int = 120,
    route: bool = False,
    **canary: Any,
) -> World:
    """A Healthy canary Rollout; with `route`, split by the user's HTTPRoute `web`."""
    strategy = {"canary": {"steps": list(steps), **canary}}
    raw = rollout_raw(
        replicas=replicas, deadline=deadline, strategy=strategy, route="web" if route else None
    )
    world = World(raw)
    if route:
        world.route = http_route()
    return healthy(world)


def blue_green_world(replicas: int = 4, deadline: int = 120, **blue_green: Any) -> World:
    strategy = {"blueGreen": {"previewService": "web-preview", **blue_green}}
    return healthy(World(rollout_raw(replicas=replicas, deadline=deadline, strategy=strategy)))


def shadow_world(then: dict[str, Any], replicas: int = 4) -> World:
    """A Healthy shadow Rollout: 2 shadow pods get 50% of the safe requests mirrored for 30 s,
    then the `then` strategy."""
    strategy = {
        "shadow": {"duration": "30s", "mirror": {"percent": 50}, "replicas": 2, "then": then}
    }
    world = World(rollout_raw(replicas=replicas, deadline=60, strategy=strategy, route="web"))
    world.route = http_route()
    return healthy(world)


def mirrored(world: World) -> float:
    """The share (%) of requests the route mirrors to the canary Service."""
    assert world.route is not None
    return read_mirror_percent(world.route, "web-canary")


def new_image(world: World, image: str, never_ready: bool = False) -> str:
    """A new template (the revision that starts rolling out); returns its revision."""
    world.set_image(image)
    if never_ready:
        world.never_ready.add(world.revision)
    return world.revision


def spec_change(world: World, **fields: Any) -> None:
    """A change of spec fields other than the template, as `kubectl patch` makes it."""
    world.raw["spec"].update(fields)
    world.raw["metadata"]["generation"] += 1


def scale(world: World, replicas: int) -> None:
    spec_change(world, replicas=replicas)


def pods(world: World, revision: str) -> int:
    """Pods the revision's Deployment asks for (0 when it has none, or no Deployment)."""
    return world.replicas_by_revision().get(revision, 0)


def weights(world: World) -> tuple[float, float]:
    """(stable, canary) shares (%) as the HTTPRoute shows them."""
    assert world.route is not None
    shares = read_weights(world.route, "web", "web-canary")
    assert shares is not None
    return shares


def selects(world: World, service: str = "web") -> str:
    """The revision a Service nonstop owns selects."""
    return world.services[service].selector[REVISION_LABEL]


def phase(world: World) -> str | None:
    """The phase now (a call, so that a type checker does not carry an earlier value over)."""
    return world.status.phase


def condition_reason(world: World, kind: str) -> str:
    found = world.status.condition(kind)
    assert found is not None, f"no {kind} condition"
    return found.reason


def reasons(world: World, since: int = 0) -> list[str]:
    """Reasons of the Events posted from pass `since` on, in order."""
    return [event.reason for plan in world.history[since:] for event in plan.events]


def until(world: World, done: Callable[[], bool], limit: int = 200, seconds: float = PASS) -> None:
    """Passes until `done()` holds after one; fails with the last message if it never does."""
    for _ in range(limit):
        world.step()
        world.now += timedelta(seconds=seconds)
        if done():
            return
    raise AssertionError(f"condition never met; last: {world.status.message}")


def at_step(world: World, index: int, wanted: str = "Paused") -> Callable[[], bool]:
    """The canary is at step `index` and in phase `wanted`."""
    return lambda: world.status.current_step_index == index and world.status.phase == wanted


def wait(world: World, seconds: float, every: float = PASS) -> None:
    """Time passes, with a pass every `every` seconds."""
    for _ in range(round(seconds / every)):
        world.step()
        world.now += timedelta(seconds=every)


def promote_to(world: World, index: int, verb: str = "promote") -> None:
    """A promote, then passes until the canary waits at step `index`."""
    world.request(verb)
    until(world, at_step(world, index))


@dataclass
class MinReadyWorld(World):
    """A world whose Deployments honour minReadySeconds as the Deployment controller does: a
    pod counts as available only once it has been ready for `min_ready` seconds. (Ready pods
    are listed in the EndpointSlices at once, as Kubernetes lists them.) It answers both ways
    the world reports a Deployment's available pods: `available()` and the observed views."""

    min_ready: float = 0.0

    def available(self, name: str) -> int:
        dep = self.deps[name]
        grown = sum(
            1 for born in dep.pod_birth if born + timedelta(seconds=self.min_ready) <= self.now
        )
        return min(dep.ready, grown)

    def available_total(self) -> int:
        return sum(self.available(name) for name in self.deps)

    def observed(self) -> Observed:
        observed = super().observed()
        deployments = tuple(
            replace(d, available_replicas=self.available(d.name)) for d in observed.deployments
        )
        return replace(observed, deployments=deployments)
