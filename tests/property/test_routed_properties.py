"""Invariants of the canary planner with a Gateway API route (hypothesis): whatever the
steps, the readiness of the canary's pods, promotions and aborts, every pass keeps them."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nonstop.plan.model import REVISION_LABEL
from nonstop.traffic import read_weights
from tests.sim import World, http_route, rollout_raw

STEP = st.one_of(
    st.one_of(st.integers(0, 100), st.sampled_from([0.5, 2.25, 99.9])).map(
        lambda w: {"setWeight": w}
    ),
    st.sampled_from([{"pause": {"duration": "4s"}}, {"pause": {}}]),
    st.integers(0, 6).map(lambda n: {"setCanaryScale": {"replicas": n}}),
    st.just({"setHeaderRoute": {"name": "beta", "match": [{"name": "x-beta", "exact": "1"}]}}),
)

# what happens between two passes
EVENT = st.sampled_from(["nothing", "nothing", "nothing", "promote", "unready", "ready", "abort"])


def route_canary(world: World) -> float:
    assert world.route is not None
    weights = read_weights(world.route, "web", "web-canary")
    assert weights is not None
    return weights[1]


def header_rules(world: World) -> int:
    assert world.route is not None
    return sum(1 for r in world.route["spec"]["rules"] if r.get("name", "").startswith("nonstop"))


def canary_serves(world: World) -> bool:
    """The canary Service selects the revision being rolled out and has ready endpoints."""
    service = world.services.get("web-canary")
    if service is None or service.selector.get(REVISION_LABEL) != world.revision:
        return False
    return world.endpoints(service) > 0


def in_steps(world: World, total: int) -> bool:
    """The rollout is in its steps (not switching to the new revision at the end): pods that
    fail after the switch fail the stable Service, and no planner can prevent that."""
    index = world.status.current_step_index
    return (
        world.status.current_revision == world.revision
        and world.status.stable_revision != world.revision
        and index is not None
        and index < total
    )


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(STEP, min_size=1, max_size=6),
    replicas=st.integers(1, 6),
    events=st.lists(EVENT, min_size=10, max_size=80),
)
def test_every_pass_keeps_weights_whole_traffic_on_ready_pods_and_steps_forward(
    steps: list[dict[str, Any]], replicas: int, events: list[str]
) -> None:
    world = World(
        rollout_raw(replicas=replicas, strategy={"canary": {"steps": steps}}, route="web")
    )
    world.route = http_route()
    original = copy.deepcopy(world.route["spec"])
    world.run_until("Healthy")
    stable = world.revision
    world.set_image("web:2")
    last_index = 0
    for event in events:
        if event == "promote":
            world.request("promote")
        elif event == "abort":
            world.request("abort")
        elif event == "unready" and in_steps(world, len(steps)):
            world.never_ready.add(world.revision)  # the canary's pods turn unready
        elif event == "ready":
            world.never_ready.discard(world.revision)
        # checked against what the pass saw; pods that change after it are the next pass's
        decision = world.step(settle=False)
        world.now += timedelta(seconds=2)

        weights = decision.status.weights
        assert weights is not None
        assert 0 <= weights.canary <= 100 and 0 <= weights.stable <= 100
        assert abs(weights.stable + weights.canary - 100) < 1e-9
        canary = route_canary(world)
        assert 0 <= canary <= 100
        if canary > 0 or header_rules(world):  # live traffic only to ready canary pods
            assert canary_serves(world)
        if world.status.abort is not None:  # abort: all traffic to stable, at once
            assert canary == 0 and header_rules(world) == 0
            assert world.services["web"].selector[REVISION_LABEL] == stable
        index = world.status.current_step_index
        if index is not None and world.status.current_revision == world.revision:
            assert index >= last_index  # never back within a revision
            last_index = index
        assert world.endpoints(world.services["web"]) >= replicas  # stable never below
        world.settle()

    # convergence: with every pod ready and a person promoting, it ends, and the route is
    # the user's again
    world.never_ready.clear()
    for n in range(400):
        if n % 5 == 0:
            world.request("promote")
        world.step()
        world.now += timedelta(seconds=2)
        stalled = world.status.condition("Stalled")
        done = world.status.phase == "Healthy" or (stalled and stalled.status == "True")
        pods = [n for n in world.replicas_by_revision().values() if n]
        if done and pods == [replicas]:
            break
    assert world.route is not None and world.route["spec"] == original
    serving = world.status.stable_revision
    assert serving in (stable, world.revision)
    assert world.services["web"].selector[REVISION_LABEL] == serving
    assert {r: n for r, n in world.replicas_by_revision().items() if n} == {serving: replicas}
