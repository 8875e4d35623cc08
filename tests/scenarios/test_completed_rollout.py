"""What happens to a rollout that is done when its pods come and go or it is scaled: not a
new rollout. Ported from the Kubernetes Deployment integration tests and Flagger's scheduler
tests (a new rollout starts only on a new pod template), applied to each strategy; the feature
toggle is where nonstop gets it wrong today."""

from __future__ import annotations

from datetime import timedelta

from nonstop.traffic import read_flag
from tests.scenarios.conftest import PASS, canary_world, condition_reason, pods, scale, weights
from tests.sim import World, rollout_raw

DOCUMENT = """{
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"off": false, "on": true},
      "defaultVariant": "off"
    }
  }
}
"""


def toggle_world() -> World:
    """A feature toggle whose rollout is done: the flag is at 100% for the new variant."""
    strategy = {
        "featureToggle": {
            "flag": {"configMap": "flags", "key": "new-checkout", "variant": "on"},
            "steps": [{"setWeight": 10}, {"setWeight": 50}],
        }
    }
    world = World(rollout_raw(replicas=4, strategy=strategy))
    world.config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags", "namespace": "default", "resourceVersion": "1"},
        "data": {"flags.flagd.json": DOCUMENT},
    }
    world.run_until("Healthy")
    world.run(3)
    assert flag_weight(world) == 100
    return world


def flag_weight(world: World) -> float:
    assert world.config_map is not None
    document = world.config_map["data"]["flags.flagd.json"]
    return read_flag(document, "new-checkout", "on").weight


def test_scaling_a_completed_feature_toggle_keeps_the_flag() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestSpecReplicasChange and
    Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentNewRevision:
    a scale is not a new revision; only a new pod template starts a rollout. docs/reference.md:
    a change of spec.replicas is not a new revision. So a completed feature toggle scaled
    4 -> 6 keeps every user on the new variant while the pods are added.

    Fixed in issue 9 (it failed before): after a completed feature-toggle rollout, a scale
    change sets the flag back to 0% and walks the steps again (10%, 50%, 100%).
    """
    world = toggle_world()
    scale(world, 6)
    seen = set()
    for _ in range(10):
        world.run(1)
        seen.add(flag_weight(world))
    assert seen == {100}
    assert world.replicas_by_revision() == {world.revision: 6}
    assert world.status.phase == "Healthy"


def test_an_unready_pod_after_a_completed_feature_toggle_keeps_the_flag() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestDeploymentAvailableCondition
    (availability comes and goes without a new rollout) and Flagger
    pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentNewRevision (only a
    new revision restarts the analysis); docs/reference.md: a Rollout whose stable revision
    loses pods later is not aborted, it shows Scaling until the pod is replaced. The flag, the
    thing users see, must stay at 100% throughout.

    Fixed in issue 9 (it failed before): after a completed feature-toggle rollout, a stable
    pod that turns unready sets the flag back to 0% (then the steps run again once it is
    ready).
    """
    world = toggle_world()
    dep = next(iter(world.deps.values()))
    seen = set()
    for _ in range(5):  # one pod unready for 10 s
        dep.ready = 3
        world.step(settle=False)
        world.now += timedelta(seconds=PASS)
        seen.add(flag_weight(world))
    assert condition_reason(world, "Ready") == "Scaling"
    world.settle()
    for _ in range(5):
        world.run(1)
        seen.add(flag_weight(world))
    assert seen == {100}
    assert world.status.phase == "Healthy"


def test_an_unready_pod_after_a_completed_canary_is_not_a_new_rollout() -> None:
    """Kubernetes test/integration/deployment/deployment_test.go TestDeploymentAvailableCondition
    and Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentNewRevision,
    for a routed canary: a stable pod that turns unready after the rollout is done does not
    bring back a canary, a weight or an abort; the Rollout reports Scaling until the pod is
    back, then Healthy, and the route stays the user's."""
    world = canary_world([{"setWeight": 50}], route=True)
    old = world.revision
    world.set_image("web:2")
    world.run_until("Healthy")
    world.run(20)
    assert pods(world, old) == 0
    dep = next(d for d in world.deps.values() if d.revision == world.revision)
    for _ in range(5):
        dep.ready = 3
        world.step(settle=False)
        world.now += timedelta(seconds=PASS)
        assert weights(world) == (100, 0)
        assert world.status.abort is None
    assert condition_reason(world, "Ready") == "Scaling"
    world.settle()
    world.run_until("Healthy")
    assert world.status.stable_revision == world.revision
    assert world.replicas_by_revision() == {old: 0, world.revision: 4}
