"""`kubectl nonstop convert FILE...`: Argo Rollouts' Rollouts and AnalysisTemplates
(argoproj.io/v1alpha1) into nonstop's, with a report of every field that has no
equivalent, by its path and why.

What maps (Argo -> nonstop):

  Rollout                        replicas, selector, template (or the Deployment of a
                                 workloadRef, from the same files), minReadySeconds,
                                 revisionHistoryLimit, paused, progressDeadlineSeconds
  canary.steps                   setWeight, pause ({} / duration, seconds -> "Ns"),
                                 setCanaryScale (replicas, weight -> percent,
                                 matchTrafficWeight), setHeaderRoute (headerName /
                                 headerValue -> name / exact|prefix|regex), analysis
  canary.trafficRouting.plugins  argoproj-labs/gatewayAPI httpRoute (or the first of
                                 httpRoutes), namespace -> trafficRouting.gatewayAPI
  canary.stableService           spec.service.name (nonstop creates the Service)
  canary.canaryService           canaryService (with a router)
  canary.scaleDownDelaySeconds   scaleDownDelaySeconds
  canary without steps           rolling (maxSurge, maxUnavailable)
  blueGreen.activeService        spec.service.name
  blueGreen.previewService       previewService (<active>-preview when absent)
  autoPromotionEnabled/Seconds   autoPromotion.afterSeconds (absent when disabled)
  pre/postPromotionAnalysis      pre/postPromotionAnalysis
  analysis templates + args      templates by name; with args, the template's metrics
                                 inlined with the values put in (nonstop templates take
                                 no arguments): podTemplateHashValue Stable/Latest ->
                                 {{stableRevision}}/{{canaryRevision}}, fieldRef
                                 metadata.name/namespace -> {{rollout}}/{{namespace}}
  AnalysisTemplate metrics       name, interval, count, failureLimit, inconclusiveLimit,
                                 consecutiveErrorLimit, success/failureCondition
                                 (result[0] -> result), prometheus (address, query,
                                 timeout, headers), web (url, jsonPath {$.x} -> $.x,
                                 headers, a Secret arg as a header's valueFrom,
                                 timeoutSeconds)
  ClusterAnalysisTemplate        an AnalysisTemplate (namespaced: apply it where needed)

Everything else is reported. Output: the nonstop objects as a YAML stream; the report one
line per field, `FILE: Kind/name: field.path: why`. Exit 0 when something was converted
(report or not), 1 when nothing could be. Every converted Rollout is linted (cli/lint.py)
and a problem the lint finds is reported too.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
import yaml

from nonstop.analysis.expr import ExprError, check
from nonstop.api.base import DNS_LABEL, DURATION_PATTERN
from nonstop.cli.lint import Document, UsageError, lint_documents, read_files

ARGO = "argoproj.io/v1alpha1"
NONSTOP = "nonstop.dev/v1alpha1"
GATEWAY_PLUGIN = "argoproj-labs/gatewayAPI"
NOT_NEEDED = "not needed: nonstop names the route rules it owns (nonstop-...)"
NO_EQUIVALENT = "no equivalent in nonstop"
_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")


@dataclass(frozen=True)
class Note:
    """A report line: a field that has no equivalent, and why."""

    file: str
    kind: str
    name: str
    path: str
    why: str

    @property
    def line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}: {self.kind}/{self.name}: {where}{self.why}"


@dataclass
class Conversion:
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True)
class Secret:
    name: str
    key: str


Value = str | Secret | None  # an argument's value; None: unknown (no value given)


class Skip(Exception):  # noqa: N818 - control flow, not an error of the program
    """This object (or metric, or step) cannot be converted: why."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(why)
        self.path = path
        self.why = why


class Context:
    """The object being converted: where report lines go."""

    def __init__(self, doc: Document, notes: list[Note]) -> None:
        self.doc = doc
        self.notes = notes

    def note(self, path: str, why: str) -> None:
        self.notes.append(Note(self.doc.file, self.doc.kind, self.doc.name, path, why))

    def rest(self, obj: Mapping[str, Any], handled: set[str], path: str, why: str = "") -> None:
        """Report every field of obj this converter does not map."""
        for key in obj:
            if key not in handled:
                self.note(f"{path}.{key}" if path else key, why or NO_EQUIVALENT)


# --- analysis ------------------------------------------------------------------------------


def _arguments(
    declared: Sequence[Mapping[str, Any]],
    passed: Sequence[Mapping[str, Any]],
    ctx: Context,
    path: str,
) -> dict[str, Value]:
    """Each argument's value: passed by the Rollout, else the template's own."""
    values: dict[str, Value] = {}
    for i, arg in enumerate([*declared, *passed]):
        where = f"{path}.args[{i - len(declared)}]" if i >= len(declared) else f"spec.args[{i}]"
        name = str(arg.get("name"))
        if "value" in arg:
            values[name] = str(arg["value"])
            continue
        source = arg.get("valueFrom") or {}
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            values[name] = Secret(str(ref.get("name")), str(ref.get("key")))
        elif "podTemplateHashValue" in source:
            which = source["podTemplateHashValue"]
            values[name] = "{{stableRevision}}" if which == "Stable" else "{{canaryRevision}}"
        elif "fieldRef" in source:
            field_path = (source["fieldRef"] or {}).get("fieldPath")
            mapped = {"metadata.name": "{{rollout}}", "metadata.namespace": "{{namespace}}"}
            if field_path in mapped:
                values[name] = mapped[field_path]
            else:
                ctx.note(f"{where}.valueFrom.fieldRef", f"{field_path}: {NO_EQUIVALENT}")
                values.setdefault(name, None)
        else:
            values.setdefault(name, None)
    return values


def _fill(text: Any, args: Mapping[str, Value], path: str) -> str:
    """{{args.x}} replaced by its value; a Secret or an unknown value cannot be put in text."""

    def one(match: re.Match[str]) -> str:
        value = args.get(match.group(1))
        if isinstance(value, Secret):
            raise Skip(
                path,
                f"argument {match.group(1)} is a Secret: nonstop reads a Secret only as a whole header value",
            )
        if value is None:
            raise Skip(path, f"argument {match.group(1)} has no value")
        return value

    return _ARG.sub(one, str(text))


def _int(value: Any, args: Mapping[str, Value], path: str) -> int:
    try:
        return int(_fill(value, args, path))
    except ValueError as exc:
        raise Skip(path, f"{value!r} is not a number") from exc


def _headers(
    headers: Sequence[Mapping[str, Any]], args: Mapping[str, Value], path: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, header in enumerate(headers):
        value = str(header.get("value", ""))
        whole = _ARG.fullmatch(value.strip())
        secret = args.get(whole.group(1)) if whole else None
        if isinstance(secret, Secret):
            ref = {"secretKeyRef": {"name": secret.name, "key": secret.key}}
            out.append({"name": header.get("key"), "valueFrom": ref})
        else:
            out.append(
                {"name": header.get("key"), "value": _fill(value, args, f"{path}[{i}].value")}
            )
    return out


def condition(text: str, path: str) -> str:
    """An Argo condition (expr) in nonstop's condition language, or Skip."""
    converted = re.sub(r"\bresult\s*\[\s*0\s*\]", "result", text.strip())
    converted = re.sub(r"\bas(Int|Float)\s*\(\s*result\s*\)", "result", converted)
    try:
        check(converted)
    except ExprError as exc:
        raise Skip(
            path, f"condition {text!r} cannot be said in nonstop's conditions: {exc}"
        ) from exc
    return converted


def _provider(
    provider: Mapping[str, Any], args: Mapping[str, Value], path: str, ctx: Context
) -> dict[str, Any]:
    if "prometheus" in provider:
        prom = provider["prometheus"]
        where = f"{path}.prometheus"
        out: dict[str, Any] = {
            "address": _fill(prom.get("address", ""), args, f"{where}.address"),
            "query": _fill(prom.get("query", ""), args, f"{where}.query"),
        }
        if not out["address"]:
            raise Skip(f"{where}.address", "nonstop needs the Prometheus address in the metric")
        if "timeout" in prom:
            out["timeoutSeconds"] = min(
                300, max(1, _int(prom["timeout"], args, f"{where}.timeout"))
            )
        if prom.get("headers"):
            out["headers"] = _headers(prom["headers"], args, f"{where}.headers")
        if "pod_template_hash" in out["query"] or "pod-template-hash" in out["query"]:
            ctx.note(
                f"{where}.query",
                "matches pods by Argo's rollouts-pod-template-hash: nonstop's pods carry"
                " nonstop.dev/revision (its values are {{revision}}, {{stableRevision}})",
            )
        ctx.rest(prom, {"address", "query", "timeout", "headers"}, where)
        return {"prometheus": out}
    if "web" in provider:
        web = provider["web"]
        where = f"{path}.web"
        method = str(web.get("method", "GET")).upper()
        if method != "GET":
            raise Skip(f"{where}.method", f"{method}: nonstop's web metrics are GET requests")
        for body in ("body", "jsonBody"):
            if body in web:
                raise Skip(f"{where}.{body}", "nonstop's web metrics send no body")
        json_path = str(web.get("jsonPath", "$"))
        json_path = (
            json_path[1:-1] if json_path.startswith("{") and json_path.endswith("}") else json_path
        )
        out = {"url": _fill(web.get("url", ""), args, f"{where}.url"), "jsonPath": json_path}
        if web.get("headers"):
            out["headers"] = _headers(web["headers"], args, f"{where}.headers")
        if "timeoutSeconds" in web:
            out["timeoutSeconds"] = min(300, max(1, _int(web["timeoutSeconds"], args, where)))
        ctx.rest(web, {"url", "jsonPath", "headers", "timeoutSeconds", "method"}, where)
        return {"web": out}
    kinds = ", ".join(provider) or "none"
    raise Skip(path, f"provider {kinds}: nonstop measures with prometheus or web only")


def convert_metric(
    metric: Mapping[str, Any], args: Mapping[str, Value], path: str, ctx: Context
) -> dict[str, Any]:
    """One Argo metric as a nonstop metric, or Skip."""
    name = str(metric.get("name", ""))
    out: dict[str, Any] = {"name": name}
    if not re.fullmatch(DNS_LABEL, name) or len(name) > 63:
        out["name"] = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "metric"
        if not out["name"][0].isalpha():
            out["name"] = f"m-{out['name']}"[:63]
        ctx.note(f"{path}.name", f"{name!r} is not a DNS label: named {out['name']}")
    out["provider"] = _provider(metric.get("provider") or {}, args, f"{path}.provider", ctx)
    if "interval" in metric:
        interval = _fill(metric["interval"], args, f"{path}.interval")
        if re.fullmatch(DURATION_PATTERN, interval):
            out["interval"] = interval
        else:
            raise Skip(f"{path}.interval", f"{interval!r} is not a duration nonstop reads")
    if "count" in metric:
        count = _int(metric["count"], args, f"{path}.count")
        if count > 0:
            out["count"] = count  # Argo's 0: until stopped, nonstop's absent count
    for key in ("failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"):
        if key in metric:
            value = _int(metric[key], args, f"{path}.{key}")
            if value >= 0:
                out[key] = value
            else:
                ctx.note(
                    f"{path}.{key}", f"{value}: no limit is {NO_EQUIVALENT}; left at its default"
                )
    for key in ("successCondition", "failureCondition"):
        if metric.get(key):
            out[key] = condition(str(metric[key]), f"{path}.{key}")
    handled = {
        "name", "provider", "interval", "count", "failureLimit", "inconclusiveLimit",
        "consecutiveErrorLimit", "successCondition", "failureCondition",
    }  # fmt: skip
    ctx.rest(metric, handled, path)
    return out


@dataclass
class Template:
    """An Argo AnalysisTemplate, converted as far as it goes without the Rollout's args."""

    doc: Document
    declared: list[dict[str, Any]]
    metrics: list[dict[str, Any]]  # Argo's
    dry_run: set[str]
    standalone: dict[str, Any] | None = None  # the nonstop AnalysisTemplate, when it is one


def convert_metrics(
    template: Template, args: Mapping[str, Value], path: str, ctx: Context
) -> list[dict[str, Any]]:
    out = []
    for i, metric in enumerate(template.metrics):
        where = f"{path}.metrics[{i}]"
        if metric.get("name") in template.dry_run:
            ctx.note(where, "a dryRun metric: nonstop has no dry run, so it is left out")
            continue
        try:
            out.append(convert_metric(metric, args, where, ctx))
        except Skip as skip:
            ctx.note(skip.path, f"{skip.why}; the metric is left out")
    return out


def convert_analysis(
    analysis: Mapping[str, Any], path: str, ctx: Context, templates: Mapping[str, Template]
) -> dict[str, Any] | None:
    """A Rollout's analysis (templates by name and args) as nonstop's, or None when nothing
    of it can be measured."""
    refs: list[dict[str, str]] = []
    metrics: list[dict[str, Any]] = []
    passed = list(analysis.get("args") or [])
    for i, ref in enumerate(analysis.get("templates") or []):
        where = f"{path}.templates[{i}]"
        name = str(ref.get("templateName"))
        template = templates.get(name)
        if template is None:
            ctx.note(
                where, f"AnalysisTemplate {name} is not in the files: give its file to convert it"
            )
            continue
        if not passed and template.standalone is not None:
            refs.append({"name": name})
            continue
        sub = Context(template.doc, ctx.notes)
        args = _arguments(template.declared, passed, ctx, path)
        found = convert_metrics(template, args, f"spec (for {ctx.doc.name})", sub)
        if found:
            ctx.note(
                where,
                f"AnalysisTemplate {name} with args: its metrics are inlined (nonstop templates take no arguments)",
            )
        metrics += found
    ctx.rest(analysis, {"templates", "args"}, path)
    if not refs and not metrics:
        ctx.note(path, "nothing of this analysis can be measured by nonstop: left out")
        return None
    out: dict[str, Any] = {}
    if refs:
        out["templates"] = refs
    if metrics:
        names = [m["name"] for m in metrics]
        for i, metric in enumerate(metrics):
            if names.count(metric["name"]) > 1:
                metric["name"] = f"{metric['name']}-{i}"[:63]
        out["metrics"] = metrics[:16]
    return out


def convert_template(doc: Document, notes: list[Note]) -> Template:
    ctx = Context(doc, notes)
    spec = doc.body.get("spec") or {}
    declared = list(spec.get("args") or [])
    dry_run = {str(d.get("metricName")) for d in spec.get("dryRun") or []}
    template = Template(doc, declared, list(spec.get("metrics") or []), dry_run)
    if doc.kind == "ClusterAnalysisTemplate":
        ctx.note(
            "",
            "a ClusterAnalysisTemplate: nonstop's AnalysisTemplates are namespaced, apply it in each namespace that uses it",
        )
    ctx.rest(spec, {"args", "metrics", "dryRun"}, "spec")
    args = _arguments(declared, [], ctx, "spec")
    if any(v is None for v in args.values()):
        unknown = sorted(k for k, v in args.items() if v is None)
        ctx.note(
            "spec.args",
            f"{', '.join(unknown)} without a value: nonstop templates take no arguments, so the metrics are inlined in each Rollout that passes them",
        )
        return template
    probe: list[Note] = []
    metrics = convert_metrics(template, args, "spec", Context(doc, probe))
    notes += probe
    if metrics:
        template.standalone = {
            "apiVersion": NONSTOP,
            "kind": "AnalysisTemplate",
            "metadata": _metadata(doc.body.get("metadata") or {}, ctx),
            "spec": {"metrics": metrics[:16]},
        }
    return template


# --- the Rollout ---------------------------------------------------------------------------


def _metadata(meta: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"name": meta.get("name")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out["labels"] = dict(meta["labels"])
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    for key in [k for k in annotations if "argoproj.io" in k]:
        ctx.note(f"metadata.annotations.{key}", NO_EQUIVALENT)
        del annotations[key]
    if annotations:
        out["annotations"] = annotations
    return out


def _duration(value: Any) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return f"{int(value)}s"
    return str(value)


def convert_steps(
    steps: Sequence[Mapping[str, Any]],
    routed: bool,
    path: str,
    ctx: Context,
    templates: Mapping[str, Template],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        where = f"{path}[{i}]"
        if "setWeight" in step:
            out.append({"setWeight": step["setWeight"]})
        elif "pause" in step:
            pause = step["pause"] or {}
            out.append(
                {"pause": {"duration": _duration(pause["duration"])} if "duration" in pause else {}}
            )
        elif "setCanaryScale" in step:
            scale = step["setCanaryScale"] or {}
            if "replicas" in scale:
                out.append({"setCanaryScale": {"replicas": scale["replicas"]}})
            elif "weight" in scale:
                out.append({"setCanaryScale": {"percent": scale["weight"]}})
            else:
                out.append({"setCanaryScale": {"matchTrafficWeight": True}})
        elif "setHeaderRoute" in step:
            route = step["setHeaderRoute"] or {}
            if not routed:
                ctx.note(
                    f"{where}.setHeaderRoute",
                    "needs a traffic router nonstop has (gatewayAPI): the step is left out",
                )
            elif not route.get("match"):
                ctx.note(
                    f"{where}.setHeaderRoute",
                    "without match (Argo removes the route): nonstop removes header routes at the end; the step is left out",
                )
            else:
                matches = []
                for m in route["match"]:
                    value = m.get("headerValue") or {}
                    kind = next((k for k in ("exact", "prefix", "regex") if k in value), "exact")
                    matches.append({"name": m.get("headerName"), kind: value.get(kind, "")})
                out.append({"setHeaderRoute": {"name": route.get("name"), "match": matches}})
        elif "analysis" in step:
            analysis = convert_analysis(step["analysis"] or {}, f"{where}.analysis", ctx, templates)
            if analysis is not None:
                out.append({"analysis": analysis})
        else:
            kinds = ", ".join(step) or "(empty)"
            ctx.note(where, f"{kinds}: {NO_EQUIVALENT}; the step is left out")
    return out


def _service_ports(
    name: str, template: Mapping[str, Any], services: Mapping[str, Mapping[str, Any]], ctx: Context
) -> tuple[list[dict[str, Any]], str | None]:
    """The ports (and type) of the Service nonstop will create under `name`: the Service in
    the files, else the first container's ports."""
    service = services.get(name)
    if service is not None:
        spec = service.get("spec") or {}
        ports = []
        for port in spec.get("ports") or []:
            ports.append(
                {k: port[k] for k in ("name", "port", "targetPort", "protocol") if k in port}
            )
        kind = spec.get("type")
        return ports, kind if kind in ("ClusterIP", "NodePort", "LoadBalancer") else None
    containers = ((template.get("spec") or {}).get("containers")) or [{}]
    declared = containers[0].get("ports") or []
    ports = []
    for port in declared:
        entry: dict[str, Any] = {"port": port["containerPort"], "targetPort": port["containerPort"]}
        if len(declared) > 1:
            entry["name"] = port.get("name") or f"p{port['containerPort']}"
        if port.get("protocol"):
            entry["protocol"] = port["protocol"]
        ports.append(entry)
    if not ports:
        ports = [{"port": 80}]
        ctx.note(
            "spec.service",
            f"Service {name} is not in the files and the container declares no port: port 80 assumed",
        )
    return ports, None


def _router(canary: Mapping[str, Any], ctx: Context) -> dict[str, Any] | None:
    routing = canary.get("trafficRouting") or {}
    path = "spec.strategy.canary.trafficRouting"
    gateway = (routing.get("plugins") or {}).get(GATEWAY_PLUGIN)
    for key in routing:
        if key not in ("plugins", "managedRoutes"):
            ctx.note(
                f"{path}.{key}",
                "nonstop routes with the Gateway API only: a canary by pod shares instead",
            )
    for plugin in routing.get("plugins") or {}:
        if plugin != GATEWAY_PLUGIN:
            ctx.note(f"{path}.plugins.{plugin}", f"{NO_EQUIVALENT}: a canary by pod shares instead")
    if "managedRoutes" in routing:
        ctx.note(f"{path}.managedRoutes", NOT_NEEDED)
    if gateway is None:
        return None
    where = f"{path}.plugins.{GATEWAY_PLUGIN}"
    route = gateway.get("httpRoute")
    routes = gateway.get("httpRoutes") or []
    if route is None and routes:
        route = routes[0].get("name")
        for i in range(1, len(routes)):
            ctx.note(
                f"{where}.httpRoutes[{i}]",
                "nonstop routes with one HTTPRoute: only the first is kept",
            )
    if route is None:
        ctx.note(where, "no httpRoute (nonstop routes HTTP only): a canary by pod shares instead")
        return None
    out = {"httpRoute": route}
    if gateway.get("namespace"):
        out["namespace"] = gateway["namespace"]
    ctx.rest(gateway, {"httpRoute", "httpRoutes", "namespace"}, where)
    return {"gatewayAPI": out}


def _route_note(
    routing: Mapping[str, Any],
    canary: str | None,
    routes: Mapping[str, Mapping[str, Any]],
    ctx: Context,
) -> None:
    """Argo wants the canary Service in the HTTPRoute already; nonstop adds it itself."""
    route = routes.get(str(routing["gatewayAPI"]["httpRoute"]))
    if route is None or canary is None:
        return
    for i, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        if any(ref.get("name") == canary for ref in rule.get("backendRefs") or []):
            ctx.note(
                "spec.strategy.canary.canaryService",
                f"HTTPRoute {route['metadata']['name']} rule {i} lists {canary} already:"
                " nonstop adds and removes the canary backend itself, so leave it out of the route",
            )
            return


CANARY_HANDLED = {
    "steps", "trafficRouting", "stableService", "canaryService", "analysis",
    "scaleDownDelaySeconds", "maxSurge", "maxUnavailable",
}  # fmt: skip
BLUE_GREEN_HANDLED = {
    "activeService", "previewService", "autoPromotionEnabled", "autoPromotionSeconds",
    "prePromotionAnalysis", "postPromotionAnalysis", "scaleDownDelaySeconds",
}  # fmt: skip
SPEC_HANDLED = {
    "replicas", "selector", "template", "workloadRef", "minReadySeconds",
    "revisionHistoryLimit", "paused", "progressDeadlineSeconds", "strategy",
    "progressDeadlineAbort",
}  # fmt: skip


def _workload(
    spec: Mapping[str, Any], deployments: Mapping[str, Mapping[str, Any]], ctx: Context
) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    """(selector, template, replicas) of the Rollout, or of its workloadRef's Deployment."""
    ref = spec.get("workloadRef")
    if ref is None:
        if not spec.get("template"):
            raise Skip("spec.template", "no template and no workloadRef")
        return dict(spec.get("selector") or {}), copy.deepcopy(spec["template"]), None
    name = ref.get("name")
    deployment = deployments.get(str(name))
    if ref.get("kind", "Deployment") != "Deployment" or deployment is None:
        raise Skip(
            "spec.workloadRef",
            f"{ref.get('kind')} {name} is not in the files: nonstop needs the pod template in the Rollout; give the Deployment's file too",
        )
    dspec = deployment.get("spec") or {}
    ctx.note(
        "spec.workloadRef",
        f"nonstop keeps the pod template in the Rollout: Deployment {name}'s template is copied in; scale it to 0 or delete it once nonstop runs the pods",
    )
    if "scaleDown" in ref:
        ctx.note("spec.workloadRef.scaleDown", NO_EQUIVALENT)
    selector = dict(spec.get("selector") or dspec.get("selector") or {})
    return selector, copy.deepcopy(dspec.get("template") or {}), dspec.get("replicas")


def _pod_template(template: dict[str, Any], ctx: Context) -> dict[str, Any]:
    meta = template.get("metadata") or {}
    for key in meta:
        if key not in ("labels", "annotations"):
            ctx.note(
                f"spec.template.metadata.{key}",
                "nonstop keeps only a pod template's labels and annotations",
            )
    kept = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    return {"metadata": kept, "spec": template.get("spec") or {}}


def convert_rollout(
    doc: Document,
    ctx: Context,
    templates: Mapping[str, Template],
    services: Mapping[str, Mapping[str, Any]],
    deployments: Mapping[str, Mapping[str, Any]],
    routes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    spec = doc.body.get("spec") or {}
    selector, template, replicas = _workload(spec, deployments, ctx)
    if not (selector.get("matchLabels")):
        raise Skip(
            "spec.selector", "nonstop needs selector.matchLabels (its Service selects by them)"
        )
    if selector.get("matchExpressions"):
        ctx.note(
            "spec.selector.matchExpressions",
            "accepted by nonstop but not used: matchLabels select the pods",
        )
    out: dict[str, Any] = {
        "replicas": spec.get("replicas", replicas if replicas is not None else 1),
        "selector": selector,
        "template": _pod_template(template, ctx),
    }
    for key in ("minReadySeconds", "paused", "progressDeadlineSeconds"):
        if key in spec:
            out[key] = spec[key]
    if "revisionHistoryLimit" in spec:
        out["revisionHistoryLimit"] = min(100, int(spec["revisionHistoryLimit"]))
        if spec["revisionHistoryLimit"] > 100:
            ctx.note("spec.revisionHistoryLimit", "nonstop keeps at most 100: 100")
    if spec.get("progressDeadlineAbort") is not True:
        ctx.note(
            "spec.progressDeadlineAbort",
            "Argo only marks a release that passes the deadline Degraded (progressDeadlineAbort"
            " false, its default): nonstop rolls it back",
        )
    ctx.rest(spec, SPEC_HANDLED, "spec")
    strategy = spec.get("strategy") or {}
    look = Lookups(templates, services, deployments, routes or {})
    service, strategy_out, routing = _strategy(strategy, out["template"], ctx, look, doc.name)
    out["service"] = service
    if routing is not None:
        out["trafficRouting"] = routing
    out["strategy"] = strategy_out
    return {
        "apiVersion": NONSTOP,
        "kind": "Rollout",
        "metadata": _metadata(doc.body.get("metadata") or {}, ctx),
        "spec": out,
    }


def _owned(name: str, services: Mapping[str, Any], ctx: Context, path: str) -> None:
    present = " (it is in the files: leave it out)" if name in services else ""
    ctx.note(
        path,
        f"nonstop creates and owns Service {name}: delete yours before applying{present}, or nonstop stalls (ServiceConflict)",
    )


@dataclass(frozen=True)
class Lookups:
    """What the files give besides the Argo objects, by name."""

    templates: Mapping[str, Template]
    services: Mapping[str, Mapping[str, Any]]
    deployments: Mapping[str, Mapping[str, Any]]
    routes: Mapping[str, Mapping[str, Any]]


Parts = tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]


def _strategy(
    strategy: Mapping[str, Any],
    template: Mapping[str, Any],
    ctx: Context,
    look: Lookups,
    rollout: str,
) -> Parts:
    """(spec.service, spec.strategy, spec.trafficRouting)."""
    ctx.rest(strategy, {"canary", "blueGreen"}, "spec.strategy")
    if "blueGreen" in strategy:
        return _blue_green(strategy["blueGreen"] or {}, template, ctx, look, rollout)
    return _canary(strategy.get("canary") or {}, template, ctx, look, rollout)


def _blue_green(
    bg: Mapping[str, Any], template: Mapping[str, Any], ctx: Context, look: Lookups, rollout: str
) -> Parts:
    path = "spec.strategy.blueGreen"
    active = str(bg.get("activeService") or rollout)
    ports, kind = _service_ports(active, template, look.services, ctx)
    _owned(active, look.services, ctx, f"{path}.activeService")
    preview = bg.get("previewService")
    if not preview:
        preview = f"{active}-preview"[:63]
        ctx.note(
            f"{path}.previewService",
            f"nonstop always brings the new revision up behind a preview Service: {preview}",
        )
    else:
        _owned(str(preview), look.services, ctx, f"{path}.previewService")
    out: dict[str, Any] = {"previewService": preview}
    if bg.get("autoPromotionEnabled", True):
        out["autoPromotion"] = {"afterSeconds": int(bg.get("autoPromotionSeconds", 0))}
    for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
        if bg.get(key):
            analysis = convert_analysis(bg[key], f"{path}.{key}", ctx, look.templates)
            if analysis is not None:
                out[key] = analysis
    if "scaleDownDelaySeconds" in bg:
        out["scaleDownDelaySeconds"] = bg["scaleDownDelaySeconds"]
    ctx.rest(bg, BLUE_GREEN_HANDLED, path)
    return _service(active, ports, kind), {"blueGreen": out}, None


def _canary(
    canary: Mapping[str, Any],
    template: Mapping[str, Any],
    ctx: Context,
    look: Lookups,
    rollout: str,
) -> Parts:
    path = "spec.strategy.canary"
    routing = _router(canary, ctx)
    stable = str(canary.get("stableService") or rollout)
    ports, kind = _service_ports(stable, template, look.services, ctx)
    if canary.get("stableService"):
        _owned(stable, look.services, ctx, f"{path}.stableService")
    else:
        ctx.note(path, f"nonstop creates the Service {stable} that selects the Rollout's pods")
    extra: dict[str, Any] = {}
    if routing is not None:
        if canary.get("canaryService"):
            extra["canaryService"] = canary["canaryService"]
            _owned(str(canary["canaryService"]), look.services, ctx, f"{path}.canaryService")
        _route_note(routing, extra.get("canaryService") or f"{stable}-canary", look.routes, ctx)
    elif canary.get("canaryService"):
        ctx.note(
            f"{path}.canaryService",
            "without a router nonstop's one Service selects both revisions: not used",
        )
    steps = convert_steps(
        canary.get("steps") or [], routing is not None, f"{path}.steps", ctx, look.templates
    )
    if not steps:
        return _service(stable, ports, kind), _rolling(canary, routing, ctx), None
    for key in ("maxSurge", "maxUnavailable"):
        if key in canary:
            ctx.note(f"{path}.{key}", "nonstop's canary moves pods by its steps: not used")
    out: dict[str, Any] = {"steps": steps, **extra}
    if canary.get("analysis"):
        analysis = convert_analysis(canary["analysis"], f"{path}.analysis", ctx, look.templates)
        if analysis is not None:
            out["analysis"] = analysis
    if "scaleDownDelaySeconds" in canary:
        if routing is not None:
            out["scaleDownDelaySeconds"] = min(3600, int(canary["scaleDownDelaySeconds"]))
        else:
            ctx.note(f"{path}.scaleDownDelaySeconds", "without a router nothing drains: not used")
    ctx.rest(canary, CANARY_HANDLED, path)
    return _service(stable, ports, kind), {"canary": out}, routing


def _rolling(
    canary: Mapping[str, Any], routing: dict[str, Any] | None, ctx: Context
) -> dict[str, Any]:
    """A canary without steps: Argo replaces the pods within maxSurge and maxUnavailable."""
    path = "spec.strategy.canary"
    rolling = {k: canary.get(k, "25%") for k in ("maxSurge", "maxUnavailable")}
    if rolling["maxSurge"] in (0, "0%") and rolling["maxUnavailable"] in (0, "0%"):
        rolling["maxSurge"] = 1
    ctx.note(f"{path}.steps", "no steps: a rolling update within maxSurge and maxUnavailable")
    if routing is not None:
        ctx.note(f"{path}.trafficRouting", "a rolling update needs no router: left out")
    ctx.rest(canary, CANARY_HANDLED, path)
    return {"rolling": rolling}


def _service(name: str, ports: list[dict[str, Any]], kind: str | None) -> dict[str, Any]:
    service: dict[str, Any] = {"name": name, "ports": ports}
    if kind:
        service["type"] = kind
    return service


# --- all of it -----------------------------------------------------------------------------


def _by_name(docs: Sequence[Document], kind: str) -> dict[str, dict[str, Any]]:
    return {
        str((d.body.get("metadata") or {}).get("name")): d.body
        for d in docs
        if isinstance(d.body, dict) and d.kind == kind
    }


def is_argo(doc: Document) -> bool:
    return isinstance(doc.body, dict) and doc.body.get("apiVersion") == ARGO


def convert_documents(docs: Sequence[Document]) -> Conversion:
    """Every Argo Rollout and AnalysisTemplate of the documents, as nonstop objects."""
    result = Conversion()
    services, deployments = _by_name(docs, "Service"), _by_name(docs, "Deployment")
    routes = _by_name(docs, "HTTPRoute")
    argo = [d for d in docs if is_argo(d)]
    templates: dict[str, Template] = {}
    for doc in argo:
        if doc.kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
            templates[doc.name] = convert_template(doc, result.notes)
    for doc in argo:
        ctx = Context(doc, result.notes)
        if doc.kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
            standalone = templates[doc.name].standalone
            if standalone is not None:
                result.objects.append(standalone)
        elif doc.kind == "Rollout":
            try:
                result.objects.append(
                    convert_rollout(doc, ctx, templates, services, deployments, routes)
                )
            except Skip as skip:
                ctx.note(skip.path, f"{skip.why}: the Rollout is not converted")
        else:
            ctx.note("", f"{doc.kind}: {NO_EQUIVALENT}")
    _lint(result)
    return result


def _lint(result: Conversion) -> None:
    """What the API server or the operator would still refuse (a converter's blind spot)."""
    docs = [Document("(converted)", i + 1, obj) for i, obj in enumerate(result.objects)]
    for problem in lint_documents(docs, external_templates=True).problems:
        result.notes.append(
            Note(
                "(converted)", problem.kind, problem.name, problem.path, f"lint: {problem.message}"
            )
        )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (queries) as literal blocks, as people write them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def render(objects: Sequence[dict[str, Any]]) -> str:
    """The nonstop objects as a YAML stream."""
    if not objects:
        return ""
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def notes_text(notes: Sequence[Note]) -> Iterator[str]:
    return (n.line for n in notes)


@click.command(
    "convert",
    help="Convert Argo Rollouts' Rollouts and AnalysisTemplates (argoproj.io/v1alpha1) into"
    " nonstop's: the objects on standard output, and a report of every field that has no"
    " equivalent on standard error (or --report FILE). FILES may also hold the Services,"
    " Deployments (workloadRef) and templates they name; - reads standard input. Exit 0:"
    " converted; 1: nothing could be.",
)
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--report",
    "report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the report to this file.",
)
def command(files: tuple[str, ...], report: str | None) -> None:
    ctx = click.get_current_context()
    try:
        docs, unreadable = read_files(files)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    result = convert_documents(docs)
    lines = [p.line for p in unreadable] + [n.line for n in result.notes]
    if not any(is_argo(d) for d in docs):
        lines.append("no Argo Rollouts object (apiVersion argoproj.io/v1alpha1) in the files")
    text = "".join(f"{line}\n" for line in lines)
    if report:
        with open(report, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stderr.write(text)
    click.echo(render(result.objects), nl=False)
    ctx.exit(0 if result.objects else 1)
