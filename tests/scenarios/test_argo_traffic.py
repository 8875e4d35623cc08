"""Scenarios ported from Argo Rollouts' traffic-router e2e suites (argoproj/argo-rollouts,
test/e2e/istio_test.go, header_routing_test.go, aws_test.go, canary_test.go), where they apply
to nonstop's one router, a Gateway API HTTPRoute: weights in the route, which revision each
Service selects, header routes, abort. Run in the simulated world.

Each docstring names the Argo test and what nonstop does where it deliberately differs."""

from __future__ import annotations

from typing import Any

from tests.scenarios.conftest import (
    at_step,
    canary_world,
    new_image,
    pods,
    promote_to,
    selects,
    until,
    wait,
    weights,
)
from tests.sim import World, http_route


def route_is_the_users(world: World) -> bool:
    assert world.route is not None
    return bool(world.route["spec"] == http_route()["spec"])


def owned_rules(world: World) -> list[str]:
    assert world.route is not None
    return [r["name"] for r in world.route["spec"]["rules"] if r.get("name")]


def test_weights_and_services_through_a_routed_canary() -> None:
    """Argo Rollouts test/e2e/istio_test.go TestIstioHostSplit (and TestIstioSubsetSplit):
    at rest the route gives stable 100%, both Services select revision 1; at the pause after
    setWeight 10 it is 90/10, the stable Service selects 1 and the canary Service 2; after
    the promote it is 100/0 again with both Services on revision 2 (the route is given back
    exactly as the user wrote it), and status.weights says the same."""
    world = canary_world([{"setWeight": 10}, {"pause": {}}], route=True)
    first = world.revision
    assert weights(world) == (100, 0)
    assert (selects(world), selects(world, "web-canary")) == (first, first)
    second = new_image(world, "web:2")
    world.run_until("Paused")
    assert weights(world) == (90, 10)
    assert (selects(world), selects(world, "web-canary")) == (first, second)
    assert world.status.weights is not None
    assert (world.status.weights.stable, world.status.weights.canary) == (90, 10)
    world.request("promote")
    world.run_until("Healthy")
    assert weights(world) == (100, 0) and route_is_the_users(world)
    assert (selects(world), selects(world, "web-canary")) == (second, second)
    assert world.status.weights is not None and world.status.weights.stable == 100


def test_abort_of_a_rollout_that_is_done_is_rejected_and_changes_nothing() -> None:
    """Argo Rollouts test/e2e/istio_test.go TestIstioAbortUpdate: aborting a Healthy rollout
    leaves it Healthy with its pods, before and after an update. nonstop answers such an
    abort Rejected ("is the stable revision") and changes nothing."""
    world = canary_world([{"setWeight": 10}, {"pause": {}}], route=True, replicas=1)
    first = world.revision
    name = world.request("abort")
    world.run(3)
    assert world.answer(name).phase == "Rejected"
    assert "is the stable revision" in world.answer(name).message
    assert world.status.phase == "Healthy" and pods(world, first) == 1
    second = new_image(world, "web:2")
    world.run_until("Paused")
    world.request("promote")
    world.run_until("Healthy")
    name = world.request("abort")
    world.run(3)
    assert world.answer(name).phase == "Rejected"
    assert world.status.phase == "Healthy" and world.status.stable_revision == second
    assert pods(world, second) == 1 and route_is_the_users(world)


def test_a_new_revision_mid_routed_canary_gets_its_own_pod_and_weight() -> None:
    """Argo Rollouts test/e2e/istio_test.go TestIstioUpdateInMiddleZeroCanaryReplicas and
    Flagger pkg/controller/scheduler_deployment_test.go TestScheduler_DeploymentNewRevisionReset:
    a new template while the canary waits at its pause first takes the weight back to the
    stable revision (Flagger: 100/0 at once), then the new revision starts from step 0 and
    waits at the same pause with its own pod and the step's weight; the superseded revision
    goes to 0 (after the scale-down delay) and the stable revision stays whole throughout."""
    world = canary_world([{"setWeight": 25}, {"pause": {}}], route=True)
    first = world.revision
    second = new_image(world, "web:2")
    world.run_until("Paused")
    assert weights(world) == (75, 25)
    world.min_ready_seen = None
    third = new_image(world, "web:3")
    world.step()
    assert weights(world) == (100, 0)
    assert world.status.current_step_index == 0
    world.run_until("Paused")
    wait(world, 40)
    assert [pods(world, r) for r in (first, second, third)] == [4, 0, 1]
    assert weights(world) == (75, 25)
    assert (selects(world), selects(world, "web-canary")) == (first, third)
    assert world.min_ready_seen is not None and world.min_ready_seen >= 4


def test_a_header_route_step_replaces_the_previous_one_of_that_name() -> None:
    """Argo Rollouts test/e2e/header_routing_test.go TestIstioHostHeaderRoute and
    test/e2e/aws_test.go TestAlbHeaderRoute: setWeight 20, a header route (agent ~ firefox)
    that sends matching requests to the canary only, pause; a second header route step of
    the same name (agent ~ chrome) replaces it; setWeight 40 keeps it; promoteFull gives all
    traffic to the new revision and removes every trace. Argo's `setHeaderRoute: {}` removes
    a header route mid-way; nonstop's setHeaderRoute needs a match (admission), its header
    routes leave at the end or on abort."""

    def agent(regex: str) -> dict[str, Any]:
        return {"setHeaderRoute": {"name": "agent", "match": [{"name": "agent", "regex": regex}]}}

    steps = [
        {"setWeight": 20},
        agent("firefox(.*)"),
        {"pause": {}},
        agent("chrome(.*)"),
        {"pause": {}},
        {"setWeight": 40},
        {"pause": {}},
    ]
    world = canary_world(steps, route=True, replicas=5)
    new = new_image(world, "web:2")

    def header_values() -> list[str]:
        assert world.route is not None
        rule = world.route["spec"]["rules"][0]
        assert rule["name"] == "nonstop-header-agent-0"
        assert [b["name"] for b in rule["backendRefs"]] == ["web-canary"]
        return [h["value"] for m in rule["matches"] for h in m.get("headers", [])]

    until(world, at_step(world, 2))
    assert weights(world) == (80, 20) and header_values() == ["firefox(.*)"]
    promote_to(world, 4)
    assert weights(world) == (80, 20) and header_values() == ["chrome(.*)"]
    assert owned_rules(world) == ["nonstop-header-agent-0"]
    promote_to(world, 6)
    assert weights(world) == (60, 40) and header_values() == ["chrome(.*)"]
    world.request("promoteFull")
    world.run_until("Healthy")
    assert world.status.stable_revision == new
    assert route_is_the_users(world) and owned_rules(world) == []


def test_two_releases_in_a_row_through_the_same_route() -> None:
    """Argo Rollouts test/e2e/aws_test.go TestALBPingPongUpdate: two updates one after the
    other through the same route: 75/25 at the pause, all traffic to the new revision at the
    end, twice. nonstop does not ping-pong between two Services: the stable Service always
    names the stable revision, and after each release the route is exactly the user's."""
    world = canary_world([{"setWeight": 25}, {"pause": {}}], route=True)
    for image in ("web:2", "web:3"):
        new = new_image(world, image)
        world.run_until("Paused")
        assert weights(world) == (75, 25)
        world.request("promote")
        world.run_until("Healthy")
        assert world.status.stable_revision == new and selects(world) == new
        assert weights(world) == (100, 0) and route_is_the_users(world)
    wait(world, 40)
    assert sum(world.replicas_by_revision().values()) == 4


def test_a_routed_abort_moves_traffic_only_to_a_ready_stable_revision() -> None:
    """Argo Rollouts test/e2e/canary_test.go TestCanaryDynamicStableScaleAbortScaleDownDelay:
    on abort, "while stable is still scaling up (its new pods are not yet ready), the canary
    must keep its pods ... and must keep its traffic weight, since stable cannot yet serve
    that traffic"; all traffic goes back to stable once it can. nonstop's rule 3
    (docs/architecture.md): a weight moves to a Service only once its EndpointSlices list the
    pods as ready. Here every stable pod is unready when the abort comes.

    Fixed in issue 9 (it failed before): a routed abort gives the stable Service 100% in its
    first write even when the stable Service lists no ready pod: all traffic goes to no
    endpoint.
    """
    world = canary_world([{"setWeight": 50}, {"pause": {}}], route=True)
    stable = world.revision
    canary = new_image(world, "web:2")
    world.run_until("Paused")
    world.never_ready.add(stable)  # the stable pods turn unready (a bad node, a dependency)
    world.settle()
    world.request("abort")
    world.run(3)
    assert world.endpoints(world.services["web"]) == 0
    assert weights(world)[1] > 0  # the ready canary keeps serving
    assert pods(world, canary) == 2
    world.never_ready.clear()
    world.run(3)
    assert weights(world) == (100, 0)
