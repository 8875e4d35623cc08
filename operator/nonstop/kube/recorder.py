"""Event recording with de-duplication and a spam filter, like client-go's EventCorrelator
(k8s.io/client-go/tools/record/events_cache.go).

- De-duplication: an Event that repeats one posted for the same object (same involvedObject
  uid, type, reason and message) within WINDOW seconds of its last occurrence is not posted
  again: the Event already there gets a merge patch with count + 1 and the new
  lastTimestamp. If that Event is gone (PATCH answers 404: the API server's Event TTL, an
  hour by default, has passed), a new one is posted.
- Spam filter (client-go's EventSourceObjectSpamFilter): per involved object a token bucket
  of SPAM_BURST tokens, refilled at one every 5 minutes. Every write (a new Event or a count
  update) takes a token; an Event that finds none is dropped, logged at debug. This bounds
  the Events of a Rollout that is stuck and says so on every pass.
- Both caches are LRU, at most CACHE_SIZE keys (client-go's maxLruCacheEntries).

client-go's aggregation of similar Events (same reason, messages differing, 10 in 10
minutes) is not done here: nonstop's messages per reason are few and fixed.

`decide` and `admit` are the decisions, pure; `Recorder` keeps the state under a lock and
does the I/O through the two callables it is given, outside the lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from kubernetes.client.exceptions import ApiException

from nonstop.kube.ratelimit import Bucket, full, try_take

log = structlog.get_logger("nonstop.events")

WINDOW = 600.0  # seconds since the last occurrence in which a repeat updates the Event
# client-go's spam filter allows 25 Events per object, then one every 5 minutes. nonstop
# posts an Event per state change, and a long canary (20 steps, ~3 Events a step) tells
# more than 25 in minutes: dropping those would cut `kubectl describe`'s story. So the
# burst is larger and refills faster, still bounding a flood to 6 Events a minute.
SPAM_BURST = 100
SPAM_QPS = 1.0 / 10.0
CACHE_SIZE = 4096  # client-go's maxLruCacheEntries

K = TypeVar("K")
V = TypeVar("V")
EventKey = tuple[str, str, str, str]  # involvedObject uid, type, reason, message


@dataclass(frozen=True)
class Seen:
    """The Event posted for a key: where it is, its count, when it last happened (clock)."""

    namespace: str
    name: str
    count: int
    at: float


@dataclass(frozen=True)
class Post:
    """Post the Event as a new one."""


@dataclass(frozen=True)
class Patch:
    """Update the Event `name`: count `count`, lastTimestamp now."""

    name: str
    count: int


@dataclass(frozen=True)
class Drop:
    """Do not write: the object's spam budget is spent."""


Decision = Post | Patch | Drop


def event_key(body: dict[str, Any]) -> EventKey:
    involved = body["involvedObject"]
    return (involved["uid"], body["type"], body["reason"], body["message"])


def spam_key(body: dict[str, Any]) -> str:
    uid: str = body["involvedObject"]["uid"]
    return uid


def decide(seen: Seen | None, now: float, window: float = WINDOW) -> Post | Patch:
    """A repeat within `window` of the last occurrence updates that Event; else a new one."""
    if seen is None or now - seen.at > window:
        return Post()
    return Patch(seen.name, seen.count + 1)


def admit(
    bucket: Bucket | None, now: float, qps: float = SPAM_QPS, burst: int = SPAM_BURST
) -> Bucket | None:
    """The object's spam bucket after this Event takes its token, or None: drop the Event."""
    return try_take(bucket or full(burst, now), now, qps, burst)


class Lru(Generic[K, V]):
    """A dict of at most `size` keys; adding one more forgets the least recently used."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


PostFn = Callable[[dict[str, Any]], dict[str, Any] | str | None]
PatchFn = Callable[[str, str, dict[str, Any]], object]


class Recorder:
    """Posts Events through `post(body)` (answers the created Event, its name, or None) and
    updates repeats through `patch(namespace, name, merge_patch)`. Thread-safe."""

    def __init__(
        self,
        post: PostFn,
        patch: PatchFn,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: float = WINDOW,
        spam_burst: int = SPAM_BURST,
        spam_qps: float = SPAM_QPS,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._post = post
        self._patch = patch
        self._clock = clock
        self.window = window
        self.spam_burst = spam_burst
        self.spam_qps = spam_qps
        self._lock = threading.Lock()
        self.seen: Lru[EventKey, Seen] = Lru(cache_size)
        self.spam: Lru[str, Bucket] = Lru(cache_size)

    def record(self, body: dict[str, Any]) -> Decision:
        """Post, update or drop the Event `body` (as event_body builds it); what was done.

        Errors of post and patch (other than a PATCH's 404) are raised to the caller."""
        key = event_key(body)
        with self._lock:
            now = self._clock()
            bucket = admit(self.spam.get(spam_key(body)), now, self.spam_qps, self.spam_burst)
            if bucket is None:
                log.debug("event dropped: too many for this object", reason=body["reason"])
                return Drop()
            self.spam.put(spam_key(body), bucket)
            decision = decide(self.seen.get(key), now, self.window)
            # Taken now, before the I/O, so a concurrent repeat patches this Event rather
            # than posting a second one (the Event's name is chosen here, not by the server).
            self._remember(key, body, decision, now)
        if isinstance(decision, Patch):
            meta = body["metadata"]
            update = {"count": decision.count, "lastTimestamp": body["lastTimestamp"]}
            try:
                self._patch(meta["namespace"], decision.name, update)
                return decision
            except ApiException as exc:
                if exc.status != 404:
                    raise
            with self._lock:  # the Event expired: post a new one, and count from it
                self._remember(key, body, Post(), now)
        return self._post_new(key, body)

    def _remember(
        self, key: EventKey, body: dict[str, Any], decision: Decision, now: float
    ) -> None:
        meta = body["metadata"]
        if isinstance(decision, Patch):
            self.seen.put(key, Seen(meta["namespace"], decision.name, decision.count, now))
        elif isinstance(decision, Post):
            self.seen.put(key, Seen(meta["namespace"], meta["name"], 1, now))

    def _post_new(self, key: EventKey, body: dict[str, Any]) -> Post:
        try:
            answer = self._post(body)
        except Exception:
            with self._lock:  # not posted: the next repeat must post, not patch
                seen = self.seen.get(key)
                if seen is not None and seen.name == body["metadata"]["name"]:
                    self.seen.pop(key)
            raise
        name = answer if isinstance(answer, str) else (answer or body)["metadata"]["name"]
        if name != body["metadata"]["name"]:  # the API server named it (generateName)
            with self._lock:
                seen = self.seen.get(key)
                if seen is not None and seen.name == body["metadata"]["name"]:
                    self.seen.put(key, Seen(seen.namespace, name, seen.count, seen.at))
        return Post()
