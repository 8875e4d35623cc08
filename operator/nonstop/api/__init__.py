"""The Rollout API: pydantic models that are the one source of truth for the CRD."""

from nonstop.api.spec import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    RollingStrategy,
    RolloutSpec,
    Strategy,
)
from nonstop.api.status import Abort, Condition, RolloutStatus, Weights

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Abort",
    "Condition",
    "RollingStrategy",
    "RolloutSpec",
    "RolloutStatus",
    "Strategy",
    "Weights",
]
