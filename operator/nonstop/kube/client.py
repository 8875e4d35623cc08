"""A thin, synchronous wrapper over the official client that speaks plain JSON dicts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from nonstop.api import GROUP, KIND, PLURAL, VERSION

TIMEOUT = 15
MERGE_PATCH = "application/merge-patch+json"


def load_config() -> None:
    """In a pod: the service account; elsewhere: the current kubeconfig context."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped in the client
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _json(response: Any) -> dict[str, Any]:
    """The response body as plain JSON: no model classes between the API and the planner."""
    body: dict[str, Any] = json.loads(response.data)
    return body


class Kube:
    """Calls the operator makes, by purpose. Errors surface as ApiException."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)
        self.instance = socket.gethostname()

    # --- reads -----------------------------------------------------------------------
    @staticmethod
    def _read(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """One GET as plain JSON; None when the object does not exist."""
        try:
            return _json(call(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _list(
        self, call: Callable[..., Any], namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        listing = self._read(call, namespace, label_selector=selector)
        items: list[dict[str, Any]] = listing["items"] if listing else []
        return items

    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )

    def list_deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._list(self.apps.list_namespaced_deployment, namespace, selector)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._list(self.core.list_namespaced_pod, namespace, selector)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self.core.read_namespaced_service, name, namespace)

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        return self._list(
            self.discovery.list_namespaced_endpoint_slice,
            namespace,
            f"kubernetes.io/service-name={service}",
        )

    # --- writes ----------------------------------------------------------------------
    def create_deployment(self, body: dict[str, Any]) -> None:
        ns = body["metadata"]["namespace"]
        try:
            self.apps.create_namespaced_deployment(
                ns,
                body,  # type: ignore[arg-type]  # the client sends plain dicts as they are
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status != 409:  # already there: an earlier pass made it
                raise

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment(
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )

    def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            self.apps.delete_namespaced_deployment(
                name, namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def ensure_service(self, body: dict[str, Any]) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            self.core.create_namespaced_service(
                ns,
                body,  # type: ignore[arg-type]  # the client sends plain dicts as they are
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            patch = {"metadata": {"labels": body["metadata"]["labels"]}, "spec": body["spec"]}
            self.core.patch_namespaced_service(
                name,
                ns,
                patch,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )

    def patch_rollout_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": status},
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )

    def post_event(self, rollout: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = rollout["metadata"]
        # Named like client-go's recorder (<object>.<unix nanos in hex>): listing order is
        # then the order the Events happened, which lastTimestamp (whole seconds) cannot give.
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {
                "name": f"{meta['name']}.{time.time_ns():x}",
                "namespace": meta["namespace"],
            },
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
            "reportingComponent": "nonstop.dev/operator",
            "reportingInstance": self.instance[:128],
        }
        self.core.create_namespaced_event(
            meta["namespace"],
            body,  # type: ignore[arg-type]  # the client sends plain dicts as they are
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )
