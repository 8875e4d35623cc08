"""Every Rollout in examples/ is valid, so what the docs show is what the API accepts; and
the Flux example (examples/flux/) health-checks a Rollout that it really applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nonstop.api import RolloutSpec
from nonstop.api.base import duration_seconds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FLUX = ROOT / "examples" / "flux"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_rollouts_are_valid(path: Path) -> None:
    rollouts = [d for d in documents(path) if d["kind"] == "Rollout"]
    assert rollouts
    for document in rollouts:
        RolloutSpec.model_validate(document["spec"])


def rollout_api_versions() -> set[str]:
    """group/version of every version of the Rollout CRD that is served (crds/)."""
    crd = yaml.safe_load((ROOT / "crds" / "rollouts.nonstop.dev.yaml").read_text())
    group = crd["spec"]["group"]
    return {f"{group}/{v['name']}" for v in crd["spec"]["versions"] if v["served"]}


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The objects of a kustomization.yaml with only `resources` (files or directories)
    and `namespace`, as `kustomize build` gives them."""
    config = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(config) <= {"apiVersion", "kind", "namespace", "resources"}, (
        "this reading of kustomize knows resources and namespace only"
    )
    objects: list[dict[str, Any]] = []
    for entry in config.get("resources", []):
        path = directory / entry
        objects += kustomize_build(path) if path.is_dir() else documents(path)
    if "namespace" in config:
        for obj in objects:
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = config["namespace"]
    return objects


def flux_objects() -> list[dict[str, Any]]:
    return [d for p in sorted(FLUX.glob("*.yaml")) for d in documents(p)]


def test_the_flux_example_health_checks_rollouts_it_applies() -> None:
    objects = flux_objects()
    sources = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["apiVersion"].startswith("source.toolkit.fluxcd.io/")
    }
    kustomizations = [o for o in objects if o["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"]
    assert kustomizations
    for ks in kustomizations:
        spec = ks["spec"]
        ref = spec["sourceRef"]
        assert (ref["kind"], ref["name"]) in sources, f"{ref} is not in examples/flux/"
        applied = kustomize_build(ROOT / spec["path"])
        for obj in applied:
            if obj["kind"] == "Rollout":
                RolloutSpec.model_validate(obj["spec"])
        rollouts = {
            (o["apiVersion"], o["metadata"]["name"], o["metadata"].get("namespace"))
            for o in applied
            if o["kind"] == "Rollout"
        }
        checks = [c for c in spec.get("healthChecks", []) if c["kind"] == "Rollout"]
        assert checks or spec.get("wait"), "the Kustomization does not wait for its Rollout"
        for check in checks:
            assert check["apiVersion"] in rollout_api_versions(), check
            wanted = (check["apiVersion"], check["name"], check.get("namespace"))
            assert wanted in rollouts, f"health check {wanted}: {spec['path']} applies {rollouts}"


def test_the_flux_example_waits_longer_than_its_rollout_can_take_to_end() -> None:
    """docs/flux.md's advice: the timeout covers the pauses and the progress deadline, so a
    release that never gets ready ends rolled back (Failed), not in a timeout."""
    for ks in flux_objects():
        if ks["apiVersion"] != "kustomize.toolkit.fluxcd.io/v1":
            continue
        timeout = duration_seconds(ks["spec"].get("timeout", ks["spec"]["interval"]))
        for obj in kustomize_build(ROOT / ks["spec"]["path"]):
            if obj["kind"] != "Rollout":
                continue
            spec = RolloutSpec.model_validate(obj["spec"])
            steps = spec.strategy.canary.steps if spec.strategy.canary else []
            pauses = [s.pause.duration for s in steps or [] if s.pause]
            assert None not in pauses, "an indefinite pause never passes a health check"
            least = sum(duration_seconds(p) for p in pauses if p) + spec.progress_deadline_seconds
            assert timeout > least, f"timeout {timeout}s, the rollout may take {least}s and more"
