"""A real Gateway API implementation for the e2e tests: Traefik, built from the Go module
proxy by build.sh and run as a process on 127.0.0.1 (see traefik.py)."""

from e2e.gateway.traefik import (
    CONTROLLER_NAME,
    Traefik,
    TraefikError,
    build_traefik,
    gateway_manifests,
)

__all__ = [
    "CONTROLLER_NAME",
    "Traefik",
    "TraefikError",
    "build_traefik",
    "gateway_manifests",
]
