"""Scenarios ported from Argo Rollouts' analysis e2e suite (argoproj/argo-rollouts,
test/e2e/analysis_test.go and test/e2e/canary_analysis_retry_test.go), run in the simulated
world. Argo's analysis runs Jobs and web calls; here every metric is a Prometheus metric whose
value the world answers (World.metrics), which is what the verdicts depend on.

Each docstring names the Argo test and what nonstop does where it deliberately differs."""

from __future__ import annotations

import copy
from datetime import timedelta

from nonstop.api.spec import AnalysisTemplateSpec
from tests.scenarios.conftest import (
    at_step,
    blue_green_world,
    canary_world,
    condition_reason,
    metric,
    new_image,
    phase,
    pods,
    scale,
    selects,
    until,
    wait,
)
from tests.sim import World, rollout_raw


def runs(world: World) -> dict[str, str]:
    """Analysis runs of the current revision in status: name -> phase."""
    return {run.name: run.phase for run in world.status.analysis_runs}


def test_background_analysis_runs_through_the_pause() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestCanaryBackgroundAnalysis: no analysis at
    rest; after the update the background run is Running while the canary waits at its
    pause (it keeps measuring); after the promote the rollout is Healthy."""
    background = {"metrics": [metric(count=None)]}
    world = canary_world([{"setWeight": 25}, {"pause": {}}], analysis=background)
    assert runs(world) == {}
    new = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.0
    world.run_until("Paused")
    wait(world, 20)
    assert runs(world) == {"background": "Running"}
    assert len([m for m in world.measured if m.metric.name == "error-rate"]) >= 4
    world.request("promote")
    world.run_until("Healthy")
    assert world.status.stable_revision == new


def test_background_analysis_verdict_is_recorded_when_the_canary_completes() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestCanaryBackgroundAnalysis (end):
    WaitForBackgroundAnalysisRunPhase("Successful") once the rollout is Healthy. A background
    run that measured the whole canary without a failure leaves its verdict in the status of
    the revision (docs/analysis.md, Status and Events: each verdict is one Event), as the
    step runs do.

    Fixed in issue 9 (it failed before): a background run without count is dropped from
    status.analysisRuns the moment the steps end, with no verdict: no Successful phase, no
    AnalysisSuccessful Event.
    """
    background = {"metrics": [metric(count=None)]}
    world = canary_world([{"setWeight": 25}, {"pause": {}}], analysis=background)
    new_image(world, "web:2")
    world.metrics["error-rate"] = 0.0
    world.run_until("Paused")
    wait(world, 20)
    world.request("promote")
    world.run_until("Healthy")
    world.run(3)
    assert runs(world) == {"background": "Successful"}
    assert "AnalysisSuccessful" in [e.reason for h in world.history for e in h.events]


def test_an_inconclusive_background_analysis_pauses_the_canary() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestCanaryInconclusiveBackgroundAnalysis: a
    background run that turns Inconclusive pauses the rollout (InconclusiveAnalysisRun) for a
    person. docs/analysis.md: Inconclusive pauses it with reason AnalysisInconclusive;
    `promote` goes on, `abort` rolls back. So the steps stop where they are: the timed pauses
    that follow do not move the canary on, and it never completes by itself.

    Fixed in issue 9 (it failed before): an Inconclusive background analysis shows
    Paused/AnalysisInconclusive but does not stop the canary steps: timed pauses end and the
    canary completes (Healthy).
    """
    inconclusive = metric(count=None, successCondition="result < 0.01")
    steps = [
        {"setWeight": 25},
        {"pause": {"duration": "20s"}},
        {"setWeight": 50},
        {"pause": {"duration": "20s"}},
        {"setWeight": 75},
    ]
    world = canary_world(steps, analysis={"metrics": [inconclusive]})
    stable = world.revision
    canary = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.03  # neither condition: Inconclusive
    until(world, lambda: runs(world).get("background") == "Inconclusive", seconds=1)
    index = world.status.current_step_index
    wait(world, 120)
    assert world.status.phase == "Paused"
    assert condition_reason(world, "Paused") == "AnalysisInconclusive"
    assert world.status.current_step_index == index
    assert world.status.stable_revision == stable
    assert pods(world, canary) < 4


def test_an_analysis_step_succeeds_then_the_pause_waits_for_a_promote() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestCanaryInlineAnalysis: an inline analysis
    step runs once the canary has its share, succeeds, then the rollout waits at the pause;
    a promote completes it, and every analysis step left its run (Argo counts 3 runs)."""
    steps = [
        {"setWeight": 25},
        {"analysis": {"metrics": [metric(count=2)]}},
        {"pause": {}},
        {"analysis": {"metrics": [metric(count=2)]}},
    ]
    world = canary_world(steps)
    new = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.01
    until(world, at_step(world, 2), seconds=1)
    assert runs(world) == {"step-1": "Successful"}
    world.request("promote")
    world.run_until("Healthy", seconds=1)
    assert world.status.stable_revision == new
    reasons = [e.reason for h in world.history for e in h.events]
    assert reasons.count("AnalysisSuccessful") == 2


def test_one_failing_metric_of_several_fails_the_step() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestCanaryFailInlineMultipleAnalysis: an
    analysis step with several metrics, one of which fails: the run fails, the rollout is
    Degraded and rolled back; the abort names the failing metric."""
    steps = [
        {"setWeight": 25},
        {"pause": {}},
        {"analysis": {"metrics": [metric("latency"), metric("errors")]}},
    ]
    world = canary_world(steps)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    world.metrics.update({"latency": 0.0, "errors": 0.9})
    world.request("promote")
    world.run_until("Degraded", seconds=1)
    assert runs(world) == {"step-2": "Failed"}
    abort = world.status.abort
    assert abort is not None and abort.reason == "AnalysisFailed"
    assert "errors" in abort.message and "0.9" in abort.message
    until(world, lambda: condition_reason(world, "Stalled") == "RolledBack")
    assert (pods(world, canary), pods(world, stable)) == (0, 4)


def test_blue_green_pre_and_post_analysis_then_a_fast_track_rollback() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenAnalysis: pre-promotion analysis
    while green previews (active on blue, preview on green), a manual promote, post-promotion
    analysis after the switch, Healthy; then the old template is applied again while it is
    still whole: Healthy at once, with no preview, no pre-promotion analysis and no promote
    (Argo's fast-tracked rollback). nonstop may judge the revision again with its
    post-promotion analysis after that switch (Argo skips it); this is not asserted here."""
    pre = {"metrics": [metric("pre", count=1)]}
    post = {"metrics": [metric("post", count=1)]}
    world = blue_green_world(
        replicas=1, prePromotionAnalysis=pre, postPromotionAnalysis=post, scaleDownDelaySeconds=30
    )
    blue = world.revision
    template = copy.deepcopy(world.raw["spec"]["template"])
    green = new_image(world, "web:2")
    until(world, lambda: runs(world).get("prePromotion") == "Successful", seconds=1)
    assert world.status.phase == "Paused"
    assert selects(world) == blue and selects(world, "web-preview") == green
    world.request("promote")
    until(world, lambda: runs(world).get("postPromotion") == "Successful", seconds=1)
    until(world, lambda: phase(world) == "Healthy", limit=10, seconds=1)
    assert selects(world) == green
    measured = [m.metric.name for m in world.measured]
    world.raw["spec"]["template"] = template
    world.raw["metadata"]["generation"] += 1
    switched = len(world.history)
    until(world, lambda: phase(world) == "Healthy", limit=20, seconds=1)
    assert not any(
        e.reason == "AwaitingPromotion" for h in world.history[switched:] for e in h.events
    )
    assert selects(world) == blue and world.status.stable_revision == blue
    assert [m.metric.name for m in world.measured].count("pre") == measured.count("pre")
    assert (pods(world, blue), pods(world, green)) == (1, 1)  # green kept for the delay


def test_blue_green_pre_promotion_failure_then_retry_promotes() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenPrePromotionFail: the
    pre-promotion analysis fails: Degraded, active still on blue (nonstop also points the
    preview back at blue); the metric is fixed and the rollout retried: a new run passes and
    green becomes active and stable; the failed run stays in the record (Argo: 2 runs).

    Fixed in issue 9 (it failed before): retry after a failed pre-promotion analysis aborts
    again at once: the Failed run is kept in status and judged again.
    """
    pre = {"metrics": [metric(count=1)]}
    world = blue_green_world(
        replicas=2, prePromotionAnalysis=pre, autoPromotion={"afterSeconds": 0}
    )
    blue = world.revision
    green = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.5
    world.run_until("Degraded", seconds=1)
    assert selects(world) == blue and world.status.stable_revision == blue
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"
    world.metrics["error-rate"] = 0.0
    retry = world.request("retry")
    world.run(20, seconds=1)
    assert world.answer(retry).phase == "Applied"
    assert world.status.phase == "Healthy"
    assert selects(world) == green and world.status.stable_revision == green


def test_blue_green_post_promotion_failure_switches_back_to_blue() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenPostPromotionFail: after the
    promote the active Service selects green (stable still blue) while the post-promotion
    analysis runs; it fails: Degraded, the active Service selects blue again and blue is the
    stable revision (nonstop points the preview at blue too)."""
    post = {"metrics": [metric(count=2)]}
    world = blue_green_world(replicas=1, postPromotionAnalysis=post)
    blue = world.revision
    green = new_image(world, "web:2")
    world.run_until("Paused")
    assert selects(world) == blue and selects(world, "web-preview") == green
    world.metrics["error-rate"] = 0.5
    world.request("promote")
    until(world, lambda: selects(world) == green, seconds=1)
    assert world.status.abort is None
    world.run_until("Degraded", seconds=1)
    assert runs(world) == {"postPromotion": "Failed"}
    assert selects(world) == blue and world.status.stable_revision == blue
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"


def test_blue_green_post_promotion_analysis_runs_when_a_blue_pod_is_down() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenPostPromotionFail, with one of
    blue's pods down (evicted, its replacement not ready): the post-promotion analysis still
    runs after the switch (docs/reference.md: postPromotionAnalysis runs after it), and its
    failure means green does not stay the stable revision.

    Fixed in issue 9 (it failed before): blue-green drops its post-promotion analysis when
    blue is not whole (a blue pod down at the switch): no run is started, green becomes
    stable unjudged.
    """
    post = {"metrics": [metric(count=3)]}
    world = blue_green_world(replicas=4, postPromotionAnalysis=post, scaleDownDelaySeconds=30)
    blue = world.revision
    new_image(world, "web:2")
    world.run_until("Paused")
    world.metrics["error-rate"] = 0.5
    down = next(d for d in world.deps.values() if d.revision == blue)
    world.request("promote")
    for _ in range(20):
        down.ready = 3
        world.step(settle=False)
        world.now += timedelta(seconds=1)
        world.settle()
        down.ready = 3
    assert "postPromotion" in runs(world)
    assert world.status.abort is not None and world.status.abort.reason == "AnalysisFailed"
    assert world.status.stable_revision == blue


def test_blue_green_abort_then_a_new_revision() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenAbortAndUpdate: revision 2 fails
    its post-promotion analysis (Degraded, active back on 1); revision 3 with a passing
    analysis is applied: it previews (active 1, preview 3, revision 2 scaled down), then is
    promoted: active 3, Healthy."""
    post = {"metrics": [metric(count=1)]}
    world = blue_green_world(
        replicas=1, postPromotionAnalysis=post, autoPromotion={"afterSeconds": 0}
    )
    first = world.revision
    second = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.5
    world.run_until("Degraded", seconds=1)
    assert selects(world) == first
    world.metrics["error-rate"] = 0.0
    del world.raw["spec"]["strategy"]["blueGreen"]["autoPromotion"]
    third = new_image(world, "web:3")
    world.run_until("Paused")
    wait(world, 40)
    assert [pods(world, r) for r in (first, second, third)] == [1, 0, 1]
    assert selects(world) == first and selects(world, "web-preview") == third
    world.request("promote")
    until(world, lambda: runs(world).get("postPromotion") == "Successful", seconds=1)
    until(world, lambda: phase(world) == "Healthy", limit=10, seconds=1)
    assert selects(world) == third and world.status.stable_revision == third


def test_blue_green_auto_promotion_waits_for_the_pre_promotion_analysis() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenKitchenSink (first half):
    autoPromotionSeconds 10 with a pre-promotion analysis that takes longer: green is not
    promoted too early, neither before the seconds have passed since it was ready nor before
    the analysis succeeded; then the switch happens by itself."""
    pre = {"metrics": [metric(interval="10s", count=3)]}
    world = blue_green_world(
        replicas=2,
        prePromotionAnalysis=pre,
        autoPromotion={"afterSeconds": 10},
        scaleDownDelaySeconds=5,
    )
    blue = world.revision
    green = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.0
    ready_at = passed_at = switched_at = None
    for _ in range(60):
        world.step()
        if ready_at is None and world.status.current_step_index == 1:
            ready_at = world.now
        if passed_at is None and runs(world).get("prePromotion") == "Successful":
            passed_at = world.now
        if switched_at is None and selects(world) == green:
            switched_at = world.now
        else:
            assert switched_at is not None or selects(world) == blue
        world.now += timedelta(seconds=1)
    assert ready_at is not None and passed_at is not None and switched_at is not None
    assert switched_at >= ready_at + timedelta(seconds=10)
    assert switched_at >= passed_at
    assert world.status.phase == "Healthy" and world.status.stable_revision == green


def test_blue_green_post_promotion_failure_keeps_green_for_the_delay() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestBlueGreenKitchenSink (second half): the
    post-promotion analysis fails and the active Service goes back to revision 1; right
    after, both revisions still have their 2 pods (Argo: ExpectRevisionPodCount 2 and 2): the
    revision that lost its traffic stays for scaleDownDelaySeconds (here 30 s), then goes.

    Fixed in issue 9 (it failed before): when a post-promotion analysis fails, green is
    scaled to 0 in the pass that switches the active Service back to blue:
    blueGreen.scaleDownDelaySeconds is not applied to the revision that just lost its
    traffic.
    """
    post = {"metrics": [metric(count=1)]}
    world = blue_green_world(
        replicas=2,
        postPromotionAnalysis=post,
        autoPromotion={"afterSeconds": 0},
        scaleDownDelaySeconds=30,
    )
    blue = world.revision
    green = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.5
    world.run_until("Degraded", seconds=1)
    assert selects(world) == blue
    wait(world, 10)
    assert (pods(world, blue), pods(world, green)) == (2, 2)
    wait(world, 30)
    assert (pods(world, blue), pods(world, green)) == (2, 0)


def test_templates_and_inline_metrics_are_merged_into_one_run() -> None:
    """Argo Rollouts test/e2e/analysis_test.go TestMultipleAnalysis: an analysis step that
    names two templates (two metrics each) and has a metric of its own measures all five in
    one run, which succeeds, and the rollout completes."""
    steps = [
        {
            "analysis": {
                "templates": [{"name": "template-a"}, {"name": "template-b"}],
                "metrics": [metric("inline", count=1)],
            }
        }
    ]
    world = World(rollout_raw(replicas=2, strategy={"canary": {"steps": steps}}))
    world.templates["template-a"] = AnalysisTemplateSpec.model_validate(
        {"metrics": [metric("metric-1", count=1), metric("metric-2", count=1)]}
    )
    world.templates["template-b"] = AnalysisTemplateSpec.model_validate(
        {"metrics": [metric("metric-3", count=1), metric("metric-4", count=1)]}
    )
    world.run_until("Healthy")
    new = new_image(world, "web:2")
    world.run_until("Healthy")
    assert world.status.stable_revision == new
    assert {m.metric.name for m in world.measured} == {
        "metric-1",
        "metric-2",
        "metric-3",
        "metric-4",
        "inline",
    }
    assert runs(world) == {"step-0": "Successful"}


RETRY_STEPS = [{"setWeight": 50}, {"analysis": {"metrics": [metric(count=1)]}}, {"setWeight": 100}]


def test_retry_after_a_failed_step_analysis_runs_it_again() -> None:
    """Argo Rollouts test/e2e/canary_analysis_retry_test.go TestCanaryStepAnalysisRetry: the
    step analysis fails (Degraded, canary at 0, stable revision 1); the metric is fixed, the
    Rollout scaled to 3 and retried: a fresh run succeeds and revision 2 completes with 3
    pods; the failed attempt is retained beside the successful one in Argo.

    Fixed in issue 9 (it failed before): retry after a failed step analysis aborts again at
    once: the Failed run of the step is kept in status and judged again.
    """
    world = canary_world(RETRY_STEPS, replicas=2, deadline=600)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.5
    world.run_until("Degraded", seconds=1)
    until(world, lambda: pods(world, canary) == 0)
    assert world.status.stable_revision == stable
    world.metrics["error-rate"] = 0.0
    scale(world, 3)
    world.request("retry")
    until(world, lambda: world.status.phase in ("Healthy", "Degraded"), seconds=1)
    world.run(5)
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == canary and pods(world, canary) == 3


def test_retry_after_a_failed_background_analysis_runs_it_again() -> None:
    """Argo Rollouts test/e2e/canary_analysis_retry_test.go TestCanaryBackgroundAnalysisRetry:
    the background analysis fails (Degraded); the metric is fixed, the Rollout scaled to 3
    and retried: a fresh background run succeeds, the canary waits at its pause, a promote
    completes it with 3 pods.

    Fixed in issue 9 (it failed before): retry after a failed background analysis aborts
    again at once: the Failed background run is kept in status and judged again.
    """
    steps = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    world = canary_world(
        steps, replicas=2, deadline=600, analysis={"metrics": [metric(count=None)]}
    )
    canary = new_image(world, "web:2")
    world.metrics["error-rate"] = 0.5
    world.run_until("Degraded", seconds=1)
    world.metrics["error-rate"] = 0.0
    scale(world, 3)
    world.request("retry")
    until(world, lambda: world.status.phase in ("Paused", "Degraded"), seconds=1)
    world.run(3)
    assert world.status.phase == "Paused"
    assert condition_reason(world, "Paused") == "StepPaused"
    world.request("promote")
    world.run_until("Healthy")
    assert world.status.stable_revision == canary and pods(world, canary) == 3
