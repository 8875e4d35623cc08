"""The canary strategy with a Gateway API HTTPRoute: weights per step, traffic only to ready
pods, the switch at the end, abort, header routes, drift, and a route that is missing."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from nonstop.plan.model import REVISION_LABEL, UpdateRoute
from nonstop.traffic import read_weights
from tests.sim import World, http_route, rollout_raw

FIVE_STEPS: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"setWeight": 25},
    {"pause": {}},
    {"setWeight": 50},
    {"setWeight": 80},
]


def routed_world(
    steps: list[dict[str, Any]] = FIVE_STEPS, deadline: int = 120, replicas: int = 4
) -> World:
    strategy = {"canary": {"steps": steps}}
    world = World(rollout_raw(replicas=replicas, deadline=deadline, strategy=strategy, route="web"))
    world.route = http_route()
    world.run_until("Healthy")
    return world


def canary_weight(world: World) -> float:
    assert world.route is not None
    weights = read_weights(world.route, "web", "web-canary")
    assert weights is not None
    return weights[1]


def canary_ready(world: World) -> int:
    return sum(d.ready for d in world.deps.values() if d.revision == world.revision)


def run(world: World, passes: int, check: Any = None) -> None:
    for _ in range(passes):
        world.step()
        world.now += timedelta(seconds=2)
        if check:
            check()


def test_first_revision_leaves_the_route_as_the_user_wrote_it() -> None:
    world = routed_world()
    assert world.route == {**http_route(), "metadata": world.route["metadata"]}  # type: ignore[index]
    assert world.services["web"].selector[REVISION_LABEL] == world.revision
    assert world.services["web-canary"].selector[REVISION_LABEL] == world.revision


def test_each_step_sets_its_weight_and_the_end_gives_the_route_back() -> None:
    world = routed_world()
    original = copy.deepcopy(world.route)
    stable = world.revision
    world.set_image("web:2")
    weights: dict[int, float] = {}

    def check() -> None:
        weight = canary_weight(world)
        if weight > 0:  # traffic only to ready canary pods
            assert canary_ready(world) > 0
        assert world.ready_total() >= 4
        assert world.services["web"].selector[REVISION_LABEL] in (stable, world.revision)
        assert world.route is not None
        assert (
            world.route["spec"]["rules"][-1]["filters"] == original["spec"]["rules"][0]["filters"]
        )  # type: ignore[index]
        index = world.status.current_step_index
        if index is not None and world.status.phase != "Healthy":
            weights.setdefault(index, weight)

    run(world, 30, check)
    assert world.status.phase == "Paused"
    assert world.status.current_step_index == 2
    # a step's weight is read back from the route once its pods are ready
    assert weights[1] == 10 and weights[2] == 25
    assert world.status.weights is not None and world.status.weights.canary == 25
    assert world.replicas_by_revision() == {stable: 4, world.revision: 1}  # ceil(25% of 4)

    world.request("promote")
    for _ in range(60):
        world.step()
        world.now += timedelta(seconds=2)
        check()
        if world.status.phase == "Healthy":
            break
    assert world.status.phase == "Healthy"
    assert weights[4] == 50 and weights[5] == 80
    assert world.status.stable_revision == world.revision
    assert world.services["web"].selector[REVISION_LABEL] == world.revision
    assert world.route is not None and world.route["spec"] == original["spec"]  # type: ignore[index]
    assert world.route["metadata"].get("annotations") is None
    # the old revision keeps its pods scaleDownDelaySeconds (30 s) after it lost its traffic
    assert world.replicas_by_revision()[stable] == 4
    world.run(16)
    assert world.replicas_by_revision()[stable] == 0


def test_the_stable_service_switches_only_once_the_canary_takes_all_traffic() -> None:
    world = routed_world(steps=[{"setWeight": 50}])
    stable = world.revision
    world.set_image("web:2")
    switched_at_weight = None
    for _ in range(40):
        decision = world.step()
        world.now += timedelta(seconds=2)
        switch = [
            a
            for a in decision.actions
            if getattr(a, "body", {}).get("kind") == "Service"
            and a.body["metadata"]["name"] == "web"  # type: ignore[attr-defined]
        ]
        if switch and switched_at_weight is None:
            switched_at_weight = canary_weight(world)
            assert world.endpoints(world.services["web-canary"]) >= 4
        if world.status.phase == "Healthy":
            break
    assert switched_at_weight == 100
    assert world.services["web"].selector[REVISION_LABEL] == world.revision != stable


def test_a_canary_without_ready_pods_never_gets_weight_and_is_aborted() -> None:
    world = routed_world(deadline=30)
    world.set_image("web:broken")
    world.never_ready.add(world.revision)
    seen = []
    for _ in range(40):
        world.step()
        world.now += timedelta(seconds=2)
        seen.append(canary_weight(world))
        if world.status.phase == "Degraded" and world.replicas_by_revision()[world.revision] == 0:
            break
    assert set(seen) == {0.0}
    reasons = [h.status.condition("Paused") for h in world.history]
    assert any(c is not None and c.reason == "PodsNotReady" for c in reasons)  # paused first
    assert world.status.abort is not None
    assert world.status.abort.reason == "ProgressDeadlineExceeded"
    assert world.route is not None and world.route["spec"] == http_route()["spec"]


def test_abort_sends_all_traffic_to_stable_in_the_same_pass() -> None:
    world = routed_world()
    stable = world.revision
    world.set_image("web:2")
    run(world, 30)
    assert canary_weight(world) == 25
    world.request("abort", "bad canary")
    decision = world.step()
    routes = [a for a in decision.actions if isinstance(a, UpdateRoute)]
    assert routes and decision.actions[0] is routes[0]  # traffic first, then the pods
    assert canary_weight(world) == 0
    assert world.route is not None and world.route["spec"] == http_route()["spec"]
    world.run_until("Degraded")
    run(world, 5)
    assert world.replicas_by_revision() == {stable: 4, world.revision: 1}  # 30 s to drain
    world.run(12)
    assert world.replicas_by_revision() == {stable: 4, world.revision: 0}
    assert world.services["web"].selector[REVISION_LABEL] == stable
    assert world.status.weights is not None and world.status.weights.stable == 100


def test_someone_elses_change_to_the_weights_is_put_back() -> None:
    world = routed_world()
    world.set_image("web:2")
    run(world, 30)
    assert world.route is not None
    rule = world.route["spec"]["rules"][0]
    rule["backendRefs"][0]["weight"] = 10000
    rule["backendRefs"][1]["weight"] = 0
    assert canary_weight(world) == 0
    run(world, 1)
    assert canary_weight(world) == 25


def test_header_routes_go_to_the_canary_and_leave_with_it() -> None:
    steps: list[dict[str, Any]] = [
        {"setHeaderRoute": {"name": "testers", "match": [{"name": "x-canary", "exact": "yes"}]}},
        {"pause": {}},
        {"setWeight": 50},
    ]
    world = routed_world(steps=steps)
    world.set_image("web:2")
    run(world, 20)
    assert world.route is not None
    names = [r.get("name") for r in world.route["spec"]["rules"]]
    assert names == ["nonstop-header-testers-0", None]
    assert world.replicas_by_revision()[world.revision] == 1  # one pod to answer them
    world.request("promoteFull")
    world.run_until("Healthy")
    assert world.route["spec"] == http_route()["spec"]


def test_a_missing_route_stops_the_canary_and_changes_nothing() -> None:
    world = routed_world()
    world.set_image("web:2")
    world.route = None
    before = world.replicas_by_revision()
    decision = world.step()
    assert decision.actions == ()
    assert world.replicas_by_revision() == before
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.status == "True"
    assert stalled.reason == "HTTPRouteNotFound"
    assert "HTTPRoute default/web" in stalled.message


def test_a_route_without_the_stable_service_is_reported() -> None:
    world = routed_world()
    world.set_image("web:2")
    assert world.route is not None
    world.route["spec"]["rules"][0]["backendRefs"] = [{"name": "elsewhere", "port": 80}]
    run(world, 3)
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "HTTPRouteInvalid"
    assert "no rule with a backendRef to Service web" in stalled.message


def test_a_new_revision_mid_canary_takes_the_weight_away_first() -> None:
    world = routed_world()
    first = world.revision
    world.set_image("web:2")
    run(world, 30)
    second = world.revision
    assert canary_weight(world) == 25
    world.set_image("web:3")
    decision = world.step()
    assert canary_weight(world) == 0  # the canary Service is about to select web:3's pods
    names = [type(a).__name__ for a in decision.actions]
    assert names.index("UpdateRoute") < names.index("EnsureService")
    assert world.status.current_step_index == 0
    run(world, 10)
    assert world.replicas_by_revision()[second] == 1  # it lost its traffic: 30 s to drain
    world.run(10)
    assert world.replicas_by_revision()[second] == 0
    assert world.replicas_by_revision()[first] == 4
