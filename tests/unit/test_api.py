"""The Rollout API models, and the committed CRD generated from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from nonstop.api import RolloutSpec
from nonstop.api.action import RolloutActionSpec
from nonstop.api.base import duration_seconds
from nonstop.api.crd import action_crd, rollout_crd, template_crd
from nonstop.api.spec import ROLLOUT_NAME_CONTEXT
from tests.sim import rollout_raw

CRD_FILE = Path(__file__).parents[2] / "crds" / "rollouts.nonstop.dev.yaml"
ACTION_CRD_FILE = CRD_FILE.with_name("rolloutactions.nonstop.dev.yaml")
TEMPLATE_CRD_FILE = CRD_FILE.with_name("analysistemplates.nonstop.dev.yaml")


def test_committed_crds_match_the_models() -> None:
    for path, made in (
        (CRD_FILE, rollout_crd()),
        (ACTION_CRD_FILE, action_crd()),
        (TEMPLATE_CRD_FILE, template_crd()),
    ):
        assert yaml.safe_load(path.read_text()) == made, f"{path.name} drifted: run `make crd`"


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def test_crd_schema_is_structural() -> None:
    schema = rollout_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    nodes = walk(schema)
    assert not [n for n in nodes if "$ref" in n]
    assert not [n for n in nodes if n.get("type") == "null"]
    for node in nodes:
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True


def test_crd_has_scale_status_and_columns() -> None:
    version = rollout_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:7] == ["Strategy", "Desired", "Ready", "Step", "Weight", "Phase", "Age"]


def spec_with(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = rollout_raw()["spec"]
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"strategy": {}}, "exactly one of rolling"),
        ({"strategy": {"rolling": {}, "canary": {"steps": [{"setWeight": 5}]}}}, "exactly one"),
        ({"replicas": -1}, "replicas"),
        ({"strategy": {"rolling": {"maxSurge": "150%"}}}, "percentage"),
        ({"strategy": {"rolling": {"maxSurge": 0, "maxUnavailable": "0%"}}}, "both be 0"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 101}]}}}, "setWeight"),
        ({"strategy": {"canary": {"steps": [{"pause": {"duration": "5 minutes"}}]}}}, "duration"),
        ({"strategy": {"canary": {"steps": [{"setWeight": 5, "pause": {}}]}}}, "exactly one"),
        ({"template": {}}, "template"),
        ({"replica": 3}, "replica"),
        ({"selector": {"matchLabels": {"app": "other"}}}, "matchLabels"),
    ],
)
def test_invalid_specs_are_rejected_with_the_field_named(
    changes: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as error:
        RolloutSpec.model_validate(spec_with(**changes))
    assert needle in str(error.value)


def test_unknown_pod_fields_pass_through() -> None:
    spec = spec_with()
    spec["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    spec["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    parsed = RolloutSpec.model_validate(spec)
    assert parsed.template.spec.model_extra == {"nodeSelector": {"zone": "a"}}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


# --- names and values that end up in the objects nonstop writes ---------------------------
# Each rule: the largest value admitted and the smallest refused, on the pydantic side (the
# operator's check of stored Rollouts); e2e/test_admission.py checks the same at admission.


def refused(spec: dict[str, Any], context: dict[str, Any] | None = None) -> str:
    with pytest.raises(ValidationError) as error:
        RolloutSpec.model_validate(spec, context=context)
    return str(error.value)


def admitted(spec: dict[str, Any], context: dict[str, Any] | None = None) -> RolloutSpec:
    return RolloutSpec.model_validate(spec, context=context)


def test_a_rollout_name_is_at_most_a_label_value_long() -> None:
    admitted(spec_with(), {ROLLOUT_NAME_CONTEXT: "a" * 63})
    admitted(spec_with(), {ROLLOUT_NAME_CONTEXT: "a" * 30 + "." + "b" * 32})  # a subdomain
    message = refused(spec_with(), {ROLLOUT_NAME_CONTEXT: "a" * 64})
    assert "metadata.name" in message and "at most 63 characters" in message
    assert "label nonstop.dev/rollout" in message
    admitted(spec_with())  # without the name, only the spec is checked


def test_the_crd_checks_the_rollout_name_at_the_root() -> None:
    root = rollout_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    [rule] = root["x-kubernetes-validations"]
    assert rule["rule"] == "self.metadata.name.size() <= 63"
    assert rule["fieldPath"] == ".metadata.name"
    assert root["properties"]["metadata"]["properties"] == {"name": {"type": "string"}}


def routed_canary(service: str, **canary: Any) -> dict[str, Any]:
    return spec_with(
        service={"name": service, "ports": [{"port": 80}]},
        trafficRouting={"gatewayAPI": {"httpRoute": "web"}},
        strategy={"canary": {"steps": [{"setWeight": 5}], **canary}},
    )


def test_the_derived_canary_service_name_must_fit_a_dns_label() -> None:
    admitted(routed_canary("s" * 56))  # s...s-canary: 63 characters
    message = refused(routed_canary("s" * 57))
    assert "spec.service.name" in message and "at most 63 characters" in message
    assert "spec.strategy.canary.canaryService" in message
    assert f"{'s' * 57}-canary is 64" in message
    admitted(routed_canary("s" * 63, canaryService="c" * 63))  # named, nothing derived
    by_pods = routed_canary("s" * 63)
    del by_pods["trafficRouting"]
    admitted(by_pods)  # a canary without a router has no canary Service


def shadow_then(service: str, then: dict[str, Any]) -> dict[str, Any]:
    return spec_with(
        service={"name": service, "ports": [{"port": 80}]},
        trafficRouting={"gatewayAPI": {"httpRoute": "web"}},
        strategy={"shadow": {"duration": "5m", "then": then}},
    )


def test_a_shadow_then_canary_derives_the_same_canary_service() -> None:
    canary = {"canary": {"steps": [{"setWeight": 50}]}}
    admitted(shadow_then("s" * 56, canary))
    message = refused(shadow_then("s" * 57, canary))
    assert "spec.strategy.shadow.then.canary.canaryService" in message
    named = {"canary": {"steps": [{"setWeight": 50}], "canaryService": "web"}}
    assert "canaryService must differ" in refused(shadow_then("web", named))
    preview = {"blueGreen": {"previewService": "web"}}
    assert "previewService must differ" in refused(shadow_then("web", preview))
    admitted(shadow_then("web", {"blueGreen": {"previewService": "web-preview"}}))


def test_preview_and_canary_services_must_differ_from_the_stable_one() -> None:
    assert "previewService must differ" in refused(
        spec_with(strategy={"blueGreen": {"previewService": "web"}})
    )
    assert "canaryService must differ" in refused(routed_canary("web", canaryService="web"))


def with_port(**port: Any) -> dict[str, Any]:
    return spec_with(service={"name": "web", "ports": [{"port": 80, **port}]})


@pytest.mark.parametrize("target", [1, 65535, "http", "a" * 15, "h2c", "8080a", "web-api"], ids=str)
def test_target_ports_kubernetes_accepts_are_admitted(target: int | str) -> None:
    admitted(with_port(targetPort=target))


@pytest.mark.parametrize(
    "target", [0, 65536, 70000, -1, "a" * 16, "8080", "", "a--b", "-ab", "ab-", "Http", "h_2"]
)
def test_target_ports_kubernetes_refuses_are_refused(target: int | str) -> None:
    message = refused(with_port(targetPort=target))
    assert "service.ports.0.targetPort" in message and "from 1 to 65535" in message


def test_port_numbers_and_names() -> None:
    admitted(with_port(port=65535, name="h" * 63))
    assert "port" in refused(with_port(port=65536))
    assert "name" in refused(with_port(name="h" * 64))
    assert "name" in refused(with_port(name="Http"))
    admitted(with_port(name="8080"))  # a Service port name is a DNS label, digits allowed


def with_ports(*ports: dict[str, Any]) -> dict[str, Any]:
    return spec_with(service={"name": "web", "ports": list(ports)})


def test_several_ports_need_distinct_names_and_numbers() -> None:
    admitted(with_ports({"port": 80, "name": "a"}, {"port": 81, "name": "b"}))
    assert "needs a name" in refused(with_ports({"port": 80, "name": "a"}, {"port": 81}))
    assert "names must be unique" in refused(
        with_ports({"port": 80, "name": "a"}, {"port": 81, "name": "a"})
    )
    assert "once per protocol" in refused(
        with_ports({"port": 80, "name": "a"}, {"port": 80, "name": "b", "protocol": "TCP"})
    )
    admitted(with_ports({"port": 80, "name": "a"}, {"port": 80, "name": "b", "protocol": "UDP"}))


def with_label(key: str, value: str) -> dict[str, Any]:
    spec = spec_with()
    spec["template"]["metadata"]["labels"][key] = value
    return spec


def test_label_keys_and_values_are_what_kubernetes_accepts() -> None:
    admitted(with_label("k" * 63, "v" * 63))
    admitted(with_label("p" * 253 + "/" + "k" * 63, "a-b_c.d"))
    admitted(with_label("k", ""))  # an empty label value is valid
    assert "label values" in refused(with_label("k", "v" * 64))
    assert "label values" in refused(with_label("k", "-v"))
    assert "qualified names" in refused(with_label("k" * 64, "v"))
    assert "qualified names" in refused(with_label("p" * 254 + "/k", "v"))
    assert "qualified names" in refused(with_label("bad key", "v"))
    selector = spec_with(selector={"matchLabels": {"app": "web", "tier": "x y"}})
    assert "selector.matchLabels" in refused(selector)


def test_container_names_and_images() -> None:
    spec = spec_with()
    containers = spec["template"]["spec"]["containers"]
    containers[0]["name"] = "c" * 63
    admitted(spec)
    containers[0]["name"] = "Web"
    assert "containers.0.name" in refused(spec)
    containers[0]["name"] = "web"
    containers.append({"name": "web", "image": "web:1"})
    assert "container names must be unique" in refused(spec)
    containers[1]["name"] = "sidecar"
    containers[1]["image"] = "web:1 "
    assert "whitespace" in refused(spec)


def header_route(*match: dict[str, Any]) -> dict[str, Any]:
    return spec_with(
        trafficRouting={"gatewayAPI": {"httpRoute": "web"}},
        strategy={"canary": {"steps": [{"setHeaderRoute": {"name": "t", "match": list(match)}}]}},
    )


def test_header_routes_the_gateway_api_accepts() -> None:
    admitted(header_route({"name": "X-Canary_1!", "exact": "yes"}, {"name": "b", "exact": "1"}))
    assert "name" in refused(header_route({"name": "x canary", "exact": "yes"}))
    assert "each header may appear once" in refused(
        header_route({"name": "X-A", "exact": "1"}, {"name": "x-a", "exact": "2"})
    )
    admitted(header_route({"name": "x", "prefix": "\\" * 2046}))  # ^ + 4092 + .* = 4095
    assert "prefix" in refused(header_route({"name": "x", "prefix": "p" * 2047}))


def test_mirror_methods_are_a_non_empty_set() -> None:
    spec = shadow_then("web", {"canary": {"steps": [{"setWeight": 50}]}})
    spec["strategy"]["shadow"]["mirror"] = {"methods": ["GET", "HEAD"]}
    admitted(spec)
    spec["strategy"]["shadow"]["mirror"] = {"methods": []}
    assert "methods" in refused(spec)
    spec["strategy"]["shadow"]["mirror"] = {"methods": ["GET", "GET"]}
    assert "each method may appear once" in refused(spec)


def test_a_rolloutaction_names_any_rollout_name() -> None:
    for name in ("web", "a" * 63, "web.v1"):
        RolloutActionSpec.model_validate({"rollout": name, "action": "abort"})
    for name in ("a" * 64, "Web", "web_1"):
        with pytest.raises(ValidationError):
            RolloutActionSpec.model_validate({"rollout": name, "action": "abort"})
