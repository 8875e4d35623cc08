"""A whole new status from one pass: the strategy's outcome, the analysis runs, the action
record, and the counts `kubectl get`, an HPA and kstatus read."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from nonstop.api import RolloutStatus, Weights
from nonstop.api.status import ActionRecord, AnalysisRunStatus, Drain, Phase
from nonstop.plan.conditions import Verdict, conditions
from nonstop.plan.context import PassContext
from nonstop.plan.model import REVISION_LABEL, Observed
from nonstop.plan.outcome import Outcome
from nonstop.plan.resources import selector_string
from nonstop.plan.router import Shares, canary_service_name


def counts(observed: Observed, revision: str | None) -> dict[str, int]:
    deps = observed.deployments
    current = next((d for d in deps if d.revision == revision), None)
    return {
        "replicas": sum(d.replicas for d in deps),
        "ready_replicas": sum(d.ready_replicas for d in deps),
        "available_replicas": sum(d.available_replicas for d in deps),
        "updated_replicas": current.replicas if current else 0,
        "updated_ready_replicas": current.available if current else 0,
    }


def hpa_replicas(ctx: PassContext) -> int:
    """Pods of the revisions that get live traffic: what an HPA scales from (the scale
    subresource's status.replicas). A blue-green preview, a shadow, a canary at weight 0
    and a revision that drains are not counted: their pods see none of the load the
    HPA's metric measures against the Rollout's replicas. Compare Argo Rollouts'
    status.HPAReplicas."""
    deps, observed = ctx.observed.deployments, ctx.observed
    main = observed.service
    if main is None or not main.owned or REVISION_LABEL not in main.selector:
        return sum(d.replicas for d in deps)  # one Service over every revision
    serving = {main.selector[REVISION_LABEL]}
    shares = ctx.router.shares if ctx.router is not None else None
    if shares is not None and shares.canary > 0:
        canary = observed.other_service(canary_service_name(ctx.spec))
        if canary is not None and REVISION_LABEL in canary.selector:
            serving.add(canary.selector[REVISION_LABEL])
    return sum(d.replicas for d in deps if d.revision in serving)


def traffic_shares(observed: Observed, revision: str, stable: str | None) -> Weights:
    """Share of the Service's available pods per role (behind one Service, the share of
    traffic): `canary` is the revision being rolled out, while it is not the stable one."""
    available = {d.revision: d.available for d in observed.deployments}
    total = sum(available.values())
    new = available.get(revision, 0) if revision != stable else 0
    canary = round(100.0 * new / total, 2) if total else 0.0
    return Weights(stable=round(100.0 - canary, 2), canary=canary)


def weights(ctx: PassContext, outcome: Outcome, written: Shares | None = None) -> Weights:
    """What the router (or the flag) says when there is one: read back from it, or as this
    pass writes it; else the pod shares."""
    if outcome.flag is not None:
        return Weights(stable=round(100 - outcome.flag.weight, 4), canary=outcome.flag.weight)
    shares = written or (ctx.router.shares if ctx.router is not None else None)
    if shares is None:
        return traffic_shares(ctx.observed, ctx.revision, outcome.stable_revision)
    return Weights(
        stable=round(shares.stable, 2), canary=round(shares.canary, 2), mirror=shares.mirror
    )


def build_status(
    ctx: PassContext,
    outcome: Outcome,
    runs: list[AnalysisRunStatus],
    draining: list[Drain],
    record: ActionRecord | None,
    message: str,
    written: Shares | None = None,
) -> RolloutStatus:
    prev, now, revision = ctx.prev, ctx.now, ctx.revision
    paused = outcome.verdict.paused
    verdict = outcome.verdict
    if message != verdict.message:
        verdict = replace(verdict, message=message)
    status = RolloutStatus(
        observed_generation=ctx.meta.generation,
        phase=outcome.phase,
        message=message,
        strategy=ctx.spec.strategy.name,
        current_revision=revision,
        stable_revision=outcome.stable_revision,
        step=outcome.step,
        current_step_index=outcome.step_index,
        step_started_at=outcome.step_started_at,
        weights=weights(ctx, outcome, written),
        last_progress_time=outcome.last_progress,
        paused_since=(prev.paused_since or now)
        if paused and prev.phase == "Paused"
        else (now if paused else None),
        selector=selector_string(ctx.spec.selector.match_labels),
        hpa_replicas=hpa_replicas(ctx),
        abort=outcome.abort,
        held=True if ctx.held else None,
        last_action=record or prev.last_action,
        flag=outcome.flag,
        shadow=outcome.shadow
        or (prev.shadow if prev.shadow and prev.shadow.revision == revision else None),
        draining=draining,
        analysis_runs=runs,
        conditions=conditions(prev.conditions, verdict, ctx.meta.generation, now),
    )
    return status.model_copy(update=counts(ctx.observed, revision))


def apply_failed(
    status: RolloutStatus, failures: list[str], generation: int, now: datetime
) -> RolloutStatus:
    """The status of a pass whose writes failed: not Ready, and the failure in words (a
    Rollout whose Service cannot be created is not Healthy, whatever the plan said)."""
    said = "; ".join(failures)
    before = status.message or ""
    message = f"{said}. nonstop retries with backoff" + (f" (the plan: {before})" if before else "")
    verdict = Verdict(False, True, False, "ApplyFailed", message)
    phase: Phase = "Progressing" if status.phase in (None, "Healthy") else status.phase
    return status.model_copy(
        update={
            "phase": phase,
            "message": message,
            "conditions": conditions(status.conditions, verdict, generation, now),
        }
    )
