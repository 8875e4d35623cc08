"""plan(rollout, observed, now) -> Plan: the one entry point of the pure layer.

It checks what admission could not, keeps the Service as the spec says, hands the
revisions to the strategy, and turns the strategy's outcome into a whole new status and
the Events that tell the story.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from nonstop.api import RolloutSpec, RolloutStatus, Weights
from nonstop.api.status import AnalysisRunStatus, Phase
from nonstop.plan.analysis import conditions_problem, measures, metrics_of, next_measurement_in
from nonstop.plan.analysis import runs as analysis_runs
from nonstop.plan.bluegreen import plan_blue_green
from nonstop.plan.canary import plan_canary
from nonstop.plan.conditions import Verdict, conditions
from nonstop.plan.control import apply_action, next_action
from nonstop.plan.model import (
    REVISION_LABEL,
    Action,
    ActionAnswer,
    CreateDeployment,
    DeleteDeployment,
    EnsureService,
    EventSpec,
    Observed,
    Plan,
    RolloutView,
    ScaleDeployment,
    SetTemplate,
    StallError,
    UpdateConfigMap,
    UpdateRoute,
)
from nonstop.plan.resources import revision_hash, selector_string, service_actions
from nonstop.plan.rolling import Outcome, plan_rolling
from nonstop.plan.routed import plan_routed_canary
from nonstop.plan.routing import route_shares
from nonstop.plan.shadow import plan_shadow
from nonstop.plan.steps import Promotion, step_kind
from nonstop.plan.toggle import plan_feature_toggle

STALLED_REQUEUE = 60.0

# Entering one of these states (for a given revision) is worth an Event.
_STATE_EVENTS: dict[str, tuple[str, str]] = {
    "PodsNotReady": ("Warning", "PodsNotReady"),
    "PausedByUser": ("Normal", "PausedByUser"),
    "RollingBack": ("Warning", "RolloutAborted"),
    "RolledBack": ("Normal", "RolledBack"),
    "ProgressDeadlineExceeded": ("Warning", "ProgressDeadlineExceeded"),
    "RolloutCompleted": ("Normal", "RolloutCompleted"),
    "StepPaused": ("Normal", "StepPaused"),
    "AwaitingPromotion": ("Normal", "AwaitingPromotion"),
}


def plan(rollout: RolloutView, observed: Observed, now: datetime) -> Plan:
    if rollout.spec is None:
        return _stalled(
            rollout,
            observed,
            now,
            "InvalidSpec",
            f"the spec is invalid: {rollout.spec_error}. Nothing was changed; fix the Rollout.",
        )
    spec = rollout.spec
    problem = semantic_problem(rollout, spec, observed)
    if problem is not None:
        return _stalled(rollout, observed, now, *problem)

    revision = revision_hash(rollout.template)
    answers: tuple[ActionAnswer, ...] = ()
    action_events: list[EventSpec] = []
    undo: SetTemplate | None = None
    pending = next_action(observed.actions)
    promotion: Promotion = None
    if pending is not None:
        has_steps = spec.strategy.name in ("canary", "blueGreen", "shadow", "featureToggle")
        control = apply_action(
            rollout,
            revision,
            pending,
            now,
            has_steps=has_steps,
            deployments=observed.deployments,
        )
        rollout, answers, promotion = control.rollout, (control.answer,), control.promotion
        action_events = [control.event] if control.event else []
        undo = control.set_template
    try:
        outcome = _strategy(rollout, spec, revision, observed, now, promotion)
        metrics = {w.name: metrics_of(w.analysis, observed.templates) for w in outcome.wanted}
    except StallError as error:
        return _stalled(
            rollout, observed, now, error.reason, f"{error.message}. Nothing was changed."
        )
    # Traffic first (a weight goes to 0 before the Service behind it changes), then the
    # Services, then the pods.
    routes = [a for a in outcome.actions if isinstance(a, UpdateRoute)]
    selects = outcome.selects or {spec.service.name: None}
    actions: list[Action] = [
        *routes,
        *service_actions(rollout.meta, spec, observed, selects),
        *(a for a in outcome.actions if not isinstance(a, UpdateRoute)),
        *([undo] if undo else []),
    ]
    current_runs = analysis_runs(
        rollout.status.analysis_runs, outcome.wanted, metrics, revision, now
    )
    actions.extend(
        measures(current_runs, metrics, rollout.meta, revision, outcome.stable_revision, now)
    )
    run_events, current_runs = _verdict_events(current_runs)

    status = _status(rollout, spec, observed, now, revision, outcome)
    status = status.model_copy(update={"analysis_runs": current_runs})
    events = action_events + _events(rollout, spec, revision, outcome, actions, observed)
    events.extend(run_events)
    requeue = outcome.requeue_after
    if (soon := next_measurement_in(current_runs, metrics, now)) is not None:
        requeue = min(requeue, soon)
    return Plan(
        actions=tuple(actions),
        events=tuple(events),
        status=status,
        requeue_after=0.5 if len(observed.actions) > 1 else requeue,
        answers=answers,
        log={"revision": revision, "phase": outcome.phase, "step": outcome.step},
    )


def _strategy(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion,
) -> Outcome:
    if spec.strategy.canary is not None and spec.traffic_routing is not None:
        return plan_routed_canary(rollout, spec, revision, observed, now, promotion)
    if spec.strategy.feature_toggle is not None:
        return plan_feature_toggle(rollout, spec, revision, observed, now, promotion)
    if spec.strategy.shadow is not None:
        return plan_shadow(rollout, spec, revision, observed, now, promotion)
    if spec.strategy.blue_green is not None:
        return plan_blue_green(rollout, spec, revision, observed, now, promotion)
    if spec.strategy.canary is not None:
        return plan_canary(rollout, spec, revision, observed, now, promotion)
    return plan_rolling(rollout, spec, revision, observed, now)


def semantic_problem(
    rollout: RolloutView, spec: RolloutSpec, observed: Observed
) -> tuple[str, str] | None:
    """What admission cannot see but makes the Rollout impossible to carry out."""
    problem = _strategy_problem(spec)
    if problem is not None:
        return problem
    for service in (observed.service, *observed.services):
        if service is not None and not service.owned:
            return (
                "ServiceConflict",
                f"Service {service.name} already exists and does not belong to this Rollout."
                " Nothing was changed: pick another name for it in the spec, or delete that"
                " Service so that nonstop can create its own.",
            )
    return None


def _strategy_problem(spec: RolloutSpec) -> tuple[str, str] | None:
    """Parts of the chosen strategy this version cannot carry out, or that contradict."""
    shadow = spec.strategy.shadow
    canary = spec.strategy.canary or (shadow.then.canary if shadow else None)
    blue_green = spec.strategy.blue_green or (shadow.then.blue_green if shadow else None)
    if (problem := conditions_problem(spec)) is not None:
        return "InvalidSpec", f"{problem}. Nothing was changed."
    if canary is not None:
        kinds = {step_kind(s) for s in canary.steps}
        if "setHeaderRoute" in kinds and spec.traffic_routing is None:
            return (
                "InvalidSpec",
                "setHeaderRoute steps need spec.trafficRouting. Nothing was changed.",
            )
    if blue_green is not None:
        if spec.traffic_routing is not None and shadow is None:
            return (
                "InvalidSpec",
                "blueGreen switches Services, not route weights: remove spec.trafficRouting"
                " (or use canary). Nothing was changed.",
            )
        if blue_green.preview_service == spec.service.name:
            return (
                "InvalidSpec",
                "blueGreen.previewService must differ from spec.service.name. Nothing was changed.",
            )
    return None


def _counts(observed: Observed, revision: str | None) -> dict[str, int]:
    deps = observed.deployments
    current = next((d for d in deps if d.revision == revision), None)
    return {
        "replicas": sum(d.replicas for d in deps),
        "ready_replicas": sum(d.ready_replicas for d in deps),
        "available_replicas": sum(d.available_replicas for d in deps),
        "updated_replicas": current.replicas if current else 0,
        "updated_ready_replicas": current.available if current else 0,
    }


def _status(
    rollout: RolloutView,
    spec: RolloutSpec,
    observed: Observed,
    now: datetime,
    revision: str,
    outcome: Outcome,
) -> RolloutStatus:
    prev = rollout.status
    paused = outcome.verdict.paused
    status = RolloutStatus(
        observed_generation=rollout.meta.generation,
        phase=outcome.phase,
        message=outcome.verdict.message,
        strategy=spec.strategy.name,
        current_revision=revision,
        stable_revision=outcome.stable_revision,
        step=outcome.step,
        current_step_index=outcome.step_index,
        step_started_at=outcome.step_started_at,
        weights=_weights(rollout, spec, observed, revision, outcome),
        last_progress_time=outcome.last_progress,
        paused_since=(prev.paused_since or now)
        if paused and prev.phase == "Paused"
        else (now if paused else None),
        selector=selector_string(spec.selector.match_labels),
        abort=outcome.abort,
        held=prev.held,
        last_action=prev.last_action,
        flag=outcome.flag,
        shadow=outcome.shadow
        or (prev.shadow if prev.shadow and prev.shadow.revision == revision else None),
        conditions=conditions(prev.conditions, outcome.verdict, rollout.meta.generation, now),
    )
    return status.model_copy(update=_counts(observed, revision))


def _weights(
    rollout: RolloutView, spec: RolloutSpec, observed: Observed, revision: str, outcome: Outcome
) -> Weights:
    """What the router (or the flag) says when there is one, read back from it; else the
    pod shares."""
    if outcome.flag is not None:
        return Weights(stable=round(100 - outcome.flag.weight, 4), canary=outcome.flag.weight)
    shares = route_shares(spec, rollout.meta, observed)
    if shares is None:
        return traffic_shares(observed, revision, outcome.stable_revision)
    return Weights(stable=round(shares[0], 2), canary=round(shares[1], 2), mirror=shares[2])


def traffic_shares(observed: Observed, revision: str, stable: str | None) -> Weights:
    """Share of the Service's available pods per role (behind one Service, the share of
    traffic): `canary` is the revision being rolled out, while it is not the stable one."""
    available = {d.revision: d.available for d in observed.deployments}
    total = sum(available.values())
    new = available.get(revision, 0) if revision != stable else 0
    canary = round(100.0 * new / total, 2) if total else 0.0
    return Weights(stable=round(100.0 - canary, 2), canary=canary)


def _images(rollout: RolloutView) -> str:
    containers = rollout.template.get("spec", {}).get("containers", [])
    return ", ".join(str(c.get("image", "?")) for c in containers)


def _events(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    outcome: Outcome,
    actions: list[Action],
    observed: Observed,
) -> list[EventSpec]:
    prev = rollout.status
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
        if stable and stable != revision:
            events.append(
                EventSpec(
                    "Normal",
                    "RolloutStarted",
                    f"rolling out revision {revision} ({_images(rollout)}) to replace {stable}",
                )
            )
        else:
            events.append(
                EventSpec(
                    "Normal",
                    "RolloutStarted",
                    f"creating revision {revision} ({_images(rollout)}) with {spec.replicas} pods",
                )
            )

    events.extend(outcome.events)
    events.extend(_traffic_events(actions, observed))
    notes = []
    for action in actions:
        if isinstance(action, CreateDeployment):
            notes.append(f"created {action.name} with {action.body['spec']['replicas']} pods")
        elif isinstance(action, ScaleDeployment):
            notes.append(f"scaled {action.name} from {action.from_replicas} to {action.replicas}")
    if notes:
        events.append(EventSpec("Normal", "Scaled", "; ".join(notes)))
    deleted = [a.name for a in actions if isinstance(a, DeleteDeployment)]
    if deleted:
        events.append(
            EventSpec(
                "Normal",
                "RevisionsDeleted",
                f"deleted old revisions beyond revisionHistoryLimit={spec.revision_history_limit}:"
                f" {', '.join(deleted)}",
            )
        )

    if (reason, revision) != (prev_reason, prev.current_revision):
        if reason in _STATE_EVENTS:
            type_, event_reason = _STATE_EVENTS[reason]
            events.append(EventSpec(type_, event_reason, outcome.verdict.message))  # type: ignore[arg-type]
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
    return events


def _verdict_events(
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


def _traffic_events(actions: list[Action], observed: Observed) -> list[EventSpec]:
    """Every change of where traffic goes: route weights, and Services switching revision."""
    events = []
    for action in actions:
        if isinstance(action, UpdateRoute):
            events.append(EventSpec("Normal", "TrafficRouted", action.note))
        elif isinstance(action, UpdateConfigMap):
            events.append(EventSpec("Normal", "FlagUpdated", action.note))
        elif isinstance(action, EnsureService):
            name = action.body["metadata"]["name"]
            new = action.body["spec"]["selector"].get(REVISION_LABEL)
            current = (
                observed.service
                if observed.service and observed.service.name == name
                else (observed.other_service(name))
            )
            old = current.selector.get(REVISION_LABEL) if current else None
            if current is not None and new and old and new != old:
                events.append(
                    EventSpec(
                        "Normal",
                        "ServiceSwitched",
                        f"Service {name} now selects revision {new} (was {old})",
                    )
                )
    return events


def _stalled(
    rollout: RolloutView, observed: Observed, now: datetime, reason: str, message: str
) -> Plan:
    """A Rollout that cannot be carried out: say why, change nothing in the cluster."""
    prev = rollout.status
    verdict = Verdict(ready=False, reconciling=False, stalled=True, reason=reason, message=message)
    phase: Phase = "Degraded"
    spec = rollout.spec
    status = prev.model_copy(
        update={
            "observed_generation": rollout.meta.generation,
            "phase": phase,
            "message": message,
            "strategy": spec.strategy.name if spec else prev.strategy,
            "conditions": conditions(prev.conditions, verdict, rollout.meta.generation, now),
            **_counts(observed, prev.current_revision),
        }
    )
    prev_stalled = prev.condition("Stalled")
    repeated = (
        prev_stalled is not None
        and prev_stalled.status == "True"
        and (prev_stalled.reason, prev_stalled.message) == (reason, message)
    )
    events = () if repeated else (EventSpec("Warning", reason, message),)
    return Plan(
        actions=(),
        events=events,
        status=status,
        requeue_after=STALLED_REQUEUE,
        log={"stalled": reason},
    )


__all__ = ["plan", "semantic_problem"]
