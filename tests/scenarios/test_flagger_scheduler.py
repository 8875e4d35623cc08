"""Scenarios ported from Flagger's scheduler tests (fluxcd/flagger,
pkg/controller/scheduler_deployment_test.go and scheduler_svc_test.go), run in the simulated
world. Flagger advances a canary by a fixed step weight per analysis interval and judges it
by metric checks; nonstop's equivalent is a step list with analysis steps, so each scenario
keeps the behaviour Flagger checks and spells it in nonstop's terms."""

from __future__ import annotations

from tests.scenarios.conftest import (
    at_step,
    canary_world,
    condition_reason,
    metric,
    mirrored,
    new_image,
    pods,
    selects,
    shadow_world,
    until,
    wait,
    weights,
)
from tests.sim import World, http_route


def route_is_the_users(world: World) -> bool:
    assert world.route is not None
    return bool(world.route["spec"] == http_route()["spec"])


def test_failed_metric_checks_roll_the_routed_canary_back() -> None:
    """Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentRollback:
    metric checks that fail mark the canary Failed and keep the primary. Here an analysis
    step fails at 10%: the route is given back to the user as written (all traffic to the
    stable Service), both Services select the stable revision, the canary goes to 0 (after
    the scale-down delay) and status says AnalysisFailed."""
    steps = [{"setWeight": 10}, {"analysis": {"metrics": [metric()]}}, {"setWeight": 50}]
    world = canary_world(steps, route=True)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.3
    world.run_until("Degraded", seconds=1)
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"
    assert route_is_the_users(world)
    wait(world, 40)
    assert (pods(world, canary), pods(world, stable)) == (0, 4)
    assert (selects(world), selects(world, "web-canary")) == (stable, stable)
    assert world.status.stable_revision == stable


def test_promote_full_skips_the_analysis() -> None:
    """Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentSkipAnalysis:
    with skipAnalysis the new revision is promoted without running the checks. nonstop's
    promoteFull skips every remaining step, analysis steps included: no measurement is taken
    even though the metric would fail, and the route ends as the user wrote it. (As in
    Flagger, the new revision is picked up by a pass before the promotion comes.)"""
    steps = [
        {"setWeight": 10},
        {"analysis": {"metrics": [metric()]}},
        {"setWeight": 50},
        {"analysis": {"metrics": [metric()]}},
    ]
    world = canary_world(steps, route=True)
    new = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.3
    world.step()
    name = world.request("promoteFull")
    world.run_until("Healthy")
    assert world.answer(name).phase == "Applied"
    assert world.status.stable_revision == new
    assert world.measured == []
    assert route_is_the_users(world)


def test_step_weights_are_applied_in_order() -> None:
    """Flagger pkg/controller/scheduler_svc_test.go TestScheduler_ServicePromotionWithWeightsHappyCase:
    stepWeights 1, 2, 10, 80 give the primary 99, 98, 90, 20 in that order; then everything
    goes to the new revision and back to the primary Service. Here: setWeight steps on 10
    replicas, the route read back each pass."""
    steps = [{"setWeight": 1}, {"setWeight": 2}, {"setWeight": 10}, {"setWeight": 80}]
    world = canary_world(steps, route=True, replicas=10)
    new = new_image(world, "web:2")
    seen: list[tuple[float, float]] = []
    for _ in range(60):
        world.run(1)
        if not seen or seen[-1] != weights(world):
            seen.append(weights(world))
        if world.status.phase == "Healthy":
            break
    assert seen == [(100, 0), (99, 1), (98, 2), (90, 10), (20, 80), (0, 100), (100, 0)]
    assert world.status.stable_revision == new and route_is_the_users(world)


def test_mirroring_comes_before_any_live_weight() -> None:
    """Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentMirroring:
    first the canary only gets mirrored traffic (primary 100, canary 0, mirrored), then live
    weight without the mirror (90/10, not mirrored). nonstop's shadow strategy then canary:
    the mirror and a live weight are never in the route at the same time."""
    world = shadow_world({"canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}})
    new_image(world, "web:2")
    seen: list[tuple[float, float]] = []
    for _ in range(60):
        world.run(1)
        state = (mirrored(world), weights(world)[1])
        assert not (state[0] and state[1]), "mirrored and weighted at once"
        if not seen or seen[-1] != state:
            seen.append(state)
        if world.status.phase == "Paused" and weights(world)[1] > 0:
            break
    assert seen == [(0, 0), (50, 0), (0, 0), (0, 10)]
    assert condition_reason(world, "Paused") == "StepPaused"


def test_a_header_only_canary_gets_matching_requests_then_is_promoted() -> None:
    """Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentABTesting:
    A/B testing routes the requests that match a header to the canary only (canary 100 for
    them) while everyone else stays on the primary; after its iterations the canary is
    promoted and the primary serves the new version. Here: setHeaderRoute then pause (weight
    0 for everyone else, one canary pod to answer), promote, Healthy, the route the user's."""
    steps = [
        {
            "setHeaderRoute": {
                "name": "insider",
                "match": [{"name": "x-canary", "exact": "insider"}],
            }
        },
        {"pause": {}},
    ]
    world = canary_world(steps, route=True)
    new = new_image(world, "web:2")
    until(world, at_step(world, 1))
    assert weights(world) == (100, 0)
    assert world.route is not None
    rule = world.route["spec"]["rules"][0]
    assert rule["name"] == "nonstop-header-insider-0"
    assert [b["name"] for b in rule["backendRefs"]] == ["web-canary"]
    assert pods(world, new) == 1
    world.request("promote")
    world.run_until("Healthy")
    assert world.status.stable_revision == new and route_is_the_users(world)


def test_weights_set_by_hand_do_not_change_where_the_steps_go() -> None:
    """Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentPromotion:
    the routes are set to 60/40 behind the scheduler's back and the canary still ends promoted
    with the primary at 100. nonstop puts its own weight back on the next pass (the route is
    re-read every pass) and the steps carry on to the end."""
    world = canary_world([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}], route=True)
    new = new_image(world, "web:2")
    world.run_until("Paused")
    assert world.route is not None
    rule = world.route["spec"]["rules"][0]
    rule["backendRefs"][0]["weight"], rule["backendRefs"][1]["weight"] = 6000, 4000
    assert weights(world) == (60, 40)
    world.run(1)
    assert weights(world) == (90, 10)
    world.request("promote")
    world.run_until("Healthy")
    assert world.status.stable_revision == new
    assert weights(world) == (100, 0) and route_is_the_users(world)
