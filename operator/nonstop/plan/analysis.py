"""Analysis runs as the strategies use them. Pure.

A strategy says which runs it wants this pass (a canary step's `step-<i>`, the whole
canary's `background`, blue-green's `prePromotion`, the shadow phase's `shadow`) and reads
how they went from status. This module keeps status.analysisRuns in step with that:
creates a run when it is first wanted, keeps it while it is, and asks for the measurements
that are due (Measure actions). The provider layer reads them between the actions and the
status patch, and `fold()` turns each Reading into a measurement and the verdicts, so the
next pass (at most one interval later) acts on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from nonstop.analysis.compare import compare
from nonstop.analysis.expr import ExprError, check
from nonstop.analysis.template import render
from nonstop.analysis.verdict import (
    Measurement,
    MetricPolicy,
    MetricState,
    analysis_phase,
    due,
    judge,
    next_due,
)
from nonstop.api import RolloutSpec
from nonstop.api.base import duration_seconds
from nonstop.api.spec import Analysis, AnalysisTemplateSpec, Metric
from nonstop.api.status import (
    AnalysisRunStatus,
    MeasurementPhase,
    MeasurementStatus,
    MetricRunStatus,
    RolloutStatus,
    RunPhase,
)
from nonstop.plan.model import Measure, Reading, RolloutMeta, StallError

KEPT_MEASUREMENTS = 10
KEPT_SAMPLES = 500
DEFAULT_INTERVAL = 10.0


@dataclass(frozen=True)
class Wanted:
    """A run a strategy wants this pass."""

    name: str
    analysis: Analysis


def metrics_of(analysis: Analysis, templates: Mapping[str, AnalysisTemplateSpec]) -> list[Metric]:
    """The analysis's metrics, its templates' first. A missing template stops the rollout."""
    metrics: list[Metric] = []
    for ref in analysis.templates or []:
        template = templates.get(ref.name)
        if template is None:
            known = ", ".join(sorted(templates)) or "none"
            raise StallError(
                "AnalysisTemplateNotFound",
                f"AnalysisTemplate {ref.name} does not exist in this namespace (there are:"
                f" {known})",
            )
        metrics.extend(template.metrics)
    metrics.extend(analysis.metrics or [])
    for metric in metrics:  # a template's conditions are only seen here
        try:
            policy(metric)
        except ValueError as exc:
            raise StallError("InvalidSpec", str(exc)) from exc
    return metrics


def policy(metric: Metric) -> MetricPolicy:
    interval = duration_seconds(metric.interval) if metric.interval else DEFAULT_INTERVAL
    return MetricPolicy(
        name=metric.name,
        interval_seconds=interval,
        count=metric.count if metric.count is not None else (None if metric.interval else 1),
        success=metric.success_condition,
        failure=metric.failure_condition,
        failure_limit=metric.failure_limit or 0,
        inconclusive_limit=metric.inconclusive_limit or 0,
        consecutive_error_limit=(
            metric.consecutive_error_limit if metric.consecutive_error_limit is not None else 4
        ),
    )


def _state(status: MetricRunStatus) -> MetricState:
    return MetricState(
        name=status.name,
        measurements=tuple(
            Measurement(at=m.at, value=m.value, phase=m.phase, message=m.message)
            for m in status.measurements
        ),
        successful=status.successful,
        failed=status.failed,
        inconclusive=status.inconclusive,
        errors=status.errors,
        consecutive_errors=status.consecutive_errors,
    )


def _status(state: MetricState, phase: RunPhase, prev: MetricRunStatus) -> MetricRunStatus:
    return prev.model_copy(
        update={
            "phase": phase,
            "successful": state.successful,
            "failed": state.failed,
            "inconclusive": state.inconclusive,
            "errors": state.errors,
            "consecutive_errors": state.consecutive_errors,
            "measurements": [
                MeasurementStatus(
                    at=m.at,
                    value=m.value if m.value is None or math.isfinite(m.value) else None,
                    phase=m.phase,
                    message=m.message,
                )
                for m in state.measurements[-KEPT_MEASUREMENTS:]
            ],
        }
    )


def runs(
    prev: Sequence[AnalysisRunStatus],
    wanted: Sequence[Wanted],
    metrics: Mapping[str, list[Metric]],
    revision: str,
    now: datetime,
) -> list[AnalysisRunStatus]:
    """The runs in status after this pass: the wanted ones (new or kept), and the finished
    runs of this revision (so that status shows how they ended). A run that is no longer
    wanted while it runs (a background run when the steps end, a step run a promote went
    past) ends here with the verdict of what it measured (as Argo Rollouts terminates it)."""
    kept = {r.name: r for r in prev if r.revision == revision}
    out = []
    for want in wanted:
        run = kept.pop(want.name, None)
        if run is None:
            run = AnalysisRunStatus(
                name=want.name,
                revision=revision,
                started_at=now,
                metrics=[MetricRunStatus(name=m.name) for m in metrics[want.name]],
            )
        out.append(run)
    out.extend(r if r.phase != "Running" else _ended(r) for r in kept.values())
    return out[-6:]


def _ended(run: AnalysisRunStatus) -> AnalysisRunStatus:
    """A running run that is no longer needed: Successful when every metric measured and
    none failed or erred so far; otherwise Inconclusive (it never decided)."""
    taken = sum(m.successful + m.failed + m.inconclusive + m.errors for m in run.metrics)
    clean = taken > 0 and all(m.failed == m.errors == m.inconclusive == 0 for m in run.metrics)
    phase: RunPhase = "Successful" if clean else "Inconclusive"
    message = (
        f"{phase}: ended when it was no longer needed (the steps ended, or a promote went"
        f" past it) after {taken} measurement(s)"
        + ("" if clean else "; not every measurement passed")
    )
    return run.model_copy(update={"phase": phase, "message": message})


def variables(meta: RolloutMeta, revision: str, stable: str | None) -> dict[str, str]:
    return {
        "revision": revision,
        "canaryRevision": revision,
        "stableRevision": stable or revision,
        "rollout": meta.name,
        "namespace": meta.namespace,
    }


def measures(
    current: Sequence[AnalysisRunStatus],
    metrics: Mapping[str, list[Metric]],
    meta: RolloutMeta,
    revision: str,
    stable: str | None,
    now: datetime,
) -> list[Measure]:
    """The measurements due now in the running runs."""
    out = []
    values = variables(meta, revision, stable)
    for run in current:
        if run.phase != "Running" or run.name not in metrics:
            continue
        by_name = {m.name: m for m in metrics[run.name]}
        for metric_status in run.metrics:
            metric = by_name.get(metric_status.name)
            if metric is None or metric_status.phase != "Running":
                continue
            if due(policy(metric), _state(metric_status), run.started_at, now):
                stable_values = (
                    {**values, "revision": values["stableRevision"]} if metric.compare else None
                )
                out.append(Measure(run.name, metric, values, stable_values))
    return out


def next_measurement_in(
    current: Sequence[AnalysisRunStatus], metrics: Mapping[str, list[Metric]], now: datetime
) -> float | None:
    """Seconds until the next measurement of a running run is due (for the requeue)."""
    soonest: float | None = None
    for run in current:
        if run.phase != "Running":
            continue
        statuses = {m.name: m for m in run.metrics}
        for metric in metrics.get(run.name, []):
            status = statuses.get(metric.name, MetricRunStatus(name=metric.name))
            at = next_due(policy(metric), _state(status), run.started_at)
            if at is None:
                continue
            seconds = max(0.2, (at - now).total_seconds())
            soonest = seconds if soonest is None else min(soonest, seconds)
    return soonest


def query_of(measure: Measure, stable: bool = False) -> tuple[str, str]:
    """(where, what) of a measurement, with the template variables filled in."""
    values = measure.stable_variables if stable and measure.stable_variables else measure.variables
    provider = measure.metric.provider
    if provider.prometheus is not None:
        return provider.prometheus.address, render(provider.prometheus.query, values)
    assert provider.web is not None
    return render(provider.web.url, values), provider.web.json_path


def _measurement(
    metric: Metric, status: MetricRunStatus, reading: Reading, stable: Reading | None, now: datetime
) -> tuple[Measurement, MetricRunStatus]:
    if reading.error is not None or (stable is not None and stable.error is not None):
        why = reading.error or (stable.error if stable else "") or ""
        return Measurement(at=now, value=None, phase="Error", message=why), status
    if metric.compare is not None and stable is not None:
        canary = [*(status.canary_samples or []), *reading.samples][-KEPT_SAMPLES:]
        base = [*(status.stable_samples or []), *stable.samples][-KEPT_SAMPLES:]
        status = status.model_copy(update={"canary_samples": canary, "stable_samples": base})
        result = compare(
            canary,
            base,
            confidence=metric.compare.confidence,
            higher_is_worse=metric.compare.higher_is_worse,
            min_samples=metric.compare.min_samples,
        )
        phase: MeasurementPhase = "Failed" if result.verdict == "Worse" else "Successful"
        message = result.message
        if result.verdict == "Inconclusive":
            taken = status.successful + status.failed + status.inconclusive + status.errors
            last = metric.count is not None and taken + 1 >= metric.count
            # too few samples: the test has not run; at the last measurement that is a
            # verdict of its own (never a pass), before it only a step of collecting
            phase = "Inconclusive" if last else "Successful"
            message = f"{'too few samples' if last else 'collecting samples'}: {message}"
        return Measurement(at=now, value=result.p_value, phase=phase, message=message), status
    value = reading.value if reading.value is not None else math.nan
    return judge(policy(metric), value, now), status


def fold(
    status: RolloutStatus,
    results: Sequence[tuple[Measure, Reading, Reading | None]],
    now: datetime,
) -> RolloutStatus:
    """Status with the readings of this pass turned into measurements and verdicts."""
    if not results:
        return status
    by_run = {r.name: r for r in status.analysis_runs}
    for measure, reading, stable in results:
        run = by_run.get(measure.run)
        if run is None:
            continue
        new_metrics = []
        for before in run.metrics:
            if before.name != measure.metric.name:
                new_metrics.append(before)
                continue
            measurement, sampled = _measurement(measure.metric, before, reading, stable, now)
            state = _state(sampled).add(measurement)
            phase: RunPhase = state.phase(policy(measure.metric))
            new_metrics.append(_status(state, phase, sampled))
        phase = analysis_phase(m.phase for m in new_metrics)
        message = _message(new_metrics, phase)
        by_run[run.name] = run.model_copy(
            update={"metrics": new_metrics, "phase": phase, "message": message}
        )
    return status.model_copy(
        update={"analysis_runs": [by_run.get(r.name, r) for r in status.analysis_runs]}
    )


def _message(metrics: Sequence[MetricRunStatus], phase: RunPhase) -> str:
    parts = []
    for metric in metrics:
        last = metric.measurements[-1] if metric.measurements else None
        said = f": {last.message}" if last and last.message else ""
        parts.append(f"{metric.name} {metric.phase}{said}")
    return f"{phase}: " + "; ".join(parts)


def run_named(
    runs: Sequence[AnalysisRunStatus], name: str, revision: str
) -> AnalysisRunStatus | None:
    return next((r for r in runs if r.name == name and r.revision == revision), None)


@dataclass(frozen=True)
class Judgement:
    """What the wanted runs mean for the rollout this pass."""

    abort: str | None = None  # why the rollout must be aborted (a run failed)
    hold: str | None = None  # why it waits for a person (inconclusive, or errors with Pause)
    passed: frozenset[str] = frozenset()  # the names of the wanted runs that succeeded


def judgement(
    runs: Sequence[AnalysisRunStatus], wanted: Sequence[Wanted], revision: str
) -> Judgement:
    abort = hold = None
    passed = set()
    for want in wanted:
        run = run_named(runs, want.name, revision)
        if run is None:
            continue
        if run.phase == "Successful":
            passed.add(want.name)
        elif run.phase == "Failed" or (run.phase == "Error" and want.analysis.on_error == "Abort"):
            abort = abort or f"analysis {want.name} {run.phase.lower()}: {run.message}"
        elif run.phase in ("Inconclusive", "Error"):
            hold = hold or f"analysis {want.name} is {run.phase.lower()}: {run.message}"
    return Judgement(abort, hold, frozenset(passed))


def analyses_of(spec: RolloutSpec) -> list[Analysis]:
    """Every analysis the spec defines, wherever it stands."""
    strategy = spec.strategy
    shadow = strategy.shadow
    canary = strategy.canary or (shadow.then.canary if shadow else None)
    blue_green = strategy.blue_green or (shadow.then.blue_green if shadow else None)
    found = [a for a in (shadow.analysis if shadow else None,) if a is not None]
    if canary is not None:
        found += [a for a in [canary.analysis, *(s.analysis for s in canary.steps)] if a]
    if blue_green is not None:
        pre, post = blue_green.pre_promotion_analysis, blue_green.post_promotion_analysis
        found += [a for a in (pre, post) if a is not None]
    return found


def conditions_problem(spec: RolloutSpec) -> str | None:
    """A success or failure condition of the spec's own metrics that does not parse."""
    for analysis in analyses_of(spec):
        for metric in analysis.metrics or []:
            for field, text in (
                ("successCondition", metric.success_condition),
                ("failureCondition", metric.failure_condition),
            ):
                if text is None:
                    continue
                try:
                    check(text)
                except ExprError as exc:
                    return f"metric {metric.name}: {field}: {exc}"
    return None
