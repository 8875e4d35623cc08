"""Properties of the analysis core: the comparison never cries wolf on identical samples and
always sees a clear shift; a metric never passes on errors, never leaves a terminal phase,
and fails once failures pass the limit; the condition language only ever fails with
ExprError and reads numbers as Python does."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from nonstop.analysis.compare import compare, mann_whitney_u
from nonstop.analysis.expr import ExprError, condition, parse
from nonstop.analysis.verdict import (
    TERMINAL,
    Measurement,
    MeasurementPhase,
    MetricPolicy,
    MetricState,
    due,
    next_due,
    record_error,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)

values = st.floats(-1e6, 1e6, allow_nan=False)
samples = st.lists(values, min_size=5, max_size=40)

# --- comparison --------------------------------------------------------------------------


@given(samples, st.randoms(use_true_random=False))
def test_identical_samples_are_never_worse(stable: list[float], random: object) -> None:
    canary = list(stable)
    random.shuffle(canary)  # type: ignore[attr-defined]
    for higher_is_worse in (True, False):
        result = compare(canary, stable, confidence=0.95, higher_is_worse=higher_is_worse)
        assert result.verdict == "NotWorse"
        assert result.p_value is not None and result.p_value >= 0.5


@st.composite
def shifted(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    """(canary, stable) with every canary value above every stable value, 10+ each."""
    stable = draw(st.lists(st.floats(0, 1000, allow_nan=False), min_size=10, max_size=60))
    gap = draw(st.floats(1e-3, 1e3))
    canary = [
        max(stable) + gap + extra
        for extra in draw(st.lists(st.floats(0, 1000), min_size=10, max_size=60))
    ]
    return canary, stable


@given(shifted())
def test_a_clear_shift_is_always_worse(pair: tuple[list[float], list[float]]) -> None:
    canary, stable = pair
    result = compare(canary, stable)
    assert result.verdict == "Worse"
    assert result.u == len(canary) * len(stable)


@given(shifted())
def test_swapping_the_direction_flips_a_clear_shift(pair: tuple[list[float], list[float]]) -> None:
    canary, stable = pair
    assert compare(canary, stable, higher_is_worse=True).verdict == "Worse"
    assert compare(canary, stable, higher_is_worse=False).verdict == "NotWorse"
    assert compare(stable, canary, higher_is_worse=False).verdict == "Worse"
    assert compare(stable, canary, higher_is_worse=True).verdict == "NotWorse"


any_value = st.one_of(values, st.sampled_from([0.0, 1.0, math.inf, -math.inf]))


@given(
    st.lists(any_value, min_size=1, max_size=30),
    st.lists(any_value, min_size=1, max_size=30),
)
def test_the_p_value_is_a_probability_and_u_is_in_range(a: list[float], b: list[float]) -> None:
    u, p = mann_whitney_u(a, b)
    assert 0.0 <= p <= 1.0
    assert 0.0 <= u <= len(a) * len(b)
    assert u * 2 == round(u * 2)  # whole or half (ties count 1/2)
    u_swapped, _ = mann_whitney_u(b, a)
    assert u + u_swapped == len(a) * len(b)


@given(
    st.lists(st.one_of(values, st.just(math.nan)), max_size=20),
    st.lists(st.one_of(values, st.just(math.nan)), max_size=20),
)
def test_compare_never_raises_on_nan(canary: list[float], stable: list[float]) -> None:
    result = compare(canary, stable)
    usable = min(sum(not math.isnan(x) for x in side) for side in (canary, stable))
    assert (result.verdict == "Inconclusive") == (usable < 5)
    assert result.p_value is None or 0.0 <= result.p_value <= 1.0


# --- verdict -----------------------------------------------------------------------------

measurement_phases: st.SearchStrategy[MeasurementPhase] = st.sampled_from(
    ["Successful", "Failed", "Inconclusive", "Error"]
)


@st.composite
def policies(draw: st.DrawFn) -> MetricPolicy:
    count = draw(st.one_of(st.none(), st.integers(1, 12)))
    interval = (
        draw(st.sampled_from([0.0, 10.0, 60.0]))
        if count == 1
        else draw(st.sampled_from([10.0, 60.0]))
    )
    return MetricPolicy(
        name="m",
        interval_seconds=interval,
        count=count,
        success="result < 1",
        failure=None,
        failure_limit=draw(st.integers(0, 4)),
        inconclusive_limit=draw(st.integers(0, 4)),
        consecutive_error_limit=draw(st.integers(0, 5)),
    )


def measurement(phase: MeasurementPhase, at: datetime) -> Measurement:
    if phase == "Error":
        return record_error("timeout", at, metric="m")
    return Measurement(at, 0.5, phase, phase)


@settings(max_examples=300)
@given(policies(), st.lists(st.tuples(measurement_phases, st.integers(0, 120)), max_size=60))
def test_a_metric_runs_as_due_says_and_never_leaves_a_terminal_phase(
    policy: MetricPolicy, steps: list[tuple[MeasurementPhase, int]]
) -> None:
    state, now, terminal = MetricState("m"), T0, None
    for phase, seconds in steps:
        now += timedelta(seconds=seconds)
        when = next_due(policy, state, T0)
        assert due(policy, state, T0, now) == (when is not None and now >= when)
        if due(policy, state, T0, now):
            state = state.add(measurement(phase, now))
        current = state.phase(policy)
        if terminal is not None:
            assert current == terminal  # terminal: no more measurements, the phase stays
            assert next_due(policy, state, T0) is None
        elif current in TERMINAL:
            terminal = current
        if current == "Running":
            assert next_due(policy, state, T0) is not None
    if policy.count is not None:
        assert state.taken <= policy.count


@given(policies(), st.integers(0, 30), st.booleans())
def test_errors_alone_never_make_a_metric_successful(
    policy: MetricPolicy, errors: int, stopped: bool
) -> None:
    state = MetricState("m")
    for i in range(errors):
        state = state.add(measurement("Error", T0 + timedelta(seconds=i)))
    assert state.phase(policy, stopped=stopped) != "Successful" or errors == 0


no_pass: st.SearchStrategy[MeasurementPhase] = st.sampled_from(["Failed", "Inconclusive", "Error"])


@given(
    policies(),
    st.lists(no_pass, max_size=40),
    st.integers(0, 40),
    st.booleans(),
)
def test_no_success_means_no_successful_metric_when_there_were_errors(
    policy: MetricPolicy, others: list[MeasurementPhase], where: int, stopped: bool
) -> None:
    phases = list(others)
    phases.insert(where, "Error")
    state = MetricState("m")
    for phase in phases:
        state = state.add(measurement(phase, T0))
    assert state.phase(policy, stopped=stopped) != "Successful"


@given(policies(), st.lists(measurement_phases, max_size=40), st.booleans())
def test_failures_over_the_limit_always_fail(
    policy: MetricPolicy, phases: list[MeasurementPhase], stopped: bool
) -> None:
    state = MetricState("m")
    for phase in phases:
        state = state.add(measurement(phase, T0))
    if state.failed > policy.failure_limit:
        assert state.phase(policy, stopped=stopped) == "Failed"
    else:
        assert state.phase(policy, stopped=stopped) != "Failed"
    assert state.taken == len(phases)
    assert len(state.measurements) == min(len(phases), 10)


# --- conditions --------------------------------------------------------------------------

alphabet = st.sampled_from(
    [*"result0123456789.eE+-*/%<>=!&|() ,", "isNaN", "abs", "min", "true", "not", "and"]
)


@settings(max_examples=500)
@given(st.lists(alphabet, max_size=40).map("".join))
def test_parsing_anything_either_works_or_raises_expr_error(text: str) -> None:
    try:
        parse(text)
        condition(text, 1.0)
    except ExprError as error:
        assert str(error)


@given(st.text(max_size=60))
def test_parsing_any_text_raises_nothing_but_expr_error(text: str) -> None:
    with contextlib.suppress(ExprError):
        parse(text)


@given(st.floats(allow_nan=False, allow_infinity=False), values)
def test_numbers_read_as_python_reads_them(threshold: float, result: float) -> None:
    assert condition(f"result < {threshold!r}", result) == (result < threshold)
    assert condition(f"result >= {threshold!r}", result) == (result >= threshold)
