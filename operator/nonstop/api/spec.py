"""Spec of the Rollout custom resource (group nonstop.dev, version v1alpha1).

Every strategy of the API is modelled here, even those the operator does not carry out yet:
the CRD is generated from these models, so admission checks them all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from nonstop.api.base import (
    DNS_1123_LABEL,
    MAX_LABEL_VALUE,
    ApiModel,
    Duration,
    IntOrPercent,
    LabelMap,
    Name,
    OneOfModel,
    OpenApiModel,
    PortNumberOrName,
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
    key: str = Field(min_length=1, max_length=317, description="The label key it applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label relates to values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] | None = Field(
        default=None, max_length=64, description="Values for In and NotIn; none for the others."
    )


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
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None,
        max_length=16,
        description="Label selector requirements: accepted and validated, not used by this version.",
    )


class TemplateMetadata(ApiModel):
    """Labels and annotations of the pods; other metadata fields are refused."""

    labels: LabelMap = Field(
        min_length=1,
        json_schema_extra={"minProperties": 1},
        description="Pod labels; they must include spec.selector.matchLabels. nonstop adds"
        " nonstop.dev/rollout and nonstop.dev/revision.",
    )
    annotations: dict[str, str] | None = Field(default=None, description="Pod annotations.")


IMAGE_MESSAGE = "must not have leading or trailing whitespace (Kubernetes refuses it)"


class Container(OpenApiModel):
    """A container of the pod template; fields other than name and image pass through as written."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_1123_LABEL,
        description="A DNS label: lowercase letters, digits and '-'.",
    )
    image: str = Field(
        min_length=1,
        max_length=512,
        json_schema_extra=validations(cel("self == self.trim()", IMAGE_MESSAGE)),
        description="The container image.",
    )

    @field_validator("image")
    @classmethod
    def _image_trimmed(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError(IMAGE_MESSAGE)
        return value


CONTAINER_NAMES_MESSAGE = "container names must be unique within the pod (Kubernetes refuses it)"


class PodSpec(OpenApiModel):
    """A Kubernetes PodSpec; only containers is checked here, the rest passes through."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.containers.all(c, self.containers.filter(d, d.name == c.name).size() == 1)",
                CONTAINER_NAMES_MESSAGE,
                ".containers",
            )
        )
    )

    containers: list[Container] = Field(
        min_length=1,
        max_length=64,
        description="Containers of the pod; names unique in the pod.",
    )

    @model_validator(mode="after")
    def _unique_container_names(self) -> PodSpec:
        names = [c.name for c in self.containers]
        if len(set(names)) != len(names):
            raise ValueError(CONTAINER_NAMES_MESSAGE)
        return self


class PodTemplate(ApiModel):
    """The pod template. The revision is a hash of this whole object: any change to it
    starts a new revision."""

    metadata: TemplateMetadata
    spec: PodSpec


class ServicePort(ApiModel):
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS_1123_LABEL,
        description="A DNS label; required when the Service has more than one port.",
    )
    port: int = Field(ge=1, le=65535, description="Port of the Service.")
    target_port: PortNumberOrName | None = Field(
        default=None,
        description="The container port number (1 to 65535) or name that the Service sends"
        " to; default: port.",
    )
    protocol: Literal["TCP", "UDP", "SCTP"] | None = Field(
        default=None, description="TCP (the default), UDP or SCTP."
    )


PORT_NAMES_REQUIRED = (
    "every port needs a name when the Service has more than one (Kubernetes requires it)"
)
PORT_NAMES_UNIQUE = "port names must be unique (Kubernetes requires it)"
PORTS_UNIQUE = "each port number may appear once per protocol (Kubernetes requires it)"


class ServiceSpec(ApiModel):
    """The Service that users hit. nonstop creates it and keeps its selector and ports."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.ports.size() <= 1 || self.ports.all(p, has(p.name))",
                PORT_NAMES_REQUIRED,
                ".ports",
            ),
            cel(
                "self.ports.all(p, !has(p.name)"
                " || self.ports.filter(q, has(q.name) && q.name == p.name).size() == 1)",
                PORT_NAMES_UNIQUE,
                ".ports",
            ),
            cel(
                "self.ports.all(p, self.ports.filter(q, q.port == p.port"
                " && (has(q.protocol) ? q.protocol : 'TCP')"
                " == (has(p.protocol) ? p.protocol : 'TCP')).size() == 1)",
                PORTS_UNIQUE,
                ".ports",
            ),
        )
    )

    name: Name = Field(
        description="Name of the Service; it must not be taken by a Service that this Rollout"
        " does not own."
    )
    ports: list[ServicePort] = Field(
        min_length=1,
        max_length=32,
        description="Ports of the Service; with more than one, each needs a name.",
    )
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] | None = Field(
        default=None, description="ClusterIP (the default), NodePort or LoadBalancer."
    )

    @model_validator(mode="after")
    def _ports_as_kubernetes_wants(self) -> ServiceSpec:
        names = [p.name for p in self.ports if p.name is not None]
        if len(self.ports) > 1 and len(names) != len(self.ports):
            raise ValueError(PORT_NAMES_REQUIRED)
        if len(set(names)) != len(names):
            raise ValueError(PORT_NAMES_UNIQUE)
        keys = [(p.port, p.protocol or "TCP") for p in self.ports]
        if len(set(keys)) != len(keys):
            raise ValueError(PORTS_UNIQUE)
        return self


# --- traffic routing -----------------------------------------------------------------------


class GatewayApiRouting(ApiModel):
    """A Gateway API HTTPRoute (v1) whose weights, canary backendRefs and owned rules nonstop
    writes; everything else in it stays as written."""

    http_route: Name = Field(description="The HTTPRoute whose backends nonstop manages.")
    namespace: Name | None = Field(default=None, description="Namespace of the HTTPRoute.")


class TrafficRouting(ApiModel):
    """The router that splits traffic between revisions: needed by shadow, and by a canary
    that moves traffic by weight or header rather than by pods."""

    gateway_api: GatewayApiRouting = Field(
        alias="gatewayAPI", description="Route traffic with a Gateway API HTTPRoute."
    )


# --- analysis --------------------------------------------------------------------------------


class SecretKeyRef(ApiModel):
    """A key of a Secret in the Rollout's namespace. The Secret must opt in: the label
    nonstop.dev/credentials=true, and the annotation nonstop.dev/allowed-urls listing the URL
    prefixes it may be sent to; otherwise no request is made and the measurement is an
    Error naming what to add."""

    name: Name = Field(
        description="A Secret in the Rollout's namespace, labelled nonstop.dev/credentials=true,"
        " whose annotation nonstop.dev/allowed-urls lists the URL prefixes it may be sent to."
    )
    key: str = Field(min_length=1, max_length=253, description="The key in the Secret's data.")


class HeaderValueFrom(ApiModel):
    """Where the header's value is read from."""

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
    name: str = Field(min_length=1, max_length=256, description="The header's name.")
    value: str | None = Field(default=None, max_length=4096, description="The header's value.")
    value_from: HeaderValueFrom | None = Field(
        default=None, description="Read the header's value from a Secret."
    )


class PrometheusProvider(ApiModel):
    """An instant query to <address>/api/v1/query; the first sample of the result is
    `result`."""

    address: str = Field(min_length=1, max_length=2048, description="e.g. http://prometheus:9090")
    query: str = Field(
        min_length=1,
        max_length=8192,
        description="An instant PromQL query; {{revision}}, {{stableRevision}},"
        " {{canaryRevision}}, {{rollout}} and {{namespace}} are replaced.",
    )
    headers: list[HttpHeader] | None = Field(
        default=None, max_length=16, description="Request headers, such as credentials."
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=300, description="Timeout of the request (default 10)."
    )


class WebProvider(ApiModel):
    """An HTTP GET of a URL whose JSON body holds the value."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="The URL; the same {{...}} variables as in a Prometheus query are replaced.",
    )
    json_path: str = Field(
        min_length=1,
        max_length=512,
        description="Where the number is in the JSON body, e.g. $.data.errorRate.",
    )
    headers: list[HttpHeader] | None = Field(
        default=None, max_length=16, description="Request headers, such as credentials."
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=300, description="Timeout of the request (default 10)."
    )


class MetricProvider(OneOfModel):
    """Where the measurement comes from: exactly one of prometheus or web."""

    one_of_what = "provider"
    prometheus: PrometheusProvider | None = Field(default=None, description="Query Prometheus.")
    web: WebProvider | None = Field(default=None, description="Read a number from a JSON API.")


class Comparison(ApiModel):
    """Judge the canary against the stable revision with a Mann-Whitney U test: the query
    runs once per revision ({{revision}}), every sample of both kept, and the canary fails
    when it is worse with the given confidence."""

    confidence: float = Field(
        default=0.95,
        ge=0.5,
        le=0.999,
        description="The canary fails when p is below 1 - confidence (default 0.95).",
    )
    higher_is_worse: bool = Field(default=True, description="false: lower values are worse")
    min_samples: int = Field(
        default=5,
        ge=3,
        le=10000,
        description="Samples each revision needs before the test is made (default 5).",
    )


class Metric(ApiModel):
    """A metric: how to measure it, how often, and the conditions that judge each
    measurement."""

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
    name: Name = Field(description="Name of the metric (a DNS label).")
    provider: MetricProvider
    interval: Duration | None = Field(
        default=None,
        description="Time between measurements, such as 30s or 1m (units ms, s, m, h;"
        " default 10s).",
    )
    count: int | None = Field(
        default=None,
        ge=1,
        description="How many measurements; absent: 1 without an interval, and with one,"
        " until the steps end.",
    )
    success_condition: str | None = Field(
        default=None,
        max_length=1024,
        description="An expression over `result` that makes a measurement Successful,"
        " e.g. result < 0.01.",
    )
    failure_condition: str | None = Field(
        default=None,
        max_length=1024,
        description="An expression over `result` that makes a measurement Failed,"
        " e.g. result > 0.01; it is checked first.",
    )
    failure_limit: int | None = Field(
        default=None, ge=0, description="Failed measurements allowed (default 0)."
    )
    inconclusive_limit: int | None = Field(
        default=None, ge=0, description="Inconclusive measurements allowed (default 0)."
    )
    consecutive_error_limit: int | None = Field(
        default=None, ge=0, description="Provider errors in a row allowed (default 4)."
    )
    compare: Comparison | None = None


class AnalysisTemplateRef(ApiModel):
    name: Name = Field(description="An AnalysisTemplate in the Rollout's namespace.")


class Analysis(ApiModel):
    """Metrics that judge the rollout: named templates, metrics of its own, or both."""

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
    templates: list[AnalysisTemplateRef] | None = Field(
        default=None, max_length=16, description="AnalysisTemplates whose metrics run, by name."
    )
    metrics: list[Metric] | None = Field(
        default=None, max_length=16, description="Metrics of this analysis itself."
    )
    on_error: Literal["Abort", "Pause"] = Field(
        default="Abort",
        description="When a metric's provider keeps failing (consecutiveErrorLimit):"
        " abort the rollout, or pause it for a person. Never a pass.",
    )


class AnalysisTemplateSpec(ApiModel):
    """Metrics a team defines once and Rollouts refer to by name."""

    metrics: list[Metric] = Field(
        min_length=1, max_length=16, description="The metrics that an analysis naming it runs."
    )


# --- steps -----------------------------------------------------------------------------------


class Pause(ApiModel):
    """Wait: for a duration, or until a promote RolloutAction."""

    duration: Duration | None = Field(
        default=None, description="How long to wait; absent: wait until promoted."
    )


class SetCanaryScale(OneOfModel):
    """The new revision's pods, set apart from the weight: exactly one of replicas, percent
    or matchTrafficWeight."""

    one_of_what = "setCanaryScale"
    replicas: int | None = Field(default=None, ge=0, description="Pods of the new revision.")
    percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Pods of the new revision as a share (%) of spec.replicas, rounded up.",
    )
    match_traffic_weight: bool | None = Field(
        default=None, description="true: size the new revision by the weight again."
    )


# What the Gateway API accepts in an HTTPRoute's header match (HTTPHeaderName, value).
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"
MAX_HEADER_VALUE = 4096
# A prefix becomes the regular expression ^<prefix>.* with each of \.+*?()|[]{}^$ escaped by
# a backslash: at most 2 x 2046 + 3 = 4095 characters, within what the Gateway API allows.
MAX_HEADER_PREFIX = (MAX_HEADER_VALUE - 3) // 2


class HeaderMatch(OneOfModel):
    """A header a request must carry: its name, and exactly one of exact, prefix or regex."""

    one_of_what = "header match"
    one_of = ("exact", "prefix", "regex")
    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=HEADER_NAME,
        description="An HTTP header name (letters, digits and !#$%&'*+-.^_`|~).",
    )
    exact: str | None = Field(
        default=None, max_length=MAX_HEADER_VALUE, description="The header's exact value."
    )
    prefix: str | None = Field(
        default=None,
        max_length=MAX_HEADER_PREFIX,
        description="Sent to the HTTPRoute as the regular expression ^<prefix>.*, escaped.",
    )
    regex: str | None = Field(
        default=None,
        max_length=1024,
        description="A regular expression the header's value matches.",
    )


HEADER_NAMES_UNIQUE = (
    "each header may appear once in a setHeaderRoute (HTTP header names are case-insensitive)"
)


class SetHeaderRoute(ApiModel):
    """Send the requests that carry the given headers to the new revision, whatever the
    weight (a rule of the HTTPRoute owned by nonstop). Needs spec.trafficRouting."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.match.all(m, self.match.filter(n,"
                " n.name.lowerAscii() == m.name.lowerAscii()).size() == 1)",
                HEADER_NAMES_UNIQUE,
                ".match",
            )
        )
    )
    name: Name = Field(
        description="Name of the header route, in its rule's name (nonstop-header-<name>-<i>)."
    )
    match: list[HeaderMatch] = Field(
        min_length=1, max_length=16, description="Headers a request must all carry."
    )

    @model_validator(mode="after")
    def _headers_once(self) -> SetHeaderRoute:
        lowered = [m.name.lower() for m in self.match]
        if len(set(lowered)) != len(lowered):
            raise ValueError(HEADER_NAMES_UNIQUE)
        return self


class CanaryStep(OneOfModel):
    """One step: exactly one of setWeight, pause, setCanaryScale, setHeaderRoute or
    analysis."""

    one_of_what = "step"
    set_weight: Weight | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Share (%) of traffic for the new revision; without trafficRouting, the"
        " share of spec.replicas its pods get (rounded up).",
    )
    pause: Pause | None = None
    set_canary_scale: SetCanaryScale | None = None
    set_header_route: SetHeaderRoute | None = None
    analysis: Analysis | None = Field(
        default=None,
        description="An analysis run for this step (step-<i>): the step is done when it succeeds.",
    )


class ToggleStep(OneOfModel):
    """One step: exactly one of setWeight or pause."""

    one_of_what = "step"
    set_weight: Weight | None = Field(
        default=None, ge=0, le=100, description="Share (%) of users that get the new variant."
    )
    pause: Pause | None = None


# --- strategies ----------------------------------------------------------------------------


class RollingStrategy(ApiModel):
    """Replace the pods in batches, within maxSurge and maxUnavailable."""

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
    """Switch without a promote RolloutAction; absent: wait for one."""

    after_seconds: int = Field(
        ge=0, description="Seconds after the new revision is ready before the switch."
    )


class BlueGreenStrategy(ApiModel):
    """Bring the new revision up whole behind the preview Service, then switch the Service
    to it in one update."""

    preview_service: Name = Field(
        description="The Service that selects the new revision before the switch; it must"
        " differ from spec.service.name."
    )
    auto_promotion: AutoPromotion | None = None
    pre_promotion_analysis: Analysis | None = Field(
        default=None, description="An analysis that must succeed before the switch."
    )
    post_promotion_analysis: Analysis | None = Field(
        default=None,
        description="An analysis after the switch, while the old revision is kept whole; its"
        " failure switches back.",
    )
    scale_down_delay_seconds: int = Field(
        default=30,
        ge=0,
        description="Seconds the old revision stays whole after the switch (default 30).",
    )


class CanaryStrategy(ApiModel):
    """Move to the new revision in steps: weights, pauses, header routes, analyses."""

    steps: list[CanaryStep] = Field(min_length=1, max_length=64, description="The steps, in order.")
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
    """The copy of live traffic that the router sends to the shadow revision."""

    percent: int = Field(
        default=100, ge=0, le=100, description="Share (%) of requests copied (default 100)."
    )
    methods: list[HttpMethod] = Field(
        default_factory=lambda: list(SAFE_METHODS),
        min_length=1,
        max_length=7,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="HTTP methods mirrored (default GET, HEAD and OPTIONS).",
    )
    allow_unsafe_methods: bool = Field(
        default=False, description="Allow mirroring methods with side effects (duplicated writes)."
    )

    @model_validator(mode="after")
    def _safe_methods(self) -> Mirror:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError("mirror.methods: each method may appear once")
        unsafe = sorted(set(self.methods) - {"GET", "HEAD", "OPTIONS"})
        if unsafe and not self.allow_unsafe_methods:
            raise ValueError(f"mirroring {', '.join(unsafe)} needs allowUnsafeMethods: true")
        return self


class ShadowThen(OneOfModel):
    """How live traffic moves to the revision after the shadow phase: exactly one of
    blueGreen or canary."""

    one_of_what = "then"
    blue_green: BlueGreenStrategy | None = None
    canary: CanaryStrategy | None = None


class ShadowStrategy(ApiModel):
    """Mirror a copy of live traffic to the new revision first (its answers are dropped),
    then go on with blueGreen or canary. Needs spec.trafficRouting."""

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
    replicas: int | None = Field(
        default=None, ge=0, description="Pods of the shadow revision (default spec.replicas)."
    )
    duration: Duration = Field(
        description="How long the shadow gets mirrored traffic, such as 10m (units ms, s, m, h)."
    )
    analysis: Analysis | None = Field(
        default=None, description="An analysis that judges the shadow phase."
    )
    then: ShadowThen


class FlagRef(ApiModel):
    """The feature flag to move: a flag of an OpenFeature flagd document in a ConfigMap."""

    config_map: Name = Field(description="The ConfigMap that holds the flagd document.")
    key: str = Field(min_length=1, max_length=253, description="The flag's key in the document.")
    variant: str = Field(min_length=1, max_length=253, description="The new variant to roll out.")
    file: str = Field(
        default="flags.flagd.json",
        max_length=253,
        description="The ConfigMap data key that holds the flagd JSON document.",
    )


class FeatureToggleStrategy(ApiModel):
    """Ship the code dark, then let users in to a feature flag's new variant in steps."""

    flag: FlagRef
    steps: list[ToggleStep] = Field(
        min_length=1,
        max_length=64,
        description="The steps, in order; after the last, every user gets the variant.",
    )


class Strategy(OneOfModel):
    """How to move from revision to revision: exactly one of rolling, blueGreen, canary,
    shadow or featureToggle."""

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

# Names nonstop derives. The Rollout's name is the value of the label nonstop.dev/rollout
# on every Deployment, pod and Service nonstop creates (and on RolloutActions), so it is at
# most a label value long; the Deployments, <name>-<10 hex> (at most 74 characters), their
# ReplicaSets (<deployment>-<hash>, at most 85) and Events (<name>.<hex>) are then all
# valid DNS subdomains, and Kubernetes truncates the pod names it generates itself.
MAX_ROLLOUT_NAME = MAX_LABEL_VALUE
ROLLOUT_NAME_CONTEXT = "rolloutName"  # RolloutSpec.model_validate(..., context={this: name})
ROLLOUT_NAME_MESSAGE = (
    f"a Rollout name is at most {MAX_ROLLOUT_NAME} characters: nonstop writes it as the"
    " value of the label nonstop.dev/rollout on the Deployments, pods and Services it"
    f" creates, and Kubernetes allows at most {MAX_LABEL_VALUE} characters in a label value"
)
ROLLOUT_NAME_RULE = cel(
    f"self.metadata.name.size() <= {MAX_ROLLOUT_NAME}", ROLLOUT_NAME_MESSAGE, ".metadata.name"
)

CANARY_SUFFIX = "-canary"
MAX_SERVICE_NAME = 63
MAX_STABLE_FOR_CANARY = MAX_SERVICE_NAME - len(CANARY_SUFFIX)  # 56


def canary_service_message(canary_service_field: str) -> str:
    return (
        f"the canary Service <spec.service.name>{CANARY_SUFFIX} must be a DNS label of at most"
        f" {MAX_SERVICE_NAME} characters: shorten spec.service.name to at most"
        f" {MAX_STABLE_FOR_CANARY} characters, or set {canary_service_field}"
    )


CANARY_SERVICE_FIELD = "spec.strategy.canary.canaryService"
SHADOW_CANARY_SERVICE_FIELD = "spec.strategy.shadow.then.canary.canaryService"


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
                cel(
                    "!has(self.strategy.shadow) || !has(self.strategy.shadow.then.blueGreen)"
                    " || self.strategy.shadow.then.blueGreen.previewService != self.service.name",
                    "shadow.then.blueGreen.previewService must differ from spec.service.name",
                ),
                cel(
                    "!has(self.strategy.shadow) || !has(self.strategy.shadow.then.canary)"
                    " || !has(self.strategy.shadow.then.canary.canaryService)"
                    " || self.strategy.shadow.then.canary.canaryService != self.service.name",
                    "shadow.then.canary.canaryService must differ from spec.service.name"
                    " (the stable Service)",
                ),
                cel(
                    "!has(self.trafficRouting) || !has(self.strategy.canary)"
                    " || has(self.strategy.canary.canaryService)"
                    f" || self.service.name.size() <= {MAX_STABLE_FOR_CANARY}",
                    canary_service_message(CANARY_SERVICE_FIELD),
                    ".service.name",
                ),
                cel(
                    "!has(self.strategy.shadow) || !has(self.strategy.shadow.then.canary)"
                    " || has(self.strategy.shadow.then.canary.canaryService)"
                    f" || self.service.name.size() <= {MAX_STABLE_FOR_CANARY}",
                    canary_service_message(SHADOW_CANARY_SERVICE_FIELD),
                    ".service.name",
                ),
            )
        }
    )
    replicas: int = Field(default=1, ge=0, le=10000, description="Desired number of pods.")
    selector: LabelSelector
    template: PodTemplate
    service: ServiceSpec
    min_ready_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="Seconds a new pod must be ready before it counts as available; copied"
        " into a revision's Deployment when it is created.",
    )
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

    @model_validator(mode="after")
    def _services_nonstop_creates(self) -> RolloutSpec:
        """The same rules as the CEL above, on the Services nonstop names or derives."""
        stable = self.service.name
        shadow = self.strategy.shadow
        blue_green = self.strategy.blue_green or (shadow.then.blue_green if shadow else None)
        canary = self.strategy.canary or (shadow.then.canary if shadow else None)
        where = "shadow.then." if shadow else ""
        if blue_green is not None and blue_green.preview_service == stable:
            raise ValueError(f"{where}blueGreen.previewService must differ from spec.service.name")
        if canary is not None and canary.canary_service == stable:
            raise ValueError(
                f"{where}canary.canaryService must differ from spec.service.name"
                " (the stable Service)"
            )
        routed = shadow is not None or self.traffic_routing is not None
        if (
            canary is not None
            and routed
            and canary.canary_service is None
            and len(stable) > MAX_STABLE_FOR_CANARY
        ):
            field = SHADOW_CANARY_SERVICE_FIELD if shadow else CANARY_SERVICE_FIELD
            raise ValueError(
                f"spec.service.name: {canary_service_message(field)}"
                f" ({stable}{CANARY_SUFFIX} is {len(stable) + len(CANARY_SUFFIX)})"
            )
        return self

    @model_validator(mode="after")
    def _rollout_name_fits(self, info: ValidationInfo) -> RolloutSpec:
        """The rule on metadata.name, when the caller passes the name in the context."""
        name = (info.context or {}).get(ROLLOUT_NAME_CONTEXT)
        if name is not None and len(name) > MAX_ROLLOUT_NAME:
            raise ValueError(f"metadata.name: {ROLLOUT_NAME_MESSAGE} ({len(name)} here)")
        return self

    @field_validator("template", mode="before")
    @classmethod
    def _template_is_object(cls, value: Any) -> Any:
        if not value:
            raise ValueError("spec.template must not be empty")
        return value
