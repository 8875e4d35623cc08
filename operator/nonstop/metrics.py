"""Prometheus metrics of the operator, served by `nonstop run --metrics-port` (docs/metrics.md).

The lowest layer (pyproject.toml's import-linter contract): it imports nothing of nonstop, so
every layer may count here. Names follow Prometheus' conventions: the `nonstop_` prefix,
`_total` on counters (prometheus_client adds it), base units (`_seconds`, ratios 0..1), and
labels of low cardinality: no pod or revision names, and a Rollout's name only on the gauges
that the scrape computes from the cache (`RolloutCollector`), which vanish with the Rollout,
as Argo Rollouts' `rollout_info` does.

Also here, as pure functions of the status before and after a pass (JSON, as written), what a
pass did that is worth counting: a step that ended, a revision promoted to stable, a new
abort, analysis measurements and verdicts (`observe_status`, called by reconcile.py once the
status patch is accepted).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Obj = Mapping[str, Any]

# --- counted where it happens ----------------------------------------------------------
API_REQUESTS = Counter(
    "nonstop_api_requests",
    "Requests to the Kubernetes API server, by HTTP method (lists and watches are GET) and"
    " status code (`error`: no answer, such as a connection refused or a timeout).",
    ["verb", "code"],
)
WATCH_EVENTS = Counter(
    "nonstop_watch_events",
    "Watch events received by the cache's informers, by resource (plural) and event type.",
    ["resource", "type"],
)
RECONCILE_SECONDS = Histogram(
    "nonstop_reconcile_duration_seconds",
    "How long a reconcile pass of one Rollout took (passes skipped as idle are not counted).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "nonstop_reconcile_errors",
    "Reconcile passes that raised (they are retried with backoff), by namespace.",
    ["namespace"],
)
WORKQUEUE_DEPTH = Gauge(
    "nonstop_workqueue_depth",
    "Passes waiting for a thread of the pass pool (--workers) plus those running.",
)
STEP_SECONDS = Histogram(
    "nonstop_step_duration_seconds",
    "How long a step (blueGreen: a stage) lasted, from its start to the pass that moved on.",
    ["namespace", "strategy"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
ROLLOUT_SECONDS = Histogram(
    "nonstop_rollout_duration_seconds",
    "How long a rollout took, from the start of a new revision (the Ready condition turning"
    " False) to that revision becoming the stable one.",
    ["namespace", "strategy"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400),
)
ABORTS = Counter(
    "nonstop_aborts",
    "Rollouts aborted (rolled back), by namespace and reason (ProgressDeadlineExceeded,"
    " AbortedByUser, AnalysisFailed, ShadowFailed).",
    ["namespace", "reason"],
)
ANALYSIS_MEASUREMENTS = Counter(
    "nonstop_analysis_measurements",
    "Analysis measurements taken, by namespace, metric name and result (Successful, Failed,"
    " Inconclusive, Error: the provider failed).",
    ["namespace", "metric", "result"],
)
ANALYSIS_RUNS = Counter(
    "nonstop_analysis_runs",
    "Analysis runs that reached a verdict, by namespace and phase (Successful, Failed,"
    " Inconclusive, Error).",
    ["namespace", "phase"],
)

STRATEGIES = ("rolling", "blueGreen", "canary", "shadow", "featureToggle")
ROLES = ("canary", "stable")
_RESULTS = (
    ("successful", "Successful"),
    ("failed", "Failed"),
    ("inconclusive", "Inconclusive"),
    ("errors", "Error"),
)


# --- computed at scrape time from the cache ----------------------------------------------
def strategy_of(rollout: Obj) -> str:
    """The key of spec.strategy that is set (rolling, blueGreen, ...), or `unknown`."""
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    return next((k for k in STRATEGIES if strategy.get(k) is not None), "unknown")


def steps_of(rollout: Obj) -> int | None:
    """How many steps the strategy has (canary, featureToggle, shadow then canary)."""
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    shadow = strategy.get("shadow") or {}
    for stepped in (
        strategy.get("canary"),
        strategy.get("featureToggle"),
        (shadow.get("then") or {}).get("canary"),
    ):
        if stepped and isinstance(stepped.get("steps"), list):
            return len(stepped["steps"])
    return None


class RolloutCollector(Collector):
    """The Rollouts in the cache, read at each scrape (nothing is kept between scrapes, so a
    deleted Rollout's series end with it). `source` gives the Rollouts as JSON dicts."""

    def __init__(self, source: Callable[[], Iterable[Obj]]) -> None:
        self.source = source

    def describe(self) -> Iterable[Metric]:
        return []  # the names depend on nothing registered: no collect() at registration

    def collect(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "nonstop_rollouts",
            "Rollouts by namespace, strategy and phase (status.phase; Unknown before the"
            " first status).",
            labels=["namespace", "strategy", "phase"],
        )
        info = GaugeMetricFamily(
            "nonstop_rollout_info",
            "One per Rollout (value 1), with its strategy and phase.",
            labels=["namespace", "rollout", "strategy", "phase"],
        )
        step = GaugeMetricFamily(
            "nonstop_rollout_step",
            "The current step (status.currentStepIndex, 0-based; the number of steps once all"
            " are done; blueGreen: the stage, 0 preview, 1 ready, 2 promoted).",
            labels=["namespace", "rollout"],
        )
        steps = GaugeMetricFamily(
            "nonstop_rollout_steps",
            "How many steps the Rollout's strategy has (canary, featureToggle, shadow).",
            labels=["namespace", "rollout"],
        )
        weight = GaugeMetricFamily(
            "nonstop_rollout_weight_ratio",
            "Share of traffic (0..1) by role (status.weights: as read back from the route, or"
            " the share of available pods; featureToggle: of users).",
            labels=["namespace", "rollout", "role"],
        )
        tally: dict[tuple[str, str, str], int] = {}
        try:
            rollouts = list(self.source())
        except Exception:  # a scrape must answer even before the cache has listed
            rollouts = []
        for rollout in rollouts:
            meta = rollout.get("metadata") or {}
            status = rollout.get("status") or {}
            namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
            strategy = strategy_of(rollout)
            phase = str(status.get("phase") or "Unknown")
            key = (namespace, strategy, phase)
            tally[key] = tally.get(key, 0) + 1
            info.add_metric([namespace, name, strategy, phase], 1)
            if isinstance(status.get("currentStepIndex"), int):
                step.add_metric([namespace, name], status["currentStepIndex"])
            total = steps_of(rollout)
            if total is not None:
                steps.add_metric([namespace, name], total)
            weights = status.get("weights")
            if isinstance(weights, Mapping):
                for role in ROLES:
                    if isinstance(weights.get(role), int | float):
                        weight.add_metric([namespace, name, role], weights[role] / 100)
        for (namespace, strategy, phase), n in sorted(tally.items()):
            counts.add_metric([namespace, strategy, phase], n)
        yield from (counts, info, step, steps, weight)


_collector: dict[str, RolloutCollector] = {}
_collector_lock = threading.Lock()


def watch_rollouts(source: Callable[[], Iterable[Obj]]) -> RolloutCollector:
    """Register the Rollout gauges, reading `source` at each scrape (again: replaces)."""
    with _collector_lock:
        old = _collector.pop("rollouts", None)
        if old is not None:
            REGISTRY.unregister(old)
        collector = RolloutCollector(source)
        REGISTRY.register(collector)
        _collector["rollouts"] = collector
        return collector


def serve(port: int, address: str = "0.0.0.0") -> Any:
    """Serve /metrics (the default registry: these metrics plus the process's own) in a
    thread; returns the HTTP server (`shutdown()` stops it). Raises OSError when the port is
    taken."""
    server, _ = start_http_server(port, addr=address)  # (server, thread), as 0.20 already returns
    return server


# --- what a pass did, from the status before and after it (pure) -------------------------
def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def step_duration(old: Obj, new: Obj, now: datetime) -> float | None:
    """Seconds the step of `old` lasted, when the pass moved the same revision on to a later
    step (the new step's start, or `now`, ends it); None otherwise."""
    before, after = old.get("currentStepIndex"), new.get("currentStepIndex")
    if not isinstance(before, int) or not isinstance(after, int) or after <= before:
        return None
    if not old.get("currentRevision") or old.get("currentRevision") != new.get("currentRevision"):
        return None
    started = _time(old.get("stepStartedAt"))
    if started is None:
        return None
    ended = _time(new.get("stepStartedAt"))
    if ended is None or ended <= started:
        ended = now
    return max(0.0, (ended - started).total_seconds())


def _condition(status: Obj, type_: str) -> Obj:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def rollout_duration(old: Obj, new: Obj, now: datetime) -> float | None:
    """Seconds a rollout took, when this pass made the revision being rolled out the stable
    one (a promotion: not the first revision, which had no stable one before, nor a
    rollback, which leaves the stable revision as it was). It started when the Ready
    condition turned False."""
    stable, before = new.get("stableRevision"), old.get("stableRevision")
    if not stable or not before or stable == before or stable != new.get("currentRevision"):
        return None
    ready = _condition(old, "Ready")
    started = _time(ready.get("lastTransitionTime"))
    if ready.get("status") == "True" or started is None:
        return None
    return max(0.0, (now - started).total_seconds())


def new_abort(old: Obj, new: Obj) -> str | None:
    """The reason of an abort that this pass wrote (not one kept from an earlier pass)."""
    abort = new.get("abort")
    if not isinstance(abort, Mapping):
        return None
    previous = old.get("abort")
    if isinstance(previous, Mapping) and (previous.get("revision"), previous.get("at")) == (
        abort.get("revision"),
        abort.get("at"),
    ):
        return None
    return str(abort.get("reason") or "Unknown")


def _runs(status: Obj) -> dict[tuple[str, str], Obj]:
    return {
        (str(r.get("name")), str(r.get("revision"))): r
        for r in status.get("analysisRuns") or []
        if isinstance(r, Mapping)
    }


def measurements(old: Obj, new: Obj) -> list[tuple[str, str, int]]:
    """(metric, result, how many) of the measurements this pass added, from the counts of
    each run's metrics (a run is its name and the revision it judges)."""
    before = _runs(old)
    added: list[tuple[str, str, int]] = []
    for key, run in _runs(new).items():
        was = {str(m.get("name")): m for m in (before.get(key) or {}).get("metrics") or []}
        for metric in run.get("metrics") or []:
            name = str(metric.get("name"))
            for field, result in _RESULTS:
                more = int(metric.get(field) or 0) - int((was.get(name) or {}).get(field) or 0)
                if more > 0:
                    added.append((name, result, more))
    return added


def run_verdicts(old: Obj, new: Obj) -> list[str]:
    """The phases of the analysis runs that reached a verdict in this pass."""
    before = _runs(old)
    done = []
    for key, run in _runs(new).items():
        phase = run.get("phase") or "Running"
        if phase != "Running" and (before.get(key) or {}).get("phase", "Running") == "Running":
            done.append(str(phase))
    return done


def observe_status(namespace: str, old: Obj, new: Obj, now: datetime) -> None:
    """Count what a pass did, once its status (`new`, replacing `old`) is written."""
    strategy = str(new.get("strategy") or old.get("strategy") or "unknown")
    seconds = step_duration(old, new, now)
    if seconds is not None:
        STEP_SECONDS.labels(namespace, strategy).observe(seconds)
    seconds = rollout_duration(old, new, now)
    if seconds is not None:
        ROLLOUT_SECONDS.labels(namespace, strategy).observe(seconds)
    reason = new_abort(old, new)
    if reason is not None:
        ABORTS.labels(namespace, reason).inc()
    for metric, result, n in measurements(old, new):
        ANALYSIS_MEASUREMENTS.labels(namespace, metric, result).inc(n)
    for phase in run_verdicts(old, new):
        ANALYSIS_RUNS.labels(namespace, phase).inc()
