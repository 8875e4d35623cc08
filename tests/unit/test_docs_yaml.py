"""The YAML in the guides is what the API accepts and does what the pages say: every ```yaml
block of docs/quickstart.md, docs/strategies/*.md and docs/migrating-from-argo-rollouts.md
parses; every nonstop Rollout, AnalysisTemplate and RolloutAction in them passes the model's
rules (the CRD's, in pydantic) and the checks the operator makes before it moves a pod; and
every Rollout rolls out in the simulated world (the real reconcile pass, tests/sim.py) from
its first revision to a second one, promoted at each pause, with no fewer ready pods than
spec.replicas along the way, pausing where the strategy pages' diagrams say, with the pods
and weights they show. So the docs cannot drift from the code."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from nonstop.api import RolloutSpec
from nonstop.api.action import RolloutActionSpec
from nonstop.api.spec import ROLLOUT_NAME_CONTEXT, AnalysisTemplateSpec
from nonstop.plan.model import Observed
from nonstop.plan.validate import semantic_problem
from tests.sim import World

DOCS = Path(__file__).resolve().parents[2] / "docs"
STRATEGY_PAGES = {
    "README.md": None,
    "rolling.md": "rolling",
    "canary.md": "canary",
    "canary-gateway.md": "canary",
    "blue-green.md": "blueGreen",
    "shadow.md": "shadow",
    "feature-toggle.md": "featureToggle",
}
PAGES = [
    DOCS / "quickstart.md",
    DOCS / "migrating-from-argo-rollouts.md",
    *(DOCS / "strategies" / name for name in STRATEGY_PAGES),
]
NONSTOP = "nonstop.dev/v1alpha1"
FENCE = re.compile(r"^```yaml[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
PROMOTABLE = {"StepPaused", "AwaitingPromotion"}
WATCHED = {*PROMOTABLE, "Shadowing"}

# Where the second revision of each strategy page's Rollout waits, as its diagram shows it:
# (STEP column, pods of the old revision, pods of the new one, WEIGHT, mirrored share).
Snapshot = tuple[str | None, int, int, float, float]
DIAGRAMS: dict[str, list[Snapshot]] = {
    "rolling.md": [],
    "canary.md": [("1/5", 3, 1, 25.0, 0.0), ("3/5", 2, 2, 50.0, 0.0)],
    "canary-gateway.md": [
        ("1/6", 4, 1, 0.0, 0.0),
        ("3/6", 4, 1, 10.0, 0.0),
        ("5/6", 4, 2, 50.0, 0.0),
    ],
    "blue-green.md": [("1/2", 4, 4, 50.0, 0.0)],
    "shadow.md": [("shadow", 4, 2, 0.0, 20.0), ("1/3", 4, 1, 10.0, 0.0)],
    "feature-toggle.md": [("1/5", 0, 4, 5.0, 0.0), ("3/5", 0, 4, 25.0, 0.0)],
}


def page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


def blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text())


def documents(path: Path) -> list[dict[str, Any]]:
    return [
        doc for block in blocks(path) for doc in yaml.safe_load_all(block) if isinstance(doc, dict)
    ]


def of_kind(docs: list[dict[str, Any]], kind: str, api_version: str = NONSTOP) -> list[Any]:
    return [d for d in docs if d.get("kind") == kind and d.get("apiVersion") == api_version]


@dataclass(frozen=True)
class Case:
    page: Path
    index: int  # which nonstop Rollout of the page

    @property
    def id(self) -> str:
        return f"{page_id(self.page)}#{self.index}"


CASES = [
    Case(page, i)
    for page in PAGES
    if page.exists()
    for i in range(len(of_kind(documents(page), "Rollout")))
]


def test_the_guides_exist() -> None:
    missing = [page_id(p) for p in PAGES if not p.exists()]
    assert not missing, f"missing pages: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_yaml_block_parses(page: Path) -> None:
    for number, block in enumerate(blocks(page)):
        try:
            list(yaml.safe_load_all(block))
        except yaml.YAMLError as exc:
            pytest.fail(f"{page_id(page)}: yaml block {number} does not parse: {exc}")


@pytest.mark.parametrize(
    "page", [DOCS / "strategies" / n for n, key in STRATEGY_PAGES.items() if key], ids=page_id
)
def test_each_strategy_page_shows_a_rollout_of_its_strategy(page: Path) -> None:
    wanted = STRATEGY_PAGES[page.name]
    rollouts = of_kind(documents(page), "Rollout")
    assert rollouts, f"{page_id(page)} has no Rollout in a yaml block"
    assert all(wanted in r["spec"]["strategy"] for r in rollouts)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_nonstop_objects_are_valid(page: Path) -> None:
    docs = documents(page)
    templates = {
        t["metadata"]["name"]: AnalysisTemplateSpec.model_validate(t["spec"])
        for t in of_kind(docs, "AnalysisTemplate")
    }
    for action in of_kind(docs, "RolloutAction"):
        RolloutActionSpec.model_validate(action["spec"])
    for rollout in of_kind(docs, "Rollout"):
        name = rollout["metadata"]["name"]
        spec = RolloutSpec.model_validate(rollout["spec"], context={ROLLOUT_NAME_CONTEXT: name})
        problem = semantic_problem(spec, Observed(templates=templates))
        assert problem is None, f"{page_id(page)}: Rollout {name}: {problem}"


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    found = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    return found[-1] if found else None


def _route_for(docs: list[dict[str, Any]], raw: dict[str, Any]) -> dict[str, Any] | None:
    """The page's HTTPRoute of this Rollout: the one named in trafficRouting that sends to
    the Rollout's stable Service (a migration page also shows the route as it was)."""
    gateway = (raw["spec"].get("trafficRouting") or {}).get("gatewayAPI")
    if gateway is None:
        return None
    stable = raw["spec"]["service"]["name"]
    routes = [
        d
        for d in of_kind(docs, "HTTPRoute", "gateway.networking.k8s.io/v1")
        if d["metadata"]["name"] == gateway["httpRoute"]
        and any(
            ref.get("name") == stable
            for rule in d["spec"].get("rules", [])
            for ref in rule.get("backendRefs", [])
        )
    ]
    assert routes, f"no HTTPRoute {gateway['httpRoute']} with a backendRef to Service {stable}"
    route: dict[str, Any] = routes[-1]
    return route


def _placed(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("namespace", "default")
    out["metadata"].setdefault("resourceVersion", "1")
    return out


def _world(page: Path, raw_rollout: dict[str, Any]) -> World:
    docs = documents(page)
    raw = copy.deepcopy(raw_rollout)
    raw["metadata"] = {
        "name": raw["metadata"]["name"],
        "namespace": "default",
        "uid": "uid-docs",
        "generation": 1,
    }
    world = World(raw)
    route = _route_for(docs, raw)
    world.route = _placed(route) if route else None
    toggle = raw["spec"]["strategy"].get("featureToggle")
    if toggle is not None:
        config_map = _find(docs, "ConfigMap", toggle["flag"]["configMap"])
        assert config_map is not None, f"the page shows no ConfigMap {toggle['flag']['configMap']}"
        world.config_map = _placed(config_map)
    world.templates = {t["metadata"]["name"]: t["spec"] for t in of_kind(docs, "AnalysisTemplate")}
    return world


def _drive(
    world: World,
    done: Any,
    seen: list[Snapshot] | None = None,
    old: str | None = None,
    limit: int = 3000,
    seconds: float = 5.0,
) -> None:
    """Passes until `done(world)`, promoting at every pause that waits for one; each wait
    (and the start of a shadow phase) is appended to `seen`."""
    last: tuple[str | None, str | None] | None = None
    for _ in range(limit):
        world.step()
        world.now += timedelta(seconds=seconds)
        status = world.status
        if done(world):
            return
        ready = status.condition("Ready")
        reason = ready.reason if ready else None
        if seen is not None and reason in WATCHED and (status.step, reason) != last:
            pods = {d.revision: d.spec for d in world.deps.values()}
            weights = status.weights
            seen.append(
                (
                    status.step,
                    pods.get(old or "", 0),
                    pods.get(world.revision, 0),
                    weights.canary if weights else 0.0,
                    weights.mirror if weights else 0.0,
                )
            )
        last = (status.step, reason)
        if status.phase == "Paused" and ready and ready.reason in PROMOTABLE and not world.actions:
            world.request("promote")
        assert status.phase != "Degraded", f"Degraded: {status.message}"
    pytest.fail(f"not done after {limit} passes: {world.status.phase}: {world.status.message}")


def _at_rest(world: World) -> bool:
    status = world.status
    others = [d for d in world.deps.values() if d.revision != world.revision]
    return (
        status.phase == "Healthy"
        and status.stable_revision == world.revision
        and all(d.spec == 0 and d.pods == 0 for d in others)
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rollouts_of_the_guides_roll_out(case: Case) -> None:
    raw = of_kind(documents(case.page), "Rollout")[case.index]
    replicas = raw["spec"].get("replicas", 1)
    world = _world(case.page, raw)
    _drive(world, _at_rest)  # the first revision, and a toggle's steps on it
    first = world.revision

    template = world.raw["spec"]["template"]
    image = template["spec"]["containers"][0]["image"]
    world.set_image(f"{image}-next")
    world.min_ready_seen = None
    seen: list[Snapshot] = []
    _drive(world, _at_rest, seen, old=first)

    assert world.revision != first
    assert world.status.stable_revision == world.revision
    assert world.min_ready_seen is not None and world.min_ready_seen >= replicas
    if world.config_map is not None:  # a feature toggle ends with everyone on the variant
        flag = world.status.flag
        assert flag is not None and flag.weight == 100
    if case.page.parent.name == "strategies":
        assert seen == DIAGRAMS[case.page.name], "the page's diagram and the code disagree"
