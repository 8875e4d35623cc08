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

    type: str = Field(description="Ready, Reconciling, Stalled or Paused; one of each.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="Why, in one CamelCase word, such as RolloutCompleted.")
    message: str = Field(default="", description="Why, in words.")
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the condition was written for."
    )
    last_transition_time: Time | None = Field(
        default=None, description="When the condition's status last changed."
    )


class Weights(ApiModel):
    """Shares of traffic (%): with spec.trafficRouting, as read back from the route;
    otherwise the share of available pods of each revision."""

    stable: float = Field(default=100, description="Share (%) of the stable revision.")
    canary: float = Field(
        default=0,
        description="Share (%) of the revision being rolled out while it is not the stable"
        " one; featureToggle: of the users that get the new variant.",
    )
    mirror: float = Field(default=0, description="Share (%) of requests mirrored to a shadow.")


class Abort(ApiModel):
    """The abort of the current revision; kept while spec.template is the aborted template."""

    revision: str = Field(description="The aborted revision.")
    at: Time = Field(description="When it was aborted.")
    reason: str = Field(
        description="ProgressDeadlineExceeded, AbortedByUser, AnalysisFailed or ShadowFailed."
    )
    message: str = Field(description="What happened, in words.")


class ActionRecord(ApiModel):
    """The last RolloutAction applied, so that it is applied once even if its own status
    could not be written."""

    uid: str = Field(description="The RolloutAction's metadata.uid.")
    name: str = Field(description="The RolloutAction's name.")
    action: str = Field(description="What it asked for: abort, retry, pause, resume, ...")
    at: Time = Field(description="When it was applied.")
    revision: str | None = Field(default=None, description="undo: the revision it went back to.")


class ShadowRecord(ApiModel):
    """The shadow phase of one revision: when mirroring began (all shadow pods ready and the
    mirror in the route), their restarts then, and when the phase passed."""

    revision: str = Field(description="The shadow revision.")
    started_at: Time | None = Field(default=None, description="When mirroring began.")
    restarts: int = Field(
        default=0, description="Container restarts of the shadow pods when mirroring began."
    )
    passed_at: Time | None = Field(default=None, description="When the shadow phase passed.")


class FlagStatus(ApiModel):
    """The flag a feature-toggle rollout moves, as read back from its ConfigMap."""

    config_map: str = Field(description="The ConfigMap that holds the flag document.")
    key: str = Field(description="The flag's key.")
    variant: str = Field(description="The variant being rolled out.")
    revision: str = Field(description="The revision whose rollout moves the flag.")
    state: str = Field(description="The flag's state in the document: ENABLED or DISABLED.")
    weight: float = Field(description="Share (%) of users that get the new variant.")

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.config_map, self.key, self.variant, self.revision)


MeasurementPhase = Literal["Successful", "Failed", "Inconclusive", "Error"]
RunPhase = Literal["Running", "Successful", "Failed", "Inconclusive", "Error"]


class MeasurementStatus(ApiModel):
    """One measurement of a metric."""

    at: Time = Field(description="When it was taken.")
    value: float | None = Field(default=None, description="The value; absent on an error.")
    phase: MeasurementPhase = Field(description="Successful, Failed, Inconclusive or Error.")
    message: str = Field(default="", description="What happened, in words.")


class MetricRunStatus(ApiModel):
    """One metric of an analysis run: counts, the last measurements, and for a comparison
    the samples of both revisions."""

    name: str = Field(description="The metric's name.")
    phase: RunPhase = Field(
        default="Running",
        description="Running, Successful, Failed, Inconclusive or Error: the metric's verdict.",
    )
    successful: int = Field(default=0, description="Successful measurements.")
    failed: int = Field(default=0, description="Failed measurements.")
    inconclusive: int = Field(default=0, description="Inconclusive measurements.")
    errors: int = Field(default=0, description="Measurements that were provider errors.")
    consecutive_errors: int = Field(default=0, description="Errors in a row, up to the last.")
    measurements: list[MeasurementStatus] = Field(
        default_factory=list, description="The last 10 measurements."
    )
    canary_samples: list[float] | None = Field(
        default=None, description="compare: the samples of the revision judged (the last 500)."
    )
    stable_samples: list[float] | None = Field(
        default=None, description="compare: the samples of the stable revision (the last 500)."
    )


class AnalysisRunStatus(ApiModel):
    """An analysis run: a canary step's (step-<i>), the whole canary's (background), a
    blue-green promotion's (prePromotion), the shadow phase's (shadow)."""

    name: str = Field(description="step-<i>, background, prePromotion, postPromotion or shadow.")
    revision: str = Field(description="The revision it judges.")
    phase: RunPhase = Field(
        default="Running",
        description="Running, Successful, Failed, Inconclusive or Error: the run's verdict.",
    )
    started_at: Time = Field(description="When it started.")
    message: str = Field(default="", description="The verdict, in words.")
    metrics: list[MetricRunStatus] = Field(default_factory=list, description="Its metrics.")
    reported: bool | None = Field(default=None, description="Its verdict's Event is posted.")


class Drain(ApiModel):
    """A revision that lost its traffic (a Service or the route moved away from it) at `at`:
    its pods stay until `at` + scaleDownDelaySeconds, so that every proxy has caught up."""

    revision: str = Field(description="The revision that lost its traffic.")
    at: Time = Field(description="When it lost its traffic.")


class RolloutStatus(ApiModel):
    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation this status was written for; lower: nonstop has"
        " not acted on the latest change yet.",
    )
    phase: Phase | None = Field(
        default=None, description="Progressing, Paused, Healthy or Degraded."
    )
    message: str | None = Field(
        default=None, description="One sentence on the current state (the Ready message)."
    )
    strategy: str | None = Field(
        default=None,
        description="The strategy in use: rolling, blueGreen, canary, shadow or featureToggle.",
    )
    current_revision: str | None = Field(default=None, description="Revision being rolled out.")
    stable_revision: str | None = Field(default=None, description="Revision serving as stable.")
    current_step_index: int | None = Field(
        default=None,
        description="Steps: the current step (0-based; the number of steps once all are"
        " done). blueGreen: the stage (0 preview, 1 ready, 2 promoted).",
    )
    step: str | None = Field(default=None, description="Progress as shown by kubectl get.")
    step_started_at: Time | None = Field(
        default=None, description="When the current step or stage started."
    )
    last_progress_time: Time | None = Field(
        default=None, description="The last progress: the progress deadline counts from it."
    )
    paused_since: Time | None = Field(
        default=None, description="When the phase became Paused; absent otherwise."
    )
    weights: Weights | None = None
    replicas: int | None = Field(default=None, description="Pods that exist, in all revisions.")
    ready_replicas: int | None = Field(default=None, description="Ready pods, in all revisions.")
    available_replicas: int | None = Field(
        default=None, description="Available pods, in all revisions."
    )
    updated_replicas: int | None = Field(default=None, description="Pods of the current revision.")
    updated_ready_replicas: int | None = Field(
        default=None, description="Available pods of the current revision."
    )
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
    analysis_runs: list[AnalysisRunStatus] = Field(
        default_factory=list, description="The analysis runs of the current revision."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="kstatus conditions: Ready, Reconciling, Stalled and Paused, one of each.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
