"""MemoryKube: an in-memory API server behind the KubePort that one reconcile pass uses
(tests/memory_kube.py re-exports it).

It stores raw Kubernetes objects (JSON dicts) by kind, namespace and name, and answers each
KubePort call as the real client (nonstop.kube.client.Kube) does over a real API server:

- a GET of a missing object returns None; a PATCH or PUT of one raises ApiException 404;
  deleting a missing Deployment or RolloutAction is fine (Kube ignores the 404);
- creating an object that exists raises ApiException 409 (create_deployment then does what
  Kube does: fine when this Rollout owns it, ConflictError when it does not; ensure_service
  reads the Service and patches its selector);
- a PUT (HTTPRoute, ConfigMap) whose resourceVersion is not the stored one raises
  ApiException 409 Conflict; every write gives the object a new resourceVersion;
- merge patches (status, scale, Service) follow RFC 7386: null removes a field. The
  Rollout's status is then stored as the API server stores a CRD's: without null fields;
- Events are recorded in `events`, in the order they were posted.

Tests inject failures: `fail_next("replace_route", 409)` makes the next call of a method
raise (optionally only for one object name, or `times` calls), `fail("ensure_service", 422,
name="web")` makes every such call raise until `clear_failures()`, and `fail_events = True`
makes post_event raise ApiException 500. `calls` lists every call as (method, object name),
`writes` the writes that succeeded.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from kubernetes.client.exceptions import ApiException

from nonstop.api import GROUP
from nonstop.kube.client import ConflictError, event_body

KINDS = (
    "Rollout",
    "Deployment",
    "Pod",
    "Service",
    "EndpointSlice",
    "HTTPRoute",
    "ConfigMap",
    "RolloutAction",
    "AnalysisTemplate",
    "Secret",
    "Event",
)
# The plural of each kind in the API server's messages ("deployments.apps "web" ...")
RESOURCES = {
    "Rollout": f"rollouts.{GROUP}",
    "Deployment": "deployments.apps",
    "Pod": "pods",
    "Service": "services",
    "EndpointSlice": "endpointslices.discovery.k8s.io",
    "HTTPRoute": "httproutes.gateway.networking.k8s.io",
    "ConfigMap": "configmaps",
    "RolloutAction": f"rolloutactions.{GROUP}",
    "AnalysisTemplate": f"analysistemplates.{GROUP}",
    "Secret": "secrets",
    "Event": "events",
}
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

Key = tuple[str, str]  # (namespace, name)


def stamp(at: datetime) -> str:
    """A timestamp as the API server writes one: RFC 3339, whole seconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_error(status: int, reason: str | None = None, message: str = "") -> ApiException:
    """An ApiException as Kube raises it: status, reason, and a Status object as the body."""
    phrase = reason or HTTPStatus(status).phrase
    error = ApiException(status=status, reason=phrase)
    body = {"kind": "Status", "status": "Failure", "message": message, "code": status}
    error.body = json.dumps(body)
    return error


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, null removes a field, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def without_nulls(value: Any) -> Any:
    """What the API server keeps of a CRD's object: null fields are pruned, at any depth."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def selects(selector: str, labels: dict[str, str]) -> bool:
    """Whether a label selector (k=v, k==v, k!=v, k, !k; comma-separated) picks the labels."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Failure:
    """Calls of `method` (about the object `name`, or any) raise ApiException(status);
    `times` calls, or every call while `times` is None."""

    method: str
    status: int
    reason: str | None = None
    name: str | None = None
    times: int | None = 1


class MemoryKube:
    """An in-memory implementation of nonstop.kube.port.KubePort (see the module docstring)."""

    def __init__(self, now: datetime = T0) -> None:
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.now = now  # the clock of creationTimestamps (the World sets it each pass)
        self.events: list[dict[str, Any]] = []  # Events posted, in order
        self.calls: list[tuple[str, str]] = []  # every KubePort call: (method, object name)
        self.writes: list[tuple[str, str]] = []  # the writes that succeeded
        self.failures: list[Failure] = []
        self.fail_events = False  # post_event raises ApiException 500
        self._version = 0

    # --- failure injection -----------------------------------------------------------
    def fail_next(
        self,
        method: str,
        status: int = 409,
        *,
        name: str | None = None,
        reason: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` (about `name`, if given) raise."""
        assert callable(getattr(self, method, None)), f"MemoryKube has no method {method}"
        self.failures.append(Failure(method, status, reason, name, times))

    def fail(
        self, method: str, status: int = 500, *, name: str | None = None, reason: str | None = None
    ) -> None:
        """Every call of `method` (about `name`, if given) raises, until clear_failures()."""
        assert callable(getattr(self, method, None)), f"MemoryKube has no method {method}"
        self.failures.append(Failure(method, status, reason, name, None))

    def clear_failures(self) -> None:
        self.failures.clear()
        self.fail_events = False

    def _call(self, method: str, name: str) -> None:
        self.calls.append((method, name))
        if method == "post_event" and self.fail_events:
            raise api_error(500, message="injected: Events cannot be posted")
        for failure in self.failures:
            if failure.method == method and failure.name in (None, name):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                raise api_error(
                    failure.status, failure.reason, f"injected failure of {method} {name}"
                )

    # --- the store, for tests and the World ------------------------------------------
    def next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        """Create or replace an object unconditionally (as a test's `kubectl apply`): it gets
        a new resourceVersion; uid and creationTimestamp are kept or filled in."""
        self.store(kind, copy.deepcopy(obj))

    def store(self, kind: str, body: dict[str, Any]) -> None:
        """put() of an object the caller hands over (no copy is made)."""
        meta = body.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        key = (meta["namespace"], meta["name"])
        old = self.objects[kind].get(key)
        old_meta = old["metadata"] if old else {}
        meta.setdefault("uid", old_meta.get("uid") or f"uid-{kind.lower()}-{meta['name']}")
        meta.setdefault("creationTimestamp", old_meta.get("creationTimestamp") or stamp(self.now))
        if kind in ("Rollout", "Deployment", "HTTPRoute"):
            meta.setdefault("generation", old_meta.get("generation", 1))
        meta["resourceVersion"] = self.next_version()
        self.objects[kind][key] = body

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects[kind].get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def items(
        self, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """The objects of a kind (in one namespace), in creation order, by label selector."""
        return [copy.deepcopy(obj) for obj in self.stored(kind, namespace, selector)]

    def stored(
        self, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """items() without copies: the stored objects themselves."""
        return [
            obj
            for (ns, _), obj in self.objects[kind].items()
            if namespace in (None, ns) and selects(selector, obj["metadata"].get("labels") or {})
        ]

    def remove(self, kind: str, namespace: str, name: str) -> bool:
        return self.objects[kind].pop((namespace, name), None) is not None

    def _found(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The stored object itself (to change), or the API server's 404."""
        found = self.objects[kind].get((namespace, name))
        if found is None:
            raise api_error(404, message=f'{RESOURCES[kind]} "{name}" not found')
        return found

    def _create(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        if (meta["namespace"], meta["name"]) in self.objects[kind]:
            raise api_error(409, "Conflict", f'{RESOURCES[kind]} "{meta["name"]}" already exists')
        created = copy.deepcopy(body)
        for field in ("uid", "creationTimestamp", "resourceVersion", "generation"):
            created["metadata"].pop(field, None)
        self.store(kind, created)

    def _replace(self, kind: str, body: dict[str, Any]) -> None:
        """PUT: the resourceVersion in the body must be the stored one."""
        meta = body["metadata"]
        stored = self._found(kind, meta["namespace"], meta["name"])
        version = meta.get("resourceVersion")
        if version is not None and version != stored["metadata"]["resourceVersion"]:
            raise api_error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {RESOURCES[kind]} "{meta["name"]}": the'
                " object has been modified; please apply your changes to the latest version"
                " and try again",
            )
        new = copy.deepcopy(body)
        new["metadata"].pop("resourceVersion", None)
        for field in ("uid", "creationTimestamp", "generation"):
            if field in stored["metadata"]:
                new["metadata"][field] = stored["metadata"][field]
        if "status" in stored:  # the status subresource is not written by a PUT
            new["status"] = stored["status"]
        if "generation" in new["metadata"] and new.get("spec") != stored.get("spec"):
            new["metadata"]["generation"] += 1
        self.store(kind, new)

    def _wrote(self, method: str, name: str) -> None:
        self.writes.append((method, name))

    # --- KubePort: reads -------------------------------------------------------------
    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_rollout", name)
        return self.get("Rollout", namespace, name)

    def list_deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._call("list_deployments", "")
        return self.items("Deployment", namespace, selector)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._call("list_pods", "")
        return self.items("Pod", namespace, selector)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_service", name)
        return self.get("Service", namespace, name)

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        self._call("list_endpoint_slices", service)
        return self.items("EndpointSlice", namespace, f"{SERVICE_NAME_LABEL}={service}")

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_secret", name)
        return self.get("Secret", namespace, name)

    def list_analysis_templates(self, namespace: str) -> list[dict[str, Any]]:
        self._call("list_analysis_templates", "")
        return self.items("AnalysisTemplate", namespace)

    def get_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_route", name)
        return self.get("HTTPRoute", namespace, name)

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_config_map", name)
        return self.get("ConfigMap", namespace, name)

    def list_actions(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]:
        self._call("list_actions", rollout or "")
        return [
            a
            for a in self.items("RolloutAction", namespace)
            if rollout is None or (a.get("spec") or {}).get("rollout") == rollout
        ]

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_deployment", name)
        return self.get("Deployment", namespace, name)

    # --- KubePort: writes ------------------------------------------------------------
    def replace_config_map(self, body: dict[str, Any]) -> None:
        self._call("replace_config_map", body["metadata"]["name"])
        self._replace("ConfigMap", body)
        self._wrote("replace_config_map", body["metadata"]["name"])

    def delete_action(self, namespace: str, name: str) -> None:
        self._call("delete_action", name)
        self.remove("RolloutAction", namespace, name)  # a 404 is fine, as in Kube
        self._wrote("delete_action", name)

    def answer_action(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._call("answer_action", name)
        stored = self._found("RolloutAction", namespace, name)
        stored["status"] = merge_patch(stored.get("status") or {}, status)
        stored["metadata"]["resourceVersion"] = self.next_version()
        self._wrote("answer_action", name)

    def create_deployment(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self._call("create_deployment", meta["name"])
        try:
            self._create("Deployment", {**body, "status": {}})
        except ApiException as exc:
            # as Kube: an earlier pass made it (fine), or someone else did (never ours)
            found = self.get("Deployment", meta["namespace"], meta["name"]) or {}
            owners = {o.get("uid") for o in found.get("metadata", {}).get("ownerReferences", [])}
            if not owners & {o["uid"] for o in meta.get("ownerReferences", [])}:
                raise ConflictError(
                    f"Deployment {meta['name']} already exists and does not belong to this Rollout"
                ) from exc
            return
        self._wrote("create_deployment", meta["name"])

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self._call("scale_deployment", name)
        stored = self._found("Deployment", namespace, name)
        if stored["spec"].get("replicas") != replicas:
            stored["spec"]["replicas"] = replicas
            stored["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
        stored["metadata"]["resourceVersion"] = self.next_version()
        self._wrote("scale_deployment", name)

    def delete_deployment(self, namespace: str, name: str) -> None:
        self._call("delete_deployment", name)
        self.remove("Deployment", namespace, name)  # a 404 is fine, as in Kube
        self._wrote("delete_deployment", name)

    def ensure_service(
        self, body: dict[str, Any], current_selector: dict[str, str] | None = None
    ) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        self._call("ensure_service", name)
        if current_selector is None:
            try:
                self._create("Service", body)
            except ApiException:  # as Kube: it exists, so its selector is patched
                current = self.get("Service", ns, name) or {}
                current_selector = current.get("spec", {}).get("selector") or {}
            else:
                self._wrote("ensure_service", name)
                return
        selector: dict[str, Any] = {k: None for k in current_selector}
        selector.update(body["spec"]["selector"])
        patch = {
            "metadata": {"labels": body["metadata"]["labels"]},
            "spec": {**body["spec"], "selector": selector},
        }
        stored = self._found("Service", ns, name)
        self.objects["Service"][(ns, name)] = merge_patch(stored, patch)
        self.objects["Service"][(ns, name)]["metadata"]["resourceVersion"] = self.next_version()
        self._wrote("ensure_service", name)

    def replace_route(self, body: dict[str, Any]) -> None:
        self._call("replace_route", body["metadata"]["name"])
        self._replace("HTTPRoute", body)
        self._wrote("replace_route", body["metadata"]["name"])

    def set_rollout_template(
        self, namespace: str, name: str, template: dict[str, Any], generation: int
    ) -> None:
        self._call("set_rollout_template", name)
        stored = self._found("Rollout", namespace, name)
        if stored["metadata"].get("generation") != generation:  # the JSON patch's test op
            raise api_error(
                422, message=f"the spec changed: generation is not {generation} any more"
            )
        if stored["spec"].get("template") != template:
            stored["spec"]["template"] = copy.deepcopy(template)
            stored["metadata"]["generation"] = generation + 1
        stored["metadata"]["resourceVersion"] = self.next_version()
        self._wrote("set_rollout_template", name)

    def patch_rollout_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._call("patch_rollout_status", name)
        stored = self._found("Rollout", namespace, name)
        stored["status"] = without_nulls(merge_patch(stored.get("status") or {}, status))
        stored["metadata"]["resourceVersion"] = self.next_version()
        self._wrote("patch_rollout_status", name)

    def post_event(self, rollout: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = rollout["metadata"]
        self._call("post_event", meta["name"])
        event = event_body(rollout, f"{len(self.events):x}", self.now, type_, reason, message)
        self.events.append(event)
        self.put("Event", event)
        self._wrote("post_event", meta["name"])
