"""One list+watch of one kind of object, kept in a Store: an informer, as client-go has.

A thread lists (in pages), then watches from the list's resourceVersion with bookmarks, so
that a watch that ends (the API server closes every watch after timeoutSeconds) resumes
where it stopped and lists nothing again. Only when the API server says that version is
gone (410 GoneError: etcd compacted it) does it list again; the Store then reports what changed
meanwhile, deletions included, so that a change made while the watch was down is still
acted on. A failed request (API server restart, network) is retried with backoff, never
given up; a kind the API server does not serve (a CRD not installed: 404) or may not show
(403) is recorded as the informer's `error`, which the readers report, and retried slowly.

Filters are the API server's (label and field selectors), so that only nonstop's objects
travel; `keep` filters what the server cannot (namespace patterns such as `!kube-*`).

Compare client-go's Reflector (tools/cache/reflector.go): list, watch from the list's
version, resume from the last version seen, relist on "too old resource version".
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import urllib3
from kubernetes.client.exceptions import ApiException

from nonstop import metrics
from nonstop.kube.client import Kube, WatchStream
from nonstop.kube.store import Change, Indexer, Obj, Slim, Store, trimmed

log = structlog.get_logger("nonstop.informer")

PAGE = 500
WATCH_SECONDS = 300  # a watch lasts 5-10 minutes (client-go: minWatchTimeout 5 min x [1, 2))
MAX_BACKOFF = 30.0
UNSERVED_RETRY = 300.0  # a kind that is not served (CRD missing) is looked for again after


class GoneError(Exception):
    """The version to resume from is compacted away: list again."""


@dataclass(frozen=True)
class Resource:
    """Where a kind lives: its API prefix ("/api/v1", "/apis/apps/v1") and plural."""

    prefix: str
    plural: str

    def path(self, namespace: str | None) -> str:
        if namespace:
            return f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.prefix}/{self.plural}"


def _always(_: Obj) -> bool:
    return True


class Informer:
    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        on_changes: Callable[[list[Change]], None],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        index: Indexer | None = None,
        keep: Callable[[Obj], bool] = _always,
        slim: Slim = trimmed,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.store = Store(index, slim)
        self.synced = threading.Event()  # set after the first list (or the first error)
        self.error: str | None = None  # the API server's refusal, e.g. "404 Not Found"
        self._on_changes = on_changes
        self._selectors = {
            k: v
            for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if v
        }
        self._keep = keep
        self._stopped = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self.lists = 0  # how many times it listed (the first, and after each 410)
        self._version: str | None = None  # where the next watch starts; None: list first

    @property
    def name(self) -> str:
        where = self.namespace or "*"
        selectors = ",".join(self._selectors.values())
        return f"{self.resource.plural}/{where}" + (f"[{selectors}]" if selectors else "")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"watch {self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # closing a broken connection is not worth more
                log.debug("watch close failed", informer=self.name, error=str(exc))

    # --- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                if self._version is None:
                    self._version = self._list()
                self._watch()
                failures = 0
            except GoneError:
                log.info("watch version gone: listing again", informer=self.name)
                self._version = None
            except ApiException as exc:
                failures += 1
                if exc.status in (403, 404):  # not served, or not allowed: say so, look later
                    self.error = f"{exc.status} {exc.reason}"
                    self.synced.set()
                    self._version = None
                    wait = UNSERVED_RETRY
                else:
                    wait = min(MAX_BACKOFF, 2.0 ** min(failures, 5))
                log.warning("list/watch failed", informer=self.name, error=str(exc)[:300])
                self._stopped.wait(wait)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                failures += 1  # connection lost (API server restart): resume where it was
                if not self._stopped.is_set():
                    log.warning("watch interrupted", informer=self.name, error=str(exc)[:300])
                self._stopped.wait(min(MAX_BACKOFF, 0.5 * 2.0 ** min(failures, 6)))
            except Exception as exc:  # anything else: this thread must never die; list again
                failures += 1
                log.error("list/watch broke", informer=self.name, error=repr(exc)[:300])
                self._version = None
                self._stopped.wait(min(MAX_BACKOFF, 2.0 ** min(failures, 5)))

    def _list(self) -> str:
        items: list[Obj] = []
        query: dict[str, str] = {**self._selectors, "limit": str(PAGE)}
        path = self.resource.path(self.namespace)
        while True:
            try:
                page = self.kube.list_page(path, query)
            except ApiException as exc:
                if exc.status == 410 and "continue" in query:  # the list's snapshot expired
                    items, query = [], {**self._selectors, "limit": str(PAGE)}
                    continue
                raise
            items.extend(item for item in page.get("items") or [] if self._keep(item))
            more = (page.get("metadata") or {}).get("continue")
            if not more:
                version = str((page.get("metadata") or {}).get("resourceVersion", ""))
                break
            query = {**query, "continue": more}
        self.lists += 1
        try:
            listed_at: int | None = int(version)
        except ValueError:
            listed_at = None
        changes = self.store.replace(items, listed_at)
        self.error = None
        self.synced.set()
        if changes:
            self._on_changes(changes)
        return version

    def _watch(self) -> None:
        """Watch from self._version, moving it on with every event and bookmark, so that
        a watch that ends or breaks resumes where it stopped."""
        assert self._version is not None
        query = {
            **self._selectors,
            "resourceVersion": self._version,
            "allowWatchBookmarks": "true",
        }
        seconds = int(WATCH_SECONDS * (1 + random.random()))
        stream = self.kube.watch(self.resource.path(self.namespace), query, seconds)
        self._stream = stream
        try:
            for event in stream:
                if self._stopped.is_set():
                    break
                self._version = self._handle(event, self._version)
        finally:
            self._stream = None
            stream.close()

    def _handle(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        metrics.WATCH_EVENTS.labels(self.resource.plural, str(kind)).inc()
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise GoneError
            raise ApiException(status=obj.get("code") or 500, reason=obj.get("message"))
        now = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "BOOKMARK" or not self._keep(obj):
            return now
        change = self.store.apply(str(kind), obj)
        if change is not None:
            self._on_changes([change])
        return now
