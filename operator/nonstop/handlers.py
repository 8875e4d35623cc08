"""kopf runs the operator (start-up, shutdown, signals, liveness); the watch-fed cache
(kube/cache.py) watches the cluster and wakes the Rollouts a change concerns.

No kopf resource handlers: kopf's watches filter labels in the operator, and its change
handlers, daemons and timers would put a finalizer and bookkeeping annotations on every
Rollout (kopf issue 1074), so that deleting a Rollout would hang whenever the operator is
down. The cache's informers need neither.

With leader election (`nonstop run --leader-elect`, on in the Helm chart), every replica
keeps the cache, but only the holder of the Lease runs passes (leader.py): on the others,
wakes start nothing. When a replica becomes the leader it wakes every Rollout in its cache,
so the rollouts in flight resume at once; when it stops leading, every worker closes at
once (each pass that is running ends first, and no new one starts without the lease).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import kopf
import structlog

from nonstop import metrics
from nonstop.kube.cache import Cache, CachedKube, Scope
from nonstop.kube.client import Kube, load_config
from nonstop.leader import LeaderElector, LeaseSettings
from nonstop.reconcile import reconcile
from nonstop.workers import Pass, Workers

log = structlog.get_logger("nonstop.handlers")


@dataclass
class Settings:
    """What `nonstop run` sets before the operator starts (cli/main.py)."""

    leader: LeaseSettings | None = None  # None: run passes always, as the single writer
    namespaces: tuple[str, ...] = ()  # `-n` values; none: every namespace
    workers: int = 10  # passes at once (Argo Rollouts' --rollout-threads default)
    resync: float = 300.0  # the longest a Rollout goes without a pass, if no event came
    qps: float = 40.0
    burst: int = 80
    metrics_port: int = 0  # 0: no metrics endpoint (`nonstop run` defaults to 8090)
    metrics_address: str = "0.0.0.0"  # all interfaces, as a pod needs; tests use 127.0.0.1


_state: dict[str, Any] = {"settings": Settings()}
_term = {"first_pass": False}  # per leadership term: has its first pass been logged?
_term_lock = threading.Lock()


def configure(settings: Settings) -> None:
    """Before the operator starts."""
    _state["settings"] = settings


def _workers() -> Workers:
    workers: Workers = _state["workers"]
    return workers


def _cache() -> Cache:
    cache: Cache = _state["cache"]
    return cache


def _started_leading() -> None:
    with _term_lock:
        _term["first_pass"] = False
    _state["idle"].forget_all()  # a new leader passes every Rollout once, fully
    # Every Rollout in the cache, in flight or not: the passes tell which need work.
    for key in _cache().rollout_keys():
        _workers().wake(key)


def _stopped_leading() -> None:
    _workers().close_all()


class IdleSkip:
    """A Rollout with nothing due is passed again at each resync; when no change concerned
    it since its last pass (the cache counts them), that pass would read the same memory
    and decide the same: it is skipped, except every `every`-th time, so that a full pass
    still runs now and then (a guard against a change the wake-up mapping missed). This is
    what makes 10,000 idle Rollouts cost almost nothing."""

    def __init__(self, cache: Cache, resync: float, every: int = 12) -> None:
        self.cache, self.resync, self.every = cache, resync, every
        self._last: dict[tuple[str, str], tuple[int, float, int]] = {}
        self._lock = threading.Lock()

    def skip(self, key: tuple[str, str]) -> float | None:
        """The requeue to answer without a pass, or None: run the pass."""
        with self._lock:
            last = self._last.get(key)
            if last is None:
                return None
            changes, requeue, skipped = last
            if requeue < self.resync or changes != self.cache.changes_of(key):
                return None
            if skipped + 1 >= self.every:
                return None
            self._last[key] = (changes, requeue, skipped + 1)
            return requeue

    def ran(self, key: tuple[str, str], changes_before: int, requeue: float | None) -> None:
        with self._lock:
            if requeue is None:
                self._last.pop(key, None)
            else:
                self._last[key] = (changes_before, requeue, 0)

    def forget_all(self) -> None:
        with self._lock:
            self._last.clear()


def _pass(kube: CachedKube, elector: LeaderElector | None, idle: IdleSkip) -> Pass:
    def run(namespace: str, name: str) -> float | None:
        key = (namespace, name)
        skipped = idle.skip(key)
        if skipped is not None:
            return skipped
        changes = idle.cache.changes_of(key)
        if elector is not None:
            with _term_lock:
                first = not _term["first_pass"]
                _term["first_pass"] = True
            if first:  # the end of a failover, as the logs tell it
                log.info(
                    "first pass as leader",
                    identity=elector.identity,
                    namespace=namespace,
                    rollout=name,
                )
        log.debug("pass", namespace=namespace, rollout=name)
        started = time.monotonic()
        try:
            requeue = reconcile(kube, namespace, name)
        except Exception:
            metrics.RECONCILE_ERRORS.labels(namespace).inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        idle.ran(key, changes, requeue)
        return requeue

    return run


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    # kopf runs no watch of its own (the cache does), so it need not scan the cluster's CRDs
    # and namespaces; scanning would need a cluster-wide CRD read even in namespaced mode
    settings.scanning.disabled = True
    settings.posting.enabled = False  # our Events come from the planner, not from kopf
    load_config()
    _settings: Settings = _state["settings"]
    if _settings.metrics_port:
        where = f"{_settings.metrics_address}:{_settings.metrics_port}"
        try:
            _state["metrics_server"] = metrics.serve(
                _settings.metrics_port, _settings.metrics_address
            )
        except OSError as exc:  # a port in use: a configuration error, said at once
            raise kopf.PermanentError(f"cannot serve metrics on {where}: {exc}") from exc
        log.info("metrics served", url=f"http://{where}/metrics")
    kube = Kube(qps=_settings.qps, burst=_settings.burst)
    loop = asyncio.get_running_loop()

    def wake(key: tuple[str, str]) -> None:  # called from the watch threads
        loop.call_soon_threadsafe(_workers().wake, key)

    cache = Cache(kube, Scope.of(_settings.namespaces), wake)
    _state["cache"] = cache
    metrics.watch_rollouts(cache.rollout_objects)  # the Rollout gauges, read at each scrape
    cached = CachedKube(kube, cache)
    lease = _settings.leader
    elector = None
    if lease is None:
        log.info("leader election off: this process is the only writer")
    else:
        elector = LeaderElector(lease, on_started=_started_leading, on_stopped=_stopped_leading)
        _state["elector"] = elector
    idle = IdleSkip(cache, _settings.resync)
    _state["idle"] = idle
    _state["workers"] = Workers(
        _pass(cached, elector, idle),
        may_run=elector.is_leader if elector else None,
        threads=_settings.workers,
        resync=_settings.resync,
    )
    synced = await asyncio.to_thread(cache.start)
    log.info(
        "cache listed" if synced else "cache not fully listed yet (passes wait for it)",
        rollouts=len(cache.rollout_keys()),
        watches=len(cache.informers()),
    )
    if elector is not None:
        elector.start()


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    # Passes first (stop() waits for those running), then the lease: released only once
    # this process writes nothing more, so that a standby may take over at once.
    if "workers" in _state:
        await _workers().stop()
    if "elector" in _state:
        elector: LeaderElector = _state["elector"]
        await elector.stop()
    if "cache" in _state:
        _cache().stop()
    server = _state.pop("metrics_server", None)
    if server is not None:  # last: a scrape during shutdown still answers
        await asyncio.to_thread(server.shutdown)
        server.server_close()
