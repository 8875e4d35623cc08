"""Metric analysis end to end: a real Prometheus (Debian's package) scrapes an exporter
whose error rate and latency per revision the test sets; nonstop queries Prometheus's HTTP
API from its analysis runs, and promotes, aborts or waits on what it finds."""

from __future__ import annotations

import copy
import time
from datetime import datetime
from typing import Any

from kubernetes import client

from e2e.conftest import Cluster, record_figure
from e2e.kube import VersionWatcher, eventually
from e2e.manifests import rollout
from e2e.prometheus import Exporter, PrometheusServer
from e2e.test_plugin import plugin
from e2e.test_rolling import deployments, events, status, wait_ready
from nonstop.plan.resources import revision_hash

INTERVAL = 2
ERROR_RATE = (
    'sum(rate(nonstop_test_requests_total{code="500",revision="{{revision}}"}[6s]))'
    ' / sum(rate(nonstop_test_requests_total{revision="{{revision}}"}[6s]))'
)


def error_rate(address: str, count: int = 3, failure_limit: int = 0) -> dict[str, Any]:
    return {
        "name": "error-rate",
        "provider": {"prometheus": {"address": address, "query": ERROR_RATE}},
        "interval": f"{INTERVAL}s",
        "count": count,
        "failureCondition": "result > 0.05",
        "failureLimit": failure_limit,
    }


def canary_rollout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    manifest = rollout(replicas=3)
    manifest["spec"]["strategy"] = {"canary": {"steps": steps}}
    return manifest


def with_image(manifest: dict[str, Any], image: str) -> tuple[dict[str, Any], str]:
    """The manifest with a new image, and the revision nonstop will call it."""
    changed = copy.deepcopy(manifest)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return changed, revision_hash(changed["spec"]["template"])


def has_data(prometheus: PrometheusServer, revision: str) -> bool:
    query = ERROR_RATE.replace("{{revision}}", revision)
    return bool(prometheus.query(query))


def start(
    cluster: Cluster,
    namespace: str,
    exporter: Exporter,
    prometheus: PrometheusServer,
    manifest: dict[str, Any],
) -> tuple[str, dict[str, Any], str]:
    """The first revision Healthy, and the metrics of the next one already scraped."""
    cluster.apply(manifest, namespace)
    first = wait_ready(cluster, namespace)["currentRevision"]
    update, new = with_image(manifest, "registry.example/web:2")
    exporter.set_error_rate(new, 0.0)
    exporter.set_error_rate(first, 0.0)
    eventually(lambda: has_data(prometheus, new), 30, "the new revision's metrics scraped")
    return first, update, new


def analysis_run(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    runs = status(cluster, namespace).get("analysisRuns", [])
    return next((r for r in runs if r["name"] == name), None)


def test_healthy_metrics_promote_the_canary(
    cluster: Cluster, namespace: str, metrics_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    check = {"analysis": {"metrics": [error_rate(prometheus.address)]}}
    manifest = canary_rollout([{"setWeight": 34}, check, {"setWeight": 67}, check])
    first, update, new = start(cluster, namespace, metrics_exporter, prometheus, manifest)
    cluster.apply(update, namespace)
    done = wait_ready(cluster, namespace, timeout=180)
    assert done["stableRevision"] == new
    assert deployments(cluster, namespace) == {first: 0, new: 3}
    runs = {r["name"]: r for r in done["analysisRuns"]}
    assert runs["step-1"]["phase"] == runs["step-3"]["phase"] == "Successful"
    measured = runs["step-3"]["metrics"][0]["measurements"]
    assert len(measured) == 3 and all(m["value"] == 0 for m in measured)
    assert events(cluster, namespace).count("AnalysisSuccessful") == 2


def test_an_error_rate_that_rises_at_step_3_aborts_within_one_interval(
    cluster: Cluster, namespace: str, metrics_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    check = {"analysis": {"metrics": [error_rate(prometheus.address, count=20)]}}
    manifest = canary_rollout([{"setWeight": 34}, {"setWeight": 67}, check, {"setWeight": 100}])
    first, update, new = start(cluster, namespace, metrics_exporter, prometheus, manifest)
    cluster.apply(update, namespace)
    eventually(lambda: analysis_run(cluster, namespace, "step-2"), 120, "analysis at step 3")
    metrics_exporter.set_error_rate(new, 0.3)
    st = eventually(
        lambda: (s := status(cluster, namespace)).get("abort") and s, 60, "aborted", every=0.5
    )
    assert st["abort"]["reason"] == "AnalysisFailed"
    run = analysis_run(cluster, namespace, "step-2")
    assert run is not None and run["phase"] == "Failed"
    failing = next(m for m in run["metrics"][0]["measurements"] if m["phase"] == "Failed")
    assert failing["value"] > 0.05
    assert f"{failing['value']:.6g}" in st["abort"]["message"]
    measured_at = datetime.fromisoformat(failing["at"].replace("Z", "+00:00"))
    aborted_at = datetime.fromisoformat(st["abort"]["at"].replace("Z", "+00:00"))
    late = (aborted_at - measured_at).total_seconds()
    assert late <= INTERVAL, f"aborted {late}s after the failing measurement"
    assert any("AnalysisFailed" in e for e in events(cluster, namespace))
    eventually(lambda: deployments(cluster, namespace) == {first: 3, new: 0}, 60, "rolled back")
    record_figure(f"analysis: aborted {late:.0f}s (whole seconds) after the failing measurement")

    # the plugin's page shows the run, its verdict and its latest measurement
    page = plugin(cluster, "get", "web", "-n", namespace, env={"COLUMNS": "200"})
    assert page.returncode == 0, page.stderr
    latest = run["metrics"][0]["measurements"][-1]
    assert "analysis step-2  Failed" in page.stdout, page.stdout
    assert f"latest {float(latest['value']):g} ({latest['phase']}" in page.stdout, page.stdout


def test_prometheus_stopped_mid_analysis_counts_errors_and_never_promotes(
    cluster: Cluster, namespace: str, metrics_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    check = {"analysis": {"metrics": [error_rate(prometheus.address, count=30)]}}
    manifest = canary_rollout([{"setWeight": 34}, check])
    first, update, new = start(cluster, namespace, metrics_exporter, prometheus, manifest)
    cluster.apply(update, namespace)
    eventually(
        lambda: (
            (r := analysis_run(cluster, namespace, "step-1")) and r["metrics"][0]["successful"] >= 1
        ),
        60,
        "a successful measurement",
    )
    prometheus.stop()
    st = eventually(lambda: (s := status(cluster, namespace)).get("abort") and s, 60, "aborted")
    run = analysis_run(cluster, namespace, "step-1")
    assert run is not None and run["phase"] == "Error"
    assert run["metrics"][0]["errors"] == 5  # consecutiveErrorLimit 4 (the default) + 1
    assert "cannot reach" in st["abort"]["message"]
    assert st["stableRevision"] == first != new
    eventually(lambda: deployments(cluster, namespace)[new] == 0, 60, "canary scaled down")


def test_blue_green_pre_promotion_analysis_that_fails_never_switches(
    cluster: Cluster, namespace: str, metrics_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    manifest = rollout(replicas=3)
    manifest["spec"]["strategy"] = {
        "blueGreen": {
            "previewService": "web-preview",
            "autoPromotion": {"afterSeconds": 0},
            "prePromotionAnalysis": {"metrics": [error_rate(prometheus.address)]},
        }
    }
    first, update, new = start(cluster, namespace, metrics_exporter, prometheus, manifest)
    metrics_exporter.set_error_rate(new, 0.5)
    time.sleep(3)
    api = client.CoreV1Api(cluster.api())
    services = VersionWatcher(api.list_namespaced_service, (namespace,), "web").start()
    cluster.apply(update, namespace)
    st = eventually(lambda: (s := status(cluster, namespace)).get("abort") and s, 90, "aborted")
    assert st["abort"]["reason"] == "AnalysisFailed"
    assert "result > 0.05" in st["abort"]["message"]
    selected = {v["spec"]["selector"]["nonstop.dev/revision"] for _, v in services.stop()}
    assert selected == {first}, "the active Service was switched"
    eventually(lambda: deployments(cluster, namespace)[new] == 0, 60, "green scaled down")


def latency_metric(address: str) -> dict[str, Any]:
    return {
        "name": "latency",
        "provider": {
            "prometheus": {
                "address": address,
                "query": 'nonstop_test_latency_seconds{revision="{{revision}}"}',
            }
        },
        "interval": "2s",  # Prometheus scrapes every second: fresh samples each time
        "count": 6,
        # 0.999: with the same distribution, a false alarm in about 1 run in 1,000
        "compare": {"confidence": 0.999, "minSamples": 12},
    }


def test_the_built_in_comparison_fails_a_slower_canary_and_passes_an_equal_one(
    cluster: Cluster, namespace: str, metrics_exporter: Exporter, prometheus: PrometheusServer
) -> None:
    check = {"analysis": {"metrics": [latency_metric(prometheus.address)]}}
    manifest = canary_rollout([{"setWeight": 34}, check])
    first, update, new = start(cluster, namespace, metrics_exporter, prometheus, manifest)
    metrics_exporter.set_latency(first, 0.100, 0.010)
    metrics_exporter.set_latency(new, 0.400, 0.010)  # clearly worse
    time.sleep(2)
    cluster.apply(update, namespace)
    st = eventually(lambda: (s := status(cluster, namespace)).get("abort") and s, 90, "aborted")
    assert st["abort"]["reason"] == "AnalysisFailed"
    assert "worse" in st["abort"]["message"].lower()
    eventually(lambda: deployments(cluster, namespace)[new] == 0, 60, "rolled back")

    # the same latency: passes
    same, third = with_image(manifest, "registry.example/web:3")
    metrics_exporter.set_error_rate(third, 0.0)
    metrics_exporter.set_latency(third, 0.100, 0.010)
    time.sleep(2)
    cluster.apply(same, namespace)
    done = wait_ready(cluster, namespace, timeout=120)
    assert done["stableRevision"] == third
    run = analysis_run(cluster, namespace, "step-1")
    assert run is not None and run["phase"] == "Successful"
