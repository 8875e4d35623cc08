"""The watch-fed cache's pure parts: the store's versions, what a change wakes, the
namespace scope, and the informer's list/watch protocol (resume, bookmarks, 410 relist).

The informer's transport is a scripted stand-in for two calls (a list page, a watch
stream); the API server's real behaviour is exercised by the e2e suite, which runs the
operator on this cache against a real control plane.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from nonstop.kube import informer as informer_module
from nonstop.kube.cache import Scope, refs_of, slim_deployment, slim_pod, woken_by
from nonstop.kube.informer import Informer, Resource
from nonstop.kube.store import Change, Store, trimmed
from nonstop.plan.views import deployment_view, pod_problem, restart_count

PODS = Resource("/api/v1", "pods")


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(informer_module, "MAX_BACKOFF", 0.05)


def obj(name: str, version: int, ns: str = "team", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "resourceVersion": str(version),
            "labels": dict(labels),
        }
    }


def by_rollout(o: dict[str, Any]) -> list[Any]:
    rollout = o["metadata"]["labels"].get("nonstop.dev/rollout")
    return [(o["metadata"]["namespace"], rollout)] if rollout else []


# --- store -------------------------------------------------------------------------------
def test_an_older_or_repeated_version_changes_nothing() -> None:
    store = Store()
    assert store.apply("ADDED", obj("a", 5)) is not None
    assert store.apply("MODIFIED", obj("a", 5)) is None  # the same version again
    assert store.apply("MODIFIED", obj("a", 4)) is None  # older than held
    change = store.apply("MODIFIED", obj("a", 6))
    assert change is not None and change.old is not None
    assert change.old["metadata"]["resourceVersion"] == "5"


def test_a_write_answer_is_kept_and_its_watch_event_is_then_no_change() -> None:
    store = Store()
    store.apply("ADDED", obj("a", 5))
    assert store.write(obj("a", 9)) is not None  # our PATCH answered version 9
    assert store.apply("MODIFIED", obj("a", 7)) is None  # an earlier change arrives late
    assert store.apply("MODIFIED", obj("a", 9)) is None  # our own write's event
    held = store.get(("team", "a"))
    assert held is not None and held["metadata"]["resourceVersion"] == "9"


def test_delete_removes_whatever_version_is_held() -> None:
    store = Store()
    store.write(obj("a", 9))
    change = store.apply("DELETED", obj("a", 10))
    assert change is not None and change.new is None
    assert store.get(("team", "a")) is None
    assert store.apply("DELETED", obj("a", 10)) is None


def test_a_relist_reports_what_changed_and_went_but_keeps_newer_writes() -> None:
    store = Store(index=by_rollout)
    store.apply("ADDED", obj("same", 1, **{"nonstop.dev/rollout": "web"}))
    store.apply("ADDED", obj("changed", 2, **{"nonstop.dev/rollout": "web"}))
    store.apply("ADDED", obj("gone", 3, **{"nonstop.dev/rollout": "web"}))
    store.write(obj("written", 12, **{"nonstop.dev/rollout": "web"}))  # after the list
    changes = store.replace(
        [obj("same", 1, **{"nonstop.dev/rollout": "web"}), obj("changed", 8), obj("new", 9)],
        listed_at=10,
    )
    summary = {(c.key[1], c.new is None) for c in changes}
    assert summary == {("changed", False), ("gone", True), ("new", False)}
    assert store.get(("team", "written")) is not None  # newer than the list: kept
    # the index follows: "changed" lost its label, "gone" went
    assert {o["metadata"]["name"] for o in store.by(("team", "web"))} == {"same", "written"}


def test_trimmed_drops_managed_fields_and_the_last_applied_copy() -> None:
    raw = obj("a", 1)
    raw["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    raw["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        "keep": "me",
    }
    slim = trimmed(raw)
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["annotations"] == {"keep": "me"}
    assert "managedFields" in raw["metadata"]  # the original is not changed


# --- what wakes what -----------------------------------------------------------------------
def test_a_pod_that_lost_its_label_still_wakes_its_former_rollout() -> None:
    old = obj("p", 1, **{"nonstop.dev/rollout": "web"})
    new = obj("p", 2)
    assert woken_by("Pod", Change(("team", "p"), old, new)) == {("team", "web")}


def test_an_action_wakes_its_target_and_a_rollout_itself() -> None:
    action = obj("promote-1", 3)
    action["spec"] = {"rollout": "web"}
    assert woken_by("RolloutAction", Change(("team", "promote-1"), None, action)) == {
        ("team", "web")
    }
    assert woken_by("Rollout", Change(("team", "web"), None, obj("web", 1))) == {("team", "web")}
    assert woken_by("Service", Change(("team", "web"), None, obj("web", 1))) == set()


def test_a_rollout_names_its_services_route_flags_and_templates() -> None:
    raw: dict[str, Any] = {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "team", "uid": "u1", "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
            "service": {"name": "web", "ports": [{"port": 80}]},
            "trafficRouting": {"gatewayAPI": {"httpRoute": "web-route", "namespace": "edge"}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 50},
                        {"analysis": {"templates": [{"name": "success-rate"}]}},
                    ]
                }
            },
        },
    }
    refs = refs_of(raw)
    assert ("Service", "team", "web") in refs
    assert ("Service", "team", "web-canary") in refs
    assert ("HTTPRoute", "edge", "web-route") in refs
    assert ("AnalysisTemplate", "team", "success-rate") in refs


# --- namespaces ------------------------------------------------------------------------
def test_plain_names_get_a_watch_each_and_patterns_filter_a_cluster_wide_one() -> None:
    named = Scope.of(["team-a", "team-b"])
    assert named.watches() == ["team-a", "team-b"]
    assert named.keeps("team-a") and not named.keeps("team-c")
    patterned = Scope.of(["!real-*"])
    assert patterned.watches() == [None]
    assert patterned.keeps("team-a") and not patterned.keeps("real-traffic")
    mixed = Scope.of(["team-*,!team-secret"])
    assert mixed.keeps("team-a") and not mixed.keeps("team-secret") and not mixed.keeps("ops")
    everything = Scope.of([])
    assert everything.watches() == [None] and everything.keeps("anything")


# --- the informer's protocol -----------------------------------------------------------------
class Script:
    """Answers list_page and watch from a script, and records what was asked."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[Any]]) -> None:
        self.lists, self.watches = lists, watches
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.done = threading.Event()

    def list_page(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        self.asked.append(("list", dict(query)))
        return self.lists.pop(0)

    def watch(self, path: str, query: dict[str, str], timeout_seconds: int) -> Any:
        self.asked.append(("watch", dict(query)))
        if not self.watches:
            self.done.set()
            raise ApiException(status=403, reason="Forbidden")  # ends the test's run
        events = self.watches.pop(0)
        return Stream(events)


class Stream:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event

    def close(self) -> None:
        pass


def run_informer(script: Script) -> tuple[Informer, list[Change]]:
    seen: list[Change] = []
    informer = Informer(script, PODS, seen.extend, label_selector="nonstop.dev/rollout")  # type: ignore[arg-type]
    informer.start()
    assert script.done.wait(5)
    informer.stop()
    return informer, seen


def listing(version: int, *items: dict[str, Any], more: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(version)}
    if more:
        meta["continue"] = more
    return {"metadata": meta, "items": list(items)}


def test_lists_in_pages_then_watches_from_the_list_and_resumes_after_bookmarks() -> None:
    script = Script(
        lists=[listing(0, obj("a", 1), more="next"), listing(10, obj("b", 2))],
        watches=[
            [
                {"type": "ADDED", "object": obj("c", 11)},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
            ],
            [{"type": "MODIFIED", "object": obj("c", 16)}],
        ],
    )
    informer, seen = run_informer(script)
    lists = [q for kind, q in script.asked if kind == "list"]
    assert lists[0]["labelSelector"] == "nonstop.dev/rollout" and "continue" not in lists[0]
    assert lists[1]["continue"] == "next"
    watches = [q for kind, q in script.asked if kind == "watch"]
    assert watches[0]["resourceVersion"] == "10"  # the list's version
    assert watches[0]["allowWatchBookmarks"] == "true"
    assert watches[1]["resourceVersion"] == "15"  # the bookmark's: no list again
    assert watches[2]["resourceVersion"] == "16"
    assert informer.lists == 1
    assert [c.key[1] for c in seen] == ["a", "b", "c", "c"]


def test_a_410_lists_again_and_reports_what_went_meanwhile() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    script = Script(
        lists=[listing(10, obj("a", 1), obj("b", 2)), listing(40, obj("b", 30))],
        watches=[[gone], []],
    )
    informer, seen = run_informer(script)
    assert informer.lists == 2
    after = seen[2:]  # the second list's changes
    assert {(c.key[1], c.new is None) for c in after} == {("a", True), ("b", False)}
    assert [q["resourceVersion"] for k, q in script.asked if k == "watch"][:2] == ["10", "40"]


def test_a_broken_connection_resumes_from_the_last_version_seen() -> None:
    script = Script(
        lists=[listing(10)],
        watches=[
            [{"type": "ADDED", "object": obj("a", 12)}, OSError("connection reset")],
            [],
        ],
    )
    informer, _ = run_informer(script)
    assert informer.lists == 1
    assert [q["resourceVersion"] for k, q in script.asked if k == "watch"][:2] == ["10", "12"]


def test_a_kind_the_server_does_not_serve_is_an_error_the_readers_see() -> None:
    class Unserved(Script):
        def list_page(self, path: str, query: dict[str, str]) -> dict[str, Any]:
            self.done.set()
            raise ApiException(status=404, reason="Not Found")

    informer, _ = run_informer(Unserved([], []))
    assert informer.synced.wait(5)
    assert informer.error == "404 Not Found"


@pytest.mark.parametrize("version", ["", "abc"])
def test_a_version_that_is_no_number_is_taken_as_newer(version: str) -> None:
    store = Store()
    store.apply("ADDED", obj("a", 5))
    odd = obj("a", 0)
    odd["metadata"]["resourceVersion"] = version
    assert store.apply("MODIFIED", odd) is not None


def test_an_unexpected_error_never_ends_the_watch_thread() -> None:
    """Found in e2e: closing a watch the server had ended raised RuntimeError, and the
    thread died, leaving a kind unwatched. Whatever breaks, the informer lists again."""

    class Breaking(Stream):
        def close(self) -> None:
            raise RuntimeError("Cannot shutdown as connection has already been released")

    class Script2(Script):
        def watch(self, path: str, query: dict[str, str], timeout_seconds: int) -> Any:
            stream = super().watch(path, query, timeout_seconds)
            return Breaking(stream.events)

    script = Script2(lists=[listing(10), listing(20)], watches=[[]])
    informer, _ = run_informer(script)
    assert informer.lists == 2  # it survived, and listed again rather than trust its version


def test_what_the_cache_keeps_of_pods_and_deployments_gives_the_same_views() -> None:
    """Pods lose their spec and Deployments their pod template in memory: the views a pass
    builds from them must not change."""
    deployment = obj("web-abc", 7, **{"nonstop.dev/rollout": "web", "nonstop.dev/revision": "abc"})
    deployment["metadata"]["generation"] = 3
    deployment["spec"] = {"replicas": 4, "template": {"spec": {"containers": [{"name": "a"}]}}}
    deployment["status"] = {"replicas": 4, "readyReplicas": 3, "availableReplicas": 2}
    deployment["status"]["observedGeneration"] = 3
    assert deployment_view(slim_deployment(deployment)) == deployment_view(deployment)
    assert "template" not in slim_deployment(deployment)["spec"]

    pod = obj("web-abc-1", 8, **{"nonstop.dev/rollout": "web", "nonstop.dev/revision": "abc"})
    pod["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    pod["spec"] = {"containers": [{"name": "app", "image": "web:2"}]}
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ],
    }
    assert pod_problem(slim_pod(pod)) == pod_problem(pod)
    assert restart_count([slim_pod(pod)]) == restart_count([pod])
    assert "spec" not in slim_pod(pod)
