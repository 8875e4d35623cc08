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
async def rollout_event(type: str | None, name: str, namespace: str | None, **_: Any) -> None:
    key = (namespace or "", name)
    if type == "DELETED":
        _workers().forget(key)
    else:
        _workers().wake(key)


@kopf.on.event("apps", "v1", "deployments", labels={ROLLOUT_LABEL: kopf.PRESENT})
async def deployment_event(labels: Mapping[str, str], namespace: str | None, **_: Any) -> None:
    _workers().wake((namespace or "", labels[ROLLOUT_LABEL]))
