"""Edge behaviour of issue 9 on the real control plane: what an HPA reads through the scale
subresource, old pods kept for scaleDownDelaySeconds after the route moved away from them,
a Deployment under nonstop's name that someone else made, an AnalysisTemplate checked when
it is named, and answered RolloutActions that do not pile up."""

from __future__ import annotations

import json
from typing import Any

from e2e.conftest import Cluster
from e2e.kube import eventually
from e2e.manifests import http_route, rollout
from e2e.test_rolling import condition, deployments, events, set_image, status, wait_ready
from e2e.test_traffic import routed_rollout


def scale(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """The scale subresource, as an HPA reads it."""
    out = cluster.kubectl(
        "get", "rollout", "web", "-n", namespace, "--subresource=scale", "-o", "json"
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def scaled_events(cluster: Cluster, namespace: str) -> list[str]:
    return sorted(
        e["message"]
        for e in cluster.get("events", "-n", namespace)["items"]
        if e["involvedObject"]["kind"] == "Rollout" and e["reason"] == "Scaled"
    )


def test_the_scale_subresource_counts_only_the_pods_that_get_traffic(
    cluster: Cluster, namespace: str
) -> None:
    """Issue 9 bug 6: status.replicas summed every revision, so an HPA saw twice the pods
    while green previewed. The scale subresource reads status.hpaReplicas."""
    manifest = rollout(replicas=3)
    manifest["spec"]["strategy"] = {"blueGreen": {"previewService": "web-preview"}}
    cluster.apply(manifest, namespace)
    wait_ready(cluster, namespace)
    assert scale(cluster, namespace)["status"]["replicas"] == 3
    set_image(cluster, namespace, "registry.example/web:2")

    def previewing() -> dict[str, Any] | None:
        st = status(cluster, namespace)
        return st if st.get("phase") == "Paused" and st.get("currentStepIndex") == 1 else None

    st = eventually(previewing, 120, "green whole behind the preview")
    assert st["replicas"] == 6  # every pod of the Rollout
    assert scale(cluster, namespace)["status"]["replicas"] == 3  # the pods that serve
    assert scale(cluster, namespace)["status"]["selector"] == "app=web"


def test_the_old_revision_keeps_its_pods_for_the_scale_down_delay(
    cluster: Cluster, namespace: str
) -> None:
    """Issue 9 bug 5: no delay between taking traffic away from a revision and removing its
    pods. After the stable Service switches to the new revision, the old one keeps its pods
    for canary.scaleDownDelaySeconds; the Rollout is Healthy meanwhile and says so."""
    cluster.apply(http_route(), namespace)
    manifest = routed_rollout([{"setWeight": 50}])
    manifest["spec"]["strategy"]["canary"]["scaleDownDelaySeconds"] = 20
    cluster.apply(manifest, namespace)
    old = wait_ready(cluster, namespace)["currentRevision"]
    set_image(cluster, namespace, "registry.example/web:2")

    def healthy_on_new() -> dict[str, Any] | None:
        st = status(cluster, namespace)
        done = st.get("phase") == "Healthy" and st.get("stableRevision") not in (None, old)
        return st if done else None

    st = eventually(healthy_on_new, 180, "the new revision stable")
    assert deployments(cluster, namespace)[old] == 4  # drained, not yet scaled down
    assert [d["revision"] for d in st.get("draining", [])] == [old]
    assert "scaleDownDelaySeconds" in st["message"]
    eventually(lambda: deployments(cluster, namespace).get(old) == 0, 120, "old scaled down")
    # the record goes in the first pass that sees the old pods gone (they terminate first)
    eventually(lambda: not status(cluster, namespace).get("draining"), 60, "draining cleared")


def test_a_deployment_someone_else_made_under_nonstops_name_is_not_claimed(
    cluster: Cluster, namespace: str
) -> None:
    """Issue 9 bug 11: a Deployment made by hand under the name nonstop would use was taken
    as nonstop's (the 409 was success), an Event "created ..." was posted every 2 s and the
    status said "0/3 new pods available" until the deadline."""
    manifest = rollout(replicas=3)
    cluster.apply(manifest, namespace)
    revision = wait_ready(cluster, namespace)["currentRevision"]
    cluster.kubectl("delete", "rollout", "web", "-n", namespace, "--wait=true")
    eventually(lambda: not deployments(cluster, namespace), 60, "the Deployment collected")
    squatter = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"web-{revision}", "labels": {"app": "squatter"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "squatter"}},
            "template": {
                "metadata": {"labels": {"app": "squatter"}},
                "spec": {"containers": [{"name": "c", "image": "registry.example/other:1"}]},
            },
        },
    }
    cluster.apply(squatter, namespace)
    scaled_before = scaled_events(cluster, namespace)
    cluster.apply(manifest, namespace)

    def stalled() -> dict[str, Any] | None:
        cond = condition(status(cluster, namespace), "Stalled")
        return cond if cond.get("status") == "True" else None

    cond = eventually(stalled, 60, "Stalled")
    assert cond["reason"] == "DeploymentConflict"
    assert f"web-{revision}" in cond["message"]
    found = cluster.get("deployment", f"web-{revision}", "-n", namespace)
    assert found["spec"]["replicas"] == 1 and "ownerReferences" not in found["metadata"]
    assert scaled_events(cluster, namespace) == scaled_before  # nothing claimed, nothing said
    assert events(cluster, namespace).count("DeploymentConflict") == 1


def test_a_missing_analysis_template_is_found_before_a_pod_moves(
    cluster: Cluster, namespace: str
) -> None:
    """Issue 9 bug 11: a bad AnalysisTemplate was noticed only mid-rollout, after step 0
    had moved pods. It is checked when the Rollout names it."""
    manifest = rollout(replicas=2)
    steps = [{"setWeight": 50}, {"analysis": {"templates": [{"name": "errors"}]}}]
    manifest["spec"]["strategy"] = {"canary": {"steps": steps}}
    cluster.apply(manifest, namespace)

    def stalled() -> dict[str, Any] | None:
        cond = condition(status(cluster, namespace), "Stalled")
        return cond if cond.get("status") == "True" else None

    cond = eventually(stalled, 60, "Stalled")
    assert cond["reason"] == "AnalysisTemplateNotFound"
    assert "Nothing was changed" in cond["message"]
    assert deployments(cluster, namespace) == {}
