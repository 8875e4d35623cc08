"""apply(): carry out a plan's actions, one API call each; report failures, never raise them."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from nonstop.kube.client import Kube
from nonstop.plan.model import (
    Action,
    CreateDeployment,
    DeleteDeployment,
    EnsureService,
    Measure,
    ScaleDeployment,
    SetTemplate,
    UpdateConfigMap,
    UpdateRoute,
)


def describe(action: Action) -> str:
    match action:
        case EnsureService(body=body):
            return f"update Service {body['metadata']['name']}"
        case CreateDeployment():
            return f"create Deployment {action.name}"
        case ScaleDeployment(name=name, replicas=replicas):
            return f"scale Deployment {name} to {replicas}"
        case DeleteDeployment(name=name):
            return f"delete Deployment {name}"
        case UpdateRoute(body=body):
            return f"update HTTPRoute {body['metadata']['name']}"
        case UpdateConfigMap(body=body):
            return f"update ConfigMap {body['metadata']['name']}"
        case SetTemplate(revision=revision):
            return f"set spec.template back to revision {revision}"
        case Measure(run=run, metric=metric):
            return f"measure {metric.name} of analysis {run}"
    raise AssertionError(action)


def apply(
    kube: Kube, namespace: str, actions: tuple[Action, ...], rollout: str = "", generation: int = 0
) -> list[str]:
    """Run the actions in order; returns one message per failed action."""
    failures: list[str] = []
    for action in actions:
        try:
            match action:
                case EnsureService(body=body, current_selector=current):
                    kube.ensure_service(body, current)
                case CreateDeployment(body=body):
                    kube.create_deployment(body)
                case ScaleDeployment(name=name, replicas=replicas):
                    kube.scale_deployment(namespace, name, replicas)
                case DeleteDeployment(name=name):
                    kube.delete_deployment(namespace, name)
                case UpdateRoute(body=body):
                    kube.replace_route(body)
                case UpdateConfigMap(body=body):
                    kube.replace_config_map(body)
                case SetTemplate(template=template):
                    kube.set_rollout_template(namespace, rollout, template, generation)
                case Measure():
                    pass  # read by the provider layer (nonstop.providers), not applied
        except ApiException as exc:
            failures.append(
                f"could not {describe(action)}: {exc.status} {exc.reason}: {_body(exc)}"
            )
    return failures


def _body(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))[:300]
    except (ValueError, AttributeError):
        return str(exc.body or "")[:300]
