"""Status of the Rollout: all progress lives here, so a restarted operator resumes exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

from nonstop.api.base import ApiModel


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[datetime, PlainSerializer(format_time, return_type=str)]

Phase = Literal["Progressing", "Paused", "Healthy", "Degraded"]


class Condition(ApiModel):
    """A kstatus-style condition (types Ready, Reconciling, Stalled, Paused)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: Time | None = None


class Weights(ApiModel):
    stable: float = 100
    canary: float = 0
    mirror: float = 0


class Abort(ApiModel):
    revision: str
    at: Time
    reason: str
    message: str


class ActionRecord(ApiModel):
    """The last RolloutAction applied, so that it is applied once even if its own status
    could not be written."""

    uid: str
    name: str
    action: str
    at: Time
    revision: str | None = Field(default=None, description="undo: the revision it went back to.")


class ShadowRecord(ApiModel):
    """The shadow phase of one revision: when mirroring began (all shadow pods ready and the
    mirror in the route), their restarts then, and when the phase passed."""

    revision: str
    started_at: Time | None = None
    restarts: int = 0
    passed_at: Time | None = None


class FlagStatus(ApiModel):
    """The flag a feature-toggle rollout moves, as read back from its ConfigMap."""

    config_map: str
    key: str
    variant: str
    revision: str
    state: str
    weight: float = Field(description="Share (%) of users that get the new variant.")

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.config_map, self.key, self.variant, self.revision)


MeasurementPhase = Literal["Successful", "Failed", "Inconclusive", "Error"]
RunPhase = Literal["Running", "Successful", "Failed", "Inconclusive", "Error"]


class MeasurementStatus(ApiModel):
    at: Time
    value: float | None = None
    phase: MeasurementPhase
    message: str = ""


class MetricRunStatus(ApiModel):
    """One metric of an analysis run: counts, the last measurements, and for a comparison
    the samples of both revisions."""

    name: str
    phase: RunPhase = "Running"
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    measurements: list[MeasurementStatus] = Field(default_factory=list)
    canary_samples: list[float] | None = None
    stable_samples: list[float] | None = None


class AnalysisRunStatus(ApiModel):
    """An analysis run: a canary step's (step-<i>), the whole canary's (background), a
    blue-green promotion's (prePromotion), the shadow phase's (shadow)."""

    name: str
    revision: str
    phase: RunPhase = "Running"
    started_at: Time
    message: str = ""
    metrics: list[MetricRunStatus] = Field(default_factory=list)
    reported: bool | None = Field(default=None, description="Its verdict's Event is posted.")


class Drain(ApiModel):
    """A revision that lost its traffic (a Service or the route moved away from it) at `at`:
    its pods stay until `at` + scaleDownDelaySeconds, so that every proxy has caught up."""

    revision: str
    at: Time


class RolloutStatus(ApiModel):
    observed_generation: int | None = None
    phase: Phase | None = None
    message: str | None = None
    strategy: str | None = None
    current_revision: str | None = Field(default=None, description="Revision being rolled out.")
    stable_revision: str | None = Field(default=None, description="Revision serving as stable.")
    current_step_index: int | None = None
    step: str | None = Field(default=None, description="Progress as shown by kubectl get.")
    step_started_at: Time | None = None
    last_progress_time: Time | None = None
    paused_since: Time | None = None
    weights: Weights | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    updated_replicas: int | None = None
    updated_ready_replicas: int | None = None
    selector: str | None = Field(default=None, description="Label selector for scale and HPA.")
    hpa_replicas: int | None = Field(
        default=None,
        description="Pods of the revisions that get live traffic (the scale subresource's"
        " status.replicas, so that an HPA does not count a preview or a draining revision).",
    )
    draining: list[Drain] = Field(
        default_factory=list,
        description="Revisions that lost their traffic and keep their pods for"
        " scaleDownDelaySeconds.",
    )
    abort: Abort | None = None
    held: bool | None = Field(default=None, description="Paused by a RolloutAction.")
    last_action: ActionRecord | None = None
    shadow: ShadowRecord | None = None
    flag: FlagStatus | None = None
    analysis_runs: list[AnalysisRunStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
