"""RolloutAction: a request from a person (or a pipeline, or a Git commit) to act on a Rollout.

Manual control is a resource of its own rather than an annotation or a status patch, so
that RBAC can grant "may promote or abort" (create rolloutactions) without "may edit the
Rollout" (patch rollouts), so that every request is an object with an author in the audit
log, and so that GitOps can carry one as a commit. nonstop applies each action once, says
how it went in the action's status and in an Event on the Rollout.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nonstop.api.base import ApiModel, RolloutName
from nonstop.api.status import Time

ACTION_KIND = "RolloutAction"
ACTION_PLURAL = "rolloutactions"

Verb = Literal["abort", "retry", "pause", "resume", "promote", "promoteFull", "undo"]
ActionPhase = Literal["Pending", "Applied", "Rejected"]


class RolloutActionSpec(ApiModel):
    """What to do to which Rollout; it cannot be changed once created."""

    rollout: RolloutName = Field(description="The Rollout to act on, in the same namespace.")
    action: Verb = Field(
        description="abort: roll back to the stable revision now; retry: roll out an aborted"
        " revision again; pause / resume: hold or release the rollout; promote / promoteFull:"
        " go to the next step / past all steps (canary), or switch now (blue-green); undo: put"
        " back the previous revision's pod template (the stable one, mid-rollout)."
    )
    reason: str | None = Field(default=None, max_length=512, description="Why, for the record.")


class RolloutActionStatus(ApiModel):
    """nonstop's answer, written once."""

    phase: ActionPhase | None = Field(default=None, description="Pending, Applied or Rejected.")
    message: str | None = Field(default=None, description="What nonstop did, or why it refused.")
    applied_at: Time | None = Field(default=None, description="When nonstop answered.")
