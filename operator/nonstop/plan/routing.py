"""The HTTPRoute of spec.trafficRouting, as the step-based strategies use it.

traffic/gateway.py knows how to render a route; this module decides what to ask of it and
whether the route read back already shows it. A route that is missing or cannot carry what
is asked raises StallError, which the planner turns into a Stalled condition and an
Event: nothing is changed then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nonstop.api import RolloutSpec
from nonstop.plan.model import Observed, RolloutMeta, StallError, UpdateRoute
from nonstop.plan.resources import other_services
from nonstop.traffic import (
    HeaderRoute,
    MirrorSpec,
    RouteError,
    desired_route,
    read_mirror_percent,
    read_weights,
    route_drift,
    strip_route,
)


def canary_service_name(spec: RolloutSpec) -> str:
    names = other_services(spec)
    return names[0] if names else f"{spec.service.name}-canary"


def _route_label(spec: RolloutSpec, meta: RolloutMeta) -> str:
    assert spec.traffic_routing is not None
    gateway = spec.traffic_routing.gateway_api
    return f"HTTPRoute {gateway.namespace or meta.namespace}/{gateway.http_route}"


def _service_namespace(spec: RolloutSpec, meta: RolloutMeta) -> str | None:
    assert spec.traffic_routing is not None
    route_ns = spec.traffic_routing.gateway_api.namespace
    return meta.namespace if route_ns and route_ns != meta.namespace else None


def require_route(spec: RolloutSpec, meta: RolloutMeta, observed: Observed) -> dict[str, Any]:
    if observed.route is None:
        why = observed.route_error or "it does not exist"
        raise StallError(
            "HTTPRouteNotFound",
            f"{_route_label(spec, meta)} named in spec.trafficRouting cannot be read: {why}."
            " Create it (with a backendRef to Service"
            f" {spec.service.name}), or fix spec.trafficRouting.gatewayAPI",
        )
    return observed.route


def route_towards(
    spec: RolloutSpec,
    meta: RolloutMeta,
    observed: Observed,
    *,
    canary_weight: float,
    header_routes: Sequence[HeaderRoute] = (),
    mirror: MirrorSpec | None = None,
    canary_service: str | None = None,
) -> tuple[UpdateRoute | None, bool]:
    """The update that gives the route nonstop's parts as asked (None when it shows them
    already), and whether it shows them already."""
    route = require_route(spec, meta, observed)
    try:
        wanted = desired_route(
            route,
            stable_service=spec.service.name,
            canary_service=canary_service or canary_service_name(spec),
            canary_weight=canary_weight,
            header_routes=header_routes,
            mirror=mirror,
            service_namespace=_service_namespace(spec, meta),
        )
    except RouteError as exc:
        raise StallError("HTTPRouteInvalid", str(exc)) from exc
    if route_drift(route, wanted):
        shares = route_shares(spec, meta, observed, canary_service)
        before = shares[1] if shares else 0.0
        note = f"{_route_label(spec, meta)}: canary weight {before:g}% -> {canary_weight:g}%"
        if header_routes:
            note += f", header routes {', '.join(h.name for h in header_routes)}"
        if mirror is not None:
            note += f", mirroring {mirror.percent}%"
        return UpdateRoute(wanted, note), False
    return None, True


def route_cleared(
    spec: RolloutSpec, meta: RolloutMeta, observed: Observed, canary_service: str | None = None
) -> tuple[UpdateRoute | None, bool]:
    """The update that takes every trace of nonstop out of the route (None when there is
    none), and whether it is clean already. A missing route is clean."""
    if spec.traffic_routing is None or observed.route is None:
        return None, True
    clean = strip_route(
        observed.route,
        canary_service=canary_service or canary_service_name(spec),
        service_namespace=_service_namespace(spec, meta),
    )
    if clean != observed.route:
        note = (
            f"{_route_label(spec, meta)}: all traffic to {spec.service.name}, as the user wrote it"
        )
        return UpdateRoute(clean, note), False
    return None, True


def route_shares(
    spec: RolloutSpec, meta: RolloutMeta, observed: Observed, canary_service: str | None = None
) -> tuple[float, float, float] | None:
    """(stable %, canary %, mirrored %) as the route read back says; None without a route."""
    if spec.traffic_routing is None or observed.route is None:
        return None
    canary = canary_service or canary_service_name(spec)
    namespace = _service_namespace(spec, meta)
    weights = read_weights(
        observed.route, spec.service.name, canary, service_namespace=namespace
    ) or (100.0, 0.0)
    mirror = read_mirror_percent(observed.route, canary, service_namespace=namespace)
    return weights[0], weights[1], mirror
