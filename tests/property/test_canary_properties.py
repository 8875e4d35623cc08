"""Invariants of the canary planner without a router (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from nonstop.plan import DeploymentView, Observed
from nonstop.plan.status import traffic_shares
from tests.sim import World, rollout_raw

available = st.integers(0, 20)


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), available), max_size=3),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["a", "b", None]),
)
def test_weights_stay_in_range_sum_to_100_and_never_go_to_a_canary_without_ready_pods(
    revisions: list[tuple[str, int]], current: str, stable: str | None
) -> None:
    deployments = tuple(
        DeploymentView(
            name=f"web-{r}",
            revision=r,
            spec_replicas=n,
            replicas=n,
            ready_replicas=n,
            available_replicas=n,
        )
        for r, n in dict(revisions).items()
    )
    weights = traffic_shares(Observed(deployments=deployments), current, stable)
    assert 0 <= weights.canary <= 100 and 0 <= weights.stable <= 100
    assert abs(weights.canary + weights.stable - 100) < 1e-6
    if dict(revisions).get(current, 0) == 0:
        assert weights.canary == 0


STEP = st.one_of(
    st.integers(0, 100).map(lambda w: {"setWeight": w}),
    st.sampled_from([{"pause": {"duration": "4s"}}, {"pause": {}}]),
)


@settings(max_examples=30, deadline=None)
@given(
    steps=st.lists(STEP, min_size=1, max_size=6),
    replicas=st.integers(1, 6),
    promote_every=st.integers(3, 9),
)
def test_a_canary_keeps_the_minimum_never_steps_back_and_finishes(
    steps: list[dict[str, object]], replicas: int, promote_every: int
) -> None:
    world = World(rollout_raw(replicas=replicas, strategy={"canary": {"steps": steps}}))
    world.run_until("Healthy")
    stable = world.revision
    world.set_image("web:2")
    world.min_ready_seen = None
    last_index = 0
    for n in range(300):
        world.step()
        world.now += timedelta(seconds=2)
        index = world.status.current_step_index
        if index is not None and world.status.current_revision == world.revision:
            assert index >= last_index  # the step index never goes back within a revision
            last_index = index
        if n % promote_every == 0:
            world.request("promote")
        if world.status.phase == "Healthy" and world.status.stable_revision == world.revision:
            break
    assert world.status.phase == "Healthy", world.status.message
    assert world.replicas_by_revision() == {world.revision: replicas, stable: 0}
    assert world.min_ready_seen is not None and world.min_ready_seen >= replicas
