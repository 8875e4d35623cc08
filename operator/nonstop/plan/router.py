"""Traffic routers as the strategies see them: a protocol, and the Gateway API HTTPRoute.

A strategy asks a router for a canary weight, header routes or a mirror, and whether the
router (read back) already shows them; it never parses a route itself. A second router (an
Istio VirtualService, an SMI TrafficSplit) is one more class with these four methods; the
strategies do not change. Compare Argo Rollouts' TrafficRoutingReconciler interface
(rollout/trafficrouting/trafficroutingutil.go: SetWeight, SetHeaderRoute, SetMirrorRoute,
VerifyWeight, RemoveManagedRoutes).

traffic/gateway.py knows how to render a route; this module decides what to ask of it. A
route that is missing or cannot carry what is asked raises StallError, which the planner
turns into a Stalled condition and an Event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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


@dataclass(frozen=True)
class Shares:
    """Where the router sends traffic now, as read back (percent)."""

    stable: float
    canary: float
    mirror: float = 0.0


class TrafficRouter(Protocol):
    """What a step-based strategy needs of a traffic router."""

    @property
    def shares(self) -> Shares | None:
        """Where traffic goes now (None: the router cannot be read)."""

    def require(self) -> None:
        """Raise StallError when the router cannot be used at all."""

    def towards(
        self,
        *,
        canary_weight: float,
        header_routes: Sequence[HeaderRoute] = (),
        mirror: MirrorSpec | None = None,
    ) -> tuple[UpdateRoute | None, bool]:
        """The write that makes the router show this (None: it does already), and whether
        it does already."""

    def cleared(self) -> tuple[UpdateRoute | None, bool]:
        """The write that takes every trace of nonstop out of the router, and whether it is
        clean already."""


def canary_service_name(spec: RolloutSpec) -> str:
    names = other_services(spec)
    return names[0] if names else f"{spec.service.name}-canary"


class GatewayRouter:
    """spec.trafficRouting.gatewayAPI: weights between the stable and the canary Service in
    the user's HTTPRoute, header-matched rules, and a RequestMirror filter."""

    def __init__(self, spec: RolloutSpec, meta: RolloutMeta, observed: Observed) -> None:
        assert spec.traffic_routing is not None
        gateway = spec.traffic_routing.gateway_api
        route_ns = gateway.namespace or meta.namespace
        self._spec = spec
        self._label = f"HTTPRoute {route_ns}/{gateway.http_route}"
        self._route = observed.route
        self._error = observed.route_error
        self._stable = spec.service.name
        self._canary = canary_service_name(spec)
        # backendRefs name a namespace only when the route lives in another one
        self._service_ns = meta.namespace if route_ns != meta.namespace else None
        self._shares = self._read()  # parsed once per pass

    def _read(self) -> Shares | None:
        if self._route is None:
            return None
        ns = self._service_ns
        weights = read_weights(self._route, self._stable, self._canary, service_namespace=ns)
        stable, canary = weights or (100.0, 0.0)
        mirror = read_mirror_percent(self._route, self._canary, service_namespace=ns)
        return Shares(stable, canary, mirror)

    @property
    def shares(self) -> Shares | None:
        return self._shares

    def require(self) -> None:
        self._required()

    def _required(self) -> dict[str, Any]:
        if self._route is None:
            why = self._error or "it does not exist"
            raise StallError(
                "HTTPRouteNotFound",
                f"{self._label} named in spec.trafficRouting cannot be read: {why}."
                f" Create it (with a backendRef to Service {self._stable}), or fix"
                " spec.trafficRouting.gatewayAPI",
            )
        return self._route

    def towards(
        self,
        *,
        canary_weight: float,
        header_routes: Sequence[HeaderRoute] = (),
        mirror: MirrorSpec | None = None,
    ) -> tuple[UpdateRoute | None, bool]:
        route = self._required()
        try:
            wanted = desired_route(
                route,
                stable_service=self._stable,
                canary_service=self._canary,
                canary_weight=canary_weight,
                header_routes=header_routes,
                mirror=mirror,
                service_namespace=self._service_ns,
            )
        except RouteError as exc:
            raise StallError("HTTPRouteInvalid", str(exc)) from exc
        if not route_drift(route, wanted):
            return None, True
        before = self._shares.canary if self._shares else 0.0
        note = f"{self._label}: canary weight {before:g}% -> {canary_weight:g}%"
        if header_routes:
            note += f", header routes {', '.join(h.name for h in header_routes)}"
        if mirror is not None:
            note += f", mirroring {mirror.percent}%"
        return UpdateRoute(wanted, note), False

    def cleared(self) -> tuple[UpdateRoute | None, bool]:
        if self._route is None:  # a missing route is clean
            return None, True
        clean = strip_route(
            self._route, canary_service=self._canary, service_namespace=self._service_ns
        )
        if clean == self._route:
            return None, True
        note = f"{self._label}: all traffic to {self._stable}, as the user wrote it"
        return UpdateRoute(clean, note), False


def router_for(spec: RolloutSpec, meta: RolloutMeta, observed: Observed) -> TrafficRouter | None:
    """The router spec.trafficRouting names (one kind today), or None."""
    if spec.traffic_routing is None:
        return None
    return GatewayRouter(spec, meta, observed)
