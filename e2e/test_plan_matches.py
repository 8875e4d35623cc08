"""`kubectl nonstop plan` against a real run: the plan of a canary (pods, no router) says,
step by step, how many pods each revision has; the same Rollout, released on the real
control plane with the operator, has exactly those Deployment replicas at each step, the
same revision names, and waits for a person exactly where the plan says."""

from __future__ import annotations

import json
import time
from typing import Any

import yaml
from click.testing import CliRunner

from e2e.conftest import Cluster, record_figure
from e2e.kube import eventually
from e2e.manifests import rollout
from e2e.test_rolling import deployments, set_image, status, wait_ready
from nonstop.cli.planview import command

NEW_IMAGE = "registry.example/web:2"
# every setWeight is followed by an indefinite pause, so the cluster holds still at each
# step and its Deployments can be read
STEPS: list[dict[str, Any]] = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 80},
    {"pause": {}},
]


def promote(cluster: Cluster, namespace: str, n: int) -> None:
    action = {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "RolloutAction",
        "metadata": {"name": f"promote-{n}"},
        "spec": {"rollout": "web", "action": "promote"},
    }
    cluster.apply(action, namespace)


def test_the_plan_is_what_the_cluster_does(cluster: Cluster, namespace: str) -> None:
    manifest = rollout(replicas=5)
    manifest["spec"]["strategy"] = {"canary": {"steps": STEPS}}
    started = time.monotonic()
    result = CliRunner().invoke(
        command, ["-o", "json", "--no-aborts", "--image", NEW_IMAGE, "-"],
        input=yaml.safe_dump(manifest),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [plan] = json.loads(result.output)["plans"]
    planned = {s["index"]: s for s in plan["steps"]}
    revision = plan["revisions"]

    def pods(step: dict[str, Any]) -> dict[str, int]:
        return {revision[role]: n for role, n in step["pods"].items()}

    cluster.apply(manifest, namespace)
    first = wait_ready(cluster, namespace)
    assert first["stableRevision"] == revision["stable"]  # the same revision names
    set_image(cluster, namespace, NEW_IMAGE)

    promotions = 0
    for index, step in enumerate(STEPS):
        if "pause" not in step:
            continue
        eventually(
            lambda i=index: (
                (s := status(cluster, namespace)).get("currentStepIndex") == i
                and s.get("phase") == "Paused"
            ),
            90,
            f"paused at step {index}",
            every=0.2,
        )
        assert status(cluster, namespace)["currentRevision"] == revision["new"]
        # the setWeight before the pause, and the pause itself: the plan's pods, exactly
        seen = deployments(cluster, namespace)
        assert seen == pods(planned[index - 1]) == pods(planned[index]), (index, seen)
        assert planned[index]["needsPerson"], index
        promotions += 1
        promote(cluster, namespace, promotions)

    done = wait_ready(cluster, namespace)
    assert done["stableRevision"] == revision["new"]
    assert deployments(cluster, namespace) == pods(planned[len(STEPS)])
    assert promotions == plan["needsPerson"]
    assert [s["index"] for s in plan["steps"]] == list(range(len(STEPS) + 1))
    record_figure(
        f"plan vs cluster, canary of 5 pods, {len(STEPS)} steps: equal at every step"
        f" ({time.monotonic() - started:.1f} s)"
    )
