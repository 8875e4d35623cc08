"""Manual control: what a RolloutAction does to a Rollout, decided before the strategy plans.

An action's effect (an abort, a hold, a retry's fresh start, a promotion) goes into the
pass context; the status built from the outcome records it, so an action is as
restart-safe as the rest. Each action is answered once: Applied or Rejected with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nonstop.api import Abort, RolloutStatus
from nonstop.api.status import ActionRecord
from nonstop.plan.context import ActionEffect
from nonstop.plan.model import ActionAnswer, ActionView, DeploymentView, EventSpec, SetTemplate


@dataclass(frozen=True)
class Control:
    effect: ActionEffect  # what the action changes, this pass and (via status) after
    answer: ActionAnswer
    event: EventSpec | None
    record: ActionRecord | None = None  # status.lastAction, so it is applied once
    set_template: SetTemplate | None = None  # undo


def next_action(pending: tuple[ActionView, ...]) -> ActionView | None:
    """One action per pass, oldest first, so that their order is the order people gave them."""
    return min(pending, key=lambda a: (a.created_at, a.name), default=None)


def apply_action(
    status: RolloutStatus,
    revision: str,
    action: ActionView,
    now: datetime,
    *,
    has_steps: bool = False,
    deployments: tuple[DeploymentView, ...] = (),
) -> Control:
    last = status.last_action
    if last is not None and last.uid == action.uid:
        # applied by an earlier pass whose answer was not written: answer, do not repeat,
        # except an undo whose template did not make it into the spec
        again = None
        if last.action == "undo" and last.revision not in (None, revision):
            found = _template_of(deployments, last.revision)
            again = SetTemplate(found, str(last.revision)) if found else None
        answer = ActionAnswer(action.name, "Applied", "applied")
        return Control(ActionEffect(), answer, None, set_template=again)
    said = f"RolloutAction {action.name}" + (f" ({action.reason})" if action.reason else "")
    if action.action == "undo":
        return _undo(status, revision, action, said, now, deployments)
    if action.action in ("promote", "promoteFull") and has_steps:
        refusal = _promotion(status, revision)
        effect = ActionEffect(promotion="full" if action.action == "promoteFull" else "step")
    else:
        effect, refusal = _effect(status, revision, action, said, now)
    if refusal is not None:
        event = EventSpec("Warning", "ActionRejected", f"{action.action} rejected: {refusal}")
        return Control(ActionEffect(), ActionAnswer(action.name, "Rejected", refusal), event)
    record = ActionRecord(uid=action.uid, name=action.name, action=action.action, at=now)
    message = f"{action.action} by {said}"
    return Control(
        effect,
        ActionAnswer(action.name, "Applied", message),
        EventSpec("Normal", "ActionApplied", message),
        record,
    )


def _template_of(
    deployments: tuple[DeploymentView, ...], revision: str | None
) -> dict[str, Any] | None:
    return next((d.template for d in deployments if d.revision == revision), None)


def undo_target(
    status: RolloutStatus, revision: str, deployments: tuple[DeploymentView, ...]
) -> str | None:
    """Mid-rollout, the stable revision; otherwise the newest other revision still kept."""
    if status.stable_revision not in (None, revision):
        return status.stable_revision
    epoch = datetime.min.replace(tzinfo=UTC)
    kept = sorted(
        (d for d in deployments if d.revision != revision and d.template is not None),
        key=lambda d: d.created_at or epoch,
    )
    return kept[-1].revision if kept else None


def _undo(
    status: RolloutStatus,
    revision: str,
    action: ActionView,
    said: str,
    now: datetime,
    deployments: tuple[DeploymentView, ...],
) -> Control:
    target = undo_target(status, revision, deployments)
    template = _template_of(deployments, target)
    if target is None or template is None:
        refusal = (
            f"nothing to undo to: no revision before {revision} is kept"
            " (see spec.revisionHistoryLimit)"
            if target is None
            else f"revision {target} has no recorded pod template (made by an older nonstop)"
        )
        event = EventSpec("Warning", "ActionRejected", f"undo rejected: {refusal}")
        return Control(ActionEffect(), ActionAnswer(action.name, "Rejected", refusal), event)
    record = ActionRecord(uid=action.uid, name=action.name, action="undo", at=now, revision=target)
    # The abort of the revision being left is moot; the target starts as any new revision.
    message = f"undo by {said}: spec.template set back to revision {target} (from {revision})"
    return Control(
        ActionEffect(),
        ActionAnswer(action.name, "Applied", message),
        EventSpec("Normal", "ActionApplied", message),
        record,
        set_template=SetTemplate(template, target),
    )


def _in_steps(status: RolloutStatus, revision: str) -> bool:
    """A rollout of this revision is under way (a feature toggle's revision is stable while
    its flag moves, so the phase says it, not the stable revision)."""
    return status.current_revision == revision and (
        status.stable_revision not in (None, revision)
        or (status.flag is not None and status.phase != "Healthy")
    )


def _promotion(status: RolloutStatus, revision: str) -> str | None:
    """Why a promote cannot be done, or None."""
    if not _in_steps(status, revision):
        return f"nothing to promote: revision {revision} is not in its steps"
    if status.abort is not None and status.abort.revision == revision:
        return f"revision {revision} is aborted: retry it first"
    return None


def _effect(  # noqa: PLR0911  (one answer per verb reads clearest)
    status: RolloutStatus, revision: str, action: ActionView, said: str, now: datetime
) -> tuple[ActionEffect, str | None]:
    """What the action does, or why it cannot be done."""
    aborted = status.abort is not None and status.abort.revision == revision
    nothing = ActionEffect()
    match action.action:
        case "abort":
            if aborted:
                return nothing, f"revision {revision} is already aborted"
            if status.stable_revision == revision and not _in_steps(status, revision):
                return nothing, f"nothing to abort: revision {revision} is the stable revision"
            abort = Abort(
                revision=revision, at=now, reason="AbortedByUser", message=f"aborted by {said}"
            )
            return ActionEffect(abort=abort), None
        case "retry":
            if not aborted:
                return nothing, f"nothing to retry: revision {revision} is not aborted"
            # a fresh start: no abort, the steps and their analysis runs from the beginning,
            # and a new deadline from now
            fresh = ActionEffect(clear_abort=True, restart_steps=True, reset_deadline=True)
            return fresh, None
        case "pause":
            return ActionEffect(held=True), None
        case "resume":
            if not status.held:
                return nothing, "the rollout is not paused by a RolloutAction"
            return ActionEffect(held=False, reset_deadline=True), None
        case _:
            return nothing, f"{action.action} needs a canary or blue-green strategy"
