"""Every Rollout in examples/ is valid, so what the docs show is what the API accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nonstop.api import RolloutSpec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_rollouts_are_valid(path: Path) -> None:
    rollouts = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Rollout"]
    assert rollouts
    for document in rollouts:
        RolloutSpec.model_validate(document["spec"])
