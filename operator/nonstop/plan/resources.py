"""Render the Kubernetes objects a Rollout owns: one Deployment per revision, one Service."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from nonstop.api import GROUP, KIND, VERSION, RolloutSpec
from nonstop.api.spec import ServicePort
from nonstop.plan.model import MANAGED_BY, REVISION_LABEL, ROLLOUT_LABEL, RolloutMeta, ServiceView


def revision_hash(template: dict[str, Any]) -> str:
    """A short, stable name for a pod template: equal templates give equal revisions."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


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


def desired_service_view(meta: RolloutMeta, spec: RolloutSpec) -> ServiceView:
    return ServiceView(
        name=spec.service.name,
        owned=True,
        selector=dict(spec.selector.match_labels),
        ports=tuple(_port_tuple(p) for p in spec.service.ports),
        type=spec.service.type or "ClusterIP",
    )


def service_needs_update(observed: ServiceView | None, desired: ServiceView) -> bool:
    return observed is None or (observed.selector, observed.ports, observed.type) != (
        desired.selector,
        desired.ports,
        desired.type,
    )


def render_service(meta: RolloutMeta, spec: RolloutSpec) -> dict[str, Any]:
    ports = []
    for name, port, target, protocol in desired_service_view(meta, spec).ports:
        entry: dict[str, Any] = {"port": port, "targetPort": target, "protocol": protocol}
        if name:
            entry["name"] = name
        ports.append(entry)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.service.name,
            "namespace": meta.namespace,
            "labels": {ROLLOUT_LABEL: meta.name, **MANAGED_BY},
            "ownerReferences": [owner_reference(meta)],
        },
        "spec": {
            "type": spec.service.type or "ClusterIP",
            "selector": dict(spec.selector.match_labels),
            "ports": ports,
        },
    }


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
