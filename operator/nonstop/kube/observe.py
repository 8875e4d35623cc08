"""observe(): read everything one reconcile pass of a Rollout needs, into planner views."""

from __future__ import annotations

from nonstop.kube.client import Kube
from nonstop.plan.model import REVISION_LABEL, ROLLOUT_LABEL, Observed, RolloutView
from nonstop.plan.resources import revision_hash
from nonstop.plan.views import (
    deployment_view,
    owned_by,
    pending_action,
    pod_problem,
    ready_endpoints,
    service_view,
)


def observe(kube: Kube, rollout: RolloutView) -> Observed:
    ns, name, uid = rollout.meta.namespace, rollout.meta.name, rollout.meta.uid
    deployments = tuple(
        deployment_view(d)
        for d in kube.list_deployments(ns, f"{ROLLOUT_LABEL}={name}")
        if owned_by(d, uid)
    )
    if rollout.spec is None:
        return Observed(deployments=deployments)
    revision = revision_hash(rollout.template)
    pods = kube.list_pods(ns, f"{ROLLOUT_LABEL}={name},{REVISION_LABEL}={revision}")
    problems = tuple(p for p in (pod_problem(pod) for pod in pods) if p is not None)
    raw_service = kube.get_service(ns, rollout.spec.service.name)
    service = service_view(raw_service, uid) if raw_service else None
    endpoints = None
    if service is not None and service.owned:
        endpoints = ready_endpoints(kube.list_endpoint_slices(ns, service.name))
    actions = tuple(
        a for a in (pending_action(raw, name) for raw in kube.list_actions(ns)) if a is not None
    )
    return Observed(
        deployments=deployments,
        unready_pods=problems,
        service=service,
        ready_endpoints=endpoints,
        actions=actions,
    )
