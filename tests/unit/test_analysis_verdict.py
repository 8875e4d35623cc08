"""Measurements and the verdicts of a metric and of an analysis (the Argo Rollouts rules,
and where nonstop is stricter: NaN and errors are never passes)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from nonstop.analysis.verdict import (
    KEEP_MEASUREMENTS,
    Measurement,
    MetricPhase,
    MetricPolicy,
    MetricState,
    analysis_phase,
    due,
    judge,
    next_due,
    record_error,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def policy(
    *,
    success: str | None = "result < 0.05",
    failure: str | None = None,
    count: int | None = 3,
    interval: float = 60,
    failure_limit: int = 0,
    inconclusive_limit: int = 0,
    consecutive_error_limit: int = 4,
) -> MetricPolicy:
    return MetricPolicy(
        name="error-rate",
        interval_seconds=interval,
        count=count,
        success=success,
        failure=failure,
        failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit,
        consecutive_error_limit=consecutive_error_limit,
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ok(seconds: float = 0) -> Measurement:
    return Measurement(at(seconds), 0.01, "Successful", "ok")


def bad(seconds: float = 0) -> Measurement:
    return Measurement(at(seconds), 0.12, "Failed", "metric error-rate: 0.12 failed")


def unsure(seconds: float = 0) -> Measurement:
    return Measurement(at(seconds), 0.03, "Inconclusive", "inconclusive")


def err(seconds: float = 0, why: str = "timeout") -> Measurement:
    return record_error(why, at(seconds), metric="error-rate")


def state_of(*measurements: Measurement) -> MetricState:
    state = MetricState("error-rate")
    for m in measurements:
        state = state.add(m)
    return state


class TestJudge:
    """One measurement, as Argo's EvaluateResult."""

    def test_success_condition_met(self) -> None:
        m = judge(policy(), 0.01, T0)
        assert (m.phase, m.value, m.at) == ("Successful", 0.01, T0)
        assert m.message == 'metric error-rate: 0.01 passed "result < 0.05"'

    def test_only_success_condition_not_met_is_a_failure(self) -> None:
        m = judge(policy(), 0.12, T0)
        assert m.phase == "Failed"
        assert m.message == 'metric error-rate: 0.12 failed "result < 0.05"'

    def test_failure_condition_met(self) -> None:
        m = judge(policy(success=None, failure="result > 0.1"), 0.12, T0)
        assert m.phase == "Failed"
        assert m.message == 'metric error-rate: 0.12 met the failure condition "result > 0.1"'

    def test_only_failure_condition_not_met_is_a_success(self) -> None:
        m = judge(policy(success=None, failure="result > 0.1"), 0.02, T0)
        assert m.phase == "Successful"
        assert (
            m.message == 'metric error-rate: 0.02 did not meet the failure condition "result > 0.1"'
        )

    def test_no_conditions_is_a_success(self) -> None:
        m = judge(policy(success=None, failure=None), 42, T0)
        assert (m.phase, m.message) == ("Successful", "metric error-rate: 42 (no conditions)")

    def test_empty_conditions_are_no_conditions(self) -> None:
        assert policy(success="", failure="").success is None
        assert judge(policy(success="", failure=""), 42, T0).phase == "Successful"

    def test_both_and_neither_holds_is_inconclusive(self) -> None:
        p = policy(success="result < 0.02", failure="result > 0.05")
        m = judge(p, 0.03, T0)
        assert m.phase == "Inconclusive"
        assert m.message == (
            'metric error-rate: 0.03 is inconclusive: neither "result < 0.02" nor the failure'
            ' condition "result > 0.05" holds'
        )
        assert judge(p, 0.01, T0).phase == "Successful"
        assert judge(p, 0.06, T0).phase == "Failed"

    def test_failure_wins_when_both_hold(self) -> None:
        m = judge(policy(success="result > 0", failure="result > 0.05"), 0.1, T0)
        assert m.phase == "Failed"

    @pytest.mark.parametrize("success", ["result < 0.05", None])
    @pytest.mark.parametrize("failure", ["result > 100", None])
    def test_nan_is_an_error_never_a_pass(self, success: str | None, failure: str | None) -> None:
        m = judge(policy(success=success, failure=failure), math.nan, T0)
        assert m.phase == "Error"
        assert m.message == "metric error-rate: provider returned NaN"

    @pytest.mark.parametrize("value", [math.inf, -math.inf])
    def test_infinity_is_an_error(self, value: float) -> None:
        m = judge(policy(success=None, failure="result > 100"), value, T0)
        assert m.phase == "Error"
        assert m.message == f"metric error-rate: provider returned {value}"

    def test_a_condition_that_cannot_be_evaluated_is_an_error(self) -> None:
        m = judge(policy(success="result / 0 < 1"), 0.5, T0)
        assert m.phase == "Error"
        assert m.message == (
            "metric error-rate: 0.5: cannot evaluate the condition: division by zero at column 8"
            ' in "result / 0 < 1"'
        )

    def test_extra_variables(self) -> None:
        p = replace(
            policy(), success="result < baseline * 1.2", variables=frozenset({"result", "baseline"})
        )
        assert judge(p, 1.1, T0, {"baseline": 1.0}).phase == "Successful"
        assert judge(p, 1.3, T0, {"baseline": 1.0}).phase == "Failed"
        missing = judge(p, 1.1, T0)
        assert missing.phase == "Error"
        assert "unknown variable 'baseline'" in missing.message


class TestPolicy:
    def test_argo_defaults(self) -> None:
        p = MetricPolicy("m", 10, 3, "result > 0", None)
        assert (p.failure_limit, p.inconclusive_limit, p.consecutive_error_limit) == (0, 0, 4)

    def test_a_single_measurement_needs_no_interval(self) -> None:
        MetricPolicy("m", 0, 1, "result > 0", None)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"count": 3, "interval_seconds": 0}, "metric m: count 3 needs an interval"),
            (
                {"count": None, "interval_seconds": 0},
                "metric m: measuring until stopped (no count) needs an interval",
            ),
            ({"count": 0}, "metric m: count must be at least 1, not 0"),
            ({"interval_seconds": -1}, "metric m: interval must be a duration >= 0, not -1"),
            ({"interval_seconds": math.inf}, "interval must be a duration >= 0"),
            ({"failure_limit": -1}, "metric m: failure_limit must be >= 0, not -1"),
            ({"consecutive_error_limit": -1}, "consecutive_error_limit must be >= 0"),
            ({"name": ""}, "a metric needs a name"),
            (
                {"success": "result < 0.05)"},
                "metric m: successCondition: unexpected ')' at column 14 in \"result < 0.05)\"",
            ),
            (
                {"failure": "result * 2"},
                'metric m: failureCondition: condition "result * 2" gives a number, not true/false',
            ),
            (
                {"success": "x > 1"},
                "metric m: successCondition: unknown variable 'x' at column 1 in \"x > 1\""
                " (known: result)",
            ),
        ],
    )
    def test_invalid(self, changes: dict[str, object], message: str) -> None:
        fields: dict[str, object] = {
            "name": "m",
            "interval_seconds": 10,
            "count": 3,
            "success": "result > 0",
            "failure": None,
            **changes,
        }
        with pytest.raises(ValueError) as caught:
            MetricPolicy(**fields)  # type: ignore[arg-type]
        assert message in str(caught.value)


class TestState:
    def test_add_is_pure_and_counts(self) -> None:
        empty = MetricState("error-rate")
        one = empty.add(ok())
        assert empty == MetricState("error-rate")
        assert (one.successful, one.taken, one.measurements) == (1, 1, (ok(),))
        s = state_of(ok(), bad(), unsure(), err(), err())
        assert (s.successful, s.failed, s.inconclusive, s.errors) == (1, 1, 1, 2)
        assert s.consecutive_errors == 2
        assert s.taken == 5

    def test_keeps_the_last_measurements_but_counts_all(self) -> None:
        s = state_of(*(ok(i) for i in range(25)))
        assert len(s.measurements) == KEEP_MEASUREMENTS
        assert s.measurements[0].at == at(15)
        assert s.measurements[-1].at == at(24)
        assert s.successful == 25

    def test_a_success_after_errors_resets_consecutive_errors(self) -> None:
        s = state_of(err(), err(), err())
        assert s.consecutive_errors == 3
        assert s.add(ok()).consecutive_errors == 0
        assert s.add(bad()).consecutive_errors == 0
        assert s.add(unsure()).consecutive_errors == 0
        assert s.add(ok()).errors == 3  # the total stays


class TestPhase:
    def test_running_until_count(self) -> None:
        p = policy(count=3)
        assert state_of().phase(p) == "Running"
        assert state_of(ok()).phase(p) == "Running"
        assert state_of(ok(), ok()).phase(p) == "Running"
        assert state_of(ok(), ok(), ok()).phase(p) == "Successful"

    def test_failed_when_failures_exceed_the_limit(self) -> None:
        assert state_of(bad()).phase(policy(failure_limit=0)) == "Failed"
        p = policy(count=5, failure_limit=1)
        assert state_of(bad()).phase(p) == "Running"
        assert state_of(bad(), ok(), bad()).phase(p) == "Failed"

    def test_failures_within_the_limit_still_succeed(self) -> None:
        assert state_of(bad(), ok(), ok()).phase(policy(failure_limit=1)) == "Successful"

    def test_inconclusive_when_over_the_limit(self) -> None:
        assert state_of(unsure()).phase(policy()) == "Inconclusive"
        p = policy(inconclusive_limit=1)
        assert state_of(unsure()).phase(p) == "Running"
        assert state_of(unsure(), unsure()).phase(p) == "Inconclusive"
        assert state_of(unsure(), ok(), ok()).phase(p) == "Successful"

    def test_error_after_too_many_consecutive_errors(self) -> None:
        p = policy(count=None, consecutive_error_limit=4)
        assert state_of(*(err(i) for i in range(4))).phase(p) == "Running"
        assert state_of(*(err(i) for i in range(5))).phase(p) == "Error"
        p2 = policy(count=None, consecutive_error_limit=0)
        assert state_of(err()).phase(p2) == "Error"

    def test_errors_that_are_not_consecutive_do_not_end_a_metric(self) -> None:
        p = policy(count=None, consecutive_error_limit=2)
        s = state_of(err(), err(), ok(), err(), err(), ok(), err(), err())
        assert s.errors == 6
        assert s.phase(p) == "Running"

    def test_errors_do_not_count_as_failures(self) -> None:
        p = policy(count=10, failure_limit=0, consecutive_error_limit=4)
        assert state_of(err(), err(), ok()).phase(p) == "Running"

    def test_a_count_reached_with_errors_only_is_an_error(self) -> None:
        p = policy(count=3)
        s = state_of(err(), err(), err())
        assert s.phase(p) == "Error"
        assert s.explain(p) == (
            "metric error-rate: timeout (no successful measurement: 3 errors in 3 measurements)"
        )

    def test_a_count_reached_with_errors_and_tolerated_failures_is_an_error(self) -> None:
        p = policy(count=3, failure_limit=1, inconclusive_limit=1)
        assert state_of(err(), bad(), unsure()).phase(p) == "Error"

    def test_a_count_reached_with_a_pass_among_errors_is_successful(self) -> None:
        assert state_of(err(), ok(), err()).phase(policy(count=3)) == "Successful"

    def test_a_single_error_measurement_is_not_a_pass(self) -> None:
        p = policy(count=1, interval=0)
        assert state_of(err()).phase(p) == "Error"

    def test_failed_wins_over_error_and_inconclusive(self) -> None:
        p = policy(count=None, consecutive_error_limit=0)
        s = state_of(unsure(), bad(), err())
        assert s.phase(p) == "Failed"
        assert state_of(unsure(), err()).phase(p) == "Error"

    def test_background_runs_until_stopped(self) -> None:
        p = policy(count=None)
        s = state_of(*(ok(i) for i in range(50)))
        assert s.phase(p) == "Running"
        assert s.phase(p, stopped=True) == "Successful"
        assert state_of(err()).phase(p, stopped=True) == "Error"
        assert state_of().phase(p, stopped=True) == "Successful"  # as Argo's `terminating`
        assert state_of(bad()).phase(p, stopped=True) == "Failed"


class TestExplain:
    def test_failed_names_metric_value_condition_and_limit(self) -> None:
        p = policy(count=5, failure_limit=1)
        s = state_of(judge(p, 0.2, at(0)), judge(p, 0.01, at(60)), judge(p, 0.12, at(120)))
        assert s.explain(p) == (
            'metric error-rate: 0.12 failed "result < 0.05" (2 failures, limit 1)'
        )

    def test_consecutive_errors(self) -> None:
        p = policy(count=None, consecutive_error_limit=1)
        s = state_of(err(0, "HTTP 503"), err(60, "connection refused"))
        assert s.explain(p) == (
            "metric error-rate: connection refused (2 errors in a row, limit 1)"
        )

    def test_inconclusive(self) -> None:
        p = policy(success="result < 0.02", failure="result > 0.05")
        s = state_of(judge(p, 0.03, T0))
        assert s.explain(p).endswith("holds (1 inconclusive, limit 0)")

    def test_successful_and_running(self) -> None:
        p = policy(count=3, failure_limit=1)
        assert state_of(ok(), bad()).explain(p) == (
            "metric error-rate: Running, 2 of 3 measurements taken (1 successful, 1 failed,"
            " 0 inconclusive, 0 errors)"
        )
        assert state_of(ok(), bad(), err()).explain(p) == (
            "metric error-rate: Successful after 3 measurements (1 successful, 1 failed,"
            " 0 inconclusive, 1 error)"
        )
        assert state_of().explain(policy(count=None)) == (
            "metric error-rate: Running, 0 measurements taken (0 successful, 0 failed,"
            " 0 inconclusive, 0 errors)"
        )


@pytest.mark.parametrize(
    "why",
    [
        "timeout after 10s",
        "connection refused",
        "HTTP 503 from http://prometheus:9090",
        "empty result: the query matched no series",
        "not a number: 'abc'",
    ],
)
def test_every_provider_error_is_an_error_measurement(why: str) -> None:
    m = record_error(why, T0, metric="error-rate")
    assert (m.phase, m.value, m.at) == ("Error", None, T0)
    assert m.message == f"metric error-rate: {why}"
    assert record_error(why, T0).message == why
    p = policy(count=None, consecutive_error_limit=2)
    s = state_of(*([m] * 3))
    assert s.phase(p) == "Error"
    assert s.phase(policy(count=3)) == "Error"
    assert s.phase(policy(count=None), stopped=True) == "Error"


class TestTiming:
    def test_the_first_measurement_is_due_at_the_start(self) -> None:
        p, s = policy(), state_of()
        assert next_due(p, s, T0) == T0
        assert due(p, s, T0, T0)
        assert due(p, s, T0, at(5))
        assert not due(p, s, T0, at(-1))

    def test_then_every_interval_after_the_last_measurement(self) -> None:
        p = policy(count=3, interval=60)
        s = state_of(ok(7))  # taken a bit late
        assert next_due(p, s, T0) == at(67)
        assert not due(p, s, T0, at(66))
        assert due(p, s, T0, at(67))
        assert due(p, s, T0, at(500))

    def test_errors_are_retried_after_the_interval_too(self) -> None:
        p = policy(count=None, interval=30)
        assert next_due(p, state_of(err(10)), T0) == at(40)

    def test_never_after_a_terminal_phase(self) -> None:
        p = policy(count=2, interval=60)
        done = state_of(ok(0), ok(60))
        assert done.phase(p) == "Successful"
        assert next_due(p, done, T0) is None
        assert not due(p, done, T0, at(10_000))
        failed = state_of(bad(0))
        assert next_due(p, failed, T0) is None
        errored = state_of(*(err(i) for i in range(5)))
        assert next_due(policy(count=None), errored, T0) is None

    def test_a_single_measurement_without_interval(self) -> None:
        p = policy(count=1, interval=0)
        assert due(p, state_of(), T0, T0)
        assert next_due(p, state_of(ok()), T0) is None

    def test_background_analysis_keeps_going(self) -> None:
        p = policy(count=None, interval=300)
        s = state_of(*(ok(i * 300) for i in range(100)))
        assert next_due(p, s, T0) == at(100 * 300)


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        (["Successful", "Successful"], "Successful"),
        (["Successful"], "Successful"),
        (["Successful", "Running"], "Running"),
        (["Running", "Running"], "Running"),
        (["Successful", "Failed", "Running"], "Failed"),
        (["Error", "Failed"], "Failed"),
        (["Inconclusive", "Failed"], "Failed"),
        (["Error", "Inconclusive", "Successful"], "Error"),
        (["Error", "Running"], "Error"),
        (["Inconclusive", "Successful"], "Inconclusive"),
        (["Inconclusive", "Running"], "Inconclusive"),
        ([], "Running"),
    ],
)
def test_analysis_phase(phases: list[MetricPhase], expected: MetricPhase) -> None:
    assert analysis_phase(phases) == expected
    assert analysis_phase(iter(phases)) == expected  # any iterable, read once
