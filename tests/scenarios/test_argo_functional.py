"""Scenarios ported from Argo Rollouts' functional and blue-green e2e suites
(argoproj/argo-rollouts, test/e2e/functional_test.go and test/e2e/bluegreen_test.go), run in
the simulated world instead of a cluster.

Each docstring names the Argo test and what nonstop does where it deliberately differs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

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
    reasons,
    rolling_world,
    selects,
    spec_change,
    until,
    wait,
)
from tests.sim import World, rollout_raw


def test_abort_then_retry_then_the_timed_pause_promotes() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestRolloutAbortRetryPromote: setWeight 50
    then `pause: {duration: 3s}`. Abort at the pause: the canary goes to 0 and the rollout is
    Degraded; retry: the same revision comes back to its pause with the same pods; the timed
    pause then ends by itself and the rollout completes. The Events tell that story in order."""
    world = canary_world([{"setWeight": 50}, {"pause": {"duration": "3s"}}])
    stable = world.revision
    canary = new_image(world, "web:2")
    since = len(world.history)
    world.run_until("Paused", seconds=1)
    assert (pods(world, canary), pods(world, stable)) == (2, 2)
    world.request("abort")
    until(world, lambda: condition_reason(world, "Stalled") == "RolledBack", seconds=1)
    assert world.status.phase == "Degraded"
    assert (pods(world, canary), pods(world, stable)) == (0, 4)
    retry = world.request("retry")
    world.run_until("Paused", seconds=0.5)
    assert world.answer(retry).phase == "Applied"
    assert world.status.abort is None
    assert (pods(world, canary), pods(world, stable)) == (2, 2)
    world.run_until("Healthy", seconds=1)
    assert (pods(world, canary), pods(world, stable)) == (4, 0)
    story = [
        r
        for r in reasons(world, since)
        if r in ("StepPaused", "RolloutAborted", "RolledBack", "RolloutCompleted")
    ]
    assert story == ["StepPaused", "RolloutAborted", "RolledBack", "StepPaused", "RolloutCompleted"]


def test_promote_at_a_timed_pause_skips_analysis_and_promote_full_needs_a_retry() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestCanaryPromoteFull: a promote ends a 24 h
    pause at once (step 1, an analysis, starts); a promote during that analysis skips it; at
    `pause: {}` the rollout is aborted, and a full promotion then completes it without the
    analysis of the last step ever running. nonstop differs on the last part on purpose
    (docs/reference.md, RolloutAction): promoteFull of an aborted revision is rejected
    ("retry it first"); after a retry it skips every remaining step."""
    slow = metric(interval="1h", count=24)
    steps = [
        {"pause": {"duration": "24h"}},
        {"analysis": {"metrics": [slow]}},
        {"pause": {}},
        {"analysis": {"metrics": [metric("never", interval="1h", count=24)]}},
    ]
    world = canary_world(steps, replicas=1, deadline=600)
    new_image(world, "web:2")
    world.run_until("Paused")
    assert world.status.current_step_index == 0
    world.request("promote")
    world.run(2)
    assert world.status.current_step_index == 1
    runs = {r.name: r.phase for r in world.status.analysis_runs}
    assert runs == {"step-1": "Running"}
    world.request("promote")
    until(world, at_step(world, 2))
    abort = world.request("abort")
    world.run(2)
    assert world.answer(abort).phase == "Applied" and world.status.phase == "Degraded"
    full = world.request("promoteFull")
    world.run(2)
    assert world.answer(full).phase == "Rejected"
    assert "retry it first" in world.answer(full).message
    world.request("retry")
    world.run(2)
    full = world.request("promoteFull")
    world.run_until("Healthy")
    assert world.answer(full).phase == "Applied"
    assert world.status.stable_revision == world.revision
    assert "never" not in {m.metric.name for m in world.measured}


def test_blue_green_promote_full_before_green_is_ready_switches_once_it_is() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenPromoteFull: promote-full one
    second after the update, then Healthy on the new revision. docs/reference.md: for
    blue-green, promote and promoteFull "switch the active Service to the new revision as
    soon as it is ready" (never before: traffic follows ready pods). nonstop does not skip
    pre-/post-promotion analysis on promoteFull (so none is configured here).

    Fixed in issue 9 (it failed before): a promoteFull (or promote) applied while green is
    still coming up (or while its pre-promotion analysis runs) is answered Applied and then
    forgotten: green waits at AwaitingPromotion for another promote.
    """
    world = blue_green_world(replicas=3)
    green = new_image(world, "web:2")
    world.step(settle=False)  # green's pods are being created
    name = world.request("promoteFull")
    world.run(8)
    assert world.answer(name).phase == "Applied"
    assert selects(world) == green
    assert world.status.stable_revision == green
    assert world.status.phase == "Healthy"


def test_good_to_bad_update_rolls_back_then_a_second_bad_image_does_too() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestRolloutGoodToBadUpdate: a healthy rollout
    (maxSurge 1, maxUnavailable 0) gets an image that never gets ready, then another one.
    Argo leaves the bad pod running (1 new / 4 old at Degraded); nonstop deliberately rolls an
    aborted revision back (docs/reference.md, Progress deadline, abort and rollback): 0 / 4.
    The second bad image starts a new revision that takes only the surge pod, the first bad
    revision stays at 0, and it is rolled back in turn. Never fewer than 4 ready pods."""
    world = rolling_world(replicas=4, max_surge=1, max_unavailable=0, deadline=10)
    good = world.revision
    world.min_ready_seen = None
    bad = new_image(world, "web:bad", never_ready=True)
    world.run_until("Degraded")
    until(world, lambda: condition_reason(world, "Stalled") == "RolledBack")
    assert (pods(world, bad), pods(world, good)) == (0, 4)
    worse = new_image(world, "web:bad2", never_ready=True)
    world.run_until("Progressing")
    world.run(2)
    assert (pods(world, worse), pods(world, bad), pods(world, good)) == (1, 0, 4)
    world.run_until("Degraded")
    until(world, lambda: condition_reason(world, "Stalled") == "RolledBack")
    assert (pods(world, worse), pods(world, bad), pods(world, good)) == (0, 0, 4)
    assert world.status.stable_revision == good
    assert world.min_ready_seen == 4


@pytest.mark.parametrize(
    "strategy",
    [
        {"rolling": {"maxSurge": 1, "maxUnavailable": 0}},
        {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "5s"}}]}},
    ],
    ids=["rolling", "canary-setWeight"],
)
def test_a_bad_first_revision_then_a_good_image_completes(strategy: dict[str, Any]) -> None:
    """Argo Rollouts test/e2e/functional_test.go TestRolloutBadToGoodUpdate and
    TestRolloutBadToGoodSetWeightUpdate: the very first revision never gets ready (Degraded,
    ProgressDeadlineExceeded: there is nothing to roll back to), then a working image is
    applied with a longer deadline: it completes, 4 new pods, the bad revision at 0."""
    world = World(rollout_raw(replicas=4, deadline=10, strategy=strategy))
    bad = world.revision
    world.never_ready.add(bad)
    world.run_until("Degraded")
    assert condition_reason(world, "Stalled") == "ProgressDeadlineExceeded"
    spec_change(world, progressDeadlineSeconds=60)
    good = new_image(world, "web:good")
    world.max_pods_seen = 0
    world.run_until("Healthy")
    assert (pods(world, good), pods(world, bad)) == (4, 0)
    assert world.status.stable_revision == good and world.status.abort is None
    assert world.max_pods_seen <= 4 + 1


def test_a_bad_first_revision_then_another_bad_image_stays_within_surge() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestRolloutBadToBadUpdate: a first revision
    that never gets ready, then another bad image; maxSurge 1, maxUnavailable 0 must still
    hold. Argo keeps the 4 old unready pods and adds 1; nonstop removes unready old pods at no
    cost (docs/reference.md, Batches: old pods that are not available go first), so the new
    revision takes their place; never more than 5 pods."""
    world = World(rollout_raw(replicas=4, max_surge=1, max_unavailable=0, deadline=10))
    first = world.revision
    world.never_ready.add(first)
    world.run_until("Degraded")
    second = new_image(world, "web:bad2", never_ready=True)
    world.max_pods_seen = 0
    world.run_until("Degraded")
    world.run(3)
    assert world.max_pods_seen <= 4 + 1
    assert pods(world, first) + pods(world, second) <= 4 + 1
    assert condition_reason(world, "Stalled") == "ProgressDeadlineExceeded"
    assert world.status.current_revision == second


def test_blue_green_update_counts_and_events() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenUpdate: after the switch with
    blue still kept, replica counts are desired 3, current 6, updated 3, ready 3 (nonstop's
    readyReplicas and availableReplicas sum every revision: 6); the Events say: started,
    created, service switched, completed."""
    world = blue_green_world(replicas=3, autoPromotion={"afterSeconds": 0})
    blue = world.revision
    assert (world.status.replicas, world.status.updated_replicas) == (3, 3)
    green = new_image(world, "web:2")
    since = len(world.history)
    until(world, lambda: world.status.stable_revision == green)
    status = world.status
    assert world.raw["spec"]["replicas"] == 3
    assert (status.replicas, status.updated_replicas, status.updated_ready_replicas) == (6, 3, 3)
    assert status.ready_replicas == 6
    events = [(e.reason, e.message) for h in world.history[since:] for e in h.events]
    story = [
        reason
        for reason, message in events
        if reason in ("RolloutStarted", "Scaled", "RolloutCompleted")
        or message.startswith("Service web now selects")
    ]
    assert story == ["RolloutStarted", "Scaled", "ServiceSwitched", "RolloutCompleted"]
    assert (
        "ServiceSwitched",
        f"Service web now selects revision {green} (was {blue})",
    ) in events


def test_switching_from_blue_green_to_canary() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenToCanary: a blue-green Rollout
    changed to a canary (setWeight 50, pause) with a new template: the Service no longer
    selects one revision but every pod of the Rollout, and the canary waits at its pause with
    1 new and 1 old pod, 2 available."""
    world = blue_green_world(replicas=2, scaleDownDelaySeconds=5)
    old = world.revision
    world.raw["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
    world.raw["spec"]["template"]["metadata"]["annotations"] = {"foo": "bar"}
    world.raw["metadata"]["generation"] += 1
    world.run_until("Paused")
    world.run(3)
    assert world.services["web"].selector == {"app": "web"}
    assert (pods(world, world.revision), pods(world, old)) == (1, 1)
    assert (world.status.available_replicas, world.status.updated_replicas) == (2, 1)
    assert condition_reason(world, "Paused") == "StepPaused"


def test_a_missing_analysis_template_stops_the_rollout_until_it_exists() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestFixInvalidSpec: a canary whose background
    analysis names a template that does not exist is Degraded, and carries on to Healthy once
    the template is created. Here the template is deleted while the Rollout is done and an
    update comes: the Rollout is Stalled (AnalysisTemplateNotFound) and no pod moves; once the
    template exists again the update completes, judged by it."""
    steps = [{"setWeight": 50}, {"pause": {"duration": "10s"}}]
    background = {"templates": [{"name": "later"}]}
    strategy = {"canary": {"steps": steps, "analysis": background}}
    world = World(rollout_raw(replicas=2, strategy=strategy))
    template = AnalysisTemplateSpec.model_validate({"metrics": [metric("web")]})
    world.templates["later"] = template
    world.metrics["web"] = 0.0
    world.run_until("Healthy")
    stable = world.revision
    del world.templates["later"]
    new = new_image(world, "web:2")
    world.run(3)
    assert world.status.phase == "Degraded"
    assert condition_reason(world, "Stalled") == "AnalysisTemplateNotFound"
    assert "AnalysisTemplate later does not exist" in (world.status.message or "")
    assert (pods(world, new), pods(world, stable)) == (0, 2)
    world.templates["later"] = template
    world.run_until("Healthy")
    assert world.status.stable_revision == new
    assert {m.metric.name for m in world.measured} == {"web"}


def test_blue_green_scale_down_delay_keeps_the_previous_revision() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenScaleDownDelay (first part):
    scaleDownDelaySeconds of a day: after the switch both revisions run one pod (desired 1,
    current 2, updated 1); a day later the old one goes."""
    world = blue_green_world(
        replicas=1, scaleDownDelaySeconds=86400, autoPromotion={"afterSeconds": 0}
    )
    blue = world.revision
    green = new_image(world, "web:2")
    until(world, lambda: world.status.stable_revision == green)
    world.run(5)
    assert world.status.phase == "Healthy"
    assert (pods(world, green), pods(world, blue)) == (1, 1)
    assert (world.status.replicas, world.status.updated_replicas) == (2, 1)
    world.now += timedelta(days=1)
    world.run(3)
    assert (pods(world, green), pods(world, blue)) == (1, 0)


def test_each_replaced_blue_green_revision_keeps_its_own_delay() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenScaleDownDelay (second part):
    three releases inside a day with scaleDownDelaySeconds of a day keep every replaced
    revision up (Argo caps them with scaleDownDelayRevisionLimit, which nonstop has not; its
    new status.draining lists each one): pods of a revision that lost its traffic stay that
    long.

    Fixed in issue 9 (it failed before): a blue-green revision that lost its traffic keeps
    its pods only until the next release starts; then it is scaled to 0 before its
    scaleDownDelaySeconds is over.
    """
    world = blue_green_world(
        replicas=1, scaleDownDelaySeconds=86400, autoPromotion={"afterSeconds": 0}
    )
    revisions = [world.revision]
    for image in ("web:2", "web:3", "web:4"):
        revisions.append(new_image(world, image))
        until(world, lambda: world.status.stable_revision == world.revision)
        world.run(3)
    assert [pods(world, r) for r in revisions] == [1, 1, 1, 1]
    assert world.status.phase == "Healthy"


def test_blue_green_green_that_misses_the_deadline_is_aborted() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenExceedProgressDeadlineAbort (with
    progressDeadlineAbort: true, nonstop's only behaviour): green never gets ready within
    progressDeadlineSeconds: aborted, green scaled to 0, the active Service never left blue,
    and all four kstatus conditions say so."""
    world = blue_green_world(replicas=1, deadline=5)
    blue = world.revision
    green = new_image(world, "web:broken", never_ready=True)
    world.run_until("Degraded")
    world.run(3)
    assert world.status.abort is not None
    assert world.status.abort.reason == "ProgressDeadlineExceeded"
    assert (pods(world, green), pods(world, blue)) == (0, 1)
    assert selects(world) == blue
    conditions = {c.type: (c.status, c.reason) for c in world.status.conditions}
    assert conditions == {
        "Ready": ("False", "RolledBack"),
        "Reconciling": ("False", "Idle"),
        "Stalled": ("True", "RolledBack"),
        "Paused": ("False", "NotPaused"),
    }


def test_blue_green_abort_while_awaiting_promotion() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestBlueGreenScaleDownOnAbort: abort while
    green waits for its promotion: green goes to 0, blue keeps serving whole. (Argo previews
    one pod with previewReplicaCount, which nonstop has not: green is whole.) nonstop points
    the preview Service back at the revision that serves (Argo leaves it on green)."""
    world = blue_green_world(replicas=2, scaleDownDelaySeconds=5)
    blue = world.revision
    green = new_image(world, "web:2")
    world.run_until("Paused")
    assert (pods(world, green), pods(world, blue)) == (2, 2)
    world.request("abort")
    world.run_until("Degraded")
    wait(world, 6)
    assert (pods(world, green), pods(world, blue)) == (0, 2)
    assert selects(world) == blue and selects(world, "web-preview") == blue
    assert world.status.abort is not None and world.status.abort.reason == "AbortedByUser"


def test_blue_green_paused_condition_follows_the_promotion() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestKubectlWaitForPaused: `kubectl wait
    --for=condition=Paused` holds while green waits for a manual promotion (active on blue);
    after the promote, Paused=False and the active Service selects green."""
    world = blue_green_world(replicas=1)
    blue = world.revision
    green = new_image(world, "web:2")
    world.run_until("Paused")
    paused = world.status.condition("Paused")
    assert paused is not None and (paused.status, paused.reason) == ("True", "StepPaused")
    assert condition_reason(world, "Ready") == "AwaitingPromotion"
    assert selects(world) == blue
    world.request("promote")
    world.run_until("Healthy")
    paused = world.status.condition("Paused")
    assert paused is not None and paused.status == "False"
    assert selects(world) == green


def test_blue_green_auto_promotion_turns_ready_when_done() -> None:
    """Argo Rollouts test/e2e/functional_test.go TestKubectlWaitForCompleted: with automatic
    promotion, `kubectl wait` for the completion condition sees False while green comes up
    (the status written for the current generation), then True with the active Service on
    green (nonstop's condition is Ready)."""
    world = blue_green_world(replicas=1, autoPromotion={"afterSeconds": 0})
    blue = world.revision
    green = new_image(world, "web:2")
    world.step()
    ready = world.status.condition("Ready")
    assert ready is not None and ready.status == "False"
    assert ready.observed_generation == world.raw["metadata"]["generation"]
    assert selects(world) == blue
    world.run_until("Healthy")
    ready = world.status.condition("Ready")
    assert ready is not None and ready.status == "True"
    assert ready.observed_generation == world.raw["metadata"]["generation"]
    assert selects(world) == green


def test_a_timed_pause_longer_than_the_deadline_completes() -> None:
    """Argo Rollouts test/e2e/functional_test.go
    TestRolloutPauseDurationGreaterThanProgressDeadlineSeconds: setWeight 32, a 30 s pause,
    setWeight 67 with progressDeadlineSeconds 5: the pause is not lack of progress, the
    rollout completes without ever being Degraded."""
    steps = [{"setWeight": 32}, {"pause": {"duration": "30s"}}, {"setWeight": 67}]
    world = canary_world(steps, replicas=3, deadline=5)
    new = new_image(world, "web:2")
    phases = set()
    for _ in range(40):
        world.run(1)
        phases.add(world.status.phase)
    assert world.status.phase == "Healthy" and world.status.stable_revision == new
    assert "Degraded" not in phases and world.status.abort is None


@pytest.mark.parametrize("auto", [False, True], ids=["manual", "autoPromotion"])
def test_blue_green_green_slower_than_the_deadline_needs_a_retry(auto: bool) -> None:
    """Argo Rollouts test/e2e/bluegreen_test.go TestBlueGreenProgressDeadlineExceededWithPause
    and TestBlueGreenProgressDeadlineExceededWithoutPause: green's pods take longer than
    progressDeadlineSeconds to get ready. Argo goes Degraded, then recovers by itself once they
    are ready. nonstop deliberately aborts and rolls back at the deadline, and an aborted
    revision stays aborted until the template changes or a retry (docs/reference.md): after a
    retry green is previewed again and promoted (manually, or by autoPromotion)."""
    extra: dict[str, Any] = {"autoPromotion": {"afterSeconds": 0}} if auto else {}
    world = blue_green_world(replicas=1, deadline=5, **extra)
    blue = world.revision
    green = new_image(world, "web:slow", never_ready=True)
    world.run_until("Degraded")
    world.never_ready.clear()  # its pods would be ready by now
    world.run(10)
    assert world.status.phase == "Degraded" and selects(world) == blue
    assert pods(world, green) == 0
    world.request("retry")
    if not auto:
        world.run_until("Paused")
        assert condition_reason(world, "Ready") == "AwaitingPromotion"
        world.request("promote")
    world.run_until("Healthy")
    assert selects(world) == green and world.status.stable_revision == green


def test_blue_green_preview_is_whole_and_nothing_switches_without_a_promote() -> None:
    """Argo Rollouts test/e2e/bluegreen_test.go TestBlueGreenPreviewReplicaCount: green is
    previewed while blue serves, and nothing moves until the promote. nonstop has no
    previewReplicaCount: green is previewed whole (desired 2, current 4, updated 2); after
    the promote both stay up for the scale-down delay (current 4)."""
    world = blue_green_world(replicas=2, scaleDownDelaySeconds=5)
    blue = world.revision
    green = new_image(world, "web:2")
    world.run_until("Paused")
    wait(world, 60)
    assert (pods(world, green), pods(world, blue)) == (2, 2)
    assert (world.status.replicas, world.status.updated_replicas) == (4, 2)
    assert selects(world) == blue and selects(world, "web-preview") == green
    world.request("promote")
    until(world, lambda: world.status.stable_revision == green)
    assert (world.status.replicas, world.status.updated_replicas) == (4, 2)
    assert selects(world) == green


def test_waiting_for_promotion_longer_than_the_deadline_is_not_degraded() -> None:
    """Argo Rollouts test/e2e/bluegreen_test.go TestBlueGreenPreviewReplicaCountPromoteFull:
    with progressDeadlineSeconds 1, waiting for a promotion for longer must not make the
    rollout Degraded; promote-full then completes it (the switch takes a few passes, none of
    which adds pods: the promotion itself is what moved). Passes every half second.

    Fixed in issue 9 (it failed before): the pass that applies a promotion is not progress,
    and the deadline clock (whole seconds in status) last restarted at the previous waiting
    pass: with progressDeadlineSeconds 1 a promote after waiting aborts green at once ('made
    no progress for 1s'); a canary promoted at a pause does the same.
    """
    world = blue_green_world(replicas=2, deadline=1)
    green = new_image(world, "web:2")
    world.run_until("Paused", seconds=0.5)
    wait(world, 30, every=0.5)
    assert world.status.phase == "Paused" and world.status.abort is None
    world.request("promoteFull")
    until(world, lambda: world.status.phase in ("Healthy", "Degraded"), seconds=0.5)
    assert world.status.abort is None
    assert phase(world) == "Healthy" and selects(world) == green
