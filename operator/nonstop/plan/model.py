"""What the planner sees (observed state) and what it decides (actions, events, status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from nonstop.api import RolloutSpec, RolloutStatus
from nonstop.api.spec import AnalysisTemplateSpec, Metric

ROLLOUT_LABEL = "nonstop.dev/rollout"
REVISION_LABEL = "nonstop.dev/revision"
TEMPLATE_ANNOTATION = "nonstop.dev/template"  # a revision's pod template as the Rollout had it
MANAGED_BY = {"app.kubernetes.io/managed-by": "nonstop"}


class StallError(Exception):
    """What the spec asks cannot be done with what is in the cluster (a route, a flag
    document, an analysis template): the planner stalls the Rollout with `reason` as the
    condition reason and changes nothing."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class RolloutMeta:
    name: str
    namespace: str
    uid: str
    generation: int


@dataclass(frozen=True)
class RolloutView:
    """The Rollout as the planner needs it: parsed spec (or why it is invalid) and last status."""

    meta: RolloutMeta
    spec: RolloutSpec | None
    template: dict[str, Any]
    status: RolloutStatus
    spec_error: str | None = None


@dataclass(frozen=True)
class DeploymentView:
    """One revision's Deployment as observed."""

    name: str
    revision: str
    spec_replicas: int
    replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    up_to_date: bool = True  # status.observedGeneration has caught up with the spec
    created_at: datetime | None = None
    template: dict[str, Any] | None = field(default=None, compare=False)  # for undo

    @property
    def pods(self) -> int:
        """Pods that exist or are about to: the larger of asked and present."""
        return max(self.spec_replicas, self.replicas)

    @property
    def available(self) -> int:
        """Available pods that will stay: never more than asked for, even if status lags."""
        return min(self.available_replicas, self.ready_replicas, self.spec_replicas)


@dataclass(frozen=True)
class PodProblem:
    """A pod that is not ready, with the reason Kubernetes gives."""

    name: str
    revision: str
    reason: str
    message: str
    since: datetime


@dataclass(frozen=True)
class ServiceView:
    name: str
    owned: bool
    selector: dict[str, str]
    ports: tuple[tuple[str | None, int, int | str, str], ...]
    type: str = "ClusterIP"
    ready: int | None = None  # observed: ready endpoints in its EndpointSlices (None: no slices)

    def selects(self, revision: str) -> bool:
        return self.selector.get(REVISION_LABEL) == revision


@dataclass(frozen=True)
class ActionView:
    """A RolloutAction that nonstop has not answered yet."""

    name: str
    uid: str
    action: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class AnsweredAction:
    """A RolloutAction nonstop has answered: kept a while for `kubectl get`, then deleted."""

    name: str
    answered_at: datetime


@dataclass(frozen=True)
class Observed:
    deployments: tuple[DeploymentView, ...] = ()
    unready_pods: tuple[PodProblem, ...] = ()
    service: ServiceView | None = None
    ready_endpoints: int | None = None  # ready endpoints behind the Service; None: no slices
    actions: tuple[ActionView, ...] = ()  # pending RolloutActions for this Rollout
    services: tuple[ServiceView, ...] = ()  # the strategy's other Services (canary, preview)
    route: dict[str, Any] | None = None  # the HTTPRoute of spec.trafficRouting, as read
    route_error: str | None = None  # why it could not be read
    restarts: int = 0  # container restarts of the current revision's pods
    config_map: dict[str, Any] | None = None  # the feature toggle's flag document
    config_map_error: str | None = None
    templates: dict[str, AnalysisTemplateSpec] = field(default_factory=dict)  # by name
    # a Deployment under the name nonstop would give the current revision, not made by this
    # Rollout (made by hand, or a hash collision): nonstop never claims it
    foreign_deployment: str | None = None
    answered: tuple[AnsweredAction, ...] = ()  # answered RolloutActions of this Rollout

    def other_service(self, name: str) -> ServiceView | None:
        return next((s for s in self.services if s.name == name), None)


@dataclass(frozen=True)
class EnsureService:
    body: dict[str, Any]
    # the selector observed this pass; None: the Service does not exist yet (create it)
    current_selector: dict[str, str] | None = None


@dataclass(frozen=True)
class CreateDeployment:
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


@dataclass(frozen=True)
class ScaleDeployment:
    name: str
    replicas: int
    from_replicas: int


@dataclass(frozen=True)
class DeleteDeployment:
    name: str
    history_limit: int = 0  # the revisionHistoryLimit it keeps (for the Event)


@dataclass(frozen=True)
class DeleteAction:
    """Delete an answered RolloutAction (it has been kept long enough)."""

    name: str


@dataclass(frozen=True)
class UpdateRoute:
    """Replace the HTTPRoute with this body (it carries the resourceVersion that was read, so
    a route someone changed in between is not overwritten: the next pass starts again)."""

    body: dict[str, Any]
    note: str = ""  # what changes, in words, for the Event


@dataclass(frozen=True)
class UpdateConfigMap:
    """Replace the ConfigMap with this body (with the resourceVersion that was read)."""

    body: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class Reading:
    """What a metric provider answered: a value (and every sample), or why not."""

    value: float | None = None
    samples: tuple[float, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Measure:
    """Query one metric of an analysis run now: not an action (it changes nothing). The
    provider layer reads it after the actions and before the status patch; its Reading is
    folded into the run's status."""

    run: str
    metric: Metric
    variables: dict[str, str]
    stable_variables: dict[str, str] | None = None  # a comparison queries both revisions


@dataclass(frozen=True)
class SetTemplate:
    """Undo: put a previous revision's pod template back into the Rollout's spec.
    Applied after the status (which records the undo) is saved."""

    template: dict[str, Any]
    revision: str


Action = (
    EnsureService
    | CreateDeployment
    | ScaleDeployment
    | DeleteDeployment
    | UpdateRoute
    | UpdateConfigMap
    | SetTemplate
    | DeleteAction
)

# Writes that move traffic (or choose which pods a Service sends it to): when one fails,
# nothing after it in the pass runs, so pods never go before their traffic has moved.
BARRIERS = (UpdateRoute, UpdateConfigMap, EnsureService)


@dataclass(frozen=True)
class EventSpec:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class ActionAnswer:
    """How a RolloutAction went; written to it after the Rollout's status is saved."""

    name: str
    phase: Literal["Applied", "Rejected"]
    message: str


@dataclass(frozen=True)
class Plan:
    """What one pass decided. `events` tell the state; the Events of the actions (Scaled,
    TrafficRouted, ...) are made from the actions that were carried out (events.py)."""

    actions: tuple[Action, ...]
    events: tuple[EventSpec, ...]
    status: RolloutStatus
    requeue_after: float
    answers: tuple[ActionAnswer, ...] = ()
    measures: tuple[Measure, ...] = ()
    log: dict[str, Any] = field(default_factory=dict)
    opening: int = 0  # events[:opening] tell what starts (posted before the actions' Events)
