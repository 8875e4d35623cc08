"""The Event recorder: the pure decisions (post, patch with count N, drop), and the Recorder
doing them through fake post and patch calls, on a clock of the test's own."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nonstop.kube.client import Kube, event_body
from nonstop.kube.recorder import (
    SPAM_BURST,
    SPAM_QPS,
    Drop,
    Lru,
    Patch,
    Post,
    Recorder,
    Seen,
    admit,
    decide,
)
from tests.memory_kube import api_error

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rollout(name: str = "web", uid: str = "uid-web") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "uid": uid}}


class World:
    """The API server's Events, as the fake post and patch calls keep them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events: dict[str, dict[str, Any]] = {}
        self.posted: list[str] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.fail_post: Exception | None = None
        self._names = itertools.count()
        self.recorder = Recorder(self.post, self.patch, clock=lambda: self.now)

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail_post is not None:
            raise self.fail_post
        name = body["metadata"]["name"]
        self.events[name] = dict(body)
        self.posted.append(name)
        return self.events[name]

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        assert namespace == "shop"
        if name not in self.events:
            raise api_error(404)
        self.events[name].update(body)
        self.patched.append((name, body))

    def record(
        self, message: str = "scaled up", reason: str = "Scaled", obj: dict[str, Any] | None = None
    ) -> Post | Patch | Drop:
        at = T0 + timedelta(seconds=self.now)
        suffix = f"{next(self._names):x}"
        body = event_body(obj or rollout(), suffix, at, "Normal", reason, message)
        return self.recorder.record(body)


# --- the pure decisions ------------------------------------------------------------------
def test_decide_new_repeat_and_expired() -> None:
    assert decide(None, 0.0) == Post()
    seen = Seen("shop", "web.1", 2, at=100.0)
    assert decide(seen, 100.0 + 600.0) == Patch("web.1", 3)  # within the window
    assert decide(seen, 100.0 + 600.1) == Post()  # past it: a new Event
    assert decide(seen, 150.0, window=10.0) == Post()


def test_admit_is_a_burst_refilled_one_per_interval() -> None:
    bucket = None
    for _ in range(SPAM_BURST):
        bucket = admit(bucket, 0.0)
        assert bucket is not None
    assert admit(bucket, 0.0) is None
    interval = 1.0 / SPAM_QPS
    assert admit(bucket, interval - 1.0) is None
    assert admit(bucket, interval) is not None


def test_lru_forgets_the_least_recently_used() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the more recent
    lru.put("c", 3)
    assert "b" not in lru
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)


# --- the recorder --------------------------------------------------------------------------
def test_a_repeat_patches_the_event_with_count_2_then_3() -> None:
    world = World()
    assert world.record() == Post()
    world.now = 30.0
    assert world.record() == Patch("web.0", 2)
    world.now = 60.0
    assert world.record() == Patch("web.0", 3)
    assert world.posted == ["web.0"]
    event = world.events["web.0"]
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2026-01-01T00:00:00Z"
    assert event["lastTimestamp"] == "2026-01-01T00:01:00Z"
    assert world.patched[0] == ("web.0", {"count": 2, "lastTimestamp": "2026-01-01T00:00:30Z"})


def test_another_message_reason_or_object_is_a_new_event() -> None:
    world = World()
    world.record("scaled up")
    assert world.record("scaled down") == Post()
    assert world.record("scaled up", reason="Paused") == Post()
    assert world.record("scaled up", obj=rollout("api", "uid-api")) == Post()
    assert world.posted == ["web.0", "web.1", "web.2", "api.3"]
    assert world.patched == []


def test_a_repeat_after_the_window_is_a_new_event() -> None:
    world = World()
    world.record()
    world.now = 601.0
    assert world.record() == Post()
    world.now = 602.0
    assert world.record() == Patch("web.1", 2)  # counted on the new one


def test_spam_filter_drops_past_the_burst_and_allows_again_after_the_refill() -> None:
    world = World()
    for i in range(SPAM_BURST):
        assert world.record(f"message {i}") == Post()
    assert world.record(f"message {SPAM_BURST}") == Drop()
    assert world.record("message 0") == Drop()  # a count update is a write too
    assert len(world.posted) == SPAM_BURST
    assert world.record("other", obj=rollout("api", "uid-api")) == Post()  # per object
    world.now = 1.0 / SPAM_QPS  # one token back
    assert world.record("message next") == Post()
    assert world.record("message after") == Drop()
    assert len(world.posted) == SPAM_BURST + 2


def test_caches_are_bounded() -> None:
    world = World()
    world.recorder = Recorder(world.post, world.patch, clock=lambda: world.now, cache_size=3)
    for i in range(5):
        world.record(f"message {i}", obj=rollout(f"r{i}", f"uid-{i}"))
    assert len(world.recorder.seen) == 3
    assert len(world.recorder.spam) == 3
    # the first was forgotten: its repeat is a new Event, a later one's is still counted
    assert world.record("message 0", obj=rollout("r0", "uid-0")) == Post()
    assert world.record("message 4", obj=rollout("r4", "uid-4")) == Patch("r4.4", 2)


def test_a_404_on_the_patch_posts_a_new_event() -> None:
    world = World()
    world.record()
    del world.events["web.0"]  # the Event's TTL passed
    world.now = 10.0
    assert world.record() == Post()
    assert world.posted == ["web.0", "web.1"]
    assert world.events["web.1"]["count"] == 1
    world.now = 20.0
    assert world.record() == Patch("web.1", 2)  # and repeats count on the new one


def test_other_patch_errors_are_raised() -> None:
    world = World()

    def failing(namespace: str, name: str, body: dict[str, Any]) -> None:
        raise api_error(500)

    world.recorder = Recorder(world.post, failing, clock=lambda: world.now)
    world.record()  # posted
    with pytest.raises(Exception, match="500"):
        world.record()  # the repeat's count update fails
    assert world.posted == ["web.0"]


def test_a_failed_post_leaves_no_event_to_patch() -> None:
    world = World()
    world.fail_post = api_error(500)
    with pytest.raises(Exception, match="500"):
        world.record()
    world.fail_post = None
    assert world.record() == Post()  # posted, not a patch of an Event that is not there
    assert world.posted == ["web.1"]


def test_concurrent_repeats_make_one_event_and_count_each() -> None:
    world = World()
    lock = threading.Lock()
    post, patch = world.post, world.patch

    def locked_post(body: dict[str, Any]) -> dict[str, Any]:
        with lock:
            return post(body)

    def locked_patch(namespace: str, name: str, body: dict[str, Any]) -> None:
        with lock:
            patch(namespace, name, body)

    world.recorder = Recorder(locked_post, locked_patch, clock=lambda: world.now)
    world.record()  # the first is posted before the threads start
    threads = [threading.Thread(target=world.record) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.posted == ["web.0"]
    # each repeat got a count of its own (the patches may land out of order)
    assert sorted(b["count"] for _, b in world.patched) == list(range(2, 22))


# --- Kube.post_event goes through the recorder ---------------------------------------------
def test_kube_post_event_patches_a_repeat() -> None:
    requests: list[tuple[str, str, Any, str]] = []

    class Api:
        user_agent = ""

        def param_serialize(self, method: str, path: str, **kw: Any) -> tuple[Any, ...]:
            ctype = kw["header_params"]["Content-Type"]
            requests.append((method, path, kw.get("body"), ctype))
            return (method, path, {}, None, None)

        def call_api(self, *_: Any, **__: Any) -> Any:
            class Response:
                status, reason, data = 200, "OK", b"{}"

                def read(self) -> None:
                    pass

            return Response()

    kube = Kube(Api())  # type: ignore[arg-type]
    kube.post_event(rollout(), "Warning", "Stuck", "no progress")
    kube.post_event(rollout(), "Warning", "Stuck", "no progress")
    (m1, p1, body, _), (m2, p2, update, ctype) = requests
    assert (m1, p1) == ("POST", "/api/v1/namespaces/shop/events")
    assert body["metadata"]["name"].startswith("web.")
    int(body["metadata"]["name"].removeprefix("web."), 16)  # <rollout>.<hex nanos>
    assert body["reportingComponent"] == "nonstop.dev/operator"
    assert (m2, p2) == ("PATCH", f"/api/v1/namespaces/shop/events/{body['metadata']['name']}")
    assert update["count"] == 2
    assert ctype == "application/merge-patch+json"
