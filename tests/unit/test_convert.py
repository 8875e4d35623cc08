"""`kubectl nonstop convert`: Argo Rollouts manifests (tests/fixtures/argo/, written after
Argo Rollouts' own examples and docs) into nonstop objects that the API server and the
operator accept (lint), that plan as the Argo Rollout would run, with a report line for
every field that has no equivalent."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from nonstop.cli.convert import command, convert_documents
from nonstop.cli.lint import Document, lint_documents, read_files
from nonstop.simulate.plan import NEW, Inputs, plan_rollout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argo"
CONVERTIBLE = sorted(p for p in FIXTURES.glob("*.yaml") if p.name != "not-convertible.yaml")


def convert(*names: str) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
    docs, _ = read_files([str(FIXTURES / n) for n in names])
    result = convert_documents(docs)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in result.objects}
    return objects, [n.line.removeprefix(f"{FIXTURES}/") for n in result.notes]


def argo(name: str, kind: str = "Rollout") -> dict[str, Any]:
    for doc in yaml.safe_load_all((FIXTURES / name).read_text()):
        if doc and doc["kind"] == kind and doc["apiVersion"] == "argoproj.io/v1alpha1":
            return dict(doc)
    raise AssertionError(f"no {kind} in {name}")


@pytest.mark.parametrize("path", CONVERTIBLE, ids=[p.name for p in CONVERTIBLE])
def test_every_converted_object_passes_the_lint(path: Path) -> None:
    result = CliRunner().invoke(command, [str(path)])
    assert result.exit_code == 0, result.output
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert objects and all(o["apiVersion"] == "nonstop.dev/v1alpha1" for o in objects)
    docs = [Document("converted", i + 1, o) for i, o in enumerate(objects)]
    # templates a Rollout names are converted beside it (external: a template of another file)
    report = lint_documents(docs, external_templates=True)
    assert report.problems == []
    assert len(report.checked) == len(objects)
    assert "lint:" not in result.stderr  # the converter's own check found nothing either


def test_canary_steps_durations_and_analysis_with_args() -> None:
    objects, notes = convert("canary-analysis.yaml")
    source = argo("canary-analysis.yaml")
    rollout = objects[("Rollout", "shop")]
    spec, canary = rollout["spec"], rollout["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    assert [next(iter(s)) for s in steps] == [
        next(iter(s)) for s in source["spec"]["strategy"]["canary"]["steps"]
    ]
    assert steps[1] == {"pause": {"duration": "30s"}}  # seconds as a number
    assert steps[3] == {"pause": {"duration": "1m"}} and steps[6] == {"pause": {}}
    # the template takes an argument: its metric is inlined with the value put in
    [metric] = steps[4]["analysis"]["metrics"]
    assert "shop.shop.svc.cluster.local" in metric["provider"]["prometheus"]["query"]
    assert "{{" not in metric["provider"]["prometheus"]["query"]
    assert metric["successCondition"] == "result >= 0.95"  # result[0]: Argo's vector
    assert (metric["interval"], metric["count"], metric["failureLimit"]) == ("20s", 3, 1)
    assert canary["analysis"]["metrics"] == [metric]  # the background analysis too
    # the Service nonstop creates is the Argo stable Service, with its ports
    assert spec["service"] == {
        "name": "shop",
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
    }
    assert ("AnalysisTemplate", "success-rate") not in objects  # it needs an argument
    path = "canary-analysis.yaml: Rollout/shop: "
    assert f"{path}spec.strategy.canary.analysis.startingStep: no equivalent in nonstop" in notes
    assert any(n.startswith(f"{path}spec.strategy.canary.maxSurge:") for n in notes)
    assert any(
        n.startswith(f"{path}spec.strategy.canary.stableService: nonstop creates and owns")
        for n in notes
    )
    assert any(
        n.startswith(f"{path}metadata.annotations.rollout.argoproj.io/revision") for n in notes
    )


def test_blue_green_gate_preview_and_a_web_smoke_test_with_a_secret() -> None:
    objects, notes = convert("blue-green.yaml")
    blue_green = objects[("Rollout", "checkout")]["spec"]["strategy"]["blueGreen"]
    assert blue_green["previewService"] == "checkout-preview"
    assert "autoPromotion" not in blue_green  # autoPromotionEnabled: false, a person promotes
    assert blue_green["scaleDownDelaySeconds"] == 120
    assert blue_green["prePromotionAnalysis"] == {"templates": [{"name": "smoke-test"}]}
    service = objects[("Rollout", "checkout")]["spec"]["service"]
    assert service["name"] == "checkout-active" and service["ports"][0]["targetPort"] == 9000
    [metric] = objects[("AnalysisTemplate", "smoke-test")]["spec"]["metrics"]
    web = metric["provider"]["web"]
    assert web["jsonPath"] == "$.ok" and web["timeoutSeconds"] == 20
    assert web["headers"] == [
        {
            "name": "Authorization",
            "valueFrom": {"secretKeyRef": {"name": "smoke-credentials", "key": "token"}},
        }
    ]
    path = "blue-green.yaml: Rollout/checkout: spec.strategy.blueGreen."
    assert f"{path}previewReplicaCount: no equivalent in nonstop" in notes
    assert f"{path}antiAffinity: no equivalent in nonstop" in notes


def test_auto_promotion_is_argos_default() -> None:
    source = argo("blue-green.yaml")
    source["spec"]["strategy"]["blueGreen"].pop("autoPromotionEnabled")
    source["spec"]["strategy"]["blueGreen"]["autoPromotionSeconds"] = 90
    source["spec"]["strategy"]["blueGreen"].pop("prePromotionAnalysis")
    result = convert_documents([Document("-", 1, source)])
    [rollout] = result.objects
    assert rollout["spec"]["strategy"]["blueGreen"]["autoPromotion"] == {"afterSeconds": 90}


def test_gateway_api_plugin_header_routes_and_what_has_no_equivalent() -> None:
    objects, notes = convert("canary-gatewayapi.yaml")
    spec = objects[("Rollout", "api")]["spec"]
    assert spec["trafficRouting"] == {"gatewayAPI": {"httpRoute": "api-route", "namespace": "edge"}}
    assert spec["service"]["name"] == "api-stable"
    canary = spec["strategy"]["canary"]
    assert canary["canaryService"] == "api-canary" and canary["scaleDownDelaySeconds"] == 45
    assert canary["steps"][0] == {
        "setHeaderRoute": {"name": "testers", "match": [{"name": "X-Canary", "exact": "yes"}]}
    }
    assert {"setCanaryScale": {"percent": 50}} in canary["steps"]  # Argo's weight
    path = "canary-gatewayapi.yaml: Rollout/api: spec.strategy.canary."
    assert any(n.startswith(f"{path}steps[3]: setMirrorRoute: no equivalent") for n in notes)
    assert any(n.startswith(f"{path}steps[6]: experiment: no equivalent") for n in notes)
    assert any(n.startswith(f"{path}steps[7].setHeaderRoute: without match") for n in notes)
    assert any(n.startswith(f"{path}trafficRouting.managedRoutes: not needed") for n in notes)
    assert any(
        n.startswith(f"{path}canaryService: HTTPRoute api-route rule 0 lists api-canary")
        for n in notes
    )
    assert len(canary["steps"]) == 9 - 3


def test_another_router_becomes_a_canary_by_pods_without_header_routes() -> None:
    source = argo("canary-gatewayapi.yaml")
    routing = source["spec"]["strategy"]["canary"]["trafficRouting"]
    routing.pop("plugins")
    routing["nginx"] = {"stableIngress": "api"}
    result = convert_documents([Document("-", 1, source)])
    [rollout] = result.objects
    assert "trafficRouting" not in rollout["spec"]
    assert all("setHeaderRoute" not in s for s in rollout["spec"]["strategy"]["canary"]["steps"])
    lines = [n.line for n in result.notes]
    assert any("trafficRouting.nginx: nonstop routes with the Gateway API only" in n for n in lines)
    assert lint_documents([Document("-", 1, rollout)]).problems == []


def test_templates_prometheus_web_job_dry_run_and_cluster_scope() -> None:
    objects, notes = convert("analysis-templates.yaml")
    [error_rate] = objects[("AnalysisTemplate", "error-rate")]["spec"]["metrics"]
    assert error_rate["failureCondition"] == "result > 0.05 || isNaN(result)"
    prom = error_rate["provider"]["prometheus"]
    assert prom["timeoutSeconds"] == 15
    assert prom["headers"] == [{"name": "X-Scope-OrgID", "value": "team-a"}]
    assert (error_rate["failureLimit"], error_rate["consecutiveErrorLimit"]) == (2, 3)
    [ready] = objects[("AnalysisTemplate", "availability")]["spec"]["metrics"]
    assert ready["provider"]["web"]["url"].endswith("namespace={{namespace}}")  # a fieldRef
    assert ready["successCondition"] == "result >= 1"
    path = "analysis-templates.yaml: AnalysisTemplate/error-rate: spec.metrics"
    assert any(n.startswith(f"{path}[1]: a dryRun metric") for n in notes)
    assert any(n.startswith(f"{path}[2].provider: provider job") for n in notes)
    cluster = "analysis-templates.yaml: ClusterAnalysisTemplate/availability: "
    assert any(n.startswith(f"{cluster}spec.metrics[0].successCondition: condition") for n in notes)
    assert any(n.startswith(f"{cluster}a ClusterAnalysisTemplate") for n in notes)


def test_workload_ref_takes_the_deployments_template() -> None:
    objects, notes = convert("workload-ref.yaml")
    spec = objects[("Rollout", "catalog")]["spec"]
    deployment = next(
        d
        for d in yaml.safe_load_all((FIXTURES / "workload-ref.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    assert spec["template"] == deployment["spec"]["template"]
    assert spec["selector"] == deployment["spec"]["selector"] and spec["replicas"] == 6
    assert spec["service"] == {"name": "catalog", "ports": [{"port": 8080, "targetPort": 8080}]}
    assert any(
        "spec.workloadRef: nonstop keeps the pod template in the Rollout" in n for n in notes
    )


def test_a_converted_canary_plans_as_its_argo_steps_say() -> None:
    """The converted Rollout runs: each setWeight gets ceil(replicas x weight) pods, as Argo
    sizes a canary without a router; setCanaryScale fixes the canary's size."""
    objects, _ = convert("workload-ref.yaml")
    rollout = objects[("Rollout", "catalog")]
    result = plan_rollout(Inputs(rollout), aborts=False)
    by_name = {s.name: s for s in result.steps}
    assert by_name["setWeight 25%"].pods[NEW] == math.ceil(6 * 0.25)
    assert by_name["setCanaryScale 3 pods"].pods[NEW] == 3
    assert round(result.min_seconds) == 20


def test_nothing_convertible_exits_1_and_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, [str(FIXTURES / "not-convertible.yaml")])
    assert result.exit_code == 1 and result.stdout == ""
    assert (
        "Rollout/elsewhere: spec.workloadRef: Deployment not-in-these-files is not in the files"
        in result.stderr
    )
    assert "Rollout/expressions: spec.selector: nonstop needs selector.matchLabels" in result.stderr
    plain = tmp_path / "service.yaml"
    plain.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    other = CliRunner().invoke(command, [str(plain)])
    assert other.exit_code == 1 and "no Argo Rollouts object" in other.stderr


def test_the_report_goes_to_a_file_and_stdin_is_read(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    text = (FIXTURES / "blue-green.yaml").read_text()
    result = CliRunner().invoke(command, ["--report", str(report), "-"], input=text)
    assert result.exit_code == 0 and result.stderr == ""
    lines = report.read_text().splitlines()
    assert lines and all(line.startswith("-: ") for line in lines)
    assert [d["kind"] for d in yaml.safe_load_all(result.stdout)] == ["Rollout", "AnalysisTemplate"]
