"""All hypothesis strategies of the test suite, in one place."""

from __future__ import annotations

from hypothesis import strategies as st

from nonstop.plan.replicas import Pods

replicas = st.integers(min_value=0, max_value=30)
int_or_percent = st.one_of(
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=100).map(lambda p: f"{p}%"),
)


@st.composite
def revision_pods(draw: st.DrawFn, name: str) -> Pods:
    spec = draw(st.integers(min_value=0, max_value=20))
    extra = draw(st.integers(min_value=0, max_value=3))  # terminating or not yet gone
    available = draw(st.integers(min_value=0, max_value=spec))  # as DeploymentView caps it
    return Pods(name=name, spec=spec, pods=spec + extra, available=available)


@st.composite
def rolling_state(draw: st.DrawFn) -> tuple[int, int, int, Pods, list[Pods], int | None]:
    desired = draw(replicas)
    surge = draw(st.integers(min_value=0, max_value=5))
    unavailable = draw(st.integers(min_value=0, max_value=desired))
    if surge == 0 and unavailable == 0:
        surge = 1
    target = draw(revision_pods("new"))
    others = [draw(revision_pods(f"old{i}")) for i in range(draw(st.integers(0, 3)))]
    total_available = target.available + sum(o.available for o in others)
    endpoints = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=total_available + 2)))
    return desired, surge, unavailable, target, others, endpoints


images = st.sampled_from(["web:1", "web:2", "web:3", "web:4"])
