"""The step machine never goes back and always ends at 100% for the new revision."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from nonstop.api.spec import CanaryStep
from nonstop.plan.steps import advance, target_at
from tests.sim import T0

step = st.one_of(
    st.floats(0, 100, allow_nan=False).map(lambda w: CanaryStep(set_weight=w)),
    st.sampled_from(["10s", "1m", None]).map(
        lambda d: CanaryStep.model_validate({"pause": {"duration": d} if d else {}})
    ),
)


@given(
    st.lists(step, min_size=1, max_size=8),
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([None, None, "step"]), st.integers(0, 90)),
        max_size=40,
    ),
)
def test_index_never_goes_back_and_weights_stay_in_range(
    steps: list[CanaryStep], passes: list[tuple[bool, str | None, int]]
) -> None:
    index, started, now = 0, T0, T0
    for applied, promotion, seconds in passes:
        now += timedelta(seconds=seconds)
        progress = advance(steps, index, started, now, applied=applied, promotion=promotion)  # type: ignore[arg-type]
        assert progress.index in (index, index + 1)
        index, started = progress.index, progress.started_at
        assert 0 <= target_at(steps, index).weight <= 100
    assert target_at(steps, len(steps)).weight == 100
