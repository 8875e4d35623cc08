"""apply(): carry out a plan's actions in order, one API call each, with barriers.

A failed write that moves traffic (a route, a flag, a Service's selector) stops the pass:
nothing after it runs, so pods are never removed or added on the strength of a traffic
change that did not happen (a 409 on the HTTPRoute, which someone else changed meanwhile,
is the common case: the next pass reads it again). Other failures are reported and the
rest goes on. Failures are returned, never raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from nonstop.kube.client import ConflictError
from nonstop.kube.port import KubePort
from nonstop.plan.model import (
    BARRIERS,
    Action,
    CreateDeployment,
    DeleteAction,
    DeleteDeployment,
    EnsureService,
    ScaleDeployment,
    SetTemplate,
    UpdateConfigMap,
    UpdateRoute,
)


@dataclass
class Applied:
    done: list[Action] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[Action] = field(default_factory=list)  # not run: a barrier before failed


def describe(action: Action) -> str:
    match action:
        case EnsureService(body=body, current_selector=current):
            verb = "create" if current is None else "update"
            return f"{verb} Service {body['metadata']['name']}"
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
        case DeleteAction(name=name):
            return f"delete RolloutAction {name}"
    raise AssertionError(action)


def _run(kube: KubePort, namespace: str, action: Action, rollout: str, generation: int) -> None:
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
        case DeleteAction(name=name):
            kube.delete_action(namespace, name)


def apply(
    kube: KubePort,
    namespace: str,
    actions: tuple[Action, ...],
    rollout: str = "",
    generation: int = 0,
) -> Applied:
    """Run the actions in order until a traffic write fails."""
    result = Applied()
    for i, action in enumerate(actions):
        try:
            _run(kube, namespace, action, rollout, generation)
        except ApiException as exc:
            result.failures.append(
                f"could not {describe(action)}: {exc.status} {exc.reason}: {_body(exc)}"
            )
        except ConflictError as exc:
            result.failures.append(f"could not {describe(action)}: {exc}")
        else:
            result.done.append(action)
            continue
        if isinstance(action, BARRIERS):
            result.skipped = list(actions[i + 1 :])
            if result.skipped:
                result.failures[-1] += (
                    f"; nothing else was done this pass ({len(result.skipped)} change(s) wait"
                    " for it)"
                )
            break
    return result


def _body(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))[:300]
    except (ValueError, AttributeError):
        return str(exc.body or "")[:300]
