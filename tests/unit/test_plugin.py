"""The kubectl plugin's status page, from JSON as the API server returns it."""

from __future__ import annotations

from nonstop.cli.plugin import render_status


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
