"""`kubectl nonstop lint`: offline, the API server's checks (schema and CEL, in its own
words and field paths, compared with answers recorded from a real API server) and the
operator's (what would stall a stored Rollout), one line per problem, exit 0/1/2."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from nonstop.cli.admission import admit, cel_rules, program, schemas
from nonstop.cli.lint import admission_lines, command, lint_paths
from nonstop.simulate.world import rollout_raw

ROOT = Path(__file__).resolve().parents[2]
RECORDED = json.loads((ROOT / "tests" / "fixtures" / "admission" / "apiserver.json").read_text())
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def manifest(**spec: Any) -> dict[str, Any]:
    raw = rollout_raw(replicas=4)
    raw["apiVersion"], raw["kind"] = "nonstop.dev/v1alpha1", "Rollout"
    raw["metadata"] = {"name": "web"}
    raw["spec"].update(spec)
    return raw


def template(name: str, **metric: Any) -> dict[str, Any]:
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "metrics": [
                {
                    "name": "errors",
                    "provider": {"prometheus": {"address": "http://prom:9090", "query": "q"}},
                    **metric,
                }
            ]
        },
    }


def write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


# --- the API server's checks ---------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(RECORDED["cases"]))
def test_lint_says_what_a_real_api_server_said(case: str) -> None:
    """tests/fixtures/admission/apiserver.json: each manifest sent to kube-apiserver (server
    dry run, e2e/test_lint_matches.py records it) and its answer, line by line."""
    recorded = RECORDED["cases"][case]
    assert sorted(admission_lines(copy.deepcopy(recorded["manifest"]))) == sorted(recorded["lines"])


def test_the_record_refuses_and_admits() -> None:
    """The record holds both answers, so that a lint that said nothing, or always
    something, fails above."""
    answers = [bool(c["lines"]) for c in RECORDED["cases"].values()]
    assert answers.count(True) > 60 and answers.count(False) >= 10


def every_rule() -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []

    def walk(node: Any, kind: str) -> None:
        if isinstance(node, dict):
            found.extend((kind, rule) for rule in cel_rules(node))
            for value in node.values():
                walk(value, kind)
        elif isinstance(node, list):
            for value in node:
                walk(value, kind)

    for kind, (root, _) in schemas().items():
        walk(root, kind)
    return found


def test_every_cel_rule_of_the_crds_is_evaluated_and_seen_refusing() -> None:
    """Each CEL rule compiles in lint's CEL, and the record has a manifest the API server
    refused with the rule's message, which lint then gives too (the test above)."""
    rules = every_rule()
    assert len({r["message"] for _, r in rules}) >= 25
    said = [line for case in RECORDED["cases"].values() for line in case["lines"]]
    for _, rule in rules:
        program(rule["rule"])
        assert any(rule["message"] in line for line in said), rule["message"]


def test_the_crds_are_nonstops_own() -> None:
    """The rules checked are those of the committed CRDs (crds/), which tests/unit/test_api.py
    keeps equal to the models."""
    for kind, plural in (("Rollout", "rollouts"), ("AnalysisTemplate", "analysistemplates")):
        crd = yaml.safe_load((ROOT / "crds" / f"{plural}.nonstop.dev.yaml").read_text())
        root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert schemas()[kind][0] == root


def test_blocking_errors_leave_the_cel_rules_unchecked_as_the_api_server_does() -> None:
    raw = manifest(strategy={"canary": {"steps": [{"setWeight": 5, "pause": {}}]}})
    assert [e.source for e in admit(raw)] == ["cel"]  # the step rule
    raw["spec"]["service"]["type"] = "External"  # an enum: blocking
    lines = admission_lines(raw)
    assert lines[0].startswith('spec.service.type: Unsupported value: "External"')
    assert lines[1].startswith("<nil>: Invalid value: null: some validation rules were not")
    assert len(lines) == 2


# --- the operator's checks -----------------------------------------------------------------

ANALYSIS_STEPS = [
    {"setWeight": 20},
    {"analysis": {"templates": [{"name": "error-rate"}]}},
]


def test_a_template_named_but_not_given_is_reported_at_its_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "web.yaml", manifest(strategy={"canary": {"steps": ANALYSIS_STEPS}}))
    report = lint_paths([path])
    [problem] = report.problems
    assert problem.source == "operator" and problem.reason == "AnalysisTemplateNotFound"
    assert problem.path == "spec.strategy.canary.steps[1].analysis.templates[0]"
    assert "AnalysisTemplate error-rate is not in the files linted" in problem.message
    assert problem.line.startswith(f"{path}: Rollout/web: spec.strategy.canary.steps[1]")
    assert lint_paths([path], external_templates=True).problems == []
    given = write(tmp_path, "t.yaml", template("error-rate", successCondition="result < 0.01"))
    assert lint_paths([path, given]).problems == []


def test_a_template_whose_condition_does_not_parse(tmp_path: Path) -> None:
    bad = template("error-rate", successCondition="result <")
    path = write(
        tmp_path, "all.yaml", manifest(strategy={"canary": {"steps": ANALYSIS_STEPS}}), bad
    )
    problems = lint_paths([path]).problems
    # once on the template itself, once where the Rollout names it (the operator stalls)
    assert [(p.kind, p.path, p.reason) for p in problems] == [
        ("Rollout", "spec.strategy.canary.steps[1].analysis.templates", "InvalidSpec"),
        ("AnalysisTemplate", "spec.metrics[0]", "InvalidSpec"),
    ]
    assert all("metric errors" in p.message for p in problems)


def test_a_rollouts_own_condition_that_does_not_parse_is_at_its_field(tmp_path: Path) -> None:
    metric = {
        "name": "errors",
        "provider": {"web": {"url": "http://x/", "jsonPath": "$.v"}},
        "failureCondition": "result >> 2",
    }
    steps = [{"setWeight": 20}, {"analysis": {"metrics": [metric]}}]
    path = write(tmp_path, "web.yaml", manifest(strategy={"canary": {"steps": steps}}))
    [problem] = lint_paths([path]).problems
    assert problem.path == "spec.strategy.canary.steps[1].analysis.metrics[0].failureCondition"
    assert problem.reason == "InvalidSpec" and "result >> 2" in problem.message


def test_strategy_problems_only_the_operator_sees(tmp_path: Path) -> None:
    header = {"setHeaderRoute": {"name": "testers", "match": [{"name": "x-t", "exact": "1"}]}}
    no_router = manifest(strategy={"canary": {"steps": [{"setWeight": 5}, header]}})
    routed_bg = manifest(
        strategy={"blueGreen": {"previewService": "web-preview"}},
        trafficRouting={"gatewayAPI": {"httpRoute": "web"}},
    )
    routed_bg["metadata"]["name"] = "bg"
    path = write(tmp_path, "two.yaml", no_router, routed_bg)
    problems = lint_paths([path]).problems
    assert [(p.name, p.path, p.message) for p in problems] == [
        (
            "web",
            "spec.strategy.canary.steps[1].setHeaderRoute",
            "setHeaderRoute steps need spec.trafficRouting",
        ),
        (
            "bg",
            "spec.trafficRouting",
            "blueGreen switches Services, not route weights: remove spec.trafficRouting"
            " (or use canary)",
        ),
    ]


def test_an_object_the_api_server_refuses_is_not_judged_again(tmp_path: Path) -> None:
    raw = manifest(replicas=-1)
    problems = lint_paths([write(tmp_path, "web.yaml", raw)]).problems
    assert {p.source for p in problems} == {"admission"}
    assert [p.path for p in problems] == ["spec.replicas", ".spec.replicas"]


# --- files, documents, output, exit codes --------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_clean(path: Path) -> None:
    result = CliRunner().invoke(command, [str(path)])
    assert result.exit_code == 0, result.output
    assert "no problems" in result.output


def test_lines_exit_codes_stdin_and_other_kinds() -> None:
    good = manifest()
    bad = manifest(strategy={"rolling": {"maxSurge": "150%"}})
    bad["metadata"]["name"] = "bad"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {}}
    text = yaml.safe_dump_all([good, service, bad])
    result = CliRunner().invoke(command, ["-"], input=text)
    assert result.exit_code == 1
    assert result.output == (
        '-: Rollout/bad: spec.strategy.rolling.maxSurge: Invalid value: "150%": must be a'
        " non-negative integer or a percentage from 0% to 100%\n"
    )
    clean = CliRunner().invoke(command, ["-"], input=yaml.safe_dump_all([good, service]))
    assert (clean.exit_code, clean.output) == (0, "1 object checked, no problems\n")


def test_json_output(tmp_path: Path) -> None:
    raw = manifest(replica=3)
    result = CliRunner().invoke(command, ["-o", "json", write(tmp_path, "r.yaml", raw)])
    assert result.exit_code == 1
    out = json.loads(result.output)
    [problem] = out["problems"]
    assert problem["path"] == "spec.replica"
    assert problem["message"] == 'unknown field "spec.replica"'
    assert problem["source"] == "admission" and problem["document"] == 1
    assert out["checked"] == [{"file": str(tmp_path / "r.yaml"), "kind": "Rollout", "name": "web"}]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(command, [str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output
    assert CliRunner().invoke(command, []).exit_code == 2


def test_yaml_that_does_not_parse_and_a_version_nonstop_does_not_serve(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Rollout\n  spec: [\n")
    future = manifest()
    future["apiVersion"] = "nonstop.dev/v1beta1"
    problems = lint_paths([str(broken), write(tmp_path, "f.yaml", future)]).problems
    assert problems[0].line.startswith(f"{broken}: /(file): not YAML:")
    assert "nonstop.dev/v1beta1 Rollout is not served" in problems[1].message


def test_a_list_is_opened_up(tmp_path: Path) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [manifest(), manifest(replicas=-3)]}
    problems = lint_paths([write(tmp_path, "list.yaml", listed)]).problems
    assert {p.document for p in problems} == {2}
