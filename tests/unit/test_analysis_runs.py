"""Analysis in the strategies: a canary step's and the background run, blue-green's
pre-promotion run; success promotes, failure aborts within an interval, inconclusive and
provider errors never pass."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nonstop.api.spec import AnalysisTemplateSpec
from tests.sim import World, rollout_raw

ERROR_RATE: dict[str, Any] = {
    "name": "error-rate",
    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "rate({{revision}})"}},
    "interval": "5s",
    "count": 3,
    "failureCondition": "result > 0.05",
}


def canary_world(steps: list[dict[str, Any]], background: dict[str, Any] | None = None) -> World:
    canary: dict[str, Any] = {"steps": steps}
    if background is not None:
        canary["analysis"] = background
    world = World(rollout_raw(replicas=4, deadline=600, strategy={"canary": canary}))
    world.run_until("Healthy")
    world.set_image("web:2")
    return world


STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"analysis": {"metrics": [ERROR_RATE]}},
    {"setWeight": 50},
    {"analysis": {"metrics": [ERROR_RATE]}},
]


def run(world: World, passes: int = 200, seconds: float = 1.0) -> None:
    for _ in range(passes):
        world.step()
        world.now += timedelta(seconds=seconds)
        ended = world.status.phase in ("Healthy", "Degraded")
        if ended and (world.status.stable_revision == world.revision or world.status.abort):
            return


def test_healthy_metrics_promote_the_canary_and_status_shows_the_measurements() -> None:
    world = canary_world(STEPS)
    world.metrics["error-rate"] = 0.01
    run(world)
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == world.revision
    step = next(r for r in world.status.analysis_runs if r.name == "step-1")
    assert step.phase == "Successful"
    assert [m.value for m in step.metrics[0].measurements] == [0.01, 0.01, 0.01]
    reasons = [e.reason for h in world.history for e in h.events]
    assert reasons.count("AnalysisSuccessful") == 2
    # the query was made with the revision being judged
    assert world.measured[0].variables["revision"] == world.revision


def test_a_failing_metric_aborts_within_one_interval_with_the_value_in_status() -> None:
    world = canary_world(STEPS)
    world.metrics["error-rate"] = 0.01
    for _ in range(100):  # until the second analysis step runs
        world.step()
        world.now += timedelta(seconds=1)
        if world.status.current_step_index == 3:
            break
    world.metrics["error-rate"] = 0.4
    failed_at = world.now
    run(world)
    abort = world.status.abort
    assert abort is not None and abort.reason == "AnalysisFailed"
    assert "0.4" in abort.message and "result > 0.05" in abort.message
    assert abort.at - failed_at <= timedelta(seconds=5)  # the metric's interval
    assert world.status.stable_revision != world.revision
    world.run(20)
    assert world.replicas_by_revision()[world.revision] == 0
    events = [e for h in world.history for e in h.events]
    assert any(e.reason == "AnalysisFailed" and "0.4" in e.message for e in events)


def test_provider_errors_are_counted_and_never_pass() -> None:
    world = canary_world(STEPS)
    world.metrics["error-rate"] = "prometheus: cannot reach http://127.0.0.1:9: refused"
    run(world, 60)
    assert world.status.stable_revision != world.revision  # never promoted
    abort = world.status.abort
    assert abort is not None and abort.reason == "AnalysisFailed"
    run_status = next(r for r in world.status.analysis_runs if r.name == "step-1")
    assert run_status.phase == "Error"
    assert run_status.metrics[0].errors == 3  # count 3, every one an error: Error, not a pass
    assert run_status.metrics[0].successful == 0
    assert "refused" in abort.message


def test_provider_errors_pause_when_the_spec_says_so() -> None:
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [ERROR_RATE], "onError": "Pause"}}]
    world = canary_world(steps)
    world.metrics["error-rate"] = "prometheus: HTTP 503"
    run(world, 60)
    assert world.status.abort is None
    assert world.status.phase == "Paused"
    paused = world.status.condition("Paused")
    assert paused is not None and paused.reason == "AnalysisInconclusive"
    assert world.status.stable_revision != world.revision
    world.request("promote")  # a person decides
    run(world)
    assert world.status.stable_revision == world.revision


def test_inconclusive_pauses_for_a_person() -> None:
    metric = {**ERROR_RATE, "successCondition": "result < 0.01", "count": 1}
    world = canary_world([{"setWeight": 25}, {"analysis": {"metrics": [metric]}}])
    world.metrics["error-rate"] = 0.03  # neither condition
    run(world, 30)
    assert world.status.phase == "Paused"
    assert "inconclusive" in (world.status.message or "")


def test_background_analysis_aborts_the_whole_canary() -> None:
    background = {"metrics": [{**ERROR_RATE, "count": None}]}
    world = canary_world([{"setWeight": 25}, {"pause": {}}], background=background)
    world.metrics["error-rate"] = 0.01
    run(world, 20)
    assert world.status.phase == "Paused"  # the pause; background keeps measuring
    world.metrics["error-rate"] = 0.5
    run(world, 10)
    assert world.status.abort is not None and "background" in world.status.abort.message


def test_a_comparison_fails_a_clearly_worse_canary_and_passes_an_equal_one() -> None:
    latency = {
        "name": "latency",
        "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "lat{{revision}}"}},
        "interval": "2s",
        "count": 3,
        "compare": {"confidence": 0.95, "minSamples": 8},
    }
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [latency]}}]
    stable = tuple(0.100 + i * 0.001 for i in range(5))
    world = canary_world(steps)
    world.metrics["latency"] = (tuple(v + 0.2 for v in stable), stable)
    run(world, 40)
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"

    world = canary_world(steps)
    world.metrics["latency"] = (stable, stable)
    run(world, 60)
    assert world.status.stable_revision == world.revision


def test_templates_are_used_by_name_and_a_missing_one_stops_the_rollout() -> None:
    """Issue 9: a template is checked when the Rollout names it, before any pod moves (it
    used to be noticed at the analysis step, half-way)."""
    steps = [{"setWeight": 25}, {"analysis": {"templates": [{"name": "errors"}]}}]
    world = World(rollout_raw(replicas=4, strategy={"canary": {"steps": steps}}))
    world.run(5)
    assert world.deps == {}  # nothing was created
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "AnalysisTemplateNotFound"
    assert "AnalysisTemplate errors does not exist" in stalled.message
    world.templates["errors"] = AnalysisTemplateSpec.model_validate({"metrics": [ERROR_RATE]})
    world.metrics["error-rate"] = 0.0
    run(world)
    assert world.status.stable_revision == world.revision


def test_blue_green_never_switches_when_pre_promotion_analysis_fails() -> None:
    strategy = {
        "blueGreen": {
            "previewService": "web-preview",
            "autoPromotion": {"afterSeconds": 0},
            "prePromotionAnalysis": {"metrics": [ERROR_RATE]},
        }
    }
    world = World(rollout_raw(replicas=4, strategy=strategy))
    world.run_until("Healthy")
    blue = world.revision
    world.set_image("web:2")
    world.metrics["error-rate"] = 0.3
    run(world, 40)
    assert world.services["web"].selector["nonstop.dev/revision"] == blue
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"

    world.set_image("web:3")
    world.metrics["error-rate"] = 0.0
    run(world, 60)
    assert world.services["web"].selector["nonstop.dev/revision"] == world.revision


def test_a_condition_that_does_not_parse_is_invalid_spec() -> None:
    metric = {**ERROR_RATE, "failureCondition": "result >> 2"}
    steps = [{"analysis": {"metrics": [metric]}}]
    world = World(rollout_raw(replicas=4, strategy={"canary": {"steps": steps}}))
    assert world.step().actions == ()
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "InvalidSpec"
    assert "failureCondition" in stalled.message


def test_a_template_with_a_broken_condition_stops_the_rollout_without_a_crash() -> None:
    steps = [{"setWeight": 25}, {"analysis": {"templates": [{"name": "errors"}]}}]
    world = World(rollout_raw(replicas=4, deadline=600, strategy={"canary": {"steps": steps}}))
    world.templates["errors"] = AnalysisTemplateSpec.model_validate({"metrics": [ERROR_RATE]})
    world.run_until("Healthy")
    world.set_image("web:2")
    broken = {**ERROR_RATE, "failureCondition": "result >"}
    world.templates["errors"] = AnalysisTemplateSpec.model_validate({"metrics": [broken]})
    world.run(5)
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "InvalidSpec"
    assert "failureCondition" in stalled.message


POST_PROMOTION = {
    "blueGreen": {
        "previewService": "web-preview",
        "autoPromotion": {"afterSeconds": 0},
        "scaleDownDelaySeconds": 0,
        "postPromotionAnalysis": {"metrics": [ERROR_RATE]},
    }
}


def test_blue_green_post_promotion_failure_switches_back_in_one_update() -> None:
    world = World(rollout_raw(replicas=4, strategy=POST_PROMOTION))
    world.run_until("Healthy")
    blue = world.revision
    world.set_image("web:2")
    green = world.revision
    world.metrics["error-rate"] = 0.0
    for _ in range(40):  # until green is active and its analysis runs
        world.step()
        world.now += timedelta(seconds=1)
        if world.services["web"].selector["nonstop.dev/revision"] == green:
            break
    assert world.replicas_by_revision()[blue] == 4  # kept while the analysis runs
    world.metrics["error-rate"] = 0.5
    switches = []
    for _ in range(30):
        decision = world.step()
        world.now += timedelta(seconds=1)
        switches += [
            a
            for a in decision.actions
            if getattr(a, "body", {}).get("metadata", {}).get("name") == "web"
        ]
    assert world.services["web"].selector["nonstop.dev/revision"] == blue
    assert len(switches) == 1  # one selector update back
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"
    assert world.replicas_by_revision() == {blue: 4, green: 0}
    assert world.status.stable_revision == blue


def test_blue_green_post_promotion_success_lets_blue_go() -> None:
    world = World(rollout_raw(replicas=4, strategy=POST_PROMOTION))
    world.run_until("Healthy")
    blue = world.revision
    world.set_image("web:2")
    world.metrics["error-rate"] = 0.0
    world.run(60, seconds=1)
    assert world.replicas_by_revision() == {blue: 0, world.revision: 4}
    post = next(r for r in world.status.analysis_runs if r.name == "postPromotion")
    assert post.phase == "Successful"
