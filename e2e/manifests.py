"""Rollout manifests for the e2e tests, as users would write them."""

from __future__ import annotations

from typing import Any


def rollout(
    name: str = "web",
    replicas: int = 4,
    image: str = "registry.example/web:1",
    max_surge: int | str = 1,
    max_unavailable: int | str = 0,
    deadline: int = 600,
    pod_labels: dict[str, str] | None = None,
    min_ready_seconds: int = 0,
    service: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, **(pod_labels or {})}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
            "service": {"name": service or name, "ports": [{"port": 80, "targetPort": 8080}]},
            "progressDeadlineSeconds": deadline,
            "minReadySeconds": min_ready_seconds,
            "strategy": {"rolling": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
        },
    }


def http_route(name: str = "web", service: str = "web") -> dict[str, Any]:
    """A user's HTTPRoute to the stable Service, with a filter of the user's own that must
    survive every rollout."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "public-gateway"}],
            "hostnames": ["web.example"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {
                                "set": [{"name": "x-served-by", "value": "web-route"}]
                            },
                        }
                    ],
                    "backendRefs": [{"name": service, "port": 80}],
                }
            ],
        },
    }
