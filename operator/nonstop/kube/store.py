"""The objects one list+watch has seen, by (namespace, name): the cache's memory.

Pure bookkeeping, no I/O: kube/informer.py feeds it the API server's lists and watch
events, kube/cache.py feeds it the answers of nonstop's own writes (write-through, so that
the next pass reads what this one wrote even before the watch event arrives) and reads
from it. Every change that is a change (not an older or repeated version of what is held)
comes back as a `Change`, which the cache turns into wake-ups.

Versions: the API documents resourceVersion as opaque, but it is etcd's revision, an
integer that only grows, and client-go's own MutationCache compares it as one (see also
KEP-5504, comparable resource versions). That lets a watch event older than a write's
answer be recognised and dropped. A version that is not an integer is taken as newer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Obj = dict[str, Any]
Indexer = Callable[[Obj], Iterable[Hashable]]
Slim = Callable[[Obj], Obj]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def version(obj: Obj | None) -> int | None:
    if obj is None:
        return None
    try:
        return int(obj["metadata"].get("resourceVersion", ""))
    except (TypeError, ValueError):
        return None


def is_newer(candidate: Obj, held: Obj | None) -> bool:
    """Whether `candidate` is a later version of the object than `held`."""
    mine, theirs = version(candidate), version(held)
    if held is None or mine is None or theirs is None:
        return True
    return mine > theirs


def trimmed(obj: Obj) -> Obj:
    """The object without what no pass reads and what costs the most memory: managedFields
    and kubectl's last-applied copy of the whole object."""
    meta = obj.get("metadata")
    if not meta or (
        "managedFields" not in meta and LAST_APPLIED not in meta.get("annotations", {})
    ):
        return obj
    meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if LAST_APPLIED in meta.get("annotations", {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    return {**obj, "metadata": meta}


@dataclass(frozen=True)
class Change:
    """An object came, changed or went (`new` is None when it went)."""

    key: Key
    old: Obj | None
    new: Obj | None

    @property
    def obj(self) -> Obj:
        held = self.new if self.new is not None else self.old
        assert held is not None
        return held


class Store:
    """Thread-safe: watch threads write, pass threads read. Objects are never mutated in
    place (each version is a new dict), so a reader may keep what it got."""

    def __init__(self, index: Indexer | None = None, slim: Slim = trimmed) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, Obj] = {}
        self._index = index
        self._slim = slim  # what is kept of each object (memory: a fleet's pods add up)
        self._by: dict[Hashable, set[Key]] = {}

    # --- reads -------------------------------------------------------------------------
    def get(self, key: Key) -> Obj | None:
        with self._lock:
            return self._objects.get(key)

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())

    def all_keys(self) -> list[Key]:
        with self._lock:
            return list(self._objects)

    def by(self, value: Hashable) -> list[Obj]:
        """The objects whose index (see __init__) includes `value`."""
        with self._lock:
            return [self._objects[k] for k in self._by.get(value, ())]

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    # --- writes ------------------------------------------------------------------------
    def apply(self, type_: str, obj: Obj) -> Change | None:
        """A watch event (ADDED, MODIFIED, DELETED); None when it tells nothing new."""
        key = key_of(obj)
        with self._lock:
            held = self._objects.get(key)
            if type_ == "DELETED":
                return self._drop(key) if held is not None else None
            if held is not None and not is_newer(obj, held):
                return None  # a version already held (our own write's answer) or older
            return self._put(key, held, self._slim(obj))

    def write(self, obj: Obj) -> Change | None:
        """The answer of one of our writes: kept when newer than what the watch gave."""
        return self.apply("MODIFIED", obj)

    def remove(self, key: Key) -> Change | None:
        """An object we deleted (a later watch event brings it back if it lingers)."""
        with self._lock:
            return self._drop(key) if key in self._objects else None

    def replace(self, objects: Iterable[Obj], listed_at: int | None) -> list[Change]:
        """A fresh list: what it has, changed; what it lacks, gone, unless what is held is
        newer than the list (a write of ours answered after the list was read)."""
        changes: list[Change] = []
        seen: set[Key] = set()
        with self._lock:
            for obj in objects:
                key = key_of(obj)
                seen.add(key)
                held = self._objects.get(key)
                if held is None or is_newer(obj, held):
                    changes.append(self._put(key, held, self._slim(obj)))
            for key in [k for k in self._objects if k not in seen]:
                held_version = version(self._objects[key])
                if listed_at is not None and held_version is not None and held_version > listed_at:
                    continue
                changes.append(self._drop(key))
        return changes

    def _put(self, key: Key, held: Obj | None, obj: Obj) -> Change:
        if self._index is not None:
            if held is not None:
                self._unindex(key, held)
            for value in self._index(obj):
                self._by.setdefault(value, set()).add(key)
        self._objects[key] = obj
        return Change(key, held, obj)

    def _drop(self, key: Key) -> Change:
        held = self._objects.pop(key)
        if self._index is not None:
            self._unindex(key, held)
        return Change(key, held, None)

    def _unindex(self, key: Key, obj: Obj) -> None:
        assert self._index is not None
        for value in self._index(obj):
            keys = self._by.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by[value]
