"""Measurements, and the verdict of one metric and of a whole analysis.

The rules follow Argo Rollouts' AnalysisRun, so that templates written for it mean the same:

* One measurement (judge()), as Argo's `EvaluateResult` (utils/evaluate/evaluate.go in
  github.com/argoproj/argo-rollouts): the failure condition is checked first and wins; with
  only a success condition, not meeting it is a failure ("Without a failure condition, a
  measurement is considered a failure if the measurement's success condition is not true");
  with only a failure condition, not meeting it is a success; with neither, every
  measurement that returned a value is Successful ("Always return success unless there is an
  error"); with both and neither true, the measurement is Inconclusive (docs/features/
  analysis.md, "Inconclusive Runs": "when both success and failure conditions are specified,
  but the measurement value did not meet either condition"). The same page says a metric
  with no conditions could be Inconclusive; Argo's code says Successful, and nonstop follows
  the code. A condition that cannot be evaluated makes an Error measurement, as in Argo.
* One metric (MetricState.phase()), as Argo's `assessMetricStatus` (analysis/analysis.go):
  Failed once failed > failureLimit, Error once consecutiveErrors > consecutiveErrorLimit
  (default 4), Inconclusive once inconclusive > inconclusiveLimit, Successful once `count`
  measurements (of any phase) were taken; a metric without a count runs until the analysis
  is stopped (background analysis), and a stopped metric ends Successful unless a limit
  was crossed (Argo's `terminating`).

Where nonstop is stricter than Argo:

* A NaN or infinite result is an Error measurement ("provider returned NaN"), never a pass:
  with Argo, `result < 0.05` is simply false for NaN (a failure), but `result > 100` as a
  failure condition would let NaN pass.
* Errors never count as passes: a metric whose count is reached (or that is stopped) with
  errors and no successful measurement at all is Error, not Successful (Argo would say
  Successful after e.g. [Error, Failed] with count 2 and failureLimit 1; see
  argoproj/argo-rollouts#1850).
* When both limits are crossed, Failed wins over Error, and Error over Inconclusive (the
  order of analysis_phase()).

No clock: times are passed in. No I/O: the caller queries the provider and hands over a
number or an error message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from nonstop.analysis.expr import ExprError, check, condition

MeasurementPhase = Literal["Successful", "Failed", "Inconclusive", "Error"]
MetricPhase = Literal["Running", "Successful", "Failed", "Inconclusive", "Error"]
AnalysisPhase = MetricPhase

TERMINAL: frozenset[MetricPhase] = frozenset({"Successful", "Failed", "Inconclusive", "Error"})
KEEP_MEASUREMENTS = 10  # measurements kept per metric (the counters cover all of them)


@dataclass(frozen=True)
class MetricPolicy:
    """How one metric is measured and judged (the provider lives elsewhere).

    interval_seconds: time between measurements; 0 means "no interval", allowed only for a
      single measurement (count 1), as in Argo.
    count: number of measurements; None means "until the analysis is stopped".
    success / failure: conditions on `result` (see expr.py); "" is the same as None.
    variables: the names the conditions may use: `result`, and any extra variables the
      caller passes to judge(); checked here, so a typo is refused before any measurement.
    """

    name: str
    interval_seconds: float
    count: int | None
    success: str | None
    failure: str | None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    variables: frozenset[str] = frozenset({"result"})

    def __post_init__(self) -> None:
        for field in ("success", "failure"):
            if getattr(self, field) == "":
                object.__setattr__(self, field, None)
        where = f"metric {self.name}" if self.name else "metric"
        if not self.name:
            raise ValueError("a metric needs a name")
        if not math.isfinite(self.interval_seconds) or self.interval_seconds < 0:
            raise ValueError(
                f"{where}: interval must be a duration >= 0, not {self.interval_seconds}"
            )
        if self.count is not None and self.count < 1:
            raise ValueError(f"{where}: count must be at least 1, not {self.count}")
        if self.interval_seconds == 0 and (self.count is None or self.count > 1):
            what = (
                "measuring until stopped (no count)"
                if self.count is None
                else f"count {self.count}"
            )
            raise ValueError(f"{where}: {what} needs an interval")
        for limit in ("failure_limit", "inconclusive_limit", "consecutive_error_limit"):
            if getattr(self, limit) < 0:
                raise ValueError(f"{where}: {limit} must be >= 0, not {getattr(self, limit)}")
        for field, text in (("successCondition", self.success), ("failureCondition", self.failure)):
            if text is not None:
                try:
                    check(text, self.variables)
                except ExprError as error:
                    raise ValueError(f"{where}: {field}: {error}") from None


@dataclass(frozen=True)
class Measurement:
    at: datetime
    value: float | None  # None when the provider gave no number
    phase: MeasurementPhase
    message: str


def _show(value: float) -> str:
    return format(value, ".6g")


def judge(
    policy: MetricPolicy,
    value: float,
    at: datetime,
    extra: Mapping[str, float] | None = None,
) -> Measurement:
    """The measurement of a number the provider returned: its phase, and a message naming
    the metric, the value and the condition. Never raises: a NaN or infinite value, or a
    condition that cannot be evaluated (unknown extra variable, division by zero), gives an
    Error measurement."""
    phase, message = _assess(policy, value, extra or {})
    return Measurement(at=at, value=value, phase=phase, message=f"metric {policy.name}: {message}")


def _assess(
    policy: MetricPolicy, value: float, extra: Mapping[str, float]
) -> tuple[MeasurementPhase, str]:
    if not math.isfinite(value):
        return "Error", f"provider returned {'NaN' if math.isnan(value) else _show(value)}"
    shown, success, failure = _show(value), policy.success, policy.failure
    try:
        failed = failure is not None and condition(failure, value, extra)
        succeeded = success is not None and condition(success, value, extra)
    except ExprError as error:
        return "Error", f"{shown}: cannot evaluate the condition: {error}"
    if failed:
        return "Failed", f'{shown} met the failure condition "{failure}"'
    if success is None:
        # Only a failure condition (not met), or no condition at all: a value is a pass.
        met = f'did not meet the failure condition "{failure}"' if failure else "(no conditions)"
        return "Successful", f"{shown} {met}"
    if succeeded:
        return "Successful", f'{shown} passed "{success}"'
    if failure is None:
        return "Failed", f'{shown} failed "{success}"'
    return (
        "Inconclusive",
        f'{shown} is inconclusive: neither "{success}" nor the failure condition "{failure}" holds',
    )


def record_error(message: str, at: datetime, *, metric: str | None = None) -> Measurement:
    """A measurement for a provider that gave no usable number: timeout, connection refused,
    HTTP 5xx, an empty result, a value that is not a number. The caller words the cause;
    `metric` names the metric in the message."""
    said = f"metric {metric}: {message}" if metric else message
    return Measurement(at=at, value=None, phase="Error", message=said)


@dataclass(frozen=True)
class MetricState:
    """What one metric has measured so far. Counters cover every measurement; only the
    last KEEP_MEASUREMENTS measurements are kept."""

    name: str
    measurements: tuple[Measurement, ...] = ()
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    @property
    def taken(self) -> int:
        return self.successful + self.failed + self.inconclusive + self.errors

    def add(self, m: Measurement) -> MetricState:
        """A new state with the measurement added (this one is unchanged)."""
        return replace(
            self,
            measurements=(*self.measurements, m)[-KEEP_MEASUREMENTS:],
            successful=self.successful + (m.phase == "Successful"),
            failed=self.failed + (m.phase == "Failed"),
            inconclusive=self.inconclusive + (m.phase == "Inconclusive"),
            errors=self.errors + (m.phase == "Error"),
            consecutive_errors=self.consecutive_errors + 1 if m.phase == "Error" else 0,
        )

    def phase(self, policy: MetricPolicy, *, stopped: bool = False) -> MetricPhase:
        """The metric's phase. `stopped`: the analysis was asked to end (a background analysis
        at the end of the rollout); a metric still Running then ends as if its count was
        reached (as Argo's `terminating`)."""
        if self.failed > policy.failure_limit:
            return "Failed"
        if self.consecutive_errors > policy.consecutive_error_limit:
            return "Error"
        if self.inconclusive > policy.inconclusive_limit:
            return "Inconclusive"
        if stopped or (policy.count is not None and self.taken >= policy.count):
            return "Error" if self.successful == 0 and self.errors > 0 else "Successful"
        return "Running"

    def explain(self, policy: MetricPolicy, *, stopped: bool = False) -> str:
        """Why the metric is in its phase, for a person: names the metric, the last value and
        the condition, and the count against its limit."""
        phase = self.phase(policy, stopped=stopped)
        where = f"metric {self.name}"
        if phase == "Failed":
            return f"{self._last('Failed', where)} ({_plural(self.failed, 'failure')}, limit {policy.failure_limit})"
        if phase == "Inconclusive":
            return f"{self._last('Inconclusive', where)} ({self.inconclusive} inconclusive, limit {policy.inconclusive_limit})"
        if phase == "Error" and self.consecutive_errors > policy.consecutive_error_limit:
            return f"{self._last('Error', where)} ({_plural(self.consecutive_errors, 'error')} in a row, limit {policy.consecutive_error_limit})"
        if phase == "Error":
            return f"{self._last('Error', where)} (no successful measurement: {_plural(self.errors, 'error')} in {_plural(self.taken, 'measurement')})"
        tally = f"{self.successful} successful, {self.failed} failed, {self.inconclusive} inconclusive, {_plural(self.errors, 'error')}"
        if phase == "Successful":
            return f"{where}: Successful after {_plural(self.taken, 'measurement')} ({tally})"
        of = f" of {policy.count}" if policy.count is not None else ""
        return f"{where}: Running, {self.taken}{of} measurements taken ({tally})"

    def _last(self, phase: MeasurementPhase, where: str) -> str:
        for m in reversed(self.measurements):
            if m.phase == phase:
                return m.message
        return f"{where}: {phase}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def next_due(policy: MetricPolicy, state: MetricState, started_at: datetime) -> datetime | None:
    """When the next measurement is due: at started_at for the first one, then one interval
    after the last one. None once the metric is in a terminal phase (no more measurements)."""
    if state.phase(policy) in TERMINAL:
        return None
    if not state.measurements:
        return started_at
    return state.measurements[-1].at + timedelta(seconds=policy.interval_seconds)


def due(policy: MetricPolicy, state: MetricState, started_at: datetime, now: datetime) -> bool:
    """Whether a measurement should be taken now."""
    when = next_due(policy, state, started_at)
    return when is not None and now >= when


def analysis_phase(phases: Iterable[MetricPhase]) -> AnalysisPhase:
    """The phase of an analysis from the phases of its metrics: any Failed -> Failed, else
    any Error -> Error, else any Inconclusive -> Inconclusive, else all Successful ->
    Successful, else Running. An analysis without metrics is Running (as Argo: it has
    nothing to conclude from; admission should refuse it)."""
    seen = set(phases)
    if "Failed" in seen:
        return "Failed"
    if "Error" in seen:
        return "Error"
    if "Inconclusive" in seen:
        return "Inconclusive"
    return "Successful" if seen == {"Successful"} else "Running"
