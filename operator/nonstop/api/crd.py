"""Generate the Rollout CustomResourceDefinition from the pydantic models.

CRD schemas must be structural: no $ref, no nullable unions, int-or-string spelled the
Kubernetes way. This module turns pydantic's JSON Schema into that form.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from nonstop.api.action import ACTION_KIND, ACTION_PLURAL, RolloutActionSpec, RolloutActionStatus
from nonstop.api.spec import (
    GROUP,
    KIND,
    PLURAL,
    ROLLOUT_NAME_RULE,
    VERSION,
    AnalysisTemplateSpec,
    RolloutSpec,
)
from nonstop.api.status import RolloutStatus

SHORT_NAMES = ["nro"]  # "ro" is Argo Rollouts'
_DROP = {"title", "default", "$defs", "additionalProperties", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {key: _resolve(value, defs) for key, value in node.items()}


def _structural(node: Any) -> Any:
    """Rewrite one resolved JSON Schema node into a structural OpenAPI v3 schema node."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string"):
        return {k: v for k, v in node.items() if k not in _DROP}
    any_of = node.get("anyOf")
    if any_of is not None:
        branches = [b for b in any_of if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(branches) == 1:
            return _structural({**branches[0], **rest})
        raise ValueError(f"cannot express union in a CRD schema: {node}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value)
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    extra = node.get("additionalProperties")
    if extra is True or (node.get("type") == "object" and "properties" not in node and not extra):
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):
        out["additionalProperties"] = _structural(extra)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    resolved = _resolve(raw, raw.get("$defs", {}))
    schema: dict[str, Any] = _structural(resolved)
    return schema


def _printer_columns() -> list[dict[str, Any]]:
    def col(name: str, type_: str, path: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "type": type_, "jsonPath": path, **extra}

    return [
        col("Strategy", "string", ".status.strategy"),
        col("Desired", "integer", ".spec.replicas"),
        col("Ready", "integer", ".status.readyReplicas"),
        col("Step", "string", ".status.step"),
        col("Weight", "number", ".status.weights.canary"),
        col("Phase", "string", ".status.phase"),
        col("Age", "date", ".metadata.creationTimestamp"),
        col("Revision", "string", ".status.currentRevision", priority=1),
        col("Stable", "string", ".status.stableRevision", priority=1),
        col("Message", "string", ".status.message", priority=1),
    ]


def _crd(
    *,
    kind: str,
    plural: str,
    short_name: str,
    description: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    subresources: dict[str, Any],
    columns: list[dict[str, Any]],
    root_rules: list[dict[str, str]] | None = None,
    selectable_fields: list[str] | None = None,
) -> dict[str, Any]:
    """A namespaced CustomResourceDefinition of group nonstop.dev, one served version.
    `root_rules` are CEL rules on the whole object: the only ones that can read metadata.name."""
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"The versioned schema of this object: {GROUP}/{VERSION}.",
            },
            "kind": {"type": "string", "description": f"The kind of this object: {kind}."},
            # the API server refuses anything on metadata but its type (it documents it)
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if root_rules:
        root["x-kubernetes-validations"] = root_rules
        # declared so that a rule's fieldPath can name it (the only fields allowed here)
        root["properties"]["metadata"]["properties"] = {"name": {"type": "string"}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "nonstop"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": ["nonstop"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                    **(
                        {"selectableFields": [{"jsonPath": f} for f in selectable_fields]}
                        if selectable_fields
                        else {}
                    ),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def rollout_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition of Rollout, as a plain dict ready for YAML."""
    spec = model_schema(RolloutSpec)
    spec["description"] = "Desired state of the Rollout."
    status = model_schema(RolloutStatus)
    status["description"] = "Observed progress of the Rollout, written by nonstop."
    return _crd(
        kind=KIND,
        plural=PLURAL,
        short_name=SHORT_NAMES[0],
        description="A Rollout runs a Deployment-like workload and moves it"
        " from revision to revision without downtime.",
        spec=spec,
        status=status,
        subresources={
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.hpaReplicas",
                "labelSelectorPath": ".status.selector",
            },
        },
        columns=_printer_columns(),
        root_rules=[ROLLOUT_NAME_RULE],
    )


def action_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of RolloutAction (manual control)."""
    spec = model_schema(RolloutActionSpec)
    spec["x-kubernetes-validations"] = [
        {
            "rule": "self == oldSelf",
            "message": "a RolloutAction cannot be changed: create a new one",
        }
    ]
    return _crd(
        kind=ACTION_KIND,
        plural=ACTION_PLURAL,
        short_name="nra",
        description="A request to promote, abort, retry, pause or resume"
        " a Rollout, applied once by nonstop.",
        spec=spec,
        status=model_schema(RolloutActionStatus),
        subresources={"status": {}},
        columns=[
            {"name": "Rollout", "type": "string", "jsonPath": ".spec.rollout"},
            {"name": "Action", "type": "string", "jsonPath": ".spec.action"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        # each pass lists only its own Rollout's actions: ?fieldSelector=spec.rollout=<name>
        # (Kubernetes 1.31+; kube/client.py falls back to a whole list on older servers)
        selectable_fields=[".spec.rollout"],
    )


def template_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of AnalysisTemplate (reusable metrics)."""
    spec = model_schema(AnalysisTemplateSpec)
    spec["description"] = "Metrics that Rollouts in this namespace use by name."
    return _crd(
        kind="AnalysisTemplate",
        plural="analysistemplates",
        short_name="nat",
        description="Metrics defined once per namespace, used by Rollouts' analysis by name.",
        spec=spec,
        status={
            "type": "object",
            "description": "Not used: an AnalysisTemplate has no status.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
        subresources={},
        columns=[
            {"name": "Metrics", "type": "string", "jsonPath": ".spec.metrics[*].name"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )
