"""What only the real reconcile pass does (issue 9): the order of its writes, its barriers,
its Events, its status patch and its backoff, run against an in-memory API server
(tests/memory_kube.py) that fails the way a real one does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nonstop.plan.model import REVISION_LABEL, CreateDeployment, EnsureService, UpdateRoute
from nonstop.reconcile import reconcile
from tests.memory_kube import MemoryKube
from tests.sim import World, http_route, rollout_raw

PASS = timedelta(seconds=2)
DEPLOYMENT_WRITES = ("create_deployment", "scale_deployment", "delete_deployment")


def routed_canary_at_pause() -> World:
    """A routed canary of web:2 paused at 50%, its route the user's HTTPRoute `web`."""
    steps = [{"setWeight": 50}, {"pause": {}}]
    world = World(
        rollout_raw(replicas=4, deadline=600, strategy={"canary": {"steps": steps}}, route="web")
    )
    world.route = http_route()
    world.run_until("Healthy")
    world.set_image("web:2")
    world.run_until("Paused")
    return world


def condition(world: World, kind: str) -> Any:
    found = world.status.condition(kind)
    assert found is not None, f"no {kind} condition"
    return found


def test_a_route_write_that_conflicts_stops_the_pass_and_the_next_pass_goes_on() -> None:
    """Issue 9 bug 5 (a failed write does not stop the pass): a PUT of the HTTPRoute that fails with 409 (the
    route changed meanwhile) stops the pass: no Service and no Deployment is written after
    it in that pass, so pods never move on the strength of a traffic change that did not
    happen. The next pass reads the route again and goes on."""
    world = routed_canary_at_pause()
    world.set_image("web:3")  # a new revision supersedes the canary at 50%
    newest = world.revision
    world.kube.fail_next("replace_route", 409)
    before = len(world.kube.calls)
    decision = world.step()
    planned = [type(a) for a in decision.actions]
    assert planned[0] is UpdateRoute
    assert EnsureService in planned[1:] and CreateDeployment in planned[1:]  # what waits
    calls = world.kube.calls[before:]
    after_route = calls[calls.index(("replace_route", "web")) + 1 :]
    assert not [c for c in after_route if c[0] in (*DEPLOYMENT_WRITES, "ensure_service")]
    assert newest not in world.replicas_by_revision()
    ready = condition(world, "Ready")
    assert ready.status == "False" and ready.reason == "ApplyFailed"
    assert "could not update HTTPRoute web: 409 Conflict" in ready.message
    assert "nothing else was done this pass" in ready.message
    assert "ApplyFailed" in [e.reason for e in world.history[-1].events]
    assert world.requeue is not None and world.requeue <= 3.0  # soon: the route is re-read

    world.now += PASS
    before = len(world.kube.calls)
    world.step()
    writes = [m for m, _ in world.kube.calls[before:]]
    assert "replace_route" in writes and "create_deployment" in writes
    assert newest in world.replicas_by_revision()
    assert condition(world, "Ready").reason != "ApplyFailed"
    world.run_until("Paused")
    assert world.services["web-canary"].selector[REVISION_LABEL] == newest


def test_a_route_someone_changed_during_the_pass_is_not_overwritten() -> None:
    """Issue 9 bug 5 (a failed write does not stop the pass): the HTTPRoute is PUT with the resourceVersion it
    was read at. When someone else changes it between nonstop's read and its write, the API
    server answers 409: their change stays, and nothing after the route is written in that
    pass. The next pass starts from their route."""
    world = routed_canary_at_pause()
    world.set_image("web:3")
    world.write()

    def someone_edits_the_route(_: object) -> None:
        route = world.kube.get("HTTPRoute", "default", "web")
        assert route is not None
        route["metadata"]["annotations"] = {"team": "edited meanwhile"}
        world.kube.put("HTTPRoute", route)

    before, written = len(world.kube.calls), len(world.kube.writes)
    reconcile(world.kube, "default", "web", now=world.now, on_plan=someone_edits_the_route)
    calls = world.kube.calls[before:]
    assert ("replace_route", "web") in calls
    assert ("replace_route", "web") not in world.kube.writes[written:]
    after_route = calls[calls.index(("replace_route", "web")) + 1 :]
    assert not [c for c in after_route if c[0] in (*DEPLOYMENT_WRITES, "ensure_service")]
    route = world.kube.get("HTTPRoute", "default", "web")
    assert route is not None and route["metadata"]["annotations"] == {"team": "edited meanwhile"}
    world.now += PASS
    world.run_until("Paused")
    assert world.route is not None
    assert world.route["metadata"]["annotations"]["team"] == "edited meanwhile"
    assert world.services["web-canary"].selector[REVISION_LABEL] == world.revision


def test_an_event_that_cannot_be_posted_does_not_cost_the_pass_its_status() -> None:
    """Issue 9 bug 8 (a failed Event POST lost the pass's status): posting an Event that fails (the API server answers 500)
    is logged; the pass does not raise, its writes and its status patch still happen, and
    the Rollout comes up as if the Events had been posted."""
    world = World(rollout_raw(replicas=2))
    world.kube.fail_events = True
    decision = world.step()  # does not raise
    assert ("patch_rollout_status", "web") in world.kube.writes
    assert world.status.phase == decision.status.phase == "Progressing"
    assert world.status.current_revision == world.revision
    assert world.replicas_by_revision() == {world.revision: 2}
    assert world.kube.events == [] and world.history[-1].events == ()
    assert ("post_event", "web") in world.kube.calls  # it was tried
    world.now += PASS
    world.run_until("Healthy")
    assert world.kube.events == []


def test_a_deployment_someone_else_made_under_nonstops_name_is_not_claimed() -> None:
    """Issue 9 bug 11: a Deployment made by someone else under the name nonstop would use
    (web-<revision>, without nonstop's ownerReference) was taken as nonstop's: the 409 was
    success, an Event "created ..." was posted every pass and the status waited for pods
    until the deadline. It is not claimed: the Rollout is Stalled with DeploymentConflict
    (said once), nothing is created or scaled, and the pass is not retried hot."""
    world = World(rollout_raw(replicas=3))
    name = f"web-{world.revision}"
    world.kube.put(
        "Deployment",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "squatter"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "squatter"}},
                "template": {"metadata": {"labels": {"app": "squatter"}}},
            },
        },
    )
    requeues = []
    for _ in range(3):
        world.step()
        requeues.append(world.requeue)
        world.now += PASS
    stalled = condition(world, "Stalled")
    assert stalled.status == "True" and stalled.reason == "DeploymentConflict"
    assert name in stalled.message
    assert world.status.phase != "Healthy"
    reasons = [e.reason for plan in world.history for e in plan.events]
    messages = [e.message for plan in world.history for e in plan.events]
    assert not [m for m in messages if m.startswith("created")]
    assert reasons.count("DeploymentConflict") == 1
    assert all(r is not None and r >= 60 for r in requeues), requeues
    assert world.deps == {}
    found = world.kube.get("Deployment", "default", name)
    assert found is not None and found["spec"]["replicas"] == 1
    assert "ownerReferences" not in found["metadata"]
    assert not [c for c in world.kube.calls if c[0] in DEPLOYMENT_WRITES]


def test_a_service_that_cannot_be_created_makes_the_rollout_not_ready_with_backoff() -> None:
    """Issue 9 bug 11 (a Service that cannot exist, a failing write that never backs off): a Service create that the API server refuses (422)
    left the Rollout Healthy. The Rollout is not Ready (ApplyFailed, naming the Service),
    the pass is retried with a backoff that grows pass after pass, and the ApplyFailed Event
    is posted once, not every pass. Once the Service can be created, it comes up."""
    world = World(rollout_raw(replicas=2))
    world.kube.fail("ensure_service", 422, name="web")
    requeues: list[float] = []
    for _ in range(5):
        world.step()
        assert world.requeue is not None
        requeues.append(world.requeue)
        world.now += timedelta(seconds=world.requeue)
        ready = condition(world, "Ready")
        assert ready.status == "False" and ready.reason == "ApplyFailed"
        assert "Service web" in ready.message and "422" in ready.message
        assert world.status.phase != "Healthy"
    assert requeues == sorted(requeues) and requeues[0] < requeues[-1], requeues
    assert len(set(requeues)) == len(requeues), requeues
    reasons = [e.reason for plan in world.history for e in plan.events]
    assert reasons.count("ApplyFailed") == 1
    assert "web" not in world.services

    world.kube.clear_failures()
    world.run_until("Healthy")
    assert condition(world, "Ready").status == "True"
    assert world.services["web"].owned
    assert world.requeue == world.history[-1].requeue_after  # no backoff any more


def test_a_rollout_that_is_gone_is_forgotten() -> None:
    """The pass of a Rollout that is gone (deleted meanwhile) writes nothing and returns
    None: no requeue."""
    kube = MemoryKube()
    assert reconcile(kube, "default", "web") is None
    assert [c for c in kube.calls if c[0] != "get_rollout"] == []
