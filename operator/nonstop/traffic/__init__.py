"""Traffic routers: pure read and render of the objects that split traffic. No client, no I/O."""

from nonstop.traffic.gateway import (
    ORIGINAL_WEIGHTS_ANNOTATION,
    WEIGHT_SCALE,
    HeaderMatch,
    HeaderRoute,
    MirrorSpec,
    RouteError,
    desired_route,
    read_mirror_percent,
    read_weights,
    route_drift,
    strip_route,
)

__all__ = [
    "ORIGINAL_WEIGHTS_ANNOTATION",
    "WEIGHT_SCALE",
    "HeaderMatch",
    "HeaderRoute",
    "MirrorSpec",
    "RouteError",
    "desired_route",
    "read_mirror_percent",
    "read_weights",
    "route_drift",
    "strip_route",
]
