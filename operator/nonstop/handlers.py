"""kopf wiring only: watch Rollouts and their Deployments, wake the Rollout's worker.

Only event handlers are used: kopf's change handlers, daemons and timers would put a
finalizer and bookkeeping annotations on every Rollout (kopf issue 1074), so that deleting
a Rollout would hang whenever the operator is down. Events need neither.

With leader election (`nonstop run --leader-elect`, on in the Helm chart), every replica
watches, but only the holder of the Lease runs passes (leader.py): on the others, wakes
start nothing. When a replica becomes the leader it wakes every Rollout its watch has
listed, so the rollouts in flight resume at once; when it stops leading, every worker
closes at once (each pass that is running ends first, and no new one starts without the
lease).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import kopf
import structlog

from nonstop.api import GROUP, PLURAL, VERSION
from nonstop.kube.client import Kube, load_config
from nonstop.leader import LeaderElector, LeaseSettings
from nonstop.plan.model import ROLLOUT_LABEL
from nonstop.reconcile import reconcile
from nonstop.workers import Pass, Workers

log = structlog.get_logger("nonstop.handlers")

_config: dict[str, LeaseSettings | None] = {"leader": None}
_state: dict[str, Any] = {}
_seen: dict[tuple[str, str], tuple[Any, ...]] = {}
_term = {"first_pass": False}  # per leadership term: has its first pass been logged?
_term_lock = threading.Lock()


def use_leader_election(settings: LeaseSettings | None) -> None:
    """Before the operator starts: run passes only while holding this Lease (None: always,
    as the single writer)."""
    _config["leader"] = settings


def _workers() -> Workers:
    workers: Workers = _state["workers"]
    return workers


def _started_leading() -> None:
    with _term_lock:
        _term["first_pass"] = False
    # Every Rollout the watch has listed, in flight or not: the passes tell which need work.
    for key in list(_seen):
        _workers().wake(key)


def _stopped_leading() -> None:
    _workers().close_all()


def _pass(kube: Kube, elector: LeaderElector | None) -> Pass:
    def run(namespace: str, name: str) -> float | None:
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
        return reconcile(kube, namespace, name)

    return run


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    settings.posting.enabled = False  # our Events come from the planner, not from kopf
    settings.watching.server_timeout = 300
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="kopf.nonstop.dev"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.nonstop.dev"
    )
    load_config()
    kube = Kube()
    lease = _config["leader"]
    if lease is None:
        log.info("leader election off: this process is the only writer")
        _state["workers"] = Workers(_pass(kube, None))
        return
    elector = LeaderElector(lease, on_started=_started_leading, on_stopped=_stopped_leading)
    _state["elector"] = elector
    _state["workers"] = Workers(_pass(kube, elector), may_run=elector.is_leader)
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


@kopf.on.event(GROUP, VERSION, PLURAL)
async def rollout_event(
    type: str | None, name: str, namespace: str | None, meta: kopf.Meta, **_: Any
) -> None:
    key = (namespace or "", name)
    if type == "DELETED":
        _workers().forget(key)
        _seen.pop(key, None)
        return
    # Our own status writes come back as events too; only what a person (or GitOps) changed
    # is worth an early pass: the spec (generation) or the annotations.
    fingerprint = (meta.get("generation"), tuple(sorted(meta.annotations.items())))
    if _seen.get(key) != fingerprint:
        _seen[key] = fingerprint
        _workers().wake(key)


@kopf.on.event("apps", "v1", "deployments", labels={ROLLOUT_LABEL: kopf.PRESENT})
async def deployment_event(labels: Mapping[str, str], namespace: str | None, **_: Any) -> None:
    _workers().wake((namespace or "", labels[ROLLOUT_LABEL]))


@kopf.on.event(GROUP, VERSION, "rolloutactions")
async def action_event(type: str | None, spec: kopf.Spec, namespace: str | None, **_: Any) -> None:
    if type != "DELETED" and spec.get("rollout"):
        _workers().wake((namespace or "", str(spec["rollout"])))
