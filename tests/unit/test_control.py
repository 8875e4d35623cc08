"""Manual control with RolloutActions: each is applied once and answered."""

from __future__ import annotations

import copy

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
    assert "canary or blue-green" in answers["promote"].message
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


def test_undo_after_a_completed_rollout_goes_back_to_the_previous_revision() -> None:
    world = rolling_world()
    first = world.revision
    first_template = copy.deepcopy(world.raw["spec"]["template"])
    world.set_image("web:2")
    world.run_until("Healthy")
    second = world.revision
    name = world.request("undo", "bad release")
    world.step()
    assert world.answer(name).phase == "Applied"
    assert world.revision == first
    assert world.raw["spec"]["template"] == first_template  # as written, not as defaulted
    assert world.status.last_action is not None and world.status.last_action.revision == first
    world.run_until("Healthy")
    assert world.replicas_by_revision() == {first: 4, second: 0}


def test_undo_mid_rollout_goes_back_to_the_stable_revision() -> None:
    world = rolling_world()
    stable = world.revision
    world.set_image("web:2")
    world.run(2)
    world.request("undo")
    world.step()
    assert world.revision == stable
    world.run_until("Healthy")
    assert world.replicas_by_revision()[stable] == 4


def test_undo_with_nothing_before_is_rejected() -> None:
    world = rolling_world()
    name = world.request("undo")
    decision = world.step()
    assert world.answer(name).phase == "Rejected"
    assert "nothing to undo to" in world.answer(name).message
    assert not any(type(a).__name__ == "SetTemplate" for a in decision.actions)


def test_an_undo_whose_template_was_not_written_is_written_again() -> None:
    world = rolling_world()
    first = world.revision
    world.set_image("web:2")
    world.run_until("Healthy")
    name = world.request("undo")
    view_template = dict(world.raw["spec"]["template"])
    decision = world.step(settle=False)
    # the template patch failed: the spec is as it was, the action not yet answered
    world.raw["spec"]["template"] = view_template
    world.raw["metadata"]["generation"] += 1
    world.answers.clear()
    world.actions.append(ActionView(name, f"uid-{name}", "undo", "", world.now))
    assert any(type(a).__name__ == "SetTemplate" for a in decision.actions)
    again = world.step()
    assert any(type(a).__name__ == "SetTemplate" for a in again.actions)
    assert world.revision == first
