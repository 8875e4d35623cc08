"""Turn raw Kubernetes objects (JSON dicts) into the planner's views. Pure: no client."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from nonstop.api import RolloutSpec, RolloutStatus
from nonstop.api.spec import ROLLOUT_NAME_CONTEXT
from nonstop.plan.model import (
    REVISION_LABEL,
    TEMPLATE_ANNOTATION,
    ActionView,
    AnsweredAction,
    DeploymentView,
    PodProblem,
    RolloutMeta,
    RolloutView,
    ServiceView,
)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"spec.{where}: {message}" if where else message)
    return "; ".join(parts)


def rollout_view(raw: dict[str, Any]) -> RolloutView:
    meta = raw.get("metadata", {})
    body = raw.get("spec") or {}
    spec: RolloutSpec | None = None
    error: str | None = None
    try:
        # the name too: a Rollout stored before the name rule existed gets InvalidSpec
        spec = RolloutSpec.model_validate(body, context={ROLLOUT_NAME_CONTEXT: meta["name"]})
    except ValidationError as exc:
        error = describe_validation_error(exc)
    try:
        status = RolloutStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        status = RolloutStatus()  # a hand-edited status is rebuilt from the cluster
    return RolloutView(
        meta=RolloutMeta(
            name=meta["name"],
            namespace=meta.get("namespace", "default"),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0)),
        ),
        spec=spec,
        template=body.get("template") or {},
        status=status,
        spec_error=error,
    )


def owned_by(raw: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in raw.get("metadata", {}).get("ownerReferences", []))


def deployment_view(raw: dict[str, Any]) -> DeploymentView:
    meta, spec, status = raw["metadata"], raw.get("spec", {}), raw.get("status", {})
    return DeploymentView(
        name=meta["name"],
        revision=meta.get("labels", {}).get(REVISION_LABEL, ""),
        spec_replicas=int(spec.get("replicas", 1)),
        replicas=int(status.get("replicas", 0)),
        ready_replicas=int(status.get("readyReplicas", 0)),
        available_replicas=int(status.get("availableReplicas", 0)),
        up_to_date=int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0)),
        created_at=parse_time(meta.get("creationTimestamp")),
        template=_template(meta.get("annotations") or {}),
    )


def _template(annotations: dict[str, str]) -> dict[str, Any] | None:
    try:
        template = json.loads(annotations.get(TEMPLATE_ANNOTATION, ""))
    except ValueError:
        return None
    return template if isinstance(template, dict) else None


def _condition(raw: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next(
        (c for c in raw.get("status", {}).get("conditions", []) if c.get("type") == type_), None
    )


def pod_problem(raw: dict[str, Any]) -> PodProblem | None:
    """Why a pod is not ready, or None when it is ready or on its way out."""
    meta, status = raw["metadata"], raw.get("status", {})
    if meta.get("deletionTimestamp"):
        return None
    ready = _condition(raw, "Ready")
    if ready and ready.get("status") == "True":
        return None
    reason, message = status.get("phase", "Pending"), ""
    for container in status.get("containerStatuses", []):
        waiting = container.get("state", {}).get("waiting")
        if waiting:
            reason, message = waiting.get("reason", reason), waiting.get("message", "")
            break
    else:
        scheduled = _condition(raw, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            reason, message = scheduled.get("reason", "Unschedulable"), scheduled.get("message", "")
        elif ready:
            reason = ready.get("reason") or reason
            message = ready.get("message", "")
    since = parse_time(meta.get("creationTimestamp")) or datetime.now(UTC)
    return PodProblem(
        name=meta["name"],
        revision=meta.get("labels", {}).get(REVISION_LABEL, ""),
        reason=reason,
        message=message,
        since=since,
    )


def pending_action(raw: dict[str, Any], rollout: str) -> ActionView | None:
    """A RolloutAction for this Rollout that nonstop has not answered yet."""
    meta, spec = raw["metadata"], raw.get("spec", {})
    if spec.get("rollout") != rollout or (raw.get("status") or {}).get("phase") in (
        "Applied",
        "Rejected",
    ):
        return None
    return ActionView(
        name=meta["name"],
        uid=meta.get("uid", meta["name"]),
        action=str(spec.get("action", "")),
        reason=str(spec.get("reason") or ""),
        created_at=parse_time(meta.get("creationTimestamp")) or datetime.now(UTC),
    )


def answered_action(raw: dict[str, Any], rollout: str) -> AnsweredAction | None:
    """A RolloutAction for this Rollout that nonstop has answered, with when."""
    status = raw.get("status") or {}
    if raw.get("spec", {}).get("rollout") != rollout or status.get("phase") not in (
        "Applied",
        "Rejected",
    ):
        return None
    meta = raw["metadata"]
    at = parse_time(status.get("appliedAt")) or parse_time(meta.get("creationTimestamp"))
    return AnsweredAction(meta["name"], at or datetime.now(UTC))


def service_view(raw: dict[str, Any], uid: str) -> ServiceView:
    spec = raw.get("spec", {})
    ports = tuple(
        (p.get("name"), int(p["port"]), p.get("targetPort", p["port"]), p.get("protocol", "TCP"))
        for p in spec.get("ports", [])
    )
    return ServiceView(
        name=raw["metadata"]["name"],
        owned=owned_by(raw, uid),
        selector=dict(spec.get("selector") or {}),
        ports=ports,
        type=spec.get("type", "ClusterIP"),
    )


def ready_endpoints(slices: list[dict[str, Any]]) -> int | None:
    """Distinct ready endpoints over a Service's EndpointSlices; None when it has none yet."""
    if not slices:
        return None
    ready: set[str] = set()
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            # The API says an unset ready condition means ready.
            if endpoint.get("conditions", {}).get("ready", True) is not False:
                ref = endpoint.get("targetRef") or {}
                ready.add(
                    ref.get("uid") or ref.get("name") or ",".join(endpoint.get("addresses", []))
                )
    return len(ready)


def restart_count(pods: list[dict[str, Any]]) -> int:
    """Container restarts over the pods (the shadow verdict counts them)."""
    return sum(
        int(c.get("restartCount", 0))
        for pod in pods
        for c in (pod.get("status") or {}).get("containerStatuses") or []
    )
