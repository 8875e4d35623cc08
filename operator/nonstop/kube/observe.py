"""observe(): read everything one reconcile pass of a Rollout needs, into planner views."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from nonstop.api.spec import MAX_ROLLOUT_NAME, AnalysisTemplateSpec
from nonstop.kube.port import KubePort
from nonstop.plan.analysis import analyses_of
from nonstop.plan.model import (
    REVISION_LABEL,
    ROLLOUT_LABEL,
    DeploymentView,
    Observed,
    RolloutView,
    ServiceView,
)
from nonstop.plan.resources import deployment_name, other_services, revision_hash
from nonstop.plan.views import (
    answered_action,
    deployment_view,
    owned_by,
    pending_action,
    pod_problem,
    ready_endpoints,
    restart_count,
    service_view,
)


def observe(kube: KubePort, rollout: RolloutView) -> Observed:
    ns, name, uid = rollout.meta.namespace, rollout.meta.name, rollout.meta.uid
    if len(name) > MAX_ROLLOUT_NAME:  # not a label value: the listings would fail (InvalidSpec)
        return Observed()
    deployments = tuple(
        deployment_view(d)
        for d in kube.list_deployments(ns, f"{ROLLOUT_LABEL}={name}")
        if owned_by(d, uid)
    )
    if rollout.spec is None:
        return Observed(deployments=deployments)
    revision = revision_hash(rollout.template)
    foreign = _foreign_deployment(kube, rollout, revision, deployments)
    pods = kube.list_pods(ns, f"{ROLLOUT_LABEL}={name},{REVISION_LABEL}={revision}")
    problems = tuple(p for p in (pod_problem(pod) for pod in pods) if p is not None)
    service = _service(kube, ns, rollout.spec.service.name, uid)
    others = tuple(
        s for s in (_service(kube, ns, n, uid) for n in other_services(rollout.spec)) if s
    )
    listed = kube.list_actions(ns, rollout=name)
    actions = tuple(a for a in (pending_action(raw, name) for raw in listed) if a is not None)
    answered = tuple(a for a in (answered_action(raw, name) for raw in listed) if a is not None)
    route, route_error = _route(kube, rollout)
    config_map, config_map_error = _config_map(kube, rollout)
    templates = _templates(kube, rollout)
    return Observed(
        deployments=deployments,
        unready_pods=problems,
        service=service,
        ready_endpoints=service.ready if service else None,
        actions=actions,
        services=others,
        route=route,
        route_error=route_error,
        restarts=restart_count(pods),
        config_map=config_map,
        config_map_error=config_map_error,
        templates=templates,
        foreign_deployment=foreign,
        answered=answered,
    )


def _foreign_deployment(
    kube: KubePort, rollout: RolloutView, revision: str, owned: tuple[DeploymentView, ...]
) -> str | None:
    """The name nonstop would give the current revision's Deployment, when a Deployment
    that this Rollout does not own has it already."""
    if any(d.revision == revision for d in owned):
        return None
    name = deployment_name(rollout.meta.name, revision)
    found = kube.get_deployment(rollout.meta.namespace, name)
    if found is None or owned_by(found, rollout.meta.uid):
        return None
    return name


def _templates(kube: KubePort, rollout: RolloutView) -> dict[str, AnalysisTemplateSpec]:
    """The namespace's AnalysisTemplates, when the Rollout names any (invalid ones are left
    out: the Rollout then says the template it needs is missing or invalid)."""
    if rollout.spec is None or not any(a.templates for a in analyses_of(rollout.spec)):
        return {}
    found = {}
    for raw in kube.list_analysis_templates(rollout.meta.namespace):
        try:
            found[raw["metadata"]["name"]] = AnalysisTemplateSpec.model_validate(raw["spec"])
        except (ValidationError, KeyError):
            continue
    return found


def _config_map(kube: KubePort, rollout: RolloutView) -> tuple[dict[str, Any] | None, str | None]:
    spec = rollout.spec
    if spec is None or spec.strategy.feature_toggle is None:
        return None, None
    name = spec.strategy.feature_toggle.flag.config_map
    try:
        raw = kube.get_config_map(rollout.meta.namespace, name)
    except ApiException as exc:
        return None, f"{exc.status} {exc.reason}"
    return raw, None if raw is not None else "it does not exist"


def _service(kube: KubePort, namespace: str, name: str, uid: str) -> ServiceView | None:
    raw = kube.get_service(namespace, name)
    if raw is None:
        return None
    view = service_view(raw, uid)
    if not view.owned:
        return view
    return replace(view, ready=ready_endpoints(kube.list_endpoint_slices(namespace, name)))


def _route(kube: KubePort, rollout: RolloutView) -> tuple[dict[str, Any] | None, str | None]:
    spec = rollout.spec
    if spec is None or spec.traffic_routing is None:
        return None, None
    gateway = spec.traffic_routing.gateway_api
    namespace = gateway.namespace or rollout.meta.namespace
    try:
        route = kube.get_route(namespace, gateway.http_route)
    except ApiException as exc:  # forbidden, or the Gateway API CRDs are not installed
        return None, f"{exc.status} {exc.reason}"
    return route, None if route is not None else "it does not exist"
