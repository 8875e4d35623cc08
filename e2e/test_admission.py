"""Bad input: the API server rejects what the CRD schema and CEL rules can see (including
every name and value that nonstop writes into the objects it creates, which the API server
would refuse there); the rest becomes a Stalled condition and an Event, and nothing in the
cluster changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from e2e.conftest import Cluster
from e2e.kube import REPO, Operator, eventually
from e2e.manifests import http_route, rollout
from e2e.test_rolling import events, set_image, wait_ready


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
        case _:
            written_by_nonstop(change, spec)
    return manifest


def written_by_nonstop(change: str, spec: dict[str, Any]) -> None:
    """Values the API server would refuse in the objects nonstop creates from them."""
    match change:
        case "shadow-preview-is-active":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            spec["strategy"] = {
                "shadow": {
                    "duration": "5m",
                    "then": {"blueGreen": {"previewService": spec["service"]["name"]}},
                }
            }
        case "shadow-canary-service-is-stable":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            canary = {"steps": [{"setWeight": 50}], "canaryService": spec["service"]["name"]}
            spec["strategy"] = {"shadow": {"duration": "5m", "then": {"canary": canary}}}
        case "target-port-digits-as-a-name":
            spec["service"]["ports"][0]["targetPort"] = "8080"
        case "target-port-name-double-dash":
            spec["service"]["ports"][0]["targetPort"] = "web--api"
        case "port-name-uppercase":
            spec["service"]["ports"][0]["name"] = "Http"
        case "ports-without-names":
            spec["service"]["ports"] = [{"port": 80}, {"port": 81}]
        case "port-names-twice":
            spec["service"]["ports"] = [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]
        case "port-twice":
            spec["service"]["ports"] = [
                {"port": 80, "name": "a"},
                {"port": 80, "name": "b", "protocol": "TCP"},
            ]
        case "label-key-with-a-space":
            spec["template"]["metadata"]["labels"]["team name"] = "shop"
        case "label-value-starting-with-a-dash":
            spec["template"]["metadata"]["labels"]["team"] = "-shop"
        case "container-name-uppercase":
            spec["template"]["spec"]["containers"][0]["name"] = "App"
        case "containers-with-one-name":
            spec["template"]["spec"]["containers"].append({"name": "app", "image": "sidecar:1"})
        case "image-with-a-space":
            spec["template"]["spec"]["containers"][0]["image"] = "registry.example/web:1 "
        case "header-name-with-a-space":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            match = [{"name": "x canary", "exact": "yes"}]
            spec["strategy"] = {
                "canary": {"steps": [{"setHeaderRoute": {"name": "testers", "match": match}}]}
            }
        case "header-twice":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            match = [{"name": "X-Canary", "exact": "yes"}, {"name": "x-canary", "exact": "no"}]
            spec["strategy"] = {
                "canary": {"steps": [{"setHeaderRoute": {"name": "testers", "match": match}}]}
            }
        case "mirror-no-methods" | "mirror-method-twice":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            methods = [] if change == "mirror-no-methods" else ["GET", "GET"]
            spec["strategy"] = {
                "shadow": {
                    "duration": "5m",
                    "mirror": {"methods": methods},
                    "then": {"canary": {"steps": [{"setWeight": 50}]}},
                }
            }


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
    (
        "shadow-preview-is-active",
        "spec",
        "shadow.then.blueGreen.previewService must differ from spec.service.name",
    ),
    (
        "shadow-canary-service-is-stable",
        "spec",
        "shadow.then.canary.canaryService must differ from spec.service.name",
    ),
    ("target-port-digits-as-a-name", "spec.service.ports[0].targetPort", "IANA_SVC_NAME"),
    ("target-port-name-double-dash", "spec.service.ports[0].targetPort", "no '--'"),
    ("port-name-uppercase", "spec.service.ports[0].name", "should match"),
    ("ports-without-names", "spec.service.ports", "every port needs a name"),
    ("port-names-twice", "spec.service.ports", "port names must be unique"),
    ("port-twice", "spec.service.ports", "each port number may appear once per protocol"),
    ("label-key-with-a-space", "spec.template.metadata.labels", "keys must be qualified names"),
    ("label-value-starting-with-a-dash", "spec.template.metadata.labels.team", "should match"),
    ("container-name-uppercase", "spec.template.spec.containers[0].name", "should match"),
    ("containers-with-one-name", "spec.template.spec.containers", "names must be unique"),
    (
        "image-with-a-space",
        "spec.template.spec.containers[0].image",
        "must not have leading or trailing whitespace",
    ),
    (
        "header-name-with-a-space",
        "spec.strategy.canary.steps[0].setHeaderRoute.match[0].name",
        "should match",
    ),
    (
        "header-twice",
        "spec.strategy.canary.steps[0].setHeaderRoute.match",
        "each header may appear once",
    ),
    ("mirror-no-methods", "spec.strategy.shadow.mirror.methods", "at least 1 items"),
    ("mirror-method-twice", "spec.strategy.shadow.mirror.methods[1]", "Duplicate value"),
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


# --- limits: the largest value admitted, the smallest refused ----------------------------
# Each limit keeps what nonstop derives from the value (names, label values, the HTTPRoute's
# regular expression) valid for the API server that nonstop writes it to.

LONGEST_ROLLOUT = "web-" + "x" * 59  # 63: the value of the label nonstop.dev/rollout
LONGEST_ROUTED_SERVICE = "svc-" + "y" * 52  # 56: its canary Service, <name>-canary, is 63


def at_limit(case: str, over: bool) -> dict[str, Any]:
    """The manifest with the case's value at its limit, or one past it."""
    extra = 1 if over else 0
    manifest = rollout(name="limit")
    spec = manifest["spec"]
    port = spec["service"]["ports"][0]
    match case:
        case "rollout-name":
            manifest["metadata"]["name"] = "r" * (63 + extra)
        case "canary-service" | "shadow-canary-service":
            spec["service"]["name"] = "s" * (56 + extra)
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            canary = {"steps": [{"setWeight": 50}]}
            spec["strategy"] = (
                {"canary": canary}
                if case == "canary-service"
                else {"shadow": {"duration": "5m", "then": {"canary": canary}}}
            )
        case "target-port":
            port["targetPort"] = 65535 + extra
        case "target-port-lowest":
            port["targetPort"] = 1 - extra
        case "target-port-name":
            port["targetPort"] = "p" * (15 + extra)
        case "port":
            port["port"] = 65535 + extra
        case "port-name":
            port["name"] = "p" * (63 + extra)
        case "label-value":
            spec["template"]["metadata"]["labels"]["team"] = "t" * (63 + extra)
        case "label-key":
            spec["template"]["metadata"]["labels"]["example.com/" + "k" * (63 + extra)] = "x"
        case "header-prefix":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
            match = [{"name": "x-canary", "prefix": "p" * (2046 + extra)}]
            spec["strategy"] = {
                "canary": {"steps": [{"setHeaderRoute": {"name": "testers", "match": match}}]}
            }
    return manifest


LIMITS = [
    (
        "rollout-name",
        "metadata.name",
        "a Rollout name is at most 63 characters: nonstop writes it as the value of the"
        " label nonstop.dev/rollout",
    ),
    (
        "canary-service",
        "spec.service.name",
        "the canary Service <spec.service.name>-canary must be a DNS label of at most 63"
        " characters: shorten spec.service.name to at most 56 characters, or set"
        " spec.strategy.canary.canaryService",
    ),
    (
        "shadow-canary-service",
        "spec.service.name",
        "or set spec.strategy.shadow.then.canary.canaryService",
    ),
    ("target-port", "spec.service.ports[0].targetPort", "must be a port number from 1 to 65535"),
    ("target-port-lowest", "spec.service.ports[0].targetPort", "from 1 to 65535"),
    ("target-port-name", "spec.service.ports[0].targetPort", "may not be more than 15"),
    ("port", "spec.service.ports[0].port", "less than or equal to 65535"),
    ("port-name", "spec.service.ports[0].name", "may not be more than 63"),
    ("label-value", "spec.template.metadata.labels.team", "may not be more than 63"),
    ("label-key", "spec.template.metadata.labels", "keys must be qualified names"),
    (
        "header-prefix",
        "spec.strategy.canary.steps[0].setHeaderRoute.match[0].prefix",
        "may not be more than 2046",
    ),
]


@pytest.mark.parametrize(("case", "field", "words"), LIMITS, ids=[c[0] for c in LIMITS])
def test_the_largest_value_is_admitted_and_the_next_is_refused_saying_why(
    cluster: Cluster, namespace: str, case: str, field: str, words: str
) -> None:
    admitted = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        input=yaml.safe_dump(at_limit(case, over=False)),
        check=False,
    )  # fmt: skip
    assert admitted.returncode == 0, admitted.stderr
    result = cluster.apply(at_limit(case, over=True), namespace, check=False)
    assert result.returncode != 0, f"{case} one past the limit was accepted"
    assert field in result.stderr, result.stderr
    assert words in result.stderr, result.stderr
    assert cluster.get("rollouts", "-n", namespace)["items"] == []


def test_the_longest_names_work_end_to_end(cluster: Cluster, namespace: str) -> None:
    """A 63-character Rollout with a routed canary whose canary Service is 63 characters:
    every object nonstop derives from them is created, and a release goes through."""
    manifest = rollout(name=LONGEST_ROLLOUT, replicas=2, service=LONGEST_ROUTED_SERVICE)
    manifest["spec"]["selector"] = {"matchLabels": {"app": "longest"}}
    manifest["spec"]["template"]["metadata"]["labels"] = {"app": "longest"}
    manifest["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}]}}
    manifest["spec"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
    cluster.apply(http_route(service=LONGEST_ROUTED_SERVICE), namespace)
    cluster.apply(manifest, namespace)
    first = wait_ready(cluster, namespace, LONGEST_ROLLOUT)["currentRevision"]
    set_image(cluster, namespace, "registry.example/web:2", LONGEST_ROLLOUT)
    st = wait_ready(cluster, namespace, LONGEST_ROLLOUT)
    assert st["stableRevision"] == st["currentRevision"] != first

    canary = cluster.get("service", LONGEST_ROUTED_SERVICE + "-canary", "-n", namespace)
    assert len(canary["metadata"]["name"]) == 63
    assert canary["metadata"]["labels"]["nonstop.dev/rollout"] == LONGEST_ROLLOUT
    names = [
        d["metadata"]["name"]
        for d in cluster.get(
            "deployments", "-n", namespace, "-l", f"nonstop.dev/rollout={LONGEST_ROLLOUT}"
        )["items"]
    ]
    assert f"{LONGEST_ROLLOUT}-{st['currentRevision']}" in names  # 74 characters
    pods = cluster.get("pods", "-n", namespace, "-l", f"nonstop.dev/rollout={LONGEST_ROLLOUT}")
    assert len(pods["items"]) >= 2
    assert "ApplyFailed" not in events(cluster, namespace, LONGEST_ROLLOUT)


def test_the_plugin_creates_actions_owned_by_the_rollout(cluster: Cluster, namespace: str) -> None:
    """kubectl nonstop labels each RolloutAction with its Rollout and makes the Rollout its
    owner, so actions go when the Rollout goes (the garbage collector deletes them)."""
    cluster.apply(rollout(name=LONGEST_ROLLOUT, replicas=1, service="web"), namespace)
    uid = cluster.get("rollout", LONGEST_ROLLOUT, "-n", namespace)["metadata"]["uid"]
    cluster.kubectl("nonstop", "pause", LONGEST_ROLLOUT, "-n", namespace, "--reason", "check")
    [action] = cluster.get(
        "rolloutactions", "-n", namespace, "-l", f"nonstop.dev/rollout={LONGEST_ROLLOUT}"
    )["items"]
    assert action["spec"] == {"rollout": LONGEST_ROLLOUT, "action": "pause", "reason": "check"}
    assert action["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "nonstop.dev/v1alpha1",
            "kind": "Rollout",
            "name": LONGEST_ROLLOUT,
            "uid": uid,
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    missing = cluster.kubectl("nonstop", "abort", "nothere", "-n", namespace, check=False)
    assert missing.returncode == 1 and "Rollout nothere not found" in missing.stderr
    cluster.kubectl("delete", "rollout", LONGEST_ROLLOUT, "-n", namespace)
    eventually(
        lambda: cluster.get("rolloutactions", "-n", namespace)["items"] == [],
        60,
        "the RolloutAction garbage-collected with its Rollout",
    )


def test_a_rolloutaction_may_name_any_rollout_name(cluster: Cluster, namespace: str) -> None:
    def action(rollout_name: str) -> dict[str, Any]:
        return {
            "apiVersion": "nonstop.dev/v1alpha1",
            "kind": "RolloutAction",
            "metadata": {"name": "act"},
            "spec": {"rollout": rollout_name, "action": "pause"},
        }

    for name in ("web.v1", "a" * 63):  # Rollout names are DNS subdomains, at most 63 here
        dry = cluster.kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-",
            input=yaml.safe_dump(action(name)),
            check=False,
        )  # fmt: skip
        assert dry.returncode == 0, dry.stderr
    result = cluster.apply(action("a" * 64), namespace, check=False)
    assert result.returncode != 0 and "spec.rollout" in result.stderr, result.stderr
