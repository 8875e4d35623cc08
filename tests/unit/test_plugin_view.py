"""`kubectl nonstop get`: the pages drawn from status snapshots (JSON as the API server
returns it), rendered to plain text as a terminal of a given width would show them."""

from __future__ import annotations

import copy
import threading
import types
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any, cast

import pytest
import yaml
from rich.console import Console, RenderableType
from rich.text import Text

from nonstop.cli.plugin import live
from nonstop.cli.plugin.live import show
from nonstop.cli.plugin.view import (
    Snapshot,
    age,
    as_text,
    describe_step,
    progress,
    render_list,
    render_rollout,
)
from nonstop.kube.client import Kube

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


STEPS = [
    {"setWeight": 25},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
    {"setWeight": 75},
]


def canary(**status: Any) -> dict[str, Any]:
    """A canary Rollout paused at its second step (an indefinite pause), 25% on the canary:
    the status nonstop writes (seen on a real cluster)."""
    message = "step 2/5 (pause): 1/1 canary pods available, stable 3; waiting for a promotion"
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "uid-web",
            "generation": 2,
            "creationTimestamp": stamp(600),
        },
        "spec": {"replicas": 4, "strategy": {"canary": {"steps": STEPS}}},
        "status": {
            "observedGeneration": 2,
            "phase": "Paused",
            "strategy": "canary",
            "message": message,
            "currentRevision": "bbb2222222",
            "stableRevision": "aaa1111111",
            "currentStepIndex": 1,
            "step": "1/5",
            "stepStartedAt": stamp(20),
            "weights": {"stable": 75, "canary": 25, "mirror": 0},
            "replicas": 4,
            "readyReplicas": 4,
            "availableReplicas": 4,
            "updatedReplicas": 1,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "StepPaused", "message": message},
                {"type": "Reconciling", "status": "False", "reason": "Idle"},
                {"type": "Stalled", "status": "False", "reason": "NotStalled"},
                {"type": "Paused", "status": "True", "reason": "StepPaused", "message": message},
            ],
            **status,
        },
    }


def deployment(revision: str, replicas: int, image: str, seconds_ago: float) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{revision}",
            "labels": {"nonstop.dev/rollout": "web", "nonstop.dev/revision": revision},
            "creationTimestamp": stamp(seconds_ago),
            "ownerReferences": [{"uid": "uid-web"}],
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }


def pod(revision: str, name: str, ready: bool = True, waiting: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "restartCount": 0, "state": {"running": {}}}
    if waiting:
        container["state"] = {"waiting": {"reason": waiting}}
    return {
        "metadata": {
            "name": f"web-{revision}-{name}",
            "labels": {"nonstop.dev/rollout": "web", "nonstop.dev/revision": revision},
            "creationTimestamp": stamp(30),
        },
        "spec": {"containers": [{"name": "app", "image": "?"}]},
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [container],
        },
    }


def event(n: int, reason: str, message: str, kind: str = "Normal") -> dict[str, Any]:
    return {
        "metadata": {"name": f"web.{n:016x}"},
        "involvedObject": {"uid": "uid-web", "name": "web"},
        "type": kind,
        "reason": reason,
        "message": message,
        "lastTimestamp": stamp(100 - n),
    }


def snapshot(rollout: dict[str, Any] | None = None, **parts: Any) -> Snapshot:
    defaults: dict[str, Any] = {
        "deployments": [
            deployment("aaa1111111", 3, "registry.example/web:1", 600),
            deployment("bbb2222222", 1, "registry.example/web:2", 20),
            deployment("ccc0000000", 0, "registry.example/web:0", 900),
        ],
        "pods": [
            pod("aaa1111111", "a1"),
            pod("aaa1111111", "a2"),
            pod("aaa1111111", "a3"),
            pod("bbb2222222", "b1"),
        ],
        "events": [event(1, "RolloutStarted", "rolling out"), event(2, "StepPaused", "paused")],
    }
    return Snapshot(
        name="web",
        namespace="shop",
        rollout=canary() if rollout is None else rollout,
        **{**defaults, **parts},
    )


def text(snap: Snapshot, width: int = 140) -> str:
    return as_text(render_rollout(snap, NOW), width)


def line_with(page: str, needle: str) -> str:
    [line] = [line for line in page.splitlines() if needle in line]
    return line


def row(page: str, key: str) -> str:
    """The summary line of `key` (message, paused, aborted, step, weights, ...)."""
    [line] = [line for line in page.splitlines() if line.split()[:1] == [key]]
    return line


def test_the_page_shows_strategy_phase_step_of_n_and_the_weights() -> None:
    page = text(snapshot())
    assert line_with(page, "Rollout web").split() == [
        *["Rollout", "web", "(namespace", "shop)", "strategy", "canary", "phase", "Paused"]
    ]
    step = line_with(page, "step 2 of 5")
    assert step.split()[0] == "step" and "pause (until promoted)" in step
    assert "━" in step  # the progress bar: 1 of 5 steps done
    assert row(page, "weights").split() == ["weights", "stable", "75%", "canary", "25%"]
    assert "paused      StepPaused" in page  # why, once (the message is on its own line)
    assert page.count("waiting for a promotion") == 1


def test_revisions_are_a_tree_with_roles_weights_pods_ready_and_images() -> None:
    page = text(snapshot())
    canary_line = line_with(page, "revision bbb2222222")
    stable_line = line_with(page, "revision aaa1111111")
    assert page.index(canary_line) < page.index(stable_line)  # the current one first
    for needle in ("current · canary", "weight 25%", "pods 1/1 ready", "registry.example/web:2"):
        assert needle in canary_line
    for needle in ("stable", "weight 75%", "pods 3/3 ready", "registry.example/web:1"):
        assert needle in stable_line
    assert canary_line.startswith("├── ") and stable_line.startswith("├── ")
    pods = [line for line in page.splitlines() if "□ web-" in line]
    assert len(pods) == 4 and all("Running  ready" in line for line in pods)
    assert line_with(page, "web-bbb2222222-b1").startswith("│   └── □")  # under its revision
    # a revision kept at 0 for undo is named, without a branch of its own
    assert line_with(page, "older revisions").startswith("└── ")
    assert "older revisions kept at 0 pods: ccc0000000" in page


def test_pods_not_ready_say_why_and_are_counted() -> None:
    snap = snapshot(
        pods=[pod("bbb2222222", "b1", ready=False, waiting="ImagePullBackOff")],
        deployments=[deployment("bbb2222222", 2, "registry.example/web:2", 20)],
    )
    page = text(snap)
    assert "pods 0/2 ready (1 exist)" in line_with(page, "revision bbb2222222")
    assert "ImagePullBackOff  not ready" in line_with(page, "web-bbb2222222-b1")


def test_the_page_changes_with_the_step_and_the_weights() -> None:
    before = text(snapshot())
    later = canary(
        currentStepIndex=3,
        step="3/5",
        stepStartedAt=stamp(12),
        weights={"stable": 50, "canary": 50, "mirror": 0},
    )
    after = text(snapshot(later))
    assert "step 2 of 5" in before and "canary 25%" in before
    assert "step 4 of 5" in after and "canary 50%" in after and "canary 25%" not in after
    assert "pause 30s (18s left)" in after  # a timed pause counts down


def test_an_abort_and_a_hold_are_explained() -> None:
    aborted = canary(
        phase="Degraded",
        abort={
            "revision": "bbb2222222",
            "at": stamp(90),
            "reason": "AbortedByUser",
            "message": "abort by RolloutAction web-abort-x (latency alert)",
        },
        held=True,
    )
    page = text(snapshot(aborted))
    assert "phase Degraded" in page
    aborted_row = row(page, "aborted")
    assert aborted_row.split()[:4] == ["aborted", "AbortedByUser", "90s", "ago:"]
    assert "latency alert" in aborted_row
    assert "held by a pause RolloutAction" in row(page, "paused")
    assert "aborted" in line_with(page, "revision bbb2222222")  # the revision is marked


def test_analysis_runs_show_counts_and_the_latest_measurement() -> None:
    run = {
        "name": "step-2",
        "revision": "bbb2222222",
        "phase": "Running",
        "startedAt": stamp(40),
        "metrics": [
            {
                "name": "error-rate",
                "phase": "Running",
                "successful": 3,
                "failed": 1,
                "measurements": [
                    {"at": stamp(20), "value": 0.5, "phase": "Failed"},
                    {"at": stamp(10), "value": 0.012, "phase": "Successful"},
                ],
            }
        ],
    }
    page = text(snapshot(canary(analysisRuns=[run])))
    header = line_with(page, "analysis step-2")
    assert "Running" in header and "✔ 3" in header and "✖ 1" in header
    metric = line_with(page, "error-rate")
    assert "latest 0.012 (Successful, 10s ago)" in metric
    # it hangs under the revision it judges
    lines = page.splitlines()
    assert lines.index(header) > lines.index(line_with(page, "revision bbb2222222"))
    assert lines.index(header) < lines.index(line_with(page, "revision aaa1111111"))


def test_events_latest_last_at_most_eight_of_this_rollout_only() -> None:
    events = [event(n, f"Reason{n}", f"message {n}") for n in range(12)]
    other = {**event(20, "Elsewhere", "another object"), "involvedObject": {"uid": "other"}}
    page = text(snapshot(events=[*reversed(events), other]))
    shown = [line.split()[2] for line in page.splitlines() if " Reason" in line]
    assert shown == [f"Reason{n}" for n in range(4, 12)]
    assert "Elsewhere" not in page


def test_events_of_one_second_in_the_order_the_api_server_stored_them() -> None:
    """A repeated Event keeps its (older) name and gets a new lastTimestamp and version."""
    started = {**event(5, "RolloutStarted", "rolling out"), "lastTimestamp": stamp(10)}
    started["metadata"] = {"name": "web.0000000000000005", "resourceVersion": "900"}
    repeat = {**event(1, "StepPaused", "paused again"), "lastTimestamp": stamp(10)}
    repeat["metadata"] = {"name": "web.0000000000000001", "resourceVersion": "901"}
    listed = text(snapshot(events=[repeat, started])).split("Events:")[1]
    assert listed.index("RolloutStarted") < listed.index("StepPaused")


def test_actions_show_their_answer() -> None:
    action = {
        "metadata": {"name": "web-promote-abc12", "creationTimestamp": stamp(5)},
        "spec": {"rollout": "web", "action": "promote"},
        "status": {"phase": "Applied", "message": "promote by RolloutAction web-promote-abc12"},
    }
    pending = {
        "metadata": {"name": "web-abort-zz", "creationTimestamp": stamp(1)},
        "spec": {"rollout": "web", "action": "abort"},
    }
    page = text(snapshot(actions=[pending, action]))
    lines = page.splitlines()
    first = lines.index(line_with(page, "promote Applied"))
    assert lines[first].split()[0] == "actions" and "5s ago" in lines[first]
    assert "abort waiting for nonstop" in lines[first + 1]


def test_a_missing_rollout_and_unreadable_parts_are_said() -> None:
    gone = Snapshot(name="web", namespace="shop", rollout=None, notes=["cannot watch pods: 403"])
    page = text(gone)
    assert "Rollout web not found in namespace shop" in page and "cannot watch pods" in page
    noted = text(snapshot(notes=["cannot show events: forbidden: cannot list events"]))
    assert noted.rstrip().endswith("cannot show events: forbidden: cannot list events")


def test_progress_of_each_kind_of_strategy() -> None:
    done = canary(phase="Healthy", currentStepIndex=5, currentRevision="aaa1111111")
    assert progress(done, NOW) is not None
    assert progress(done, NOW).label == "step 5 of 5"  # type: ignore[union-attr]
    blue_green = {
        "spec": {"replicas": 4, "strategy": {"blueGreen": {"previewService": "p"}}},
        "status": {"strategy": "blueGreen", "currentStepIndex": 1},
    }
    stage = progress(blue_green, NOW)
    assert stage is not None and stage.label == "stage 2 of 3" and "promotion" in stage.detail
    rolling = {
        "spec": {"replicas": 4, "strategy": {"rolling": {}}},
        "status": {
            "strategy": "rolling",
            "currentRevision": "b",
            "stableRevision": "a",
            "updatedReadyReplicas": 3,
        },
    }
    pods = progress(rolling, NOW)
    assert pods is not None and (pods.label, pods.done, pods.total) == ("pods 3/4", 3, 4)


def test_steps_in_words() -> None:
    assert describe_step({"setWeight": 0.5}) == "setWeight 0.5%"
    assert describe_step({"pause": {}}) == "pause (until promoted)"
    assert describe_step({"pause": {"duration": "1m"}}, NOW - timedelta(seconds=15), NOW) == (
        "pause 1m (45s left)"
    )
    assert describe_step({"setCanaryScale": {"replicas": 2}}) == "setCanaryScale: 2 pods"
    assert describe_step({"setHeaderRoute": {"name": "beta"}}) == "setHeaderRoute beta"
    analysis = {"analysis": {"templates": [{"templateName": "errors"}]}}
    assert describe_step(analysis) == "analysis errors"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (1500, "25m"),
        (4 * 3600 + 600, "4h10m"),
        (3 * 86400, "3d"),
    ],
)
def test_ages_as_kubectl_shows_them(seconds: int, shown: str) -> None:
    assert age(stamp(seconds), NOW) == shown


def test_the_list_has_kubectls_columns_and_a_namespace_column_with_all_namespaces() -> None:
    other = copy.deepcopy(canary(phase="Healthy", message="revision aaa is stable"))
    other["metadata"].update(name="api", namespace="blue")
    table = as_text(render_list([canary(), other], NOW, all_namespaces=True), 160)
    header, *rows = [line.split() for line in table.strip().splitlines()]
    assert header == [
        *["NAMESPACE", "NAME", "STRATEGY", "STEP", "WEIGHT", "READY", "PHASE", "AGE", "MESSAGE"],
    ]
    assert rows[0][:8] == ["blue", "api", "canary", "1/5", "25", "4/4", "Healthy", "10m"]
    assert rows[1][:8] == ["shop", "web", "canary", "1/5", "25", "4/4", "Paused", "10m"]
    one = as_text(render_list([canary()], NOW, all_namespaces=False), 160)
    assert one.split()[0] == "NAME"


def test_a_live_page_is_redrawn_only_when_its_text_changes() -> None:
    """show(): the clock and every watch event ask for a page; only a new text is drawn."""
    out = StringIO()
    console = Console(file=out, width=60, force_terminal=False, color_system=None)
    changed = threading.Event()
    pages = iter(["step 1 of 2", "step 1 of 2", "step 1 of 2", "step 2 of 2", "step 2 of 2"])

    def page() -> RenderableType:
        changed.set()  # as a watch event would: no waiting in the test
        try:
            return Text(next(pages))
        except StopIteration:
            raise KeyboardInterrupt from None

    with pytest.raises(KeyboardInterrupt):
        show(console, changed, page)
    drawn = out.getvalue()
    assert drawn.count("step 1 of 2") == 1 and drawn.count("step 2 of 2") == 1


class FakeStore:
    """An informer's store whose contents move on at each read; Ctrl-C after the last."""

    def __init__(self, *versions: list[dict[str, Any]]) -> None:
        self.versions = list(versions)

    def items(self) -> list[dict[str, Any]]:
        if not self.versions:
            raise KeyboardInterrupt
        return self.versions.pop(0)


class FakeWatch:
    """What follow() uses of RolloutWatch, with the Rollout changing twice."""

    def __init__(self, *_: Any) -> None:
        first = canary()
        first["metadata"]["resourceVersion"] = "1"
        second = canary(currentStepIndex=3, weights={"stable": 50, "canary": 50})
        second["metadata"]["resourceVersion"] = "2"
        self.rollout = types.SimpleNamespace(store=FakeStore([first], [first], [second]))
        self.changed, self.rollout_changed = threading.Event(), threading.Event()
        self.rollout_changed.set()
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def snapshot(self) -> Snapshot:
        self.changed.set()
        return snapshot(self.rollout.store.items()[0])


def test_a_watch_ends_with_exit_0_on_ctrl_c_and_prints_each_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "RolloutWatch", FakeWatch)
    monkeypatch.setattr(live, "TICK", 0.01)
    monkeypatch.setattr(live, "quiet_logs", lambda: None)  # global: not in a test session
    out = StringIO()
    console = Console(file=out, width=100, force_terminal=False, color_system=None)
    assert live.follow(cast(Kube, None), "shop", "web", console, output="yaml") == 0
    documents = list(yaml.safe_load_all(out.getvalue()))
    assert [d["status"]["currentStepIndex"] for d in documents] == [1, 3]  # once per version
    out.truncate(0)
    out.seek(0)
    assert live.follow(cast(Kube, None), "shop", "web", console, now=lambda: NOW) == 0
    pages = out.getvalue().split("─" * 80 + "\n")
    assert len(pages) == 2 and "canary 25%" in pages[0] and "canary 50%" in pages[1]
