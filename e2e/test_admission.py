"""Bad input: the API server rejects what the CRD schema and CEL rules can see; the rest
becomes a Stalled condition and an Event, and nothing in the cluster changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from e2e.conftest import Cluster
from e2e.kube import REPO, Operator, eventually
from e2e.manifests import rollout


def broken(change: str) -> dict[str, Any]:
    manifest = rollout(name="bad")
    spec = manifest["spec"]
    match change:
        case "no-strategy":
            spec["strategy"] = {}
        case "two-strategies":
            spec["strategy"] = {"rolling": {}, "canary": {"steps": [{"setWeight": 5}]}}
        case "negative-replicas":
            spec["replicas"] = -2
        case "surge-over-100":
            spec["strategy"] = {"rolling": {"maxSurge": "150%"}}
        case "unavailable-not-a-number":
            spec["strategy"] = {"rolling": {"maxUnavailable": "lots"}}
        case "both-zero":
            spec["strategy"] = {"rolling": {"maxSurge": 0, "maxUnavailable": "0%"}}
        case "weight-over-100":
            spec["strategy"] = {"canary": {"steps": [{"setWeight": 120}]}}
        case "bad-duration":
            spec["strategy"] = {"canary": {"steps": [{"pause": {"duration": "5 minutes"}}]}}
        case "step-with-two-actions":
            spec["strategy"] = {"canary": {"steps": [{"setWeight": 5, "pause": {}}]}}
        case "empty-template":
            spec["template"] = {}
        case "no-containers":
            spec["template"]["spec"]["containers"] = []
        case "unknown-field":
            spec["replica"] = 3
        case "selector-mismatch":
            spec["selector"] = {"matchLabels": {"app": "other"}}
        case "zero-deadline":
            spec["progressDeadlineSeconds"] = 0
        case "shadow-mirrors-writes":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            spec["strategy"] = {
                "shadow": {
                    "duration": "5m",
                    "mirror": {"methods": ["GET", "POST"]},
                    "then": {"canary": {"steps": [{"setWeight": 50}]}},
                }
            }
        case "preview-is-active":
            spec["strategy"] = {"blueGreen": {"previewService": spec["service"]["name"]}}
        case "canary-service-is-stable":
            spec["strategy"] = {
                "canary": {"steps": [{"setWeight": 5}], "canaryService": spec["service"]["name"]}
            }
        case "shadow-without-router":
            spec["strategy"] = {
                "shadow": {"duration": "5m", "then": {"canary": {"steps": [{"setWeight": 50}]}}}
            }
    return manifest


CASES = [
    ("no-strategy", "spec.strategy", "set exactly one of rolling"),
    ("two-strategies", "spec.strategy", "set exactly one of rolling"),
    ("negative-replicas", "spec.replicas", "greater than or equal to 0"),
    ("surge-over-100", "spec.strategy.rolling.maxSurge", "percentage from 0% to 100%"),
    (
        "unavailable-not-a-number",
        "spec.strategy.rolling.maxUnavailable",
        "percentage from 0% to 100%",
    ),
    ("both-zero", "spec.strategy.rolling", "cannot both be 0"),
    ("weight-over-100", "spec.strategy.canary.steps[0].setWeight", "less than or equal to 100"),
    ("bad-duration", "spec.strategy.canary.steps[0].pause.duration", "should match"),
    ("step-with-two-actions", "spec.strategy.canary.steps[0]", "set exactly one of setWeight"),
    ("empty-template", "spec.template", "Required value"),
    ("no-containers", "spec.template.spec.containers", "should have at least 1 items"),
    ("unknown-field", "spec.replica", "unknown field"),
    ("selector-mismatch", "spec", "matchLabels must also be labels"),
    ("zero-deadline", "spec.progressDeadlineSeconds", "greater than or equal to 1"),
    ("shadow-without-router", "spec", "needs spec.trafficRouting"),
    ("preview-is-active", "spec", "previewService must differ from spec.service.name"),
    ("canary-service-is-stable", "spec", "canaryService must differ from spec.service.name"),
    ("shadow-mirrors-writes", "spec.strategy.shadow", "needs mirror.allowUnsafeMethods: true"),
]


@pytest.mark.parametrize(("change", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_invalid_manifest_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, change: str, field: str, words: str
) -> None:
    result = cluster.apply(broken(change), namespace, check=False)
    assert result.returncode != 0, f"{change} was accepted"
    assert field in result.stderr, result.stderr
    assert words in result.stderr, result.stderr
    assert cluster.get("rollouts", "-n", namespace)["items"] == []


def test_semantically_invalid_rollouts_stall_and_change_nothing(
    cluster: Cluster, operator: Operator, namespace: str
) -> None:
    pid = operator.proc.pid if operator.proc else None
    # somebody else's Service already has the name
    cluster.kubectl("create", "service", "clusterip", "taken", "--tcp=80:9090", "-n", namespace)
    theirs = cluster.get("service", "taken", "-n", namespace)
    cluster.apply(rollout(name="conflict", service="taken"), namespace)
    # a condition that does not parse (admission cannot parse it)
    later_manifest = rollout(name="later")
    metric = {
        "name": "errors",
        "provider": {"web": {"url": "http://127.0.0.1:9/x", "jsonPath": "$.v"}},
        "failureCondition": "result >> 2",
    }
    later_manifest["spec"]["strategy"] = {
        "canary": {"steps": [{"analysis": {"metrics": [metric]}}]}
    }
    cluster.apply(later_manifest, namespace)
    # a feature toggle whose ConfigMap does not exist
    toggle = rollout(name="toggle")
    toggle["spec"]["strategy"] = {
        "featureToggle": {
            "flag": {"configMap": "flags", "key": "new-ui", "variant": "on"},
            "steps": [{"setWeight": 50}],
        }
    }
    cluster.apply(toggle, namespace)
    # a canary whose HTTPRoute does not exist
    routed = rollout(name="routed")
    routed["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}]}}
    routed["spec"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "missing"}}
    cluster.apply(routed, namespace)

    def stalled(name: str) -> dict[str, Any] | None:
        st = cluster.get("rollout", name, "-n", namespace).get("status", {})
        cond = next((c for c in st.get("conditions", []) if c["type"] == "Stalled"), {})
        return st if cond.get("status") == "True" else None

    conflict = eventually(lambda: stalled("conflict"), 60, "conflict Stalled")
    later = eventually(lambda: stalled("later"), 60, "later Stalled")
    assert "Service taken already exists" in conflict["message"]
    assert "failureCondition" in later["message"] and "result >> 2" in later["message"]
    no_flags = eventually(lambda: stalled("toggle"), 60, "toggle Stalled")
    assert (
        f"ConfigMap {namespace}/flags named in spec.strategy.featureToggle" in no_flags["message"]
    )
    missing = eventually(lambda: stalled("routed"), 60, "routed Stalled")
    assert "HTTPRoute " + namespace + "/missing named in spec.trafficRouting" in missing["message"]
    assert conflict["phase"] == later["phase"] == "Degraded"

    # nothing was changed: no Deployments, the other Service as it was
    assert cluster.get("deployments", "-n", namespace)["items"] == []
    now = cluster.get("service", "taken", "-n", namespace)
    assert now["spec"] == theirs["spec"]
    assert now["metadata"].get("ownerReferences") is None
    reasons = {e["reason"] for e in cluster.get("events", "-n", namespace)["items"]}
    assert {
        "ServiceConflict",
        "InvalidSpec",
        "HTTPRouteNotFound",
        "FlagDocumentNotFound",
    } <= reasons

    # the operator is still the same process, and still working
    assert operator.alive() and operator.proc is not None and operator.proc.pid == pid
    fixed = copy.deepcopy(rollout(name="conflict", service="conflict-web"))
    cluster.apply(fixed, namespace)
    eventually(
        lambda: next(
            (
                c
                for c in cluster.get("rollout", "conflict", "-n", namespace)
                .get("status", {})
                .get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            ),
            None,
        ),
        120,
        "fixed rollout Ready",
    )


def test_selector_cannot_change_after_creation(cluster: Cluster, namespace: str) -> None:
    cluster.apply(rollout(name="fixed"), namespace)
    moved = rollout(name="fixed")
    moved["spec"]["selector"] = {"matchLabels": {"app": "fixed", "tier": "web"}}
    moved["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    result = cluster.apply(moved, namespace, check=False)
    assert result.returncode != 0
    assert "spec.selector" in result.stderr and "immutable" in result.stderr


def test_template_the_api_server_refuses_is_reported_and_ends_at_the_deadline(
    cluster: Cluster, operator: Operator, namespace: str
) -> None:
    """The pod template passes through the CRD unchecked; the API server refuses it when
    nonstop creates the Deployment. That becomes an Event and, at the deadline, an abort:
    the stable revision never stops serving and no broken Deployment exists."""
    cluster.apply(rollout(name="web", replicas=2, deadline=20), namespace)
    eventually(
        lambda: (
            cluster.get("rollout", "web", "-n", namespace).get("status", {}).get("phase")
            == "Healthy"
        ),
        120,
        "Healthy",
    )
    stable = cluster.get("rollout", "web", "-n", namespace)["status"]["stableRevision"]
    broken = rollout(name="web", replicas=2, deadline=20, image="registry.example/web:2")
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    cluster.apply(broken, namespace)

    def reasons() -> list[str]:
        items = cluster.get(
            "events", "-n", namespace, "--field-selector", "involvedObject.name=web"
        )["items"]
        return [e["reason"] for e in sorted(items, key=lambda e: e["metadata"]["name"])]

    eventually(lambda: "ApplyFailed" in reasons(), 60, "ApplyFailed event")
    failed = [
        e["message"]
        for e in cluster.get("events", "-n", namespace)["items"]
        if e["reason"] == "ApplyFailed"
    ]
    assert "imagePullPolicy" in failed[0] and "Unsupported value" in failed[0]
    st = eventually(
        lambda: (s := cluster.get("rollout", "web", "-n", namespace)["status"]).get("abort") and s,
        120,
        "aborted at the deadline",
    )
    assert st["abort"]["reason"] == "ProgressDeadlineExceeded"
    assert st["stableRevision"] == stable
    deployments = cluster.get("deployments", "-n", namespace)["items"]
    assert [d["metadata"]["labels"]["nonstop.dev/revision"] for d in deployments] == [stable]
    assert deployments[0]["status"].get("availableReplicas") == 2
    assert reasons().count("ApplyFailed") < 5  # said once per new failure, not every pass
    assert operator.alive()


def test_every_example_is_accepted_by_the_api_server(cluster: Cluster, namespace: str) -> None:
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(REPO / "examples"), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "httproute.gateway.networking.k8s.io/web created (server dry run)" in result.stdout
