"""Render the Kubernetes objects a Rollout owns: one Deployment per revision, and its
Services (the serving one, plus the canary or preview Service of a strategy that has one)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from nonstop.api import GROUP, KIND, VERSION, RolloutSpec
from nonstop.api.spec import ServicePort
from nonstop.plan.model import (
    MANAGED_BY,
    REVISION_LABEL,
    ROLLOUT_LABEL,
    TEMPLATE_ANNOTATION,
    EnsureService,
    Observed,
    RolloutMeta,
    ServiceView,
)


def canonical_template(template: Mapping[str, Any]) -> str:
    return json.dumps(template, sort_keys=True, separators=(",", ":"))


def revision_hash(template: Mapping[str, Any]) -> str:
    """A short, stable name for a pod template: equal templates give equal revisions."""
    return hashlib.sha256(canonical_template(template).encode()).hexdigest()[:10]


def deployment_name(rollout: str, revision: str) -> str:
    return f"{rollout}-{revision}"


def owner_reference(meta: RolloutMeta) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def render_deployment(
    meta: RolloutMeta, spec: RolloutSpec, template: dict[str, Any], revision: str, replicas: int
) -> dict[str, Any]:
    own = {ROLLOUT_LABEL: meta.name, REVISION_LABEL: revision}
    pod_template = copy.deepcopy(template)
    pod_template.setdefault("metadata", {}).setdefault("labels", {}).update(own)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(meta.name, revision),
            "namespace": meta.namespace,
            "labels": {**own, **MANAGED_BY},
            # kept as written (the API server defaults the Deployment's copy), for undo
            "annotations": {TEMPLATE_ANNOTATION: canonical_template(template)},
            "ownerReferences": [owner_reference(meta)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {**spec.selector.match_labels, **own}},
            "template": pod_template,
            "minReadySeconds": spec.min_ready_seconds,
            # The template of a revision never changes, so this Deployment never rolls by itself.
            "revisionHistoryLimit": 0,
        },
    }


def _port_tuple(port: ServicePort) -> tuple[str | None, int, int | str, str]:
    return (
        port.name,
        port.port,
        port.target_port if port.target_port is not None else port.port,
        port.protocol or "TCP",
    )


def service_selector(spec: RolloutSpec, revision: str | None) -> dict[str, str]:
    """The Rollout's selector, narrowed to one revision when the strategy routes by revision."""
    selector = dict(spec.selector.match_labels)
    if revision is not None:
        selector[REVISION_LABEL] = revision
    return selector


def desired_service_view(
    meta: RolloutMeta, spec: RolloutSpec, name: str | None = None, revision: str | None = None
) -> ServiceView:
    return ServiceView(
        name=name or spec.service.name,
        owned=True,
        selector=service_selector(spec, revision),
        ports=tuple(_port_tuple(p) for p in spec.service.ports),
        type=spec.service.type or "ClusterIP",
    )


def service_needs_update(observed: ServiceView | None, desired: ServiceView) -> bool:
    return observed is None or (observed.selector, observed.ports, observed.type) != (
        desired.selector,
        desired.ports,
        desired.type,
    )


def render_service(
    meta: RolloutMeta, spec: RolloutSpec, name: str | None = None, revision: str | None = None
) -> dict[str, Any]:
    view = desired_service_view(meta, spec, name, revision)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": view.name,
            "namespace": meta.namespace,
            "labels": {ROLLOUT_LABEL: meta.name, **MANAGED_BY},
            "ownerReferences": [owner_reference(meta)],
        },
        "spec": {"type": view.type, "selector": view.selector, "ports": service_ports(view)},
    }


def service_ports(view: ServiceView) -> list[dict[str, Any]]:
    """A ServiceView's ports as a Service spec lists them (a port's name only when set)."""
    ports = []
    for port_name, port, target, protocol in view.ports:
        entry: dict[str, Any] = {"port": port, "targetPort": target, "protocol": protocol}
        if port_name:
            entry["name"] = port_name
        ports.append(entry)
    return ports


def service_actions(
    meta: RolloutMeta,
    spec: RolloutSpec,
    observed: Observed,
    selects: Mapping[str, str | None],
) -> list[EnsureService]:
    """Create or correct each Service: name -> the revision it selects (None: all of them)."""
    actions = []
    for name, revision in selects.items():
        current = observed.service if name == spec.service.name else observed.other_service(name)
        if service_needs_update(current, desired_service_view(meta, spec, name, revision)):
            body = render_service(meta, spec, name, revision)
            actions.append(EnsureService(body, dict(current.selector) if current else None))
    return actions


def other_services(spec: RolloutSpec) -> tuple[str, ...]:
    """The Services a strategy has besides spec.service: canary (with a router), preview."""
    if spec.strategy.canary is not None and spec.traffic_routing is not None:
        return (spec.strategy.canary.canary_service or f"{spec.service.name}-canary",)
    if spec.strategy.blue_green is not None:
        return (spec.strategy.blue_green.preview_service,)
    shadow = spec.strategy.shadow
    if shadow is not None:  # the shadow's Service is the one its `then` strategy uses next
        if shadow.then.blue_green is not None:
            return (shadow.then.blue_green.preview_service,)
        if shadow.then.canary is not None:
            return (shadow.then.canary.canary_service or f"{spec.service.name}-canary",)
    return ()


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
