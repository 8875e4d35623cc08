"""A thin, synchronous wrapper over the official client that speaks plain JSON dicts."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from nonstop import __version__, metrics
from nonstop.api import GROUP, KIND, PLURAL, VERSION
from nonstop.kube.ratelimit import TokenBucket
from nonstop.kube.recorder import Recorder

TIMEOUT = 15
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
HTTP_ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes"
# What a write answers: the object as the API server stored it (kube/cache.py keeps it, so
# the next pass reads its own writes), or None when there is nothing to keep.
Answer = dict[str, Any] | None


class ConflictError(Exception):
    """An object under a name nonstop needs exists and is not nonstop's."""


def load_config() -> None:
    """In a pod: the service account; elsewhere: the current kubeconfig context."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped in the client
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


class Kube:
    """The calls the operator makes, by purpose, as plain JSON over the client's connection.

    Requests go through ApiClient.call_api rather than the typed API classes: those convert
    bodies into client models first, and the models of client 37 refuse pod templates that
    the API server accepts (a number where a quantity string is usual, a field newer than
    the client). The API server is the judge of what is valid, so nonstop sends JSON as is.
    Errors surface as ApiException.
    """

    _watch_api: client.ApiClient | None = None  # made by the first watch()

    def __init__(
        self, api_client: client.ApiClient | None = None, qps: float = 40.0, burst: int = 80
    ) -> None:
        self.api = api_client or client.ApiClient()
        # The API server's audit log records each request's userAgent: nonstop's requests
        # can then be told apart from other clients' and counted.
        self.api.user_agent = f"nonstop/{__version__}"
        self.instance = socket.gethostname()
        # Client-side throttling, as client-go's rest.Config QPS and Burst. 40 and 80 are
        # the Argo Rollouts controller's defaults (its --qps and --burst flags, DefaultQPS
        # and DefaultBurst in argo-rollouts utils/defaults/defaults.go), a controller doing
        # the same work; client-go's own 5 and 10 are sized for kubectl. QPS <= 0: no limit.
        self.limiter = TokenBucket(qps, burst)

        def post(body: dict[str, Any]) -> dict[str, Any] | None:
            path = f"/api/v1/namespaces/{body['metadata']['namespace']}/events"
            return self._request("POST", path, body=body)

        def patch(namespace: str, name: str, body: dict[str, Any]) -> None:
            path = f"/api/v1/namespaces/{namespace}/events/{name}"
            self._request("PATCH", path, body=body, content_type=MERGE_PATCH)

        # One recorder per Kube: repeats update one Event, and a Rollout's Events are capped.
        self.events = Recorder(post, patch)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | list[dict[str, Any]] | None = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        """One request; the response as JSON, or None for 404 on a GET."""
        url_method, url, headers, data, post = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        self.limiter.acquire()  # every request waits for its token, reads and writes alike
        try:
            response = self.api.call_api(
                url_method, url, headers, data, post, _request_timeout=TIMEOUT
            )
        except Exception:  # no answer (refused, reset, timed out): counted, raised as before
            metrics.API_REQUESTS.labels(method, "error").inc()
            raise
        metrics.API_REQUESTS.labels(method, str(response.status)).inc()
        response.read()  # type: ignore[no-untyped-call]  # untyped in the client
        if method == "GET" and response.status == 404:
            return None
        if not 200 <= response.status < 300:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = response.data.decode(errors="replace") if response.data else ""
            raise error
        result: dict[str, Any] = json.loads(response.data) if response.data else {}
        return result

    def request_json(
        self, method: str, path: str, *, query: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """A read the planner does not need, for tools such as the kubectl plugin."""
        return self._request(method, path, query=query)

    def _list(self, path: str, selector: str) -> list[dict[str, Any]]:
        listing = self._request("GET", path, query={"labelSelector": selector})
        items: list[dict[str, Any]] = listing["items"] if listing else []
        return items

    # --- list and watch (kube/informer.py) --------------------------------------------
    def list_page(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """One page of a list (`limit`, `continue` in the query)."""
        listing = self._request("GET", path, query=query)
        if listing is None:
            raise ApiException(status=404, reason="Not Found")
        return listing

    def watch(self, path: str, query: dict[str, str], timeout_seconds: int) -> WatchStream:
        """Open a watch (the caller sets resourceVersion); read its events by iterating.

        Watches use a connection pool of their own: each holds a connection for minutes,
        and in the shared pool they would starve the passes' writes."""
        if self._watch_api is None:
            settings = client.Configuration.get_default_copy()
            settings.connection_pool_maxsize = 64
            self._watch_api = client.ApiClient(settings)
            self._watch_api.user_agent = self.api.user_agent
        params = {**query, "watch": "1", "timeoutSeconds": str(timeout_seconds)}
        url_method, url, headers, data, post = self._watch_api.param_serialize(
            "GET",
            path,
            query_params=list(params.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            answer = self._watch_api.call_api(
                url_method, url, headers, data, post, _request_timeout=(10, timeout_seconds + 30)
            )
        except Exception:  # no answer (refused, reset, timed out): counted, raised as before
            metrics.API_REQUESTS.labels("GET", "error").inc()
            raise
        response = answer.response
        metrics.API_REQUESTS.labels("GET", str(response.status)).inc()
        if response.status != 200:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = response.data.decode(errors="replace") if response.data else ""
            response.release_conn()
            raise error
        return WatchStream(response)

    # --- reads -----------------------------------------------------------------------
    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request("GET", f"{_rollouts(namespace)}/{name}")

    def list_deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._list(_deployments(namespace), selector)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/namespaces/{namespace}/pods", selector)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request("GET", f"{_services(namespace)}/{name}")

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        return self._list(
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            f"kubernetes.io/service-name={service}",
        )

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def list_analysis_templates(self, namespace: str) -> list[dict[str, Any]]:
        listing = self._request(
            "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/analysistemplates"
        )
        items: list[dict[str, Any]] = listing["items"] if listing else []
        return items

    def get_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request("GET", f"{HTTP_ROUTES.format(namespace=namespace)}/{name}")

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")

    def replace_config_map(self, body: dict[str, Any]) -> Answer:
        """PUT the whole ConfigMap; its resourceVersion makes a concurrent change a 409."""
        meta = body["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}"
        return self._request("PUT", path, body=body)

    def list_actions(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]:
        """The namespace's RolloutActions; with `rollout`, only that Rollout's, selected by
        the API server on spec.rollout (the CRD's selectableFields, Kubernetes 1.31+; an
        older server refuses the selector, and the whole list is filtered here instead)."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/rolloutactions"
        listing = None
        if rollout is not None:
            try:
                query = {"fieldSelector": f"spec.rollout={rollout}"}
                listing = self._request("GET", path, query=query)
            except ApiException as exc:
                if exc.status != 400:
                    raise
        if listing is None:
            listing = self._request("GET", path)
        items: list[dict[str, Any]] = listing["items"] if listing else []
        return items

    def delete_action(self, namespace: str, name: str) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/rolloutactions/{name}"
        try:
            self._request("DELETE", path)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- writes ----------------------------------------------------------------------
    def create_action(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/rolloutactions"
        created = self._request("POST", path, body=body)
        assert created is not None
        return created

    def get_action(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request(
            "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/rolloutactions/{name}"
        )

    def answer_action(self, namespace: str, name: str, status: dict[str, Any]) -> Answer:
        return self._request(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/rolloutactions/{name}/status",
            body={"status": status},
            content_type=MERGE_PATCH,
        )

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._request("GET", f"{_deployments(namespace)}/{name}")

    def create_deployment(self, body: dict[str, Any]) -> Answer:
        meta = body["metadata"]
        try:
            return self._request("POST", _deployments(meta["namespace"]), body=body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            # already there: an earlier pass made it (fine), or someone else did (never ours)
            found = self.get_deployment(meta["namespace"], meta["name"]) or {}
            owners = {o.get("uid") for o in found.get("metadata", {}).get("ownerReferences", [])}
            if not owners & {o["uid"] for o in meta.get("ownerReferences", [])}:
                raise ConflictError(
                    f"Deployment {meta['name']} already exists and does not belong to this Rollout"
                ) from exc
            return found

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> Answer:
        return self._request(
            "PATCH",
            f"{_deployments(namespace)}/{name}",
            body={"spec": {"replicas": replicas}},
            content_type=MERGE_PATCH,
        )

    def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            self._request("DELETE", f"{_deployments(namespace)}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def ensure_service(
        self, body: dict[str, Any], current_selector: dict[str, str] | None = None
    ) -> Answer:
        """Create the Service, or (it exists, with `current_selector` as observed) patch it."""
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        if current_selector is None:
            try:
                return self._request("POST", _services(ns), body=body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = self._request("GET", f"{_services(ns)}/{name}") or {}
                current_selector = current.get("spec", {}).get("selector") or {}
        # A merge patch merges maps: selector keys that must go are sent as null, so the
        # selector changes in this one update (a switch, never a moment of both).
        selector: dict[str, Any] = {k: None for k in current_selector}
        selector.update(body["spec"]["selector"])
        patch = {
            "metadata": {"labels": body["metadata"]["labels"]},
            "spec": {**body["spec"], "selector": selector},
        }
        return self._request(
            "PATCH", f"{_services(ns)}/{name}", body=patch, content_type=MERGE_PATCH
        )

    def replace_route(self, body: dict[str, Any]) -> Answer:
        """PUT the whole route; its resourceVersion makes a concurrent change a 409."""
        meta = body["metadata"]
        path = f"{HTTP_ROUTES.format(namespace=meta['namespace'])}/{meta['name']}"
        return self._request("PUT", path, body=body)

    def set_rollout_template(
        self, namespace: str, name: str, template: dict[str, Any], generation: int
    ) -> Answer:
        """Replace spec.template (undo), only if the spec is still the one planned from."""
        patch: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/generation", "value": generation},
            {"op": "replace", "path": "/spec/template", "value": template},
        ]
        return self._request(
            "PATCH", f"{_rollouts(namespace)}/{name}", body=patch, content_type=JSON_PATCH
        )

    def patch_rollout_status(self, namespace: str, name: str, status: dict[str, Any]) -> Answer:
        return self._request(
            "PATCH",
            f"{_rollouts(namespace)}/{name}/status",
            body={"status": status},
            content_type=MERGE_PATCH,
        )

    def post_event(self, rollout: dict[str, Any], type_: str, reason: str, message: str) -> None:
        # Named like client-go's recorder (<object>.<unix nanos in hex>): listing order is
        # then the order the Events happened, which lastTimestamp (whole seconds) cannot give.
        body = event_body(rollout, f"{time.time_ns():x}", datetime.now(UTC), type_, reason, message)
        body["reportingComponent"] = "nonstop.dev/operator"
        body["reportingInstance"] = self.instance[:128]
        # Posted, or (a repeat) counted on the Event already there, or (too many) dropped:
        # kube/recorder.py.
        self.events.record(body)


class WatchStream:
    """The events of one open watch, as JSON dicts ({"type": ..., "object": ...}).
    `close()` from another thread ends the iteration (the informer's stop)."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buffer = b""
        for chunk in self._response.stream(amt=None, decode_content=False):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    event: dict[str, Any] = json.loads(line)
                    yield event
        if buffer.strip():
            last: dict[str, Any] = json.loads(buffer)
            yield last

    def close(self) -> None:
        """Idempotent; never raises (a watch that ended has given its connection back)."""
        shutdown = getattr(self._response, "shutdown", None)
        with contextlib.suppress(Exception):
            if shutdown is not None:  # urllib3 >= 2.3: unblocks a read in another thread
                shutdown()
        with contextlib.suppress(Exception):
            self._response.release_conn()


def event_body(
    rollout: dict[str, Any], suffix: str, at: datetime, type_: str, reason: str, message: str
) -> dict[str, Any]:
    """A core/v1 Event on the Rollout, named <rollout>.<suffix>."""
    meta = rollout["metadata"]
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "nonstop"},
    }


def _rollouts(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def _deployments(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


def _services(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services"
