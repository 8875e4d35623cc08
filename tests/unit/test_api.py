"""The Rollout API models, and the committed CRD generated from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from nonstop.api import RolloutSpec
from nonstop.api.base import duration_seconds
from nonstop.api.crd import action_crd, rollout_crd, template_crd
from tests.sim import rollout_raw

CRD_FILE = Path(__file__).parents[2] / "crds" / "rollouts.nonstop.dev.yaml"
ACTION_CRD_FILE = CRD_FILE.with_name("rolloutactions.nonstop.dev.yaml")
TEMPLATE_CRD_FILE = CRD_FILE.with_name("analysistemplates.nonstop.dev.yaml")


def test_committed_crds_match_the_models() -> None:
    for path, made in (
        (CRD_FILE, rollout_crd()),
        (ACTION_CRD_FILE, action_crd()),
        (TEMPLATE_CRD_FILE, template_crd()),
    ):
        assert yaml.safe_load(path.read_text()) == made, f"{path.name} drifted: run `make crd`"


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def test_crd_schema_is_structural() -> None:
    schema = rollout_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    nodes = walk(schema)
    assert not [n for n in nodes if "$ref" in n]
    assert not [n for n in nodes if n.get("type") == "null"]
    for node in nodes:
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True


def test_crd_has_scale_status_and_columns() -> None:
    version = rollout_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:7] == ["Strategy", "Desired", "Ready", "Step", "Weight", "Phase", "Age"]


def spec_with(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = rollout_raw()["spec"]
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"strategy": {}}, "exactly one of rolling"),
        ({"strategy": {"rolling": {}, "canary": {"steps": [{"setWeight": 5}]}}}, "exactly one"),
        ({"replicas": -1}, "replicas"),
        ({"strategy": {"rolling": {"maxSurge": "150%"}}}, "percentage"),
        ({"strategy": {"rolling": {"maxSurge": 0, "maxUnavailable": "0%"}}}, "both be 0"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 101}]}}}, "setWeight"),
        ({"strategy": {"canary": {"steps": [{"pause": {"duration": "5 minutes"}}]}}}, "duration"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 5, "pause": {}}]}}}, "exactly one"),
        ({"template": {}}, "template"),
        ({"replica": 3}, "replica"),
        ({"selector": {"matchLabels": {"app": "other"}}}, "matchLabels"),
    ],
)
def test_invalid_specs_are_rejected_with_the_field_named(
    changes: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as error:
        RolloutSpec.model_validate(spec_with(**changes))
    assert needle in str(error.value)


def test_unknown_pod_fields_pass_through() -> None:
    spec = spec_with()
    spec["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    spec["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    parsed = RolloutSpec.model_validate(spec)
    assert parsed.template.spec.model_extra == {"nodeSelector": {"zone": "a"}}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds
