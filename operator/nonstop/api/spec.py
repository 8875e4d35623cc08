"""Spec of the Rollout custom resource (group nonstop.dev, version v1alpha1).

Every strategy of the API is modelled here, even those the operator does not carry out yet:
the CRD is generated from these models, so admission checks them all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from nonstop.api.base import (
    ApiModel,
    Duration,
    IntOrName,
    IntOrPercent,
    LabelMap,
    Name,
    OneOfModel,
    OpenApiModel,
    cel,
    validations,
)

GROUP = "nonstop.dev"
VERSION = "v1alpha1"
KIND = "Rollout"
PLURAL = "rollouts"

STRATEGY_KEYS = ["rolling", "blueGreen", "canary", "shadow", "featureToggle"]
CANARY_STEP_KEYS = ["setWeight", "pause", "setCanaryScale", "setHeaderRoute", "analysis"]
TOGGLE_STEP_KEYS = ["setWeight", "pause"]

Weight = float


# --- pods and services ------------------------------------------------------------------


class LabelSelectorRequirement(ApiModel):
    key: str = Field(min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = Field(default=None, max_length=64)


class LabelSelector(ApiModel):
    """Which pods belong to the Rollout. matchLabels is required: the Service selects by it.
    Immutable, as in Deployments: a new selector would cut old pods out of the Service
    before their replacements are ready."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self == oldSelf",
                "spec.selector is immutable: create a new Rollout (and Service) to change it",
            )
        )
    )

    match_labels: LabelMap = Field(
        description="Labels every pod of the Rollout carries; the Service selects by them.",
        min_length=1,
        json_schema_extra={"minProperties": 1},
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=16)


class TemplateMetadata(ApiModel):
    labels: LabelMap = Field(min_length=1, json_schema_extra={"minProperties": 1})
    annotations: dict[str, str] | None = None


class Container(OpenApiModel):
    """A container of the pod template; fields other than name and image pass through as written."""

    name: str = Field(min_length=1, max_length=63)
    image: str = Field(min_length=1, max_length=512)


class PodSpec(OpenApiModel):
    """A Kubernetes PodSpec; only containers is checked here, the rest passes through."""

    containers: list[Container] = Field(min_length=1, max_length=64)


class PodTemplate(ApiModel):
    metadata: TemplateMetadata
    spec: PodSpec


class ServicePort(ApiModel):
    name: str | None = Field(default=None, max_length=63)
    port: int = Field(ge=1, le=65535)
    target_port: IntOrName | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None


class ServiceSpec(ApiModel):
    """The Service that users hit. nonstop creates it and keeps its selector and ports."""

    name: Name
    ports: list[ServicePort] = Field(min_length=1, max_length=32)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] | None = None


# --- traffic routing -----------------------------------------------------------------------


class GatewayApiRouting(ApiModel):
    http_route: Name = Field(description="The HTTPRoute whose backends nonstop manages.")
    namespace: Name | None = Field(default=None, description="Namespace of the HTTPRoute.")


class TrafficRouting(ApiModel):
    gateway_api: GatewayApiRouting = Field(
        alias="gatewayAPI", description="Route traffic with a Gateway API HTTPRoute."
    )


# --- analysis --------------------------------------------------------------------------------


class SecretKeyRef(ApiModel):
    name: Name = Field(description="A Secret in the Rollout's namespace.")
    key: str = Field(min_length=1, max_length=253)


class HeaderValueFrom(ApiModel):
    secret_key_ref: SecretKeyRef


class HttpHeader(ApiModel):
    """A request header; its value written here, or read from a Secret (credentials)."""

    model_config = ConfigDict(
        **{
            "json_schema_extra": validations(
                cel(
                    "has(self.value) != has(self.valueFrom)",
                    "header: set exactly one of value or valueFrom",
                )
            )
        }
    )
    name: str = Field(min_length=1, max_length=256)
    value: str | None = Field(default=None, max_length=4096)
    value_from: HeaderValueFrom | None = None


class PrometheusProvider(ApiModel):
    address: str = Field(min_length=1, max_length=2048, description="e.g. http://prometheus:9090")
    query: str = Field(
        min_length=1,
        max_length=8192,
        description="An instant PromQL query; {{revision}}, {{stableRevision}},"
        " {{canaryRevision}}, {{rollout}} and {{namespace}} are replaced.",
    )
    headers: list[HttpHeader] | None = Field(default=None, max_length=16)
    timeout_seconds: int | None = Field(default=None, ge=1, le=300)


class WebProvider(ApiModel):
    url: str = Field(min_length=1, max_length=2048)
    json_path: str = Field(min_length=1, max_length=512)
    headers: list[HttpHeader] | None = Field(default=None, max_length=16)
    timeout_seconds: int | None = Field(default=None, ge=1, le=300)


class MetricProvider(OneOfModel):
    one_of_what = "provider"
    prometheus: PrometheusProvider | None = None
    web: WebProvider | None = None


class Comparison(ApiModel):
    """Judge the canary against the stable revision with a Mann-Whitney U test: the query
    runs once per revision ({{revision}}), every sample of both kept, and the canary fails
    when it is worse with the given confidence."""

    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    higher_is_worse: bool = Field(default=True, description="false: lower values are worse")
    min_samples: int = Field(default=5, ge=3, le=10000)


class Metric(ApiModel):
    model_config = ConfigDict(
        **{
            "json_schema_extra": validations(
                cel(
                    "!has(self.compare) || (has(self.provider.prometheus)"
                    " && !has(self.successCondition) && !has(self.failureCondition))",
                    "compare needs a prometheus provider and no success or failure condition",
                )
            )
        }
    )
    name: Name
    provider: MetricProvider
    interval: Duration | None = None
    count: int | None = Field(default=None, ge=1)
    success_condition: str | None = Field(default=None, max_length=1024)
    failure_condition: str | None = Field(default=None, max_length=1024)
    failure_limit: int | None = Field(default=None, ge=0)
    inconclusive_limit: int | None = Field(default=None, ge=0)
    consecutive_error_limit: int | None = Field(default=None, ge=0)
    compare: Comparison | None = None


class AnalysisTemplateRef(ApiModel):
    name: Name


class Analysis(ApiModel):
    model_config = ConfigDict(
        **{
            "json_schema_extra": validations(
                cel(
                    "has(self.templates) || has(self.metrics)",
                    "analysis: set templates or metrics",
                )
            )
        }
    )
    templates: list[AnalysisTemplateRef] | None = Field(default=None, max_length=16)
    metrics: list[Metric] | None = Field(default=None, max_length=16)
    on_error: Literal["Abort", "Pause"] = Field(
        default="Abort",
        description="When a metric's provider keeps failing (consecutiveErrorLimit):"
        " abort the rollout, or pause it for a person. Never a pass.",
    )


class AnalysisTemplateSpec(ApiModel):
    """Metrics a team defines once and Rollouts refer to by name."""

    metrics: list[Metric] = Field(min_length=1, max_length=16)


# --- steps -----------------------------------------------------------------------------------


class Pause(ApiModel):
    duration: Duration | None = Field(
        default=None, description="How long to wait; absent: wait until promoted."
    )


class SetCanaryScale(OneOfModel):
    one_of_what = "setCanaryScale"
    replicas: int | None = Field(default=None, ge=0)
    percent: int | None = Field(default=None, ge=0, le=100)
    match_traffic_weight: bool | None = None


class HeaderMatch(OneOfModel):
    one_of_what = "header match"
    one_of = ("exact", "prefix", "regex")
    name: str = Field(min_length=1, max_length=256)
    exact: str | None = Field(default=None, max_length=4096)
    prefix: str | None = Field(default=None, max_length=4096)
    regex: str | None = Field(default=None, max_length=1024)


class SetHeaderRoute(ApiModel):
    name: Name
    match: list[HeaderMatch] = Field(min_length=1, max_length=16)


class CanaryStep(OneOfModel):
    one_of_what = "step"
    set_weight: Weight | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None
    set_canary_scale: SetCanaryScale | None = None
    set_header_route: SetHeaderRoute | None = None
    analysis: Analysis | None = None


class ToggleStep(OneOfModel):
    one_of_what = "step"
    set_weight: Weight | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None


# --- strategies ----------------------------------------------------------------------------


class RollingStrategy(ApiModel):
    model_config = ConfigDict(
        **{
            "json_schema_extra": validations(
                cel(
                    "!((has(self.maxSurge) && (self.maxSurge == 0 || self.maxSurge == '0%'))"
                    " && (!has(self.maxUnavailable) || self.maxUnavailable == 0"
                    " || self.maxUnavailable == '0%'))",
                    "maxSurge and maxUnavailable cannot both be 0: the rollout could never move",
                )
            )
        }
    )
    max_surge: IntOrPercent = Field(
        default="25%", description="Pods above spec.replicas while rolling (default 25%)."
    )
    max_unavailable: IntOrPercent = Field(
        default=0, description="Ready pods below spec.replicas allowed while rolling (default 0)."
    )

    @model_validator(mode="after")
    def _can_move(self) -> RollingStrategy:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError("maxSurge and maxUnavailable cannot both be 0")
        return self


class AutoPromotion(ApiModel):
    after_seconds: int = Field(ge=0)


class BlueGreenStrategy(ApiModel):
    preview_service: Name
    auto_promotion: AutoPromotion | None = None
    pre_promotion_analysis: Analysis | None = None
    post_promotion_analysis: Analysis | None = None
    scale_down_delay_seconds: int = Field(default=30, ge=0)


class CanaryStrategy(ApiModel):
    steps: list[CanaryStep] = Field(min_length=1, max_length=64)
    analysis: Analysis | None = Field(default=None, description="Runs for the whole canary.")
    canary_service: Name | None = Field(
        default=None,
        description="With trafficRouting: the Service that selects the canary's pods"
        " (default <spec.service.name>-canary). spec.service is the stable Service.",
    )
    scale_down_delay_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="With trafficRouting: seconds a revision keeps its pods after it lost its"
        " traffic (the route or a Service moved away from it, on completion or abort), so"
        " that every proxy has applied the change before the pods go. As Argo Rollouts.",
    )


HttpMethod = Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
SAFE_METHODS: tuple[HttpMethod, ...] = ("GET", "HEAD", "OPTIONS")


class Mirror(ApiModel):
    percent: int = Field(default=100, ge=0, le=100)
    methods: list[HttpMethod] = Field(default_factory=lambda: list(SAFE_METHODS), max_length=7)
    allow_unsafe_methods: bool = Field(
        default=False, description="Allow mirroring methods with side effects (duplicated writes)."
    )

    @model_validator(mode="after")
    def _safe_methods(self) -> Mirror:
        unsafe = sorted(set(self.methods) - {"GET", "HEAD", "OPTIONS"})
        if unsafe and not self.allow_unsafe_methods:
            raise ValueError(f"mirroring {', '.join(unsafe)} needs allowUnsafeMethods: true")
        return self


class ShadowThen(OneOfModel):
    one_of_what = "then"
    blue_green: BlueGreenStrategy | None = None
    canary: CanaryStrategy | None = None


class ShadowStrategy(ApiModel):
    model_config = ConfigDict(
        **{
            "json_schema_extra": validations(
                cel(
                    "!has(self.mirror) || !has(self.mirror.methods)"
                    " || (has(self.mirror.allowUnsafeMethods) && self.mirror.allowUnsafeMethods)"
                    " || self.mirror.methods.all(m, m in ['GET', 'HEAD', 'OPTIONS'])",
                    "mirroring methods other than GET, HEAD and OPTIONS needs"
                    " mirror.allowUnsafeMethods: true (they duplicate writes)",
                )
            )
        }
    )
    mirror: Mirror = Field(default_factory=Mirror)
    replicas: int | None = Field(default=None, ge=0)
    duration: Duration
    analysis: Analysis | None = None
    then: ShadowThen


class FlagRef(ApiModel):
    config_map: Name
    key: str = Field(min_length=1, max_length=253, description="The flag's key in the document.")
    variant: str = Field(min_length=1, max_length=253, description="The new variant to roll out.")
    file: str = Field(
        default="flags.flagd.json",
        max_length=253,
        description="The ConfigMap data key that holds the flagd JSON document.",
    )


class FeatureToggleStrategy(ApiModel):
    flag: FlagRef
    steps: list[ToggleStep] = Field(min_length=1, max_length=64)


class Strategy(OneOfModel):
    one_of_what = "strategy"
    rolling: RollingStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    canary: CanaryStrategy | None = None
    shadow: ShadowStrategy | None = None
    feature_toggle: FeatureToggleStrategy | None = None

    @property
    def name(self) -> str:
        """The wire name of the chosen strategy (rolling, blueGreen, ...)."""
        for field, info in type(self).model_fields.items():
            if getattr(self, field) is not None:
                return info.alias or field
        raise AssertionError("validated Strategy has a strategy")


# --- the Rollout ---------------------------------------------------------------------------


class RolloutSpec(ApiModel):
    model_config = ConfigDict(
        **{
            "json_schema_extra": validations(
                cel(
                    "self.selector.matchLabels.all(k, k in self.template.metadata.labels"
                    " && self.template.metadata.labels[k] == self.selector.matchLabels[k])",
                    "spec.selector.matchLabels must also be labels of spec.template.metadata.labels",
                ),
                cel(
                    "!has(self.strategy.shadow) || has(self.trafficRouting)",
                    "the shadow strategy needs spec.trafficRouting (mirroring is done by the router)",
                ),
                cel(
                    "!has(self.strategy.blueGreen)"
                    " || self.strategy.blueGreen.previewService != self.service.name",
                    "blueGreen.previewService must differ from spec.service.name",
                ),
                cel(
                    "!has(self.strategy.canary) || !has(self.strategy.canary.canaryService)"
                    " || self.strategy.canary.canaryService != self.service.name",
                    "canary.canaryService must differ from spec.service.name (the stable Service)",
                ),
            )
        }
    )
    replicas: int = Field(default=1, ge=0, le=10000, description="Desired number of pods.")
    selector: LabelSelector
    template: PodTemplate
    service: ServiceSpec
    min_ready_seconds: int = Field(default=0, ge=0, le=3600)
    progress_deadline_seconds: int = Field(
        default=600,
        ge=1,
        description="Without progress for this long the rollout is aborted and rolled back.",
    )
    revision_history_limit: int = Field(
        default=3, ge=0, le=100, description="Old revisions kept at zero replicas."
    )
    paused: bool = Field(default=False, description="Freeze the rollout where it is.")
    traffic_routing: TrafficRouting | None = None
    strategy: Strategy

    @model_validator(mode="after")
    def _selector_matches_template(self) -> RolloutSpec:
        labels = self.template.metadata.labels
        if any(labels.get(k) != v for k, v in self.selector.match_labels.items()):
            raise ValueError(
                "spec.selector.matchLabels must also be labels of spec.template.metadata.labels"
            )
        if self.strategy.shadow is not None and self.traffic_routing is None:
            raise ValueError("the shadow strategy needs spec.trafficRouting")
        return self

    @field_validator("template", mode="before")
    @classmethod
    def _template_is_object(cls, value: Any) -> Any:
        if not value:
            raise ValueError("spec.template must not be empty")
        return value
