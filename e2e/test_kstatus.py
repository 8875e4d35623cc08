"""What Flux sees of a Rollout. Flux's kustomize-controller (`wait: true`, `healthChecks`)
judges a custom resource with kstatus: `status.Compute` of sigs.k8s.io/cli-utils. Here that
library (e2e/kstatus, built from the Go module proxy by e2e/kstatus/build.sh) judges every
version of four Rollouts that the API server hands out while they go through their phases:
a canary (rolling out, at a pause step, paused with spec.paused, aborted), a blue-green
(awaiting promotion, promoted), a canary whose analysis cannot tell, and a Rollout whose
spec nonstop refuses. Every answer must be the one docs/flux.md gives for that state."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from e2e.kube import REPO, Cluster, ListWatch, eventually
from e2e.manifests import rollout
from e2e.test_rolling import condition

DOC = REPO / "docs" / "flux.md"
NO_STATUS = "no status yet"
OLDER = "status of an older generation"


@pytest.fixture(scope="module")
def kstatus_binary() -> Path:
    """The kstatus program, built once and cached (a no-op when the sources are unchanged)."""
    built = subprocess.run(
        ["bash", str(REPO / "e2e/kstatus/build.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"e2e/kstatus/build.sh failed:\n{built.stderr[-3000:]}", pytrace=False)
    return Path(built.stdout.strip().splitlines()[-1])


def kstatus(binary: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus' status and message for the object, as Flux would compute them."""
    out = subprocess.run(
        [str(binary)],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    return answer["status"], answer["message"]


def documented() -> dict[str, str]:
    """The table of docs/flux.md: the state (a reason of the Ready condition, or one of the
    two states before nonstop has acted) -> the kstatus status it gives."""
    section = DOC.read_text().split("## What kstatus says", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or set(cells[0]) <= {"-"}:
            continue
        status = cells[2].strip("*")
        if status not in {"InProgress", "Current", "Failed", "Terminating"}:
            continue  # the header
        first = cells[0]
        states = re.findall(r"`(\w+)`", first) if first.startswith("`") else [first.split(" (")[0]]
        for state in states:
            table[state] = status
    return table


def state(obj: dict[str, Any]) -> str:
    """The state of a Rollout as docs/flux.md names it."""
    st = obj.get("status") or {}
    if not st:
        return NO_STATUS
    if st.get("observedGeneration") != obj["metadata"]["generation"]:
        return OLDER
    return str(condition(st, "Ready").get("reason"))


class RolloutVersions(ListWatch):
    """Every version of every Rollout of a namespace that the API server hands out, in order."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        super().__init__()
        self.api = client.CustomObjectsApi(cluster.api())
        self.namespace = namespace
        self.versions: list[dict[str, Any]] = []

    def _call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, str]]:
        args = ("nonstop.dev", "v1alpha1", self.namespace, "rollouts")
        return self.api.list_namespaced_custom_object, args, {}

    def _listed(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self._changed("ADDED", item)

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        seen = {v["metadata"]["resourceVersion"] for v in self.versions[-8:]}
        if kind != "DELETED" and obj["metadata"]["resourceVersion"] not in seen:
            self.versions.append(obj)

    def stop(self) -> list[dict[str, Any]]:
        self._join()
        return self.versions


@pytest.fixture
def inconclusive_metric() -> Iterator[str]:
    """A URL on loopback whose JSON answer {"v": 5} is neither good (< 1) nor bad (> 10)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"v": 5}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/value"
    server.shutdown()


def canary(name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    manifest = rollout(name=name, replicas=2)
    manifest["spec"]["strategy"] = {"canary": {"steps": steps}}
    return manifest


def web_metric(url: str, failure_condition: str = "result > 10") -> dict[str, Any]:
    return {
        "name": "value",
        "provider": {"web": {"url": url, "jsonPath": "$.v"}},
        "successCondition": "result < 1",
        "failureCondition": failure_condition,
    }


def get(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.get("rollout", name, "-n", namespace)  # type: ignore[no-any-return]


def patch(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of the spec, and the Rollout as the API server answered it."""
    body = json.dumps({"spec": spec})
    out = cluster.kubectl(
        "patch", "rollout", name, "-n", namespace, "--type=merge", "-o", "json", "-p", body
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def new_image(image: str) -> dict[str, Any]:
    container = {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}
    return {"template": {"spec": {"containers": [container]}}}


def reaches(
    cluster: Cluster, namespace: str, name: str, reason: str, timeout: float = 120
) -> dict[str, Any]:
    """The Rollout, once its status for its latest generation has this Ready reason."""

    def there() -> dict[str, Any] | None:
        obj = get(cluster, namespace, name)
        return obj if state(obj) == reason else None

    return eventually(there, timeout, f"rollout {name}: {reason}", every=0.3)


def judge_every_version(binary: Path, versions: list[dict[str, Any]]) -> dict[str, set[str]]:
    """kstatus on each version; each answer must be docs/flux.md's for that state. Returns
    what kstatus answered in each state."""
    docs = documented()
    seen: dict[str, set[str]] = {}
    wrong: list[str] = []
    for obj in versions:
        at, (status, message) = state(obj), kstatus(binary, obj)
        seen.setdefault(at, set()).add(status)
        if docs.get(at) != status:
            name = obj["metadata"]["name"]
            wrong.append(f"{name} {at}: kstatus {status} ({message}), docs/flux.md {docs.get(at)}")
    table = "\n".join(f"  {at}: {sorted(statuses)}" for at, statuses in sorted(seen.items()))
    assert not wrong, "\n".join(wrong) + "\nseen:\n" + table
    return seen


def test_kstatus_says_what_the_docs_say_at_every_phase(
    cluster: Cluster, namespace: str, kstatus_binary: Path, inconclusive_metric: str
) -> None:
    def judge(obj: dict[str, Any]) -> tuple[str, str]:
        return kstatus(kstatus_binary, obj)

    watcher = RolloutVersions(cluster, namespace).start()

    first = json.dumps(canary("canary", [{"setWeight": 50}, {"pause": {}}]))
    created = cluster.kubectl("create", "-n", namespace, "-o", "json", "-f", "-", input=first)
    # the Rollout as created: no status yet, so kstatus knows nothing that could hold it
    assert judge(json.loads(created.stdout)) == ("Current", "Resource is current")
    bluegreen = rollout(name="bluegreen", replicas=2)
    bluegreen["spec"]["strategy"] = {"blueGreen": {"previewService": "bluegreen-preview"}}
    cluster.apply(bluegreen, namespace)
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"analysis": {"metrics": [web_metric(inconclusive_metric)]}},
    ]
    cluster.apply(canary("unsure", steps), namespace)
    invalid = [{"analysis": {"metrics": [web_metric(inconclusive_metric, "result >> 2")]}}]
    cluster.apply(canary("invalid", invalid), namespace)

    # invalid: a spec admission takes and nonstop refuses
    refused = reaches(cluster, namespace, "invalid", "InvalidSpec", 60)
    assert condition(refused["status"], "Stalled")["status"] == "True"
    status, message = judge(refused)
    assert status == "Failed" and "result >> 2" in message

    for name in ("canary", "bluegreen", "unsure"):
        healthy = reaches(cluster, namespace, name, "RolloutCompleted")
        assert judge(healthy) == ("Current", "Resource is Ready")
        # a new revision: the API server's answer to the patch is a generation nonstop has
        # not seen yet
        changed = patch(cluster, namespace, name, new_image("registry.example/web:2"))
        assert judge(changed) == (
            "InProgress",
            f"Rollout generation is {changed['metadata']['generation']}, but latest observed"
            f" generation is {changed['status']['observedGeneration']}",
        )

    # paused states: kstatus falls back to the Ready condition, False -> InProgress
    at_pause = reaches(cluster, namespace, "canary", "StepPaused")
    assert judge(at_pause) == ("InProgress", condition(at_pause["status"], "Ready")["message"])
    awaiting = reaches(cluster, namespace, "bluegreen", "AwaitingPromotion")
    assert judge(awaiting)[0] == "InProgress"
    unsure = reaches(cluster, namespace, "unsure", "AnalysisInconclusive")
    assert judge(unsure)[0] == "InProgress"

    patch(cluster, namespace, "canary", {"paused": True})
    by_user = reaches(cluster, namespace, "canary", "PausedByUser")
    assert judge(by_user)[0] == "InProgress"
    patch(cluster, namespace, "canary", {"paused": False})
    reaches(cluster, namespace, "canary", "StepPaused")

    # promoted: Current again; aborted: Failed once rolled back
    assert "Applied" in cluster.kubectl("nonstop", "promote", "bluegreen", "-n", namespace).stdout
    assert judge(reaches(cluster, namespace, "bluegreen", "RolloutCompleted"))[0] == "Current"
    assert "Applied" in cluster.kubectl("nonstop", "abort", "canary", "-n", namespace).stdout
    rolled_back = reaches(cluster, namespace, "canary", "RolledBack")
    assert judge(rolled_back)[0] == "Failed"

    # every version the API server handed out, judged; each state as docs/flux.md says
    seen = judge_every_version(kstatus_binary, watcher.stop())
    table = "\n".join(f"  {at}: {sorted(statuses)}" for at, statuses in sorted(seen.items()))
    expected = {NO_STATUS, OLDER, "RolloutInProgress", "StepPaused", "PausedByUser"}
    expected |= {"AwaitingPromotion", "AnalysisInconclusive", "RolloutCompleted", "RollingBack"}
    expected |= {"RolledBack", "InvalidSpec"}
    assert expected <= set(seen), f"states never seen: {expected - set(seen)}\nseen:\n{table}"
    # what a Flux health check relies on, whatever the table says
    assert seen["RolloutInProgress"] == seen[OLDER] == {"InProgress"}, table
    assert seen["RolloutCompleted"] == {"Current"}, table
    assert seen["RolledBack"] == seen["InvalidSpec"] == {"Failed"}, table


def test_the_flux_example_builds_with_kustomize_and_is_admitted(
    cluster: Cluster, namespace: str
) -> None:
    """examples/flux/web/ as Flux applies it: kustomize (kubectl's) builds it, and the API
    server admits what it builds (its Rollout in this test's namespace, dry run)."""
    built = cluster.kubectl("kustomize", str(REPO / "examples/flux/web")).stdout
    objects = [d for d in yaml.safe_load_all(built) if d]
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == {
        ("Namespace", "web"),
        ("Rollout", "web"),
    }
    rollout_ = next(o for o in objects if o["kind"] == "Rollout")
    assert rollout_["metadata"].pop("namespace") == "web"
    admitted = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(rollout_)
    )
    assert "rollout.nonstop.dev/web created (server dry run)" in admitted.stdout
