"""Pure decisions: plan(rollout, observed, now) -> Plan. No client, no clock, no I/O."""

from nonstop.plan.model import (
    ActionAnswer,
    ActionView,
    CreateDeployment,
    DeleteDeployment,
    DeploymentView,
    EnsureService,
    EventSpec,
    Observed,
    Plan,
    PodProblem,
    RolloutMeta,
    RolloutView,
    ScaleDeployment,
    ServiceView,
)
from nonstop.plan.planner import plan

__all__ = [
    "ActionAnswer",
    "ActionView",
    "CreateDeployment",
    "DeleteDeployment",
    "DeploymentView",
    "EnsureService",
    "EventSpec",
    "Observed",
    "Plan",
    "PodProblem",
    "RolloutMeta",
    "RolloutView",
    "ScaleDeployment",
    "ServiceView",
    "plan",
]
