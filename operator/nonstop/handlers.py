"""kopf wiring only: watch Rollouts and their Deployments, wake the Rollout's worker.

Only event handlers are used: kopf's change handlers, daemons and timers would put a
finalizer and bookkeeping annotations on every Rollout (kopf issue 1074), so that deleting
a Rollout would hang whenever the operator is down. Events need neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from nonstop.api import GROUP, PLURAL, VERSION
from nonstop.kube.client import Kube, load_config
from nonstop.plan.model import ROLLOUT_LABEL
from nonstop.reconcile import reconcile
from nonstop.workers import Workers

_state: dict[str, Any] = {}
_seen: dict[tuple[str, str], tuple[Any, ...]] = {}


def _workers() -> Workers:
    workers: Workers = _state["workers"]
    return workers


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
    _state["workers"] = Workers(lambda ns, name: reconcile(kube, ns, name))


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if "workers" in _state:
        await _workers().stop()


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
