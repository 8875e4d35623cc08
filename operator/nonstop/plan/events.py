"""The Events that tell a Rollout's story in `kubectl describe`.

Two kinds: state Events (a rollout started, was superseded, paused, completed, rolled back;
an analysis verdict), decided by the planner and posted once per change; and action
Events (Scaled, TrafficRouted, ServiceSwitched, ...), made only from the actions that were
carried out, so that an Event never claims a write that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from nonstop.api import RolloutStatus
from nonstop.api.status import AnalysisRunStatus
from nonstop.plan.context import PassContext
from nonstop.plan.model import (
    REVISION_LABEL,
    Action,
    CreateDeployment,
    DeleteDeployment,
    EnsureService,
    EventSpec,
    ScaleDeployment,
    UpdateConfigMap,
    UpdateRoute,
)
from nonstop.plan.outcome import Outcome

# Entering one of these states (for a given revision) is worth an Event.
_STATE_EVENTS: dict[str, tuple[Literal["Normal", "Warning"], str]] = {
    "PodsNotReady": ("Warning", "PodsNotReady"),
    "PausedByUser": ("Normal", "PausedByUser"),
    "RollingBack": ("Warning", "RolloutAborted"),
    "RolledBack": ("Normal", "RolledBack"),
    "ProgressDeadlineExceeded": ("Warning", "ProgressDeadlineExceeded"),
    "RolloutCompleted": ("Normal", "RolloutCompleted"),
    "StepPaused": ("Normal", "StepPaused"),
    "AwaitingPromotion": ("Normal", "AwaitingPromotion"),
}


def _images(template: dict[str, object]) -> str:
    spec = template.get("spec")
    containers = spec.get("containers", []) if isinstance(spec, dict) else []
    return ", ".join(str(c.get("image", "?")) for c in containers if isinstance(c, dict))


def state_events(ctx: PassContext, outcome: Outcome) -> tuple[list[EventSpec], list[EventSpec]]:
    """(what starts: a new revision, the strategy's own Events; entering a new state)."""
    prev, revision, spec = ctx.prev, ctx.revision, ctx.spec
    events: list[EventSpec] = []
    prev_ready = prev.condition("Ready")
    prev_reason = prev_ready.reason if prev_ready else None
    reason = outcome.verdict.reason
    started = prev.current_revision != revision

    if started:
        was_rolling = prev.phase in ("Progressing", "Paused") and prev.current_revision not in (
            None,
            prev.stable_revision,
        )
        if was_rolling:
            events.append(
                EventSpec(
                    "Normal",
                    "Superseded",
                    f"revision {prev.current_revision} was superseded by {revision} before it"
                    " completed",
                )
            )
        stable = outcome.stable_revision
        images = _images(ctx.template)
        if stable and stable != revision:
            message = f"rolling out revision {revision} ({images}) to replace {stable}"
        else:
            message = f"creating revision {revision} ({images}) with {spec.replicas} pods"
        events.append(EventSpec("Normal", "RolloutStarted", message))

    events.extend(outcome.events)
    opening, events = events, []
    if (reason, revision) != (prev_reason, prev.current_revision):
        if reason in _STATE_EVENTS:
            type_, event_reason = _STATE_EVENTS[reason]
            events.append(EventSpec(type_, event_reason, outcome.verdict.message))
        elif reason == "RolloutInProgress" and prev_reason == "PodsNotReady" and not started:
            events.append(
                EventSpec(
                    "Normal",
                    "Resumed",
                    f"pods of revision {revision} are becoming ready again; the rollout goes on",
                )
            )
        elif reason == "RolloutInProgress" and prev_reason == "PausedByUser":
            events.append(
                EventSpec(
                    "Normal", "ResumedByUser", "spec.paused is false again; the rollout goes on"
                )
            )
    return opening, events


def verdict_events(
    current: list[AnalysisRunStatus],
) -> tuple[list[EventSpec], list[AnalysisRunStatus]]:
    """One Event per analysis verdict, posted once (the run is marked reported)."""
    events, out = [], []
    for run in current:
        if run.phase != "Running" and not run.reported:
            type_: Literal["Normal", "Warning"] = (
                "Normal" if run.phase == "Successful" else "Warning"
            )
            events.append(EventSpec(type_, f"Analysis{run.phase}", f"{run.name}: {run.message}"))
            out.append(run.model_copy(update={"reported": True}))
        else:
            out.append(run)
    return events, out


def action_events(done: Sequence[Action]) -> list[EventSpec]:
    """The Events of the actions that were carried out: every change of where traffic goes
    (route weights, flags, Services switching revision), then the pods."""
    events = []
    for action in done:
        if isinstance(action, UpdateRoute):
            events.append(EventSpec("Normal", "TrafficRouted", action.note))
        elif isinstance(action, UpdateConfigMap):
            events.append(EventSpec("Normal", "FlagUpdated", action.note))
        elif isinstance(action, EnsureService) and action.current_selector is not None:
            name = action.body["metadata"]["name"]
            new = action.body["spec"]["selector"].get(REVISION_LABEL)
            old = action.current_selector.get(REVISION_LABEL)
            if new and old and new != old:
                events.append(
                    EventSpec(
                        "Normal",
                        "ServiceSwitched",
                        f"Service {name} now selects revision {new} (was {old})",
                    )
                )
    notes = []
    for action in done:
        if isinstance(action, CreateDeployment):
            notes.append(f"created {action.name} with {action.body['spec']['replicas']} pods")
        elif isinstance(action, ScaleDeployment):
            notes.append(f"scaled {action.name} from {action.from_replicas} to {action.replicas}")
    if notes:
        events.append(EventSpec("Normal", "Scaled", "; ".join(notes)))
    deleted = [a for a in done if isinstance(a, DeleteDeployment)]
    if deleted:
        events.append(
            EventSpec(
                "Normal",
                "RevisionsDeleted",
                "deleted old revisions beyond revisionHistoryLimit="
                f"{deleted[0].history_limit}: {', '.join(a.name for a in deleted)}",
            )
        )
    return events


def stalled_event(prev: RolloutStatus, reason: str, message: str) -> list[EventSpec]:
    """The Event of a Rollout that cannot go on: once per distinct problem."""
    before = prev.condition("Stalled")
    repeated = (
        before is not None
        and before.status == "True"
        and (before.reason, before.message) == (reason, message)
    )
    return [] if repeated else [EventSpec("Warning", reason, message)]


__all__ = ["action_events", "stalled_event", "state_events", "verdict_events"]
