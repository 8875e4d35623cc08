"""The Argo CD health script and resource actions (integrations/argocd/), run with lua5.1.

Argo CD runs them in gopher-lua (Lua 5.1) with the resource as the global `obj`; here each
object is turned into a Lua table literal, the script is run by `lua5.1`, and what it returns
is written back as JSON. Three kinds of test:

- Argo CD's own layout: every case of health_test.yaml and actions/action_test.yaml over the
  status snapshots in testdata/ (made by the real reconcile pass: see `main` at the bottom);
- the same states made live by the real reconcile pass (tests/sim.py), so a reason or phase
  nonstop starts to write differently shows up here, not in someone's Argo CD;
- a RolloutAction the Lua creates, read by the operator's own parser and applied by the
  real pass, and compared with what `kubectl nonstop` creates.

Regenerate the snapshots after a change of the status: `python -m tests.unit.test_argocd`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from nonstop.api.status import format_time
from nonstop.cli.plugin import action_body
from nonstop.plan.views import pending_action
from tests.sim import World, http_route, rollout_raw

ROOT = Path(__file__).resolve().parents[2] / "integrations" / "argocd"
ACTIONS = ROOT / "actions"
LUA = shutil.which("lua5.1")

if LUA is None:
    if os.environ.get("CI"):
        raise RuntimeError("lua5.1 is needed to test integrations/argocd: apt-get install lua5.1")
    pytest.skip("lua5.1 is not installed (apt-get install lua5.1)", allow_module_level=True)

# Lua table -> JSON, as Argo CD's luajson encodes the result (an empty table is an array).
ENCODER = r"""
local function encode(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v == math.floor(v) then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n == #v then
    local parts = {}
    for i = 1, #v do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do table.insert(keys, tostring(k)) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do table.insert(parts, encode(k) .. ":" .. encode(v[k])) end
  return "{" .. table.concat(parts, ",") .. "}"
end
"""


def to_lua(value: Any) -> str:
    """A JSON-like value (as PyYAML or the API server gives it) as a Lua literal."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return to_lua(format_time(value))
    if isinstance(value, date):
        return to_lua(value.isoformat())
    if isinstance(value, str):
        escaped = "".join(
            c if c.isprintable() and c not in '"\\' else "".join(f"\\{b}" for b in c.encode())
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{to_lua(str(k))}] = {to_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def run_lua(script: Path, obj: dict[str, Any]) -> Any:
    """Run one of the scripts as Argo CD does (`obj` global) and return what it returns."""
    driver = (
        f"{ENCODER}\nobj = {to_lua(obj)}\n"
        f"local chunk = assert(loadfile({to_lua(str(script))}))\n"
        "io.write(encode(chunk()))\n"
    )
    assert LUA is not None
    done = subprocess.run(
        [LUA, "-"], input=driver, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"{script.name} failed: {done.stderr}"
    return json.loads(done.stdout)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def health(obj: dict[str, Any]) -> dict[str, str]:
    result: dict[str, str] = run_lua(ROOT / "health.lua", obj)
    return result


def discovery(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = run_lua(ACTIONS / "discovery.lua", obj)
    return result


def action(verb: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run_lua(ACTIONS / verb / "action.lua", copy.deepcopy(obj))
    return result


# --- Argo CD's layout ------------------------------------------------------------------------

HEALTH_TESTS = load(ROOT / "health_test.yaml")["tests"]
ACTION_TESTS = load(ACTIONS / "action_test.yaml")


@pytest.mark.parametrize("case", HEALTH_TESTS, ids=[c["inputPath"] for c in HEALTH_TESTS])
def test_health_of_each_snapshot(case: dict[str, Any]) -> None:
    obj = load(ROOT / case["inputPath"])
    assert health(obj) == case["healthStatus"]


def test_every_snapshot_has_a_health_case() -> None:
    cases = {c["inputPath"] for c in HEALTH_TESTS}
    assert cases == {f"testdata/{p.name}" for p in (ROOT / "testdata").glob("*.yaml")}


def test_every_argo_cd_health_status_but_missing_and_unknown_is_used() -> None:
    used = {c["healthStatus"]["status"] for c in HEALTH_TESTS}
    assert used == {"Healthy", "Progressing", "Suspended", "Degraded", "Unknown"}


@pytest.mark.parametrize(
    "case",
    ACTION_TESTS["discoveryTests"],
    ids=[c["inputPath"] for c in ACTION_TESTS["discoveryTests"]],
)
def test_discovery_of_each_snapshot(case: dict[str, Any]) -> None:
    obj = load(ACTIONS / case["inputPath"])
    found = discovery(obj)
    assert [{"name": name, **found[name]} for name in sorted(found)] == sorted(
        case["result"], key=lambda a: str(a["name"])
    )


@pytest.mark.parametrize(
    "case",
    ACTION_TESTS["actionTests"],
    ids=[f"{c['action']}/{c['inputPath']}" for c in ACTION_TESTS["actionTests"]],
)
def test_each_action(case: dict[str, Any]) -> None:
    obj = load(ACTIONS / case["inputPath"])
    expected = load(ACTIONS / case["expectedOutputPath"])
    got = action(case["action"], obj)
    assert [{"k8sOperation": r["operation"], "unstructuredObj": r["resource"]} for r in got] == [
        {"k8sOperation": e["k8sOperation"], "unstructuredObj": jsonable(e["unstructuredObj"])}
        for e in expected
    ]


def test_every_action_has_a_script_and_a_test() -> None:
    scripts = {p.parent.name for p in ACTIONS.glob("*/action.lua")}
    assert scripts == {"promote", "promote-full", "abort", "retry", "pause", "resume"}
    assert {c["action"] for c in ACTION_TESTS["actionTests"]} == scripts
    assert set(discovery(load(ROOT / "testdata/healthy.yaml"))) == scripts


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=format_time))


def test_the_argocd_cm_snippet_holds_the_same_scripts() -> None:
    cm = load(ROOT / "argocd-cm.yaml")
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    data = cm["data"]
    assert (
        data["resource.customizations.health.nonstop.dev_Rollout"]
        == (ROOT / "health.lua").read_text()
    )
    actions = yaml.safe_load(data["resource.customizations.actions.nonstop.dev_Rollout"])
    assert actions["discovery.lua"] == (ACTIONS / "discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {
        p.parent.name: p.read_text() for p in ACTIONS.glob("*/action.lua")
    }


# --- the same states, made now by the real reconcile pass ------------------------------------

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "30s"}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 75},
]
BLUE_GREEN = {"blueGreen": {"previewService": "web-preview", "scaleDownDelaySeconds": 30}}
INCONCLUSIVE = {
    "name": "error-rate",
    "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "rate({{revision}})"}},
    "interval": "5s",
    "count": 1,
    "failureCondition": "result > 0.05",
    "successCondition": "result < 0.01",
}


def healthy(strategy: dict[str, Any] | None = None, route: bool = False) -> World:
    world = World(
        rollout_raw(replicas=4, deadline=120, strategy=strategy, route="web" if route else None)
    )
    if route:
        world.route = http_route()
    world.run_until("Healthy")
    return world


def until(world: World, done: Callable[[World], bool], limit: int = 100) -> World:
    for _ in range(limit):
        world.step()
        world.now += timedelta(seconds=2)
        if done(world):
            return world
    raise AssertionError(f"never got there; last: {world.status.message}")


def reason(world: World, type_: str = "Ready") -> str:
    found = world.status.condition(type_)
    return found.reason if found else ""


def rolling_out() -> World:
    world = healthy()
    world.set_image("web:2")
    world.run(1)
    return world


def generation_behind() -> World:
    world = healthy()
    world.raw["metadata"]["generation"] = 2  # an edit nonstop has not acted on yet
    return world


def scaling() -> World:
    world = healthy()
    next(iter(world.deps.values())).ready = 3  # a pod of the stable revision dies
    world.step(settle=False)
    return world


def pods_not_ready() -> World:
    world = healthy()
    world.set_image("web:2")
    world.never_ready.add(world.revision)
    return until(world, lambda w: reason(w, "Paused") == "PodsNotReady")


def apply_failed() -> World:
    world = World(rollout_raw(replicas=2))
    world.kube.fail("ensure_service", 422, name="web")
    world.run(2)
    return world


def canary_at(index: int) -> World:
    world = healthy({"canary": {"steps": STEPS}})
    world.set_image("web:2")
    return until(
        world, lambda w: w.status.current_step_index == index and w.status.phase == "Paused"
    )


def awaiting_promotion() -> World:
    world = healthy(BLUE_GREEN)
    world.set_image("web:2")
    return until(world, lambda w: reason(w) == "AwaitingPromotion")


def paused_by_spec() -> World:
    world = rolling_out()
    world.raw["spec"]["paused"] = True
    world.run(2)
    return world


def held_by_action() -> World:
    world = rolling_out()
    world.request("pause")
    world.run(2)
    return world


def analysis_inconclusive() -> World:
    steps = [{"setWeight": 25}, {"pause": {"duration": "5s"}}, {"setWeight": 50}]
    world = healthy({"canary": {"steps": steps}}, route=True)
    world.set_image("web:2")
    world.raw["spec"]["strategy"]["canary"]["analysis"] = {"metrics": [INCONCLUSIVE]}
    world.metrics["error-rate"] = 0.03
    return until(world, lambda w: reason(w, "Paused") == "AnalysisInconclusive")


def rolling_back() -> World:
    world = canary_at(3)
    world.request("abort")
    return until(world, lambda w: reason(w) == "RollingBack")


def rolled_back() -> World:
    world = rolling_back()
    return until(world, lambda w: reason(w) == "RolledBack")


def deadline_without_stable() -> World:
    world = World(rollout_raw(replicas=2, deadline=20))
    world.never_ready.add(world.revision)
    return until(world, lambda w: reason(w) == "ProgressDeadlineExceeded")


def invalid_spec() -> World:
    raw = rollout_raw()
    raw["spec"]["strategy"] = {"rolling": {"maxSurge": "250%"}}
    world = World(raw)
    world.step()
    return world


def service_conflict() -> World:
    from nonstop.plan import ServiceView

    world = World(rollout_raw())
    world.service = ServiceView("web", owned=False, selector={"app": "other"}, ports=())
    world.step()
    return world


def template_not_found() -> World:
    steps = [{"setWeight": 25}, {"analysis": {"templates": [{"name": "errors"}]}}]
    world = World(rollout_raw(replicas=4, strategy={"canary": {"steps": steps}}))
    world.run(2)
    return world


# snapshot file -> how the real pass gets there, and the Ready reason it then writes
SCENARIOS: dict[str, tuple[Callable[[], World], str]] = {
    "healthy.yaml": (healthy, "RolloutCompleted"),
    "generation-behind.yaml": (generation_behind, "RolloutCompleted"),
    "rolling-in-progress.yaml": (rolling_out, "RolloutInProgress"),
    "scaling.yaml": (scaling, "Scaling"),
    "pods-not-ready.yaml": (pods_not_ready, "PodsNotReady"),
    "apply-failed.yaml": (apply_failed, "ApplyFailed"),
    "canary-timed-pause.yaml": (lambda: canary_at(1), "StepPaused"),
    "canary-pause-until-promoted.yaml": (lambda: canary_at(3), "StepPaused"),
    "blue-green-awaiting-promotion.yaml": (awaiting_promotion, "AwaitingPromotion"),
    "paused-by-spec.yaml": (paused_by_spec, "PausedByUser"),
    "paused-by-action.yaml": (held_by_action, "PausedByUser"),
    "analysis-inconclusive.yaml": (analysis_inconclusive, "AnalysisInconclusive"),
    "rolling-back.yaml": (rolling_back, "RollingBack"),
    "rolled-back.yaml": (rolled_back, "RolledBack"),
    "progress-deadline-exceeded.yaml": (deadline_without_stable, "ProgressDeadlineExceeded"),
    "invalid-spec.yaml": (invalid_spec, "InvalidSpec"),
    "service-conflict.yaml": (service_conflict, "ServiceConflict"),
    "analysis-template-not-found.yaml": (template_not_found, "AnalysisTemplateNotFound"),
}


def rollout(world: World) -> dict[str, Any]:
    """The Rollout as Argo CD reads it from the API server."""
    raw = copy.deepcopy(world.raw)
    return {"apiVersion": "nonstop.dev/v1alpha1", "kind": "Rollout", **raw}


def expected_health(snapshot: str) -> dict[str, str]:
    case = next(c for c in HEALTH_TESTS if c["inputPath"] == f"testdata/{snapshot}")
    expected: dict[str, str] = case["healthStatus"]
    return expected


@pytest.mark.parametrize("snapshot", sorted(SCENARIOS))
def test_the_real_pass_still_writes_what_the_snapshot_shows(snapshot: str) -> None:
    make, ready_reason = SCENARIOS[snapshot]
    world = make()
    assert reason(world) == ready_reason, world.status.message
    obj = rollout(world)
    stored = load(ROOT / "testdata" / snapshot)
    for field in ("phase", "observedGeneration", "held"):
        assert obj["status"].get(field) == stored["status"].get(field), field
    conditions = {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]}
    assert conditions == {
        c["type"]: (c["status"], c["reason"]) for c in stored["status"]["conditions"]
    }
    got = health(obj)
    expected = expected_health(snapshot)
    assert got["status"] == expected["status"]
    if obj["status"]["observedGeneration"] == obj["metadata"]["generation"]:
        assert got["message"] == obj["status"]["message"]


# --- the actions, applied by the real pass ------------------------------------------------


def enabled(world: World) -> set[str]:
    return {name for name, a in discovery(rollout(world)).items() if not a["disabled"]}


def request(world: World, verb: str) -> str:
    """Run the Argo CD action and give what it creates to the operator, as the API server
    would (a name from generateName, a uid, a creation time); return the action's name."""
    results = action(verb, rollout(world))
    created = [r["resource"] for r in results if r["operation"] == "create"]
    for patched in (r["resource"] for r in results if r["operation"] == "patch"):
        world.raw["spec"] = patched["spec"]
    if not created:
        return ""
    (body,) = created
    name = str(body["metadata"]["generateName"]) + f"{len(world.actions):05d}"
    body["metadata"] |= {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": format_time(world.now),
    }
    view = pending_action(body, world.name)
    assert view is not None, body
    world.actions.append(view)
    return name


def test_promote_at_a_canary_pause_moves_on_and_promote_full_finishes() -> None:
    world = canary_at(3)
    assert enabled(world) == {"promote", "promote-full", "abort", "pause"}
    name = request(world, "promote")
    world.run(2)
    assert world.answer(name).phase == "Applied"
    assert world.status.current_step_index == 4
    request(world, "promote-full")
    world.run_until("Healthy")
    assert world.status.stable_revision == world.revision
    assert enabled(world) == {"pause"}


def test_promote_a_blue_green_switches() -> None:
    world = awaiting_promotion()
    assert "promote" in enabled(world)
    name = request(world, "promote")
    world.run_until("Healthy")
    assert world.answer(name).phase == "Applied"


def test_abort_rolls_back_and_retry_rolls_out_again() -> None:
    world = canary_at(3)
    name = request(world, "abort")
    until(world, lambda w: reason(w) == "RolledBack")
    assert world.answer(name).phase == "Applied"
    assert health(rollout(world))["status"] == "Degraded"
    assert enabled(world) == {"retry", "pause"}
    name = request(world, "retry")
    world.run(2)
    assert world.answer(name).phase == "Applied"
    assert world.status.abort is None
    assert "retry" not in enabled(world)


def test_pause_holds_without_touching_the_spec_and_resume_releases() -> None:
    world = rolling_out()
    spec = copy.deepcopy(world.raw["spec"])
    request(world, "pause")
    world.run(2)
    assert world.status.held and world.raw["spec"] == spec  # Git and the cluster agree
    assert health(rollout(world))["status"] == "Suspended"
    assert enabled(world) >= {"resume"} and "pause" not in enabled(world)
    name = request(world, "resume")
    world.run_until("Healthy")
    assert world.answer(name).phase == "Applied" and not world.status.held


def test_resume_unsets_spec_paused_and_makes_no_action_for_it() -> None:
    world = paused_by_spec()
    assert "resume" in enabled(world)
    assert request(world, "resume") == ""
    assert world.raw["spec"]["paused"] is False
    world.run_until("Healthy")


def test_an_action_that_no_longer_applies_is_rejected_by_nonstop() -> None:
    world = healthy({"canary": {"steps": STEPS}})
    assert "promote" not in enabled(world)
    name = request(world, "promote")  # run anyway (the page was stale)
    world.run(1)
    answer = world.answer(name)
    assert answer.phase == "Rejected" and "nothing to promote" in answer.message


@pytest.mark.parametrize("verb", ["promote", "promote-full", "abort", "retry", "pause", "resume"])
def test_the_rollout_action_is_what_kubectl_nonstop_creates(verb: str) -> None:
    obj = rollout(canary_at(3))
    (created,) = [r["resource"] for r in action(verb, obj) if r["operation"] == "create"]
    plugin = action_body(obj, verb, "requested in Argo CD")
    assert created["metadata"].pop("namespace") == obj["metadata"]["namespace"]
    assert created == plugin


# --- the snapshots ---------------------------------------------------------------------------

HAND_MADE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # before nonstop wrote anything, and a status of an older nonstop without conditions
    "no-status.yaml": lambda obj: {k: v for k, v in obj.items() if k != "status"},
    "phase-only-paused.yaml": lambda obj: (
        obj | {"status": {"observedGeneration": 1, "phase": "Paused", "message": "paused"}}
    ),
    "unknown-phase.yaml": lambda obj: (
        obj | {"status": {"observedGeneration": 1, "phase": "Exploded", "message": "what is this"}}
    ),
}


def main() -> None:
    """Write the snapshots in integrations/argocd/testdata from the real reconcile pass."""
    header = "# Made by the real reconcile pass (tests/sim.py): python -m tests.unit.test_argocd\n"
    out = ROOT / "testdata"
    for snapshot, (make, _) in SCENARIOS.items():
        text = yaml.safe_dump(rollout(make()), sort_keys=False, width=100)
        (out / snapshot).write_text(header + text)
    base = rollout(healthy())
    for snapshot, shape in HAND_MADE.items():
        text = yaml.safe_dump(shape(copy.deepcopy(base)), sort_keys=False, width=100)
        (out / snapshot).write_text("# Made by hand from healthy.yaml\n" + text)
    # the actions' inputs: a canary at a pause, aborted, held; a Rollout paused by spec
    acts = ACTIONS / "testdata"
    for name, make in {
        "canary-at-pause.yaml": lambda: canary_at(3),
        "canary-aborted.yaml": rolled_back,
        "held.yaml": held_by_action,
        "paused-by-spec.yaml": paused_by_spec,
        "healthy.yaml": lambda: healthy({"canary": {"steps": STEPS}}),
    }.items():
        (acts / name).write_text(
            header + yaml.safe_dump(rollout(make()), sort_keys=False, width=100)
        )
    print(f"wrote {len(SCENARIOS) + len(HAND_MADE)} snapshots to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
