"""The CRDs explain themselves: `kubectl explain rollout.spec...` has a description for every
field, written in the pydantic models (Field(description=...) or a model's docstring)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from nonstop.api.crd import action_crd, rollout_crd, template_crd
from nonstop.plan.conditions import Verdict, conditions

CRDS: dict[str, Callable[[], dict[str, Any]]] = {
    "Rollout": rollout_crd,
    "RolloutAction": action_crd,
    "AnalysisTemplate": template_crd,
}


# Fields of ObjectMeta (metadata.name, declared for the rule on it): the API server publishes
# ObjectMeta's own schema and descriptions for metadata, whatever the CRD says.
# The API server refuses a CRD that says anything about metadata itself but its type.
OBJECT_META = tuple(f"{kind.lower()}.metadata" for kind in CRDS)


def _root(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def properties(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property under `node`, with its path as kubectl explain spells it
    (list items and map values add no name of their own)."""
    for name, sub in (node.get("properties") or {}).items():
        here = f"{path}.{name}"
        yield here, sub
        yield from properties(sub, here)
    if isinstance(node.get("items"), dict):
        yield from properties(node["items"], path)
    if isinstance(node.get("additionalProperties"), dict):
        yield from properties(node["additionalProperties"], path)


def undescribed(kind: str) -> list[str]:
    root = _root(CRDS[kind]())
    missing = [] if (root.get("description") or "").strip() else [kind.lower()]
    missing += [
        path
        for path, sub in properties(root, kind.lower())
        if not (sub.get("description") or "").strip() and not path.startswith(OBJECT_META)
    ]
    return missing


@pytest.mark.parametrize("kind", list(CRDS))
def test_every_property_has_a_description(kind: str) -> None:
    missing = undescribed(kind)
    assert not missing, (
        f"{len(missing)} properties of {kind} have no description (add Field(description=...)"
        " or a docstring in operator/nonstop/api/, then `make crd`):\n  " + "\n  ".join(missing)
    )


def test_the_walk_sees_spec_status_and_nested_items() -> None:
    """The walk reaches the depths that kubectl explain shows: list items, nested objects."""
    paths = dict(properties(_root(rollout_crd()), "rollout"))
    for path in (
        "rollout.spec.replicas",
        "rollout.spec.template.spec.containers.image",
        "rollout.spec.strategy.canary.steps.analysis.metrics.provider.web.headers.valueFrom",
        "rollout.status.analysisRuns.metrics.measurements.value",
        "rollout.status.conditions.lastTransitionTime",
    ):
        assert path in paths, path
    assert len(paths) > 300


def test_the_walk_names_a_property_without_a_description() -> None:
    node = {"properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}}
    assert [p for p, s in properties(node, "x") if "description" not in s] == ["x.a", "x.a.b"]


def test_descriptions_are_short_sentences() -> None:
    """Short and exact: one or two lines in kubectl explain, not a page."""
    too_long = [
        path
        for kind, make in CRDS.items()
        for path, sub in properties(_root(make()), kind.lower())
        if len(sub.get("description", "")) > 400
    ]
    assert not too_long


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    status = _root(rollout_crd())["properties"]["status"]
    field = status["properties"]["conditions"]
    assert field["x-kubernetes-list-type"] == "map"
    assert field["x-kubernetes-list-map-keys"] == ["type"]
    # a map key must be required (or defaulted) in every item
    assert "type" in field["items"]["required"]


@pytest.mark.parametrize(
    "verdict",
    [
        Verdict(
            ready=True, reconciling=False, stalled=False, reason="RolloutCompleted", message=""
        ),
        Verdict(ready=False, reconciling=True, stalled=True, reason="RollingBack", message="m"),
        Verdict(
            ready=False,
            reconciling=False,
            stalled=False,
            reason="StepPaused",
            message="m",
            paused=True,
            paused_reason="StepPaused",
        ),
    ],
)
def test_the_operator_writes_one_condition_of_each_type(verdict: Verdict) -> None:
    """The API server refuses a map list with two items of one key: the operator never
    writes two conditions of one type (plan/conditions.py writes the four kstatus ones)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = conditions([], verdict, 1, now)
    again = conditions(first, verdict, 2, now)
    for written in (first, again):
        types = [c.type for c in written]
        assert sorted(types) == ["Paused", "Ready", "Reconciling", "Stalled"]
