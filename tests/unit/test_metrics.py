"""metrics.py: the Rollout gauges over a store of Rollout dicts, and what a pass did (a step
that ended, a promotion, an abort, measurements, verdicts) from the status before and after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nonstop import metrics
from nonstop.kube.store import Store

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def rollout(
    name: str, strategy: dict[str, Any], status: dict[str, Any] | None = None, ns: str = "shop"
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "resourceVersion": "1"},
        "spec": {"strategy": strategy},
        **({"status": status} if status is not None else {}),
    }


CANARY = {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}}


def scrape(objects: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    store = Store()
    store.replace(objects, 1)
    registry = CollectorRegistry()
    registry.register(metrics.RolloutCollector(store.items))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_collector_counts_rollouts_by_namespace_strategy_and_phase() -> None:
    got = scrape(
        [
            rollout("a", CANARY, {"phase": "Paused"}),
            rollout("b", CANARY, {"phase": "Paused"}),
            rollout("c", {"blueGreen": {"previewService": "p"}}, {"phase": "Healthy"}),
            rollout("d", {"rolling": {}}),  # no status yet
        ]
    )
    rows = {k[1]: v for k, v in got.items() if k[0] == "nonstop_rollouts"}
    assert rows == {
        (("namespace", "shop"), ("phase", "Paused"), ("strategy", "canary")): 2,
        (("namespace", "shop"), ("phase", "Healthy"), ("strategy", "blueGreen")): 1,
        (("namespace", "shop"), ("phase", "Unknown"), ("strategy", "rolling")): 1,
    }
    info = ("nonstop_rollout_info", (("namespace", "shop"), ("phase", "Paused"), ("rollout", "a")))
    assert got[(info[0], (*info[1], ("strategy", "canary")))] == 1


def test_the_collector_gives_step_steps_and_weights_per_rollout() -> None:
    status = {"phase": "Paused", "currentStepIndex": 1, "weights": {"stable": 80, "canary": 20}}
    got = scrape([rollout("web", CANARY, status)])
    who = (("namespace", "shop"), ("rollout", "web"))
    assert got[("nonstop_rollout_step", who)] == 1
    assert got[("nonstop_rollout_steps", who)] == 3
    role = "nonstop_rollout_weight_ratio"
    assert got[(role, tuple(sorted((*who, ("role", "canary")))))] == 0.2
    assert got[(role, tuple(sorted((*who, ("role", "stable")))))] == 0.8


def test_steps_of_shadow_then_canary_and_of_a_toggle() -> None:
    shadow = {"shadow": {"duration": "1m", "then": CANARY}}
    assert metrics.steps_of(rollout("s", shadow)) == 3
    toggle = {"featureToggle": {"flag": {}, "steps": [{"setWeight": 10}]}}
    assert metrics.steps_of(rollout("t", toggle)) == 1
    assert metrics.steps_of(rollout("r", {"rolling": {}})) is None
    assert metrics.strategy_of(rollout("s", shadow)) == "shadow"


def test_a_scrape_answers_when_the_cache_cannot_be_read() -> None:
    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("not listed yet")

    registry = CollectorRegistry()
    registry.register(metrics.RolloutCollector(broken))
    assert b"nonstop_rollout_info" in generate_latest(registry)


def ready(status: str, at: str) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": "x", "lastTransitionTime": at}


def test_a_step_that_moves_on_is_timed_from_its_start() -> None:
    old = {"currentRevision": "b", "currentStepIndex": 1, "stepStartedAt": "2025-01-01T11:59:00Z"}
    new = {**old, "currentStepIndex": 2, "stepStartedAt": "2025-01-01T11:59:45Z"}
    assert metrics.step_duration(old, new, NOW) == 45.0
    assert metrics.step_duration(old, {**new, "stepStartedAt": None}, NOW) == 60.0
    assert metrics.step_duration(old, old, NOW) is None  # same step
    assert metrics.step_duration(old, {**new, "currentRevision": "c"}, NOW) is None
    assert metrics.step_duration({**old, "stepStartedAt": None}, new, NOW) is None


def test_a_promotion_is_timed_from_the_ready_condition_turning_false() -> None:
    old = {
        "currentRevision": "b",
        "stableRevision": "a",
        "conditions": [ready("False", "2025-01-01T11:50:00Z")],
    }
    new = {**old, "stableRevision": "b", "phase": "Healthy"}
    assert metrics.rollout_duration(old, new, NOW) == 600.0
    # not a promotion: the first revision, a rollback (stable kept), a pass that changes nothing
    first = {**old, "stableRevision": None}
    assert metrics.rollout_duration(first, {**first, "stableRevision": "b"}, NOW) is None
    back = {**old, "currentRevision": "a"}
    assert metrics.rollout_duration(old, {**back, "stableRevision": "a"}, NOW) is None
    assert metrics.rollout_duration(new, new, NOW) is None


def test_an_abort_is_counted_once_when_it_is_written() -> None:
    abort = {"revision": "b", "at": "2025-01-01T11:59:00Z", "reason": "AnalysisFailed"}
    assert metrics.new_abort({}, {"abort": abort}) == "AnalysisFailed"
    assert metrics.new_abort({"abort": abort}, {"abort": abort}) is None
    again = {**abort, "at": "2025-01-01T12:00:00Z", "reason": "AbortedByUser"}
    assert metrics.new_abort({"abort": abort}, {"abort": again}) == "AbortedByUser"
    assert metrics.new_abort({"abort": abort}, {}) is None


def run(phase: str, **counts: int) -> dict[str, Any]:
    return {
        "name": "step-1",
        "revision": "b",
        "phase": phase,
        "metrics": [{"name": "errors", **counts}],
    }


def test_measurements_and_verdicts_are_what_the_pass_added() -> None:
    old = {"analysisRuns": [run("Running", successful=1)]}
    new = {"analysisRuns": [run("Running", successful=2, errors=1)]}
    assert sorted(metrics.measurements(old, new)) == [
        ("errors", "Error", 1),
        ("errors", "Successful", 1),
    ]
    assert metrics.run_verdicts(old, new) == []
    done = {"analysisRuns": [run("Failed", successful=2, errors=1, failed=1)]}
    assert metrics.measurements(new, done) == [("errors", "Failed", 1)]
    assert metrics.run_verdicts(new, done) == ["Failed"]
    assert metrics.run_verdicts(done, done) == []
    # a new run (another revision) counts from zero
    other = {"analysisRuns": [{**run("Successful", successful=3), "revision": "c"}]}
    assert metrics.measurements(done, other) == [("errors", "Successful", 3)]
    assert metrics.run_verdicts(done, other) == ["Successful"]


def test_observe_status_counts_an_abort_by_namespace_and_reason() -> None:
    counter = metrics.ABORTS.labels("ns-observe", "ProgressDeadlineExceeded")
    before = counter._value.get()
    abort = {"revision": "b", "at": "2025-01-01T11:59:00Z", "reason": "ProgressDeadlineExceeded"}
    metrics.observe_status("ns-observe", {"strategy": "canary"}, {"abort": abort}, NOW)
    assert counter._value.get() == before + 1
