"""plan(rollout, observed, now) -> Plan: the one entry point of the pure layer.

One pass, in order: the pending RolloutAction's effect (control.py); what admission could
not check (validate.py); the pass context, built once (context.py); the strategy, chosen
from the table (strategies/); the order of the writes (traffic first, then Services, then
pods) and the scale-downs held for scaleDownDelaySeconds (drain.py); the analysis runs;
then a whole new status (status.py) and the Events (events.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from nonstop.api import RolloutSpec
from nonstop.api.spec import Metric
from nonstop.api.status import Phase
from nonstop.plan.analysis import measures, metrics_of, next_measurement_in
from nonstop.plan.analysis import runs as analysis_runs
from nonstop.plan.conditions import Verdict, conditions
from nonstop.plan.context import ActionEffect, PassContext, build_context
from nonstop.plan.control import Control, apply_action, next_action
from nonstop.plan.drain import hold_drained, scale_down_delay
from nonstop.plan.events import stalled_event, state_events, verdict_events
from nonstop.plan.flags import FlagdConfigMap, FlagStore
from nonstop.plan.kernel.progress import seconds_to_next_verdict
from nonstop.plan.model import (
    Action,
    AnsweredAction,
    DeleteAction,
    EventSpec,
    Observed,
    Plan,
    RolloutView,
    StallError,
    UpdateRoute,
)
from nonstop.plan.outcome import AT_ONCE, Outcome
from nonstop.plan.resources import revision_hash, service_actions
from nonstop.plan.router import Shares, router_for
from nonstop.plan.status import build_status, counts
from nonstop.plan.strategies import strategy_for
from nonstop.plan.validate import conflict_problem, templates_problem

STALLED_REQUEUE = 60.0
KEPT_ANSWERS = 10  # answered RolloutActions kept per Rollout
ANSWER_TTL = 3600.0  # seconds an answered RolloutAction is kept
HAS_STEPS = ("canary", "blueGreen", "shadow", "featureToggle")


def plan(rollout: RolloutView, observed: Observed, now: datetime) -> Plan:
    if rollout.spec is None:
        message = (
            f"the spec is invalid: {rollout.spec_error}. Nothing was changed; fix the Rollout."
        )
        return _stalled(rollout, observed, now, "InvalidSpec", message)
    spec = rollout.spec
    revision = revision_hash(rollout.template)
    control = _control(rollout, spec, revision, observed, now)
    effect = control.effect if control else ActionEffect()
    try:
        ctx = _context(rollout, spec, revision, observed, now, effect)
        if (conflict := conflict_problem(spec, observed)) is not None:
            raise StallError(*conflict)
        # a template found broken mid-rollout does not stop a rollback: it needs none
        problem = templates_problem(spec, observed.templates)
        if problem is not None and not (ctx.abort is not None and _midway(ctx)):
            raise StallError(*problem)
        outcome = strategy_for(spec)(ctx)
        metrics = {w.name: metrics_of(w.analysis, observed.templates) for w in outcome.wanted}
    except StallError as error:
        return _held(rollout, observed, now, revision, error)
    return _decided(ctx, outcome, metrics, control)


def _control(
    rollout: RolloutView, spec: RolloutSpec, revision: str, observed: Observed, now: datetime
) -> Control | None:
    pending = next_action(observed.actions)
    if pending is None:
        return None
    return apply_action(
        rollout.status,
        revision,
        pending,
        now,
        has_steps=spec.strategy.name in HAS_STEPS,
        deployments=observed.deployments,
    )


def _context(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    effect: ActionEffect,
) -> PassContext:
    toggle = spec.strategy.feature_toggle
    flags: FlagStore | None = (
        FlagdConfigMap(toggle.flag, rollout.meta, observed) if toggle is not None else None
    )
    return build_context(
        meta=rollout.meta,
        spec=spec,
        template=rollout.template,
        prev=rollout.status,
        observed=observed,
        now=now,
        revision=revision,
        effect=effect,
        router=router_for(spec, rollout.meta, observed),
        flags=flags,
    )


def _decided(
    ctx: PassContext,
    outcome: Outcome,
    metrics: dict[str, list[Metric]],
    control: Control | None,
) -> Plan:
    spec, observed, now, revision = ctx.spec, ctx.observed, ctx.now, ctx.revision
    # Traffic first (a weight goes to 0 before the Service behind it changes), then the
    # Services, then the pods; an undo's template last (after the status that records it).
    routes = [a for a in outcome.actions if isinstance(a, UpdateRoute)]
    selects = outcome.selects or {spec.service.name: None}
    ordered: list[Action] = [
        *routes,
        *service_actions(ctx.meta, spec, observed, selects),
        *(a for a in outcome.actions if not isinstance(a, UpdateRoute)),
    ]
    drained = hold_drained(
        actions=ordered,
        services=[s for s in (observed.service, *observed.services) if s is not None],
        selects=selects,
        deployments=observed.deployments,
        previous=ctx.prev.draining,
        delay=scale_down_delay(spec),
        now=now,
    )
    actions = drained.actions + forget_answered(observed.answered, now)
    if control is not None and control.set_template is not None:
        actions.append(control.set_template)

    current_runs = analysis_runs(list(ctx.runs), outcome.wanted, metrics, revision, now)
    due = measures(current_runs, metrics, ctx.meta, revision, outcome.stable_revision, now)
    run_events, current_runs = verdict_events(current_runs)
    message = outcome.verdict.message
    if drained.held and drained.until is not None:
        message += (
            f"; {', '.join(drained.held)} keeps its pods until {drained.until:%H:%M:%S}"
            " (scaleDownDelaySeconds, so that every proxy has moved its traffic)"
        )
    status = build_status(
        ctx,
        outcome,
        current_runs,
        drained.draining,
        control.record if control else None,
        message,
        _written_shares(ctx, routes),
    )
    opening, closing = state_events(ctx, outcome)
    events: list[EventSpec] = [control.event] if control and control.event else []
    events += opening
    lead = len(events)
    events += closing + run_events
    requeue = outcome.requeue_after
    if (soon := next_measurement_in(current_runs, metrics, now)) is not None:
        requeue = min(requeue, soon)
    if drained.until is not None:
        requeue = min(requeue, max(0.5, (drained.until - now).total_seconds() + 0.2))
    waits = outcome.phase == "Progressing" or outcome.verdict.paused_reason == "PodsNotReady"
    if waits and (ahead := seconds_to_next_verdict(ctx, outcome.last_progress)) is not None:
        requeue = min(requeue, ahead + 0.2)
    return Plan(
        actions=tuple(actions),
        events=tuple(events),
        status=status,
        requeue_after=AT_ONCE if len(observed.actions) > 1 else requeue,
        answers=(control.answer,) if control else (),
        measures=tuple(due),
        log={"revision": revision, "phase": outcome.phase, "step": outcome.step},
        opening=lead,
    )


def forget_answered(answered: tuple[AnsweredAction, ...], now: datetime) -> list[Action]:
    """Answered RolloutActions are kept for `kubectl get rolloutactions` (the newest
    KEPT_ANSWERS, none older than ANSWER_TTL), then deleted: they would pile up otherwise."""
    newest = sorted(answered, key=lambda a: (a.answered_at, a.name), reverse=True)
    ttl = timedelta(seconds=ANSWER_TTL)
    return [
        DeleteAction(a.name)
        for i, a in enumerate(newest)
        if i >= KEPT_ANSWERS or now - a.answered_at >= ttl
    ]


def _written_shares(ctx: PassContext, routes: list[UpdateRoute]) -> Shares | None:
    """The shares of the route this pass writes (status then says where traffic goes once
    the write is done, not where it went before it)."""
    if not routes:
        return None
    after = replace(ctx.observed, route=routes[-1].body)
    router = router_for(ctx.spec, ctx.meta, after)
    return router.shares if router is not None else None


def _midway(ctx: PassContext) -> bool:
    """The current revision has pods beside a stable one: stopping here is half-way."""
    return ctx.revision in ctx.deps and ctx.stable not in (None, ctx.revision)


def _held(
    rollout: RolloutView, observed: Observed, now: datetime, revision: str, error: StallError
) -> Plan:
    """A problem the strategy cannot get past. Before the rollout moved anything, nothing
    was changed; half-way, it holds where it is (nothing more moves, nothing rolls back by
    itself) and says so, and an abort rolls it back."""
    prev = rollout.status
    stable = prev.stable_revision
    midway = any(d.revision == revision for d in observed.deployments) and stable not in (
        None,
        revision,
    )
    if midway:
        where = f"step {prev.step}" if prev.step else "where it is"
        message = (
            f"{error.message}. The rollout of revision {revision} holds at {where}: nothing"
            f" more moves and nothing is rolled back by itself; {stable} still serves. Fix"
            " this to go on, or abort (kubectl nonstop abort) to roll back."
        )
    else:
        message = f"{error.message}. Nothing was changed."
    return _stalled(rollout, observed, now, error.reason, message)


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
            **counts(observed, prev.current_revision),
        }
    )
    return Plan(
        actions=(),
        events=tuple(stalled_event(prev, reason, message)),
        status=status,
        requeue_after=STALLED_REQUEUE,
        log={"stalled": reason},
    )


__all__ = ["plan"]
