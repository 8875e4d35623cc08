"""The operator's Prometheus endpoint (`nonstop run --metrics-port`), scraped during a canary:
the Rollout at its pause with its step and weights, the passes, the API requests, the watch
events; then what the promotion and an abort count (docs/metrics.md)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from e2e.conftest import Cluster
from e2e.kube import Operator, eventually
from e2e.manifests import rollout
from e2e.test_canary import at_step
from e2e.test_rolling import set_image, status, wait_ready

STEPS = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 75}]

Samples = list[tuple[str, dict[str, str], float]]


def scrape(operator: Operator) -> Samples:
    with urllib.request.urlopen(operator.metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v for n, got, v in samples if n == name and all(got.get(k) == w for k, w in labels.items())
    )


def test_a_canary_at_its_pause_is_seen_in_the_metrics(
    cluster: Cluster, operator: Operator, namespace: str
) -> None:
    manifest = rollout(replicas=2)
    manifest["spec"]["strategy"] = {"canary": {"steps": STEPS}}
    cluster.apply(manifest, namespace)
    wait_ready(cluster, namespace)
    set_image(cluster, namespace, "registry.example/web:2")
    at_step(cluster, namespace, 1)
    eventually(lambda: status(cluster, namespace).get("phase") == "Paused", 60, "Paused")

    def paused() -> Samples | None:
        samples = scrape(operator)
        who = {"namespace": namespace, "rollout": "web"}
        seen = total(samples, "nonstop_rollout_info", **who, strategy="canary", phase="Paused")
        return samples if seen == 1 else None

    samples = eventually(paused, 30, "the Rollout Paused in the metrics")
    who = {"namespace": namespace, "rollout": "web"}
    assert total(samples, "nonstop_rollout_step", **who) == 1
    assert total(samples, "nonstop_rollout_steps", **who) == 3
    assert total(samples, "nonstop_rollout_weight_ratio", **who, role="canary") == 0.5
    assert total(samples, "nonstop_rollout_weight_ratio", **who, role="stable") == 0.5
    assert total(samples, "nonstop_rollouts", namespace=namespace, phase="Paused") == 1
    assert total(samples, "nonstop_reconcile_duration_seconds_count") > 0
    assert total(samples, "nonstop_api_requests_total", verb="PATCH") > 0
    assert total(samples, "nonstop_api_requests_total", verb="GET", code="200") > 0
    assert total(samples, "nonstop_watch_events_total", resource="rollouts") > 0
    assert total(samples, "nonstop_step_duration_seconds_count", namespace=namespace) >= 1
    assert [v for n, _, v in samples if n == "nonstop_workqueue_depth"]  # served, unlabelled

    # the promotion: a rollout duration for this namespace's canary
    cluster.kubectl("nonstop", "promote", "web", "-n", namespace)
    wait_ready(cluster, namespace)

    def promoted() -> bool:
        samples = scrape(operator)
        seconds = "nonstop_rollout_duration_seconds_count"
        return total(samples, seconds, namespace=namespace, strategy="canary") == 1

    eventually(promoted, 30, "a rollout duration observed")

    # an abort at the pause of the next revision, counted by its reason
    set_image(cluster, namespace, "registry.example/web:3")
    at_step(cluster, namespace, 1)
    cluster.kubectl("nonstop", "abort", "web", "-n", namespace)

    def aborted() -> bool:
        samples = scrape(operator)
        return (
            total(samples, "nonstop_aborts_total", namespace=namespace, reason="AbortedByUser") == 1
        )

    eventually(aborted, 60, "the abort counted")
