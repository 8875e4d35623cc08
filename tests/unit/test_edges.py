"""Edge behaviour found wrong in issue 9, each test named after the bug it proves fixed.

Every test here failed on the planner before issue 9 (checked by running this file against
the commit before the change)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from nonstop.api.spec import AnalysisTemplateSpec
from nonstop.plan.model import REVISION_LABEL, AnsweredAction, DeleteAction
from nonstop.plan.planner import forget_answered
from nonstop.traffic import read_weights
from tests.sim import World, http_route, rollout_raw
from tests.unit.test_toggle import toggle_world, weight

PROMETHEUS = {"prometheus": {"address": "http://127.0.0.1:9", "query": "rate({{revision}})"}}


def metric(name: str = "error-rate", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": PROMETHEUS,
        "interval": "5s",
        "count": 3,
        "failureCondition": "result > 0.05",
        **extra,
    }


def canary_weight(world: World) -> float:
    assert world.route is not None
    weights = read_weights(world.route, "web", "web-canary")
    return weights[1] if weights else 0.0


def routed_world(steps: list[dict[str, Any]], replicas: int = 4) -> World:
    strategy = {"canary": {"steps": steps}}
    world = World(rollout_raw(replicas=replicas, deadline=600, strategy=strategy, route="web"))
    world.route = http_route()
    world.run_until("Healthy")
    return world


def dep_of(world: World, revision: str) -> Any:
    return next(d for d in world.deps.values() if d.revision == revision)


# 1 ---------------------------------------------------------------------------------------


def test_bug1_a_completed_feature_toggle_keeps_the_flag_through_a_pod_blip() -> None:
    """Issue 9 bug 1: after a completed toggle rollout, one unready pod of the stable
    revision set the flag to 0% for every user."""
    world = toggle_world(steps=[{"setWeight": 50}])
    world.run_until("Healthy")
    assert weight(world) == 100
    dep_of(world, world.revision).ready -= 1  # one pod turns unready
    world.step(settle=False)
    world.step(settle=False)
    assert weight(world) == 100
    world.run(3)
    assert weight(world) == 100 and world.status.phase == "Healthy"


def test_bug1_a_completed_feature_toggle_keeps_the_flag_through_a_scale() -> None:
    """Issue 9 bug 1: `kubectl scale` (or an HPA resize) of a completed toggle rollout set
    the flag to 0%: a completed rollout never switches a feature off."""
    world = toggle_world(steps=[{"setWeight": 50}])
    world.run_until("Healthy")
    world.raw["spec"]["replicas"] = 8
    world.raw["metadata"]["generation"] += 1
    seen = []
    for _ in range(10):
        world.step()
        world.now += timedelta(seconds=2)
        seen.append(weight(world))
    assert set(seen) == {100}
    assert world.replicas_by_revision() == {world.revision: 8}
    assert world.status.phase == "Healthy"


# 2 ---------------------------------------------------------------------------------------


def test_bug2_retry_after_a_failed_step_analysis_starts_a_fresh_run() -> None:
    """Issue 9 bug 2: retry kept the failed run of the same revision and aborted again at
    once. A retry starts fresh runs."""
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [metric(count=1)]}}]
    world = World(rollout_raw(replicas=4, deadline=600, strategy={"canary": {"steps": steps}}))
    world.run_until("Healthy")
    world.set_image("web:2")
    world.metrics["error-rate"] = 0.5
    world.run_until("Degraded")
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"
    world.run(5)
    world.metrics["error-rate"] = 0.0
    world.request("retry")
    world.run_until("Healthy")
    assert world.status.stable_revision == world.revision
    (run,) = [r for r in world.status.analysis_runs if r.name == "step-1"]
    assert run.phase == "Successful"


# 3 ---------------------------------------------------------------------------------------


def test_bug3_an_inconclusive_background_analysis_holds_the_steps() -> None:
    """Issue 9 bug 3: an Inconclusive background analysis did not stop the steps: the canary
    reached 100% while the status said Paused/AnalysisInconclusive."""
    inconclusive = metric(count=1, successCondition="result < 0.01")  # 0.03: neither
    steps = [{"setWeight": 25}, {"pause": {"duration": "5s"}}, {"setWeight": 50}]
    world = routed_world(steps)
    world.set_image("web:2")
    world.raw["spec"]["strategy"]["canary"]["analysis"] = {"metrics": [inconclusive]}
    world.metrics["error-rate"] = 0.03
    weights = []
    for _ in range(40):
        world.step()
        world.now += timedelta(seconds=2)
        weights.append(canary_weight(world))
    assert max(weights) <= 25
    assert world.status.phase == "Paused"
    paused = world.status.condition("Paused")
    assert paused is not None and paused.reason == "AnalysisInconclusive"
    # a promote goes on (the held run starts afresh, and now passes)
    world.metrics["error-rate"] = 0.0
    world.request("promote")
    world.run_until("Healthy", limit=100)
    assert world.status.stable_revision == world.revision


def test_bug3_an_analysis_error_under_on_error_pause_holds_the_steps() -> None:
    """Issue 9 bug 3: an Error under `onError: Pause` did not stop the steps either."""
    steps = [{"setWeight": 25}, {"pause": {"duration": "5s"}}, {"setWeight": 50}]
    world = routed_world(steps)
    world.set_image("web:2")
    erring = metric(count=1, consecutiveErrorLimit=0)
    world.raw["spec"]["strategy"]["canary"]["analysis"] = {"metrics": [erring], "onError": "Pause"}
    world.metrics["error-rate"] = "connection refused"
    weights = []
    for _ in range(40):
        world.step()
        world.now += timedelta(seconds=2)
        weights.append(canary_weight(world))
    assert max(weights) <= 25
    assert world.status.phase == "Paused"


# 4 ---------------------------------------------------------------------------------------

POST = {
    "blueGreen": {
        "previewService": "web-preview",
        "autoPromotion": {"afterSeconds": 0},
        "scaleDownDelaySeconds": 0,
        "postPromotionAnalysis": {"metrics": [metric(count=4)]},
    }
}


def test_bug4_post_promotion_analysis_survives_a_blue_pod_blip_and_switches_back() -> None:
    """Issue 9 bug 4: when blue was not whole for a single pass, the post-promotion analysis
    was dropped, blue was scaled down and a failing green stayed Healthy."""
    world = World(rollout_raw(replicas=4, deadline=600, strategy=copy.deepcopy(POST)))
    world.run_until("Healthy")
    blue = world.revision
    world.set_image("web:2")
    green = world.revision
    world.metrics["error-rate"] = 0.5
    for _ in range(60):
        world.step()
        world.now += timedelta(seconds=1)
        if world.services["web"].selector.get(REVISION_LABEL) == green:
            break
    dep_of(world, blue).ready -= 1  # one blue pod is briefly unready
    world.step(settle=False)
    world.now += timedelta(seconds=1)
    world.run_until("Degraded", seconds=1)
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"
    world.run(5, seconds=1)
    assert world.services["web"].selector[REVISION_LABEL] == blue
    assert world.replicas_by_revision()[blue] == 4


def test_bug4_ready_is_false_while_the_post_promotion_analysis_runs() -> None:
    """Issue 9 bug 4: Ready was True while the post-promotion analysis still ran."""
    world = World(rollout_raw(replicas=4, deadline=600, strategy=copy.deepcopy(POST)))
    world.run_until("Healthy")
    blue = world.revision
    world.set_image("web:2")
    world.metrics["error-rate"] = 0.0
    during = []
    for _ in range(80):
        world.step()
        world.now += timedelta(seconds=1)
        runs = {r.name: r.phase for r in world.status.analysis_runs}
        if runs.get("postPromotion") == "Running":
            ready = world.status.condition("Ready")
            during.append((world.status.phase, ready.status if ready else None))
        if runs.get("postPromotion") == "Successful":
            break
    assert during and all(d == ("Progressing", "False") for d in during)
    assert dep_of(world, blue).spec == 4  # blue stays while green is judged
    world.run(3, seconds=1)
    assert world.status.phase == "Healthy"


# 6 ---------------------------------------------------------------------------------------


def test_bug6_scaling_a_routed_canary_at_a_pause_resizes_the_stable_revision() -> None:
    """Issue 9 bug 6: a routed canary at a pause scaled 8 -> 2 kept stable at 8."""
    world = routed_world([{"setWeight": 25}, {"pause": {}}], replicas=8)
    stable = world.revision
    world.set_image("web:2")
    world.run_until("Paused")
    world.raw["spec"]["replicas"] = 2
    world.raw["metadata"]["generation"] += 1
    world.run(5)
    assert world.replicas_by_revision() == {stable: 2, world.revision: 1}


def test_bug6_hpa_replicas_count_only_the_active_revision_in_blue_green() -> None:
    """Issue 9 bug 6: status.replicas summed every revision, so an HPA (which reads the
    scale subresource) saw twice the pods during blue-green. The scale subresource now
    reads status.hpaReplicas: the pods that get live traffic."""
    strategy = {"blueGreen": {"previewService": "web-preview"}}
    world = World(rollout_raw(replicas=4, deadline=600, strategy=strategy))
    world.run_until("Healthy")
    world.set_image("web:2")
    world.run_until("Paused")  # green whole behind the preview, awaiting promotion
    assert world.status.replicas == 8
    assert world.status.hpa_replicas == 4


# 7 ---------------------------------------------------------------------------------------


def test_bug7_a_routed_abort_moves_traffic_only_as_far_as_stable_can_take_it() -> None:
    """Issue 9 bug 7: a routed canary abort gave the stable Service 100% without checking
    that stable was ready enough to take it."""
    world = routed_world([{"setWeight": 50}, {"pause": {}}])
    stable = world.revision
    world.set_image("web:2")
    world.run_until("Paused")
    assert canary_weight(world) == 50
    dep_of(world, stable).ready = 1  # three of stable's four pods are not ready
    world.request("abort")
    world.step(settle=False)
    assert 0 < canary_weight(world) <= 50  # stable takes what its ready pods can (25%)
    assert world.status.condition("Stalled") is not None
    assert world.services["web-canary"].selector[REVISION_LABEL] == world.revision
    world.settle()  # stable's pods are ready again
    world.run(2)
    assert canary_weight(world) == 0
    assert world.services["web"].selector[REVISION_LABEL] == stable


# 11c -------------------------------------------------------------------------------------


def test_bug11c_a_template_broken_mid_rollout_holds_and_says_so_and_abort_rolls_back() -> None:
    """Issue 9 bug 11 (AnalysisTemplate): a problem found mid-rollout stopped it half-way
    with "Nothing was changed" (false) and no way back. It holds where it is, says so, and
    an abort rolls it back."""
    steps = [{"setWeight": 25}, {"pause": {}}, {"analysis": {"templates": [{"name": "errors"}]}}]
    world = World(rollout_raw(replicas=4, deadline=600, strategy={"canary": {"steps": steps}}))
    template = AnalysisTemplateSpec.model_validate({"metrics": [metric(count=1)]})
    world.templates["errors"] = template
    world.run_until("Healthy")
    stable = world.revision
    world.set_image("web:2")
    world.run_until("Paused")
    held = world.replicas_by_revision()
    del world.templates["errors"]
    world.run(5)
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "AnalysisTemplateNotFound"
    assert "Nothing was changed" not in stalled.message
    assert "holds at" in stalled.message and "abort" in stalled.message
    assert world.replicas_by_revision() == held
    world.request("abort")
    world.run(20)
    assert world.replicas_by_revision() == {stable: 4, world.revision: 0}
    assert world.status.condition("Stalled").reason == "RolledBack"  # type: ignore[union-attr]


# 10 --------------------------------------------------------------------------------------


def test_bug10_answered_rollout_actions_are_deleted_after_a_while() -> None:
    """Issue 9 bug 10: RolloutActions were never cleaned up. The newest ten answered ones
    of a Rollout stay for `kubectl get rolloutactions` for an hour, then go."""
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    answered = tuple(
        AnsweredAction(f"web-promote-{i}", now - timedelta(minutes=i)) for i in range(15)
    )
    deleted = {a.name for a in forget_answered(answered, now) if isinstance(a, DeleteAction)}
    assert deleted == {f"web-promote-{i}" for i in range(10, 15)}  # beyond the newest ten
    later = forget_answered(answered[:3], now + timedelta(minutes=59))
    assert {a.name for a in later if isinstance(a, DeleteAction)} == {
        "web-promote-1",
        "web-promote-2",
    }


# 11a -------------------------------------------------------------------------------------


def test_bug11a_a_stored_rollout_with_a_64_character_name_says_why_and_changes_nothing() -> None:
    """Issue 9 bug 11: a 64-character Rollout name was admitted, then every pass failed (the
    label value is too long) with no status and no Event, retried forever. Admission now
    refuses it (CEL); one stored before the rule gets InvalidSpec, one Event, and a slow
    requeue."""
    raw = rollout_raw()
    raw["metadata"]["name"] = "w" * 64
    world = World(raw)
    first = world.step()
    assert first.actions == ()
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "InvalidSpec"
    assert "at most 63 characters" in stalled.message
    assert first.requeue_after >= 60
    again = world.step()
    assert again.events == ()  # one Event, not one per pass
