"""`kubectl nonstop plan`: the steps of a Rollout's next release as the real planner carries
them out over a simulated cluster. The numbers checked here follow from the spec as the
docs state it (a weight is a share of pods rounded up, blue-green doubles the pods, a
rolling update adds at most maxSurge, a timed pause lasts its duration, a routed canary
keeps aborted pods scaleDownDelaySeconds), so a plan that drifted from the planner, or a
planner that drifted from the docs, fails here."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from nonstop.cli.planview import command
from nonstop.simulate.plan import NEW, STABLE, Inputs, PlanError, RolloutPlan, plan_rollout

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "examples" / "canary-pods.yaml").read_text())


def rollout(strategy: dict[str, Any], replicas: int = 4, **spec: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["spec"]["replicas"] = replicas
    raw["spec"]["strategy"] = strategy
    raw["spec"].update(spec)
    return raw


def plan(raw: dict[str, Any], aborts: bool = True, **inputs: Any) -> RolloutPlan:
    return plan_rollout(Inputs(raw, **inputs), aborts=aborts)


def test_a_pod_canary_moves_its_share_of_pods_per_step() -> None:
    weights = [10, 34, 50, 90]
    steps: list[dict[str, Any]] = []
    for w in weights:
        steps += [{"setWeight": w}, {"pause": {"duration": "45s"}}]
    result = plan(rollout({"canary": {"steps": steps}}, replicas=10), aborts=False)
    assert [s.index for s in result.steps] == list(range(len(steps) + 1))
    for i, w in enumerate(weights):
        set_weight, pause = result.steps[2 * i], result.steps[2 * i + 1]
        new = math.ceil(10 * w / 100)
        assert set_weight.name == f"setWeight {w}%"
        assert set_weight.pods == {STABLE: 10 - new, NEW: new}
        assert set_weight.traffic == {STABLE: 100 - 10 * new, NEW: 10 * new}  # a pod share
        assert pause.pods == set_weight.pods and round(pause.min_seconds) == 45
        assert set_weight.peak_pods <= 10 + new  # never more than replicas + the canary
        assert set_weight.needs_person is None
    done = result.steps[-1]
    assert done.pods == {STABLE: 0, NEW: 10} and done.traffic == {STABLE: 0, NEW: 100}
    assert round(result.min_seconds) == 4 * 45


def test_an_indefinite_pause_needs_a_person_and_costs_no_time() -> None:
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "2m"}}]
    result = plan(rollout({"canary": {"steps": steps}}), aborts=False)
    assert [bool(s.needs_person) for s in result.steps] == [False, True, False, False, False]
    assert "promote" in (result.steps[1].needs_person or "")
    assert result.people == 1
    assert round(result.min_seconds) == 120


def test_blue_green_doubles_the_pods_and_an_abort_switches_back() -> None:
    strategy = {"blueGreen": {"previewService": "web-preview", "scaleDownDelaySeconds": 45}}
    result = plan(rollout(strategy, replicas=3))
    preview, ready, switched = result.steps
    assert preview.pods == {STABLE: 3, NEW: 3} and preview.traffic == {STABLE: 100, NEW: 0}
    assert result.peak_pods == 6 and preview.peak_multiple == 2
    assert ready.needs_person is not None  # no autoPromotion
    assert switched.traffic == {STABLE: 0, NEW: 100}
    assert round(switched.min_seconds) == 45  # the old revision kept for an undo
    for step in (preview, ready):
        assert step.abort is not None and step.abort.answer.startswith("Applied")
        assert step.abort.traffic_to_stable_seconds == 0
        assert step.abort.pods == {STABLE: 3, NEW: 0}


def test_blue_green_with_auto_promotion_waits_and_needs_nobody() -> None:
    strategy = {
        "blueGreen": {"previewService": "web-preview", "autoPromotion": {"afterSeconds": 90}}
    }
    result = plan(rollout(strategy), aborts=False)
    assert result.people == 0
    assert round(result.steps[1].min_seconds) == 90


@pytest.mark.parametrize(("surge", "extra"), [(1, 1), ("50%", 2), (3, 3)])
def test_a_rolling_update_peaks_at_replicas_plus_surge(surge: int | str, extra: int) -> None:
    strategy = {"rolling": {"maxSurge": surge, "maxUnavailable": 0}}
    result = plan(rollout(strategy, replicas=4), aborts=False)
    [step] = result.steps
    assert step.peak_pods == 4 + extra and step.peak_multiple == (4 + extra) / 4
    assert step.pods == {STABLE: 0, NEW: 4} and result.min_seconds == 0


def test_a_routed_canary_sets_weights_and_an_abort_keeps_pods_for_the_delay() -> None:
    steps = [{"setWeight": 5}, {"pause": {"duration": "1m"}}, {"setWeight": 40}]
    raw = rollout(
        {"canary": {"steps": steps, "scaleDownDelaySeconds": 20}},
        trafficRouting={"gatewayAPI": {"httpRoute": "web"}},
    )
    result = plan(raw)
    first, pause, second, done = result.steps
    assert first.traffic == {STABLE: 95, NEW: 5}  # a weight, not a pod share
    assert first.pods == {STABLE: 4, NEW: 1}  # stable stays whole
    assert second.traffic == {STABLE: 60, NEW: 40} and second.pods == {STABLE: 4, NEW: 2}
    assert done.peak_pods == 8 and round(done.min_seconds) == 20
    assert round(pause.min_seconds) == 60
    for step in (first, pause, second):
        assert step.abort is not None
        assert step.abort.traffic == {STABLE: 100, NEW: 0}  # in the abort's first pass
        assert round(step.abort.pods_gone_seconds or 0) == 20
        assert step.abort.pods == {STABLE: 4, NEW: 0}


def test_header_routes_and_the_route_given_in_the_files() -> None:
    header = {"setHeaderRoute": {"name": "testers", "match": [{"name": "x-t", "exact": "1"}]}}
    raw = rollout(
        {"canary": {"steps": [header, {"setWeight": 10}]}},
        trafficRouting={"gatewayAPI": {"httpRoute": "shop"}},
    )
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop"},
        "spec": {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]},
    }
    result = plan(raw, aborts=False, route=route)
    assert result.steps[0].header_routes == ("testers",)
    assert result.steps[0].traffic == {STABLE: 100, NEW: 0}
    assert result.steps[1].traffic == {STABLE: 90, NEW: 10}


def test_analysis_takes_its_measurements_and_templates_come_from_the_files() -> None:
    metric = {
        "name": "success",
        "interval": "1m",
        "count": 4,
        "successCondition": "result >= 0.99",
        "failureCondition": "result < 0.9",
        "provider": {"prometheus": {"address": "http://prom:9090", "query": "q"}},
    }
    steps = [{"setWeight": 50}, {"analysis": {"templates": [{"name": "success-rate"}]}}]
    result = plan(
        rollout({"canary": {"steps": steps}}),
        aborts=False,
        templates={"success-rate": {"metrics": [metric]}},
    )
    assert result.steps[1].name == "analysis (success-rate)"
    assert round(result.steps[1].min_seconds) == 3 * 60  # 4 measurements, 1m apart


def test_a_shadow_phase_mirrors_then_the_canary_goes_on() -> None:
    strategy = {
        "shadow": {
            "duration": "3m",
            "replicas": 2,
            "mirror": {"percent": 25},
            "then": {"canary": {"steps": [{"setWeight": 50}]}},
        }
    }
    raw = rollout(strategy, trafficRouting={"gatewayAPI": {"httpRoute": "web"}})
    result = plan(raw, aborts=False)
    shadow = result.steps[0]
    assert shadow.name.startswith("shadow: mirror 25%") and shadow.mirror == 25
    assert shadow.pods == {STABLE: 4, NEW: 2} and shadow.traffic == {STABLE: 100, NEW: 0}
    assert round(shadow.min_seconds) == 180


def test_a_feature_toggle_moves_the_flag_and_an_abort_turns_it_off() -> None:
    strategy = {
        "featureToggle": {
            "flag": {"configMap": "flags", "key": "new-ui", "variant": "on"},
            "steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}],
        }
    }
    result = plan(rollout(strategy))
    dark, first, pause, done = result.steps
    assert dark.flag == 0 and dark.pods == {STABLE: 0, NEW: 4}
    assert first.flag == 20 and pause.flag == 20 and done.flag == 100
    assert round(pause.min_seconds) == 300
    assert pause.abort is not None and pause.abort.flag_off_seconds == 0


def test_a_template_that_is_not_given_cannot_be_planned() -> None:
    steps = [{"analysis": {"templates": [{"name": "missing"}]}}]
    docs = [rollout({"canary": {"steps": steps}})]
    result = CliRunner().invoke(command, ["-"], input=yaml.safe_dump_all(docs))
    assert result.exit_code == 1
    assert "AnalysisTemplate missing is not in the files linted" in result.output
    from nonstop.simulate.plan import rollout_inputs

    with pytest.raises(PlanError, match="AnalysisTemplate missing"):
        rollout_inputs(docs[0], docs)


def test_the_command_prints_a_table_and_json() -> None:
    path = str(ROOT / "examples" / "canary-pods.yaml")
    table = CliRunner().invoke(command, [path])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].startswith("Rollout default/web: canary, 4 replicas")
    assert "abort here" in lines[1] and "needs a person" in lines[1]
    assert lines[-1].startswith("at least ")
    out = json.loads(CliRunner().invoke(command, ["-o", "json", path]).output)
    [found] = out["plans"]
    spec = BASE["spec"]
    weights = [s["setWeight"] for s in spec["strategy"]["canary"]["steps"] if "setWeight" in s]
    new_pods = [s["pods"]["new"] for s in found["steps"] if s["step"].startswith("setWeight")]
    assert new_pods == [math.ceil(spec["replicas"] * w / 100) for w in weights]
    assert table.output.count("\n") == len(found["steps"]) + 4  # title, header, rule, total


def test_an_invalid_rollout_gets_the_lint_instead_of_a_plan() -> None:
    raw = rollout({"canary": {"steps": [{"setWeight": 120}]}})
    result = CliRunner().invoke(command, ["-"], input=yaml.safe_dump(raw))
    assert result.exit_code == 1
    assert "setWeight: Invalid value: 120" in result.output and "no plan" in result.output


def test_a_release_that_never_ends_by_itself_has_no_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step analysis with an interval and no count measures until the steps end: the
    step never ends, and the plan says so rather than running for ever."""
    import nonstop.simulate.plan as simulated

    monkeypatch.setattr(simulated, "MAX_PASSES", 60)
    metric = {
        "name": "errors",
        "interval": "1m",
        "successCondition": "result < 1",
        "provider": {"web": {"url": "http://metrics/", "jsonPath": "$.v"}},
    }
    steps = [{"setWeight": 20}, {"analysis": {"metrics": [metric]}}]
    with pytest.raises(PlanError, match=r"does not end by itself.*analysis step-1"):
        plan(rollout({"canary": {"steps": steps}}), aborts=False)
    metric["successCondition"] = "result < 0 && result > 0"
    with pytest.raises(PlanError, match="no result found that passes"):
        plan(rollout({"canary": {"steps": steps}}), aborts=False)
