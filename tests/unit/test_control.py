"""Manual control with RolloutActions: each is applied once and answered."""

from __future__ import annotations

from nonstop.plan import ActionView
from tests.sim import World, rollout_raw


def rolling_world() -> World:
    world = World(rollout_raw(replicas=4, max_surge=1, deadline=600))
    world.run_until("Healthy")
    return world


def test_abort_mid_rollout_rolls_back_at_once_and_retry_rolls_out_again() -> None:
    world = rolling_world()
    stable = world.revision
    world.set_image("web:2")
    new = world.revision
    world.run(2)
    assert world.status.phase == "Progressing"
    name = world.request("abort", "error budget burning")
    world.run(1)
    assert world.answer(name).phase == "Applied"
    assert world.status.abort is not None and world.status.abort.reason == "AbortedByUser"
    assert "error budget burning" in world.status.abort.message
    world.min_ready_seen = None
    world.run(6)
    assert world.replicas_by_revision() == {stable: 4, new: 0}
    assert world.min_ready_seen == 4
    assert world.status.condition("Stalled").reason == "RolledBack"  # type: ignore[union-attr]

    retry = world.request("retry")
    world.run_until("Healthy")
    assert world.answer(retry).phase == "Applied"
    assert world.replicas_by_revision() == {stable: 0, new: 4}
    reasons = [e.reason for p in world.history for e in p.events]
    assert reasons.count("ActionApplied") == 2


def test_pause_holds_and_resume_releases() -> None:
    world = rolling_world()
    world.set_image("web:2")
    world.run(1)
    world.request("pause")
    world.run(2)
    held = world.replicas_by_revision()
    world.run(10)
    assert world.status.phase == "Paused" and world.status.held
    assert world.replicas_by_revision() == held
    world.request("resume")
    world.run_until("Healthy")
    assert not world.status.held


def test_actions_that_do_not_apply_are_rejected_with_a_reason() -> None:
    world = rolling_world()
    names = [world.request(verb) for verb in ("abort", "retry", "resume", "promote")]
    world.run(6)
    answers = {n.split("-")[1]: world.answer(n) for n in names}
    assert {a.phase for a in answers.values()} == {"Rejected"}
    assert "is the stable revision" in answers["abort"].message
    assert "not aborted" in answers["retry"].message
    assert "no steps" in answers["promote"].message
    assert world.status.phase == "Healthy"


def test_an_action_applied_before_a_crash_is_answered_not_repeated() -> None:
    world = rolling_world()
    world.set_image("web:2")
    world.run(1)
    name = world.request("abort")
    world.step()
    # the operator died before it wrote the answer: the action is still pending
    first = world.answer(name)
    world.answers.clear()
    world.actions.append(ActionView(name, f"uid-{name}", "abort", "", world.now))
    at = world.status.abort.at if world.status.abort else None
    world.step()
    assert first.phase == world.answer(name).phase == "Applied"
    assert world.status.abort is not None and world.status.abort.at == at  # not aborted twice
    assert [e.reason for e in world.history[-1].events if e.reason == "ActionApplied"] == []
