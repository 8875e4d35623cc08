"""Traffic routers: pure read and render of the objects that split traffic. No client, no I/O."""

from nonstop.traffic.flagd import FlagError, FlagView, flag_weight, read_flag, set_weight
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
    "FlagError",
    "FlagView",
    "HeaderMatch",
    "HeaderRoute",
    "MirrorSpec",
    "RouteError",
    "desired_route",
    "flag_weight",
    "read_flag",
    "read_mirror_percent",
    "read_weights",
    "route_drift",
    "set_weight",
    "strip_route",
]
