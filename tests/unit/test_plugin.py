"""The kubectl plugin: its status page, from JSON as the API server returns it, and the
RolloutActions it creates."""

from __future__ import annotations

from typing import Any, cast

import pytest

from nonstop.cli.plugin import act, action_body, render_status
from nonstop.kube.client import Kube


def test_status_page_shows_revisions_roles_conditions_and_events() -> None:
    rollout = {
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 4},
        "status": {
            "strategy": "rolling",
            "phase": "Degraded",
            "step": "rollback 4/4",
            "message": "rolled back to revision aaa",
            "currentRevision": "bbb",
            "stableRevision": "aaa",
            "abort": {"at": "t", "reason": "ProgressDeadlineExceeded", "message": "no progress"},
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "RolledBack"},
                {"type": "Stalled", "status": "True", "reason": "RolledBack"},
            ],
        },
    }

    def deployment(revision: str, replicas: int, created: str, image: str) -> dict[str, object]:
        return {
            "metadata": {
                "labels": {"nonstop.dev/revision": revision},
                "creationTimestamp": created,
            },
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"image": image}]}},
            },
            "status": {"readyReplicas": replicas, "availableReplicas": replicas},
        }

    events = [
        {
            "metadata": {"name": "web.2"},
            "type": "Normal",
            "reason": "RolledBack",
            "message": "back",
        },
        {
            "metadata": {"name": "web.1"},
            "type": "Warning",
            "reason": "RolloutAborted",
            "message": "x",
        },
    ]
    page = render_status(
        rollout,
        [
            deployment("aaa", 4, "2026-01-01T00:00:00Z", "web:1"),
            deployment("bbb", 0, "2026-01-02T00:00:00Z", "web:2"),
        ],
        events,
    )
    assert "Rollout web (namespace shop)" in page
    assert "phase Degraded" in page and "aborted" in page
    rows = {line.split()[0]: line for line in page.splitlines() if line.startswith(("aaa", "bbb"))}
    assert "stable" in rows["aaa"] and "web:1" in rows["aaa"]
    assert "current" in rows["bbb"] and "web:2" in rows["bbb"]
    assert "Stalled=True (RolledBack)" in page
    assert page.index("RolloutAborted") < page.index("RolledBack  ")  # events in order


class FakeKube:
    """Just what `act` calls: the Rollout, the created action, and its answer."""

    def __init__(self, rollout: dict[str, Any] | None) -> None:
        self.rollout = rollout
        self.created: list[tuple[str, dict[str, Any]]] = []

    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.rollout

    def create_action(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append((namespace, body))
        return {**body, "metadata": {**body["metadata"], "name": "web-abort-x7k2p"}}

    def get_action(self, namespace: str, name: str) -> dict[str, Any]:
        return {"status": {"phase": "Applied", "message": "abort by RolloutAction " + name}}


WEB = {"metadata": {"name": "web", "namespace": "shop", "uid": "0b1c-uid"}}


def test_an_action_is_owned_by_its_rollout_and_labelled_with_its_name() -> None:
    body = action_body(WEB, "promote-full", "looks good")
    assert body["apiVersion"] == "nonstop.dev/v1alpha1" and body["kind"] == "RolloutAction"
    assert body["metadata"]["generateName"] == "web-promote-full-"
    assert body["metadata"]["labels"] == {"nonstop.dev/rollout": "web"}
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "nonstop.dev/v1alpha1",
            "kind": "Rollout",
            "name": "web",
            "uid": "0b1c-uid",
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    assert body["spec"] == {"rollout": "web", "action": "promoteFull", "reason": "looks good"}
    assert "reason" not in action_body(WEB, "abort", None)["spec"]


def test_act_creates_the_owned_action_and_reports_the_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKube(WEB)
    assert act(cast(Kube, kube), "shop", "web", "abort", "latency", timeout=1) == 0
    [(namespace, body)] = kube.created
    assert namespace == "shop"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "0b1c-uid"
    assert "rolloutaction/web-abort-x7k2p Applied" in capsys.readouterr().out


def test_act_on_a_missing_rollout_creates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    kube = FakeKube(None)
    assert act(cast(Kube, kube), "shop", "web", "abort", None, timeout=1) == 1
    assert kube.created == []
    assert "Rollout web not found in namespace shop" in capsys.readouterr().err
