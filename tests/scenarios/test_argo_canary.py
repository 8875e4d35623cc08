"""Scenarios ported from Argo Rollouts' canary e2e suite (argoproj/argo-rollouts,
test/e2e/canary_test.go), run in the simulated world instead of a cluster.

Each docstring names the Argo test and what nonstop does where it deliberately differs."""

from __future__ import annotations

from datetime import timedelta

from tests.scenarios.conftest import (
    PASS,
    at_step,
    blue_green_world,
    canary_world,
    condition_reason,
    new_image,
    pods,
    promote_to,
    rolling_world,
    scale,
    selects,
    until,
    wait,
    weights,
)


def test_set_canary_scale_sizes_the_canary_at_each_pause() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanarySetCanaryScale (with a router, as
    there): setCanaryScale percent/replicas/matchTrafficWeight size the canary on its own
    while the stable revision stays whole. Canary/stable pods at each pause: 0/4, 1/4 (25%),
    1/4 (setWeight 50 keeps the explicit scale), 3/4, 2/4 (matchTrafficWeight: 50% of 4),
    then 4/0."""
    steps = [
        {"pause": {}},
        {"setCanaryScale": {"percent": 25}},
        {"pause": {"duration": "100s"}},
        {"setWeight": 50},
        {"pause": {"duration": "10s"}},
        {"setCanaryScale": {"replicas": 3}},
        {"pause": {}},
        {"setCanaryScale": {"matchTrafficWeight": True}},
        {"pause": {"duration": "5s"}},
    ]
    world = canary_world(steps, route=True)
    stable = world.revision
    canary = new_image(world, "web:2")
    until(world, at_step(world, 0))
    assert (pods(world, canary), pods(world, stable)) == (0, 4)
    seen = {}
    for index in (2, 4, 6, 8):
        promote_to(world, index)
        seen[index] = (pods(world, canary), pods(world, stable), weights(world)[1])
    assert seen == {2: (1, 4, 0), 4: (1, 4, 50), 6: (3, 4, 50), 8: (2, 4, 50)}
    world.request("promote")
    world.run_until("Healthy")
    assert (pods(world, canary), world.status.stable_revision) == (4, canary)


def test_set_canary_scale_then_set_weight_without_a_router_reaches_the_pause() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanarySetCanaryScale, without a router: a
    setCanaryScale followed by a setWeight is a valid step list (admission takes it), so the
    rollout must reach the pause that follows, without ever going below spec.replicas ready
    pods (docs/reference.md, canary without a traffic router).

    Fixed in issue 9 (it failed before): without a router, setWeight after setCanaryScale
    asks the stable revision for replicas - ceil(weight) pods, which the availability rule
    never allows: the step waits forever ('waiting for setWeight to take effect') and is
    rolled back at the deadline.
    """
    steps = [{"setCanaryScale": {"replicas": 1}}, {"setWeight": 50}, {"pause": {}}]
    world = canary_world(steps, deadline=60)
    new_image(world, "web:2")
    world.min_ready_seen = None
    until(world, lambda: world.status.phase in ("Paused", "Degraded"), limit=60)
    assert world.status.abort is None
    assert world.status.current_step_index == 2
    assert condition_reason(world, "Paused") == "StepPaused"
    assert world.min_ready_seen is not None and world.min_ready_seen >= 4


def test_rescaling_at_a_pause_keeps_the_steps_share() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestRolloutScalingWhenPaused (no router): a
    canary waiting at `pause: {}` after setWeight 25 is scaled 2 -> 8 -> 4; canary/stable
    pods follow the share: 1/1, 2/6, 1/3. Argo starts at 1 replica (1/1); nonstop's share of 1
    replica at 25% is the whole replica (ceil), so the scenario starts at 2."""
    world = canary_world([{"setWeight": 25}, {"pause": {}}], replicas=2)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    assert (pods(world, canary), pods(world, stable)) == (1, 1)
    scale(world, 8)
    world.min_ready_seen = None
    world.run(10)
    assert (pods(world, canary), pods(world, stable)) == (2, 6)
    assert world.status.available_replicas == 8
    scale(world, 4)
    world.run(10)
    assert (pods(world, canary), pods(world, stable)) == (1, 3)
    assert world.status.phase == "Paused" and world.status.current_step_index == 1
    assert world.min_ready_seen is not None and world.min_ready_seen >= 2


def test_routed_rescaling_at_a_pause_resizes_the_stable_revision() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestRolloutScalingWhenPaused, with a router: the
    stable revision stays whole for the whole canary, so it follows spec.replicas (2 -> 8 ->
    2) while the canary keeps its share (ceil 25%) and the route keeps 25%.

    Fixed in issue 9 (it failed before): a routed canary at a pause scaled 8 -> 2 keeps its
    stable revision at 8 pods (only the canary follows the new size).
    """
    world = canary_world([{"setWeight": 25}, {"pause": {}}], replicas=2, route=True)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    scale(world, 8)
    world.run(10)
    assert (pods(world, canary), pods(world, stable)) == (2, 8)
    scale(world, 2)
    world.run(10)
    assert (pods(world, canary), pods(world, stable)) == (1, 2)
    assert weights(world) == (75, 25)


def test_scaling_up_during_a_stuck_update_grows_the_new_revision() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestRolloutScalingDuringUpdate and
    TestRolloutWithMaxSurgeScalingDuringUpdate; Kubernetes test/e2e/apps/deployment.go
    testProportionalScalingDeployment. A rolling update (maxSurge 2, maxUnavailable 0) whose
    new pods never get ready is scaled 4 -> 8. As in Argo (6 new / 4 old), nonstop resizes
    the revision being rolled out within the surge (docs/reference.md: a change of
    spec.replicas resizes the current revision) and keeps every available old pod; it does
    not share the new replicas out in proportion as the Kubernetes Deployment controller does."""
    world = rolling_world(replicas=4, max_surge=2, max_unavailable=0, deadline=600)
    old = world.revision
    bad = new_image(world, "web:bad", never_ready=True)
    world.min_ready_seen, world.max_pods_seen = None, 0
    world.run(5)
    assert (pods(world, bad), pods(world, old)) == (2, 4)
    scale(world, 8)
    world.run(10)
    assert (pods(world, bad), pods(world, old)) == (6, 4)
    assert world.max_pods_seen <= 8 + 2
    assert world.min_ready_seen == 4  # no available old pod was given up
    assert world.status.abort is None


def test_scaling_down_during_a_stuck_update_stays_within_max_surge() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestRolloutScalingDuringUpdate, second half:
    scaled back 8 -> 4, Argo has 2 new / 4 old pods (replicas + maxSurge). nonstop documents
    maxSurge as how many pods may run above spec.replicas during a rollout, so after the
    scale-down no more than 6 pods may remain, and the 4 available old pods still serve.

    Fixed in issue 9 (it failed before): scaling a stuck rolling update down 8 -> 4 sets the
    unready new revision to 4 while the 4 available old pods stay: 8 pods run for 4 replicas
    with maxSurge 2.
    """
    world = rolling_world(replicas=4, max_surge=2, max_unavailable=0, deadline=600)
    old = world.revision
    bad = new_image(world, "web:bad", never_ready=True)
    world.run(5)
    scale(world, 8)
    world.run(10)
    scale(world, 4)
    world.run(10)
    assert pods(world, old) == 4
    assert pods(world, old) + pods(world, bad) <= 4 + 2


def test_a_lower_weight_brings_stable_back_before_the_canary_leaves() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestReduceWeightAndHonorMaxUnavailable: steps
    setWeight 100, pause, setWeight 0, pause, setWeight 100 on 3 replicas (no router). Going
    from 100% to 0% never drops below 3 ready pods: stable pods come back before canary pods
    go; then abort keeps the stable revision whole."""
    steps = [
        {"setWeight": 100},
        {"pause": {}},
        {"setWeight": 0},
        {"pause": {}},
        {"setWeight": 100},
    ]
    world = canary_world(steps, replicas=3)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.min_ready_seen = None
    world.run_until("Paused")
    assert (pods(world, canary), pods(world, stable)) == (3, 0)
    promote_to(world, 3)
    assert (pods(world, canary), pods(world, stable)) == (0, 3)
    assert world.status.weights is not None and world.status.weights.canary == 0
    world.request("abort")
    world.run_until("Degraded")
    world.run(3)
    assert (pods(world, canary), pods(world, stable)) == (0, 3)
    assert world.min_ready_seen == 3


def test_an_indefinite_pause_stops_the_progress_deadline() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryProgressDeadlineExceededWithPause: a
    canary waiting at `pause: {}` far longer than progressDeadlineSeconds (5 s) is not
    aborted; a promote then completes it. (Argo's pods take longer than the deadline to get
    ready, so Argo shows Degraded first; the simulated pods are ready at once.)"""
    world = canary_world([{"setWeight": 20}, {"pause": {}}], replicas=3, deadline=5)
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    wait(world, 120)
    assert world.status.phase == "Paused"
    assert condition_reason(world, "Paused") == "StepPaused"
    assert condition_reason(world, "Stalled") == "NotStalled"
    assert world.status.abort is None
    assert pods(world, canary) == 1
    world.request("promote")
    world.run_until("Healthy")
    assert world.status.stable_revision == canary


def test_the_old_revision_keeps_its_pods_for_the_scale_down_delay() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryScaleDownDelay (and
    test/e2e/istio_test.go TestIstioHostSplit: "don't scale down old replicaset since it will
    be within scaleDownDelay"): after a routed canary completes, the revision that lost its
    traffic keeps its pods for spec.strategy.canary.scaleDownDelaySeconds (here 10 s), so that
    every proxy has applied the route before the pods go; then it goes to zero.

    Fixed in issue 9 (it failed before): no scale-down delay: after a routed canary
    completes, the old revision is scaled to 0 in the pass that takes it out of the route
    (canary.scaleDownDelaySeconds).
    """
    world = canary_world([{"setWeight": 50}], route=True, scaleDownDelaySeconds=10)
    old = world.revision
    new = new_image(world, "web:2")
    world.run_until("Healthy")
    assert world.status.stable_revision == new
    assert weights(world) == (100, 0) and selects(world) == new
    assert pods(world, old) == 4
    wait(world, 6)
    assert pods(world, old) == 4
    wait(world, 8)
    assert pods(world, old) == 0


def test_a_pending_scale_down_is_not_a_stalled_rollout() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryScaleDownDelayWithProgressDeadline: a
    completed rollout whose old revision waits out the scale-down delay (default 30 s) longer
    than progressDeadlineSeconds (5 s) stays Healthy and Ready the whole time.

    Fixed in issue 9 (it failed before): no scale-down delay after a routed canary completes
    (the old revision is scaled to 0 at once), so there is no pending scale-down to check
    the deadline against.
    """
    world = canary_world([{"setWeight": 50}], route=True, deadline=5)
    old = world.revision
    new_image(world, "web:2")
    world.run_until("Healthy")
    phases = set()
    for _ in range(10):  # 20 s, inside the 30 s delay
        world.step()
        world.now += timedelta(seconds=PASS)
        phases.add(world.status.phase)
    assert phases == {"Healthy"}
    assert condition_reason(world, "Ready") == "RolloutCompleted"
    assert world.status.abort is None
    assert pods(world, old) == 4


def test_a_completed_canary_stays_ready_while_and_after_its_old_revision_drains() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryScaleDownDelayWithProgressDeadline:
    once a routed canary is Healthy, scaling the old revision down (at once, or at the end of
    the scale-down delay) is no new rollout: the phase stays Healthy and Ready stays True at
    every pass for the next minute, and the old revision ends at 0."""
    world = canary_world([{"setWeight": 50}], route=True, deadline=5)
    old = world.revision
    new_image(world, "web:2")
    world.run_until("Healthy")
    phases, ready = set(), set()
    for _ in range(30):
        world.step()
        world.now += timedelta(seconds=PASS)
        phases.add(world.status.phase)
        ready.add(condition_reason(world, "Ready"))
    assert phases == {"Healthy"} and ready == {"RolloutCompleted"}
    assert pods(world, old) == 0


def test_the_scale_subresource_counts_only_pods_with_live_traffic() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryScaleReportingHPAReplicas: the
    replicas the scale subresource reports to an HPA (status.HPAReplicas there,
    status.hpaReplicas here) count only pods that get live traffic, while status.replicas
    counts every pod. In nonstop's blue-green that means: 4 at rest, 4 (blue) while green
    previews, 4 (green) while blue waits out scaleDownDelaySeconds, with 8 pods in all.

    Fixed in issue 9 (it failed before): status.hpaReplicas (the scale subresource's
    status.replicas) is never written; status.replicas counts every revision, a preview or
    draining one too.
    """
    world = blue_green_world(scaleDownDelaySeconds=300)
    assert (world.status.hpa_replicas, world.status.replicas) == (4, 4)
    green = new_image(world, "web:2")
    world.run_until("Paused")
    assert (world.status.hpa_replicas, world.status.replicas) == (4, 8)
    world.request("promote")
    until(world, lambda: world.status.stable_revision == green)
    assert selects(world) == green
    assert (world.status.hpa_replicas, world.status.replicas) == (4, 8)
    assert world.status.selector == "app=web"


def test_a_routed_abort_keeps_the_canary_pods_for_the_scale_down_delay() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryScaleDownOnAbort and
    test/e2e/istio_test.go TestIstioAbortUpdateDeleteAllCanaryPods ("canary pods remained
    scaled, but have a scale down delay"): an abort gives the stable Service all traffic in
    the same pass, and the canary, which just lost its traffic, keeps its pods for
    scaleDownDelaySeconds (10 s) before it goes to zero.

    Fixed in issue 9 (it failed before): no scale-down delay after a routed abort: the
    canary is scaled to 0 in the pass after the route gives the stable Service all traffic.
    """
    world = canary_world([{"setWeight": 50}, {"pause": {}}], route=True, scaleDownDelaySeconds=10)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    world.request("abort")
    world.step()
    assert weights(world) == (100, 0)
    assert world.status.phase == "Degraded"
    wait(world, 6)
    assert (pods(world, canary), pods(world, stable)) == (2, 4)
    wait(world, 8)
    assert (pods(world, canary), pods(world, stable)) == (0, 4)


def test_an_abort_without_a_router_scales_the_canary_down() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryScaleDownOnAbortNoTrafficRouting:
    without a router the canary's pods take traffic through the one Service, so an abort
    removes them (no scale-down delay applies) and the stable revision is whole again,
    never with fewer than spec.replicas ready pods."""
    world = canary_world([{"setWeight": 50}, {"pause": {}}])
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    world.min_ready_seen = None
    world.request("abort", "bad canary")
    until(world, lambda: condition_reason(world, "Stalled") == "RolledBack")
    assert (pods(world, canary), pods(world, stable)) == (0, 4)
    assert world.status.abort is not None and world.status.abort.reason == "AbortedByUser"
    assert condition_reason(world, "Stalled") == "RolledBack"
    assert world.min_ready_seen == 4


def test_a_new_template_at_a_pause_supersedes_the_canary() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryWithPausedRollout: revision 2 waits at
    `pause: {}` after setWeight 20 (3 replicas); revision 3 arrives: revision 2 goes to 0,
    revision 3 starts from step 0 and waits at the same pause with its own pod. Argo keeps
    3 stable pods (its surge); nonstop's stable keeps replicas - ceil(20% of 3) = 2."""
    world = canary_world([{"setWeight": 20}, {"pause": {}}], replicas=3)
    first = world.revision
    second = new_image(world, "web:2")
    world.run_until("Paused")
    third = new_image(world, "web:3")
    world.run(3)
    world.run_until("Paused")
    assert {first: pods(world, first), second: pods(world, second), third: pods(world, third)} == {
        first: 2,
        second: 0,
        third: 1,
    }
    assert world.status.current_revision == third
    assert world.status.stable_revision == first


def test_an_undo_mid_canary_goes_back_to_a_whole_stable_revision() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryDynamicStableScaleRollbackToStable:
    undoing a routed canary at 25% puts the stable template back; nonstop's stable revision
    was whole all along, so the route gives it all traffic at once, no ready pod is lost, and
    the canary's pods go (after the scale-down delay)."""
    world = canary_world([{"setWeight": 25}, {"pause": {}}], route=True)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    assert weights(world) == (75, 25)
    world.min_ready_seen = None
    name = world.request("undo", "canary looks wrong")
    world.run_until("Healthy")
    assert world.answer(name).phase == "Applied"
    assert world.revision == stable and world.status.stable_revision == stable
    assert weights(world) == (100, 0)
    assert selects(world) == stable
    wait(world, 40)
    assert (pods(world, canary), pods(world, stable)) == (0, 4)
    assert world.min_ready_seen == 4


def test_changing_the_steps_mid_canary_is_not_a_new_revision() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestEphemeralMetadata (the strategy is patched
    while revision 2 waits at its pause, and revision 2 carries on) and Kubernetes
    test/integration/deployment/deployment_test.go TestSpecReplicasChange (a change that is
    not the pod template starts no rollout): editing the canary's steps at a pause keeps the
    revision, its pods and its step; the status catches up with the generation, no Event;
    the edited steps apply from the next one on."""
    world = canary_world([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}])
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    since = len(world.history)
    world.raw["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 25},
        {"pause": {}},
        {"setWeight": 75},
        {"pause": {}},
    ]
    world.raw["metadata"]["generation"] += 1
    world.run(3)
    assert world.revision == canary and world.status.current_revision == canary
    assert world.status.phase == "Paused" and world.status.current_step_index == 1
    assert (pods(world, canary), pods(world, stable)) == (1, 3)
    assert world.status.observed_generation == world.raw["metadata"]["generation"]
    assert [e for h in world.history[since:] for e in h.events] == []
    promote_to(world, 3)
    assert (pods(world, canary), pods(world, stable)) == (3, 1)


def test_spec_paused_on_a_healthy_rollout_changes_nothing() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryWithSpecPause: pausing a rollout that
    is done must not start an update loop of condition patches. Argo shows Paused; nonstop
    documents that pausing a rollout that is done changes nothing you can see (it stays
    Healthy), and its conditions do not flap: no Event, the same conditions every pass."""
    world = canary_world([{"setWeight": 20}], replicas=3, deadline=5)
    world.raw["spec"]["paused"] = True
    world.raw["metadata"]["generation"] += 1
    since = len(world.history)
    world.run(10)
    assert world.status.phase == "Healthy"
    assert [e for h in world.history[since:] for e in h.events] == []
    conditions = {str(h.status.conditions) for h in world.history[since + 1 :]}
    assert len(conditions) == 1
    assert condition_reason(world, "Ready") == "RolloutCompleted"
    assert world.status.observed_generation == world.raw["metadata"]["generation"]
