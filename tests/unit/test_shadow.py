"""The shadow strategy: mirror only to a ready shadow, weight 0 throughout, the verdict from
readiness and restarts, then the `then` strategy; failure removes every trace."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from nonstop.plan.model import REVISION_LABEL
from nonstop.traffic import read_mirror_percent, read_weights
from tests.sim import World, http_route, rollout_raw


def shadow_world(then: dict[str, Any], **mirror: Any) -> World:
    strategy = {
        "shadow": {
            "duration": "30s",
            "mirror": {"percent": 50, **mirror},
            "replicas": 2,
            "then": then,
        }
    }
    world = World(rollout_raw(replicas=4, deadline=60, strategy=strategy, route="web"))
    world.route = http_route()
    world.run_until("Healthy")
    return world


CANARY_THEN = {"canary": {"steps": [{"setWeight": 50}]}}


def mirror_of(world: World, service: str = "web-canary") -> float:
    assert world.route is not None
    return read_mirror_percent(world.route, service)


def until_mirrored(world: World) -> None:
    """Passes until the route mirrors to the shadow."""
    for _ in range(10):
        world.step()
        world.now += timedelta(seconds=2)
        if mirror_of(world):
            return
    raise AssertionError(f"never mirrored; last: {world.status.message}")


def live_weight(world: World, service: str = "web-canary") -> float:
    assert world.route is not None
    weights = read_weights(world.route, "web", service)
    assert weights is not None
    return weights[1]


def test_shadow_mirrors_safe_methods_to_a_ready_shadow_then_the_canary_completes() -> None:
    world = shadow_world(CANARY_THEN)
    original = copy.deepcopy(world.route)
    stable = world.revision
    world.set_image("web:2")
    mirrored_at = None
    for _ in range(40):
        world.step()
        if mirror_of(world) > 0:
            mirrored_at = mirrored_at or world.now
            assert live_weight(world) == 0  # users only get stable's answers
            shadow = next(d for d in world.deps.values() if d.revision == world.revision)
            assert shadow.ready == 2
        if world.status.shadow and world.status.shadow.passed_at:
            break
        world.now += timedelta(seconds=2)
    assert mirrored_at is not None
    assert world.status.shadow is not None and world.status.shadow.passed_at is not None
    assert world.status.shadow.passed_at - mirrored_at >= timedelta(seconds=30)
    rules = [r.get("name") for r in world.route["spec"]["rules"]]  # type: ignore[index]
    assert "nonstop-mirror-get-0" not in rules  # the mirror leaves as the canary starts
    reasons = [e.reason for h in world.history for e in h.events]
    assert "ShadowStarted" in reasons and "ShadowPassed" in reasons
    world.run_until("Healthy")
    assert world.status.stable_revision == world.revision != stable
    assert world.route is not None and original is not None
    assert world.route["spec"] == original["spec"]


def test_while_mirroring_the_route_has_one_mirror_rule_per_safe_method() -> None:
    world = shadow_world(CANARY_THEN)
    world.set_image("web:2")
    until_mirrored(world)
    world.step()  # status says what the route read back shows
    assert world.route is not None
    names = [r.get("name") for r in world.route["spec"]["rules"]]
    assert names == [
        "nonstop-mirror-get-0",
        "nonstop-mirror-head-0",
        "nonstop-mirror-options-0",
        None,
    ]
    get_rule = world.route["spec"]["rules"][0]
    assert get_rule["matches"][0]["method"] == "GET"
    mirror = get_rule["filters"][-1]["requestMirror"]
    assert mirror["percent"] == 50 and mirror["backendRef"]["name"] == "web-canary"
    assert world.status.weights is not None and world.status.weights.mirror == 50
    assert world.status.phase == "Progressing"


def test_a_shadow_that_turns_unready_fails_and_leaves_no_trace() -> None:
    world = shadow_world(CANARY_THEN)
    stable = world.revision
    world.set_image("web:2")
    until_mirrored(world)
    world.never_ready.add(world.revision)  # the shadow's pods turn unready
    world.settle()
    decision = world.step()
    assert mirror_of(world) == 0  # gone in the first write
    assert world.status.abort is not None and world.status.abort.reason == "ShadowFailed"
    assert "ShadowFailed" in [e.reason for e in decision.events]
    world.run(5)
    assert world.replicas_by_revision()[world.revision] == 0
    assert world.replicas_by_revision()[stable] == 4
    assert world.route is not None and world.route["spec"] == http_route()["spec"]
    assert world.services["web"].selector[REVISION_LABEL] == stable


def test_a_restart_fails_the_shadow() -> None:
    world = shadow_world(CANARY_THEN)
    world.set_image("web:2")
    until_mirrored(world)
    world.restarts += 1
    world.step()
    assert world.status.abort is not None and "restart" in world.status.abort.message


def test_shadow_then_blue_green_uses_the_preview_service() -> None:
    then = {"blueGreen": {"previewService": "web-preview", "autoPromotion": {"afterSeconds": 0}}}
    world = shadow_world(then)
    stable = world.revision
    world.set_image("web:2")
    mirrored = False
    for _ in range(80):
        world.step()
        mirrored = mirrored or mirror_of(world, "web-preview") > 0
        world.now += timedelta(seconds=2)
        if world.status.phase == "Healthy" and world.status.stable_revision == world.revision:
            break
    assert mirrored
    assert world.services["web"].selector[REVISION_LABEL] == world.revision != stable
    assert world.route is not None and world.route["spec"] == http_route()["spec"]


def test_mirroring_writes_needs_the_opt_in_and_then_mirrors_every_method() -> None:
    world = shadow_world(
        CANARY_THEN,
        methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
        allowUnsafeMethods=True,
    )
    world.set_image("web:2")
    until_mirrored(world)
    assert world.route is not None
    names = [r.get("name") for r in world.route["spec"]["rules"]]
    assert "nonstop-mirror-post-0" in names


SHADOW_ERRORS = {
    "name": "shadow-errors",
    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "e{{revision}}"}},
    "interval": "5s",
    "count": 3,
    "failureCondition": "result > 0.01",
}


def analysed_world() -> World:
    strategy = {
        "shadow": {
            "duration": "10s",
            "replicas": 2,
            "analysis": {"metrics": [SHADOW_ERRORS]},
            "then": CANARY_THEN,
        }
    }
    world = World(rollout_raw(replicas=4, deadline=60, strategy=strategy, route="web"))
    world.route = http_route()
    world.run_until("Healthy")
    world.set_image("web:2")
    return world


def test_shadow_analysis_failing_fails_the_phase() -> None:
    world = analysed_world()
    world.metrics["shadow-errors"] = 0.2
    world.run(15)
    assert world.status.abort is not None and world.status.abort.reason == "ShadowFailed"
    assert "shadow-errors" in world.status.abort.message
    assert mirror_of(world) == 0
    assert world.measured and world.measured[0].variables["revision"] == world.revision


def test_shadow_analysis_passing_hands_over_to_then() -> None:
    world = analysed_world()
    world.metrics["shadow-errors"] = 0.0
    world.run_until("Healthy", limit=300)
    assert world.status.stable_revision == world.revision
    assert world.status.shadow is not None and world.status.shadow.passed_at is not None
    shadow_run = next(r for r in world.status.analysis_runs if r.name == "shadow")
    assert shadow_run.phase == "Successful"
