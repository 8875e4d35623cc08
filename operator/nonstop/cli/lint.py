"""`kubectl nonstop lint FILE...`: the checks a Rollout, AnalysisTemplate or RolloutAction
meets in a cluster, offline (a CI job without a cluster).

Two sources, each in its own words:

- admission (cli/admission.py): what the API server refuses, from the same CRDs, with the
  API server's message and field path;
- the operator: what only nonstop refuses once the object is stored (it would stall the
  Rollout with a reason): the spec as the operator reads it (plan/views.py), the strategy
  checks of plan/validate.py, and every AnalysisTemplate an analysis names (it exists in
  the files linted, its conditions parse: plan/analysis.py metrics_of), each at its field.

What needs the cluster (a Service or Deployment under nonstop's names that is someone
else's, the HTTPRoute or the flag ConfigMap) is not checked here.

Output: `FILE: Kind/name: field.path: message` per problem (or `-o json`); exit 0 when
there is none, 1 when there is one, 2 for a usage error (a file that cannot be read).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import click
import yaml
from pydantic import ValidationError

from nonstop.api import RolloutSpec
from nonstop.api.spec import (
    GROUP,
    ROLLOUT_NAME_CONTEXT,
    Analysis,
    AnalysisTemplateSpec,
)
from nonstop.cli.admission import KINDS, TEMPLATE_KIND, admit
from nonstop.plan.analysis import metrics_of, policy
from nonstop.plan.model import Observed, StallError
from nonstop.plan.validate import conflict_problem

Source = Literal["admission", "operator", "file"]


@dataclass(frozen=True)
class Problem:
    file: str
    document: int  # 1-based, in the file
    kind: str
    name: str
    path: str  # the field ("" when it is the whole document)
    message: str
    source: Source
    reason: str | None = None  # the operator's condition reason (InvalidSpec, ...)

    @property
    def line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}: {self.kind}/{self.name}: {where}{self.message}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked: list[tuple[str, str, str]] = field(default_factory=list)  # (file, kind, name)

    def as_json(self) -> dict[str, Any]:
        return {
            "problems": [asdict(p) for p in self.problems],
            "checked": [{"file": f, "kind": k, "name": n} for f, k, n in self.checked],
        }


@dataclass(frozen=True)
class Document:
    file: str
    index: int  # 1-based
    body: Any

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "")) if isinstance(self.body, dict) else ""

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return str(name) if name else f"(document {self.index})"

    @property
    def namespace(self) -> str | None:
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        namespace = meta.get("namespace") if isinstance(meta, dict) else None
        return str(namespace) if namespace else None

    def problem(
        self, path: str, message: str, source: Source, reason: str | None = None
    ) -> Problem:
        return Problem(self.file, self.index, self.kind, self.name, path, message, source, reason)


class UsageError(Exception):
    """A file that cannot be read: exit 2."""


# --- reading -------------------------------------------------------------------------------


def read_documents(file: str, text: str) -> tuple[list[Document], list[Problem]]:
    """The YAML documents of a file (lists `kind: List` open up); a file that does not
    parse is one problem."""
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [], [Problem(file, 0, "", "(file)", "", f"not YAML: {exc}", "file")]
    docs: list[Document] = []
    for body in loaded:
        items = body.get("items") if isinstance(body, dict) and body.get("kind") == "List" else None
        for item in items if isinstance(items, list) else [body]:
            docs.append(Document(file, len(docs) + 1, item))
    return docs, []


def read_files(
    paths: Sequence[str], stdin: str | None = None
) -> tuple[list[Document], list[Problem]]:
    docs: list[Document] = []
    problems: list[Problem] = []
    for path in paths:
        if path == "-":
            text = stdin if stdin is not None else sys.stdin.read()
        else:
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise UsageError(f"{path}: {exc.strerror or exc}") from exc
        found, bad = read_documents(path, text)
        docs += found
        problems += bad
    return docs, problems


def is_nonstop(doc: Document) -> bool:
    api_version = doc.body.get("apiVersion", "") if isinstance(doc.body, dict) else ""
    return isinstance(api_version, str) and api_version.split("/")[0] == GROUP


# --- the checks ----------------------------------------------------------------------------


def admission_lines(body: dict[str, Any]) -> list[str]:
    """The API server's lines for a create of this object (empty: it is admitted)."""
    return [e.line for e in admit(body)]


def _admission(doc: Document) -> list[Problem]:
    api_version = doc.body.get("apiVersion")
    if api_version != f"{GROUP}/v1alpha1" or doc.kind not in KINDS:
        return [
            doc.problem(
                "",
                f"{api_version} {doc.kind or '(no kind)'} is not served by nonstop's CRDs"
                f" (kinds: {', '.join(KINDS)} in {GROUP}/v1alpha1)",
                "admission",
            )
        ]
    return [doc.problem(e.path, e.text, "admission") for e in admit(doc.body)]


def _path(loc: Sequence[int | str], prefix: str = "spec") -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _spec_errors(doc: Document, exc: ValidationError, prefix: str = "spec") -> list[Problem]:
    problems = []
    for item in exc.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(doc.problem(_path(item["loc"], prefix), message, "operator", "InvalidSpec"))
    return problems


def analyses_with_paths(spec: RolloutSpec) -> Iterator[tuple[str, Analysis]]:
    """Every analysis of the spec with its field path (plan/analysis.py analyses_of)."""
    strategy = spec.strategy
    places: list[tuple[str, Any]] = [("spec.strategy", strategy)]
    if strategy.shadow is not None:
        if strategy.shadow.analysis is not None:
            yield "spec.strategy.shadow.analysis", strategy.shadow.analysis
        places = [("spec.strategy.shadow.then", strategy.shadow.then)]
    for where, holder in places:
        if holder.canary is not None:
            if holder.canary.analysis is not None:
                yield f"{where}.canary.analysis", holder.canary.analysis
            for i, step in enumerate(holder.canary.steps):
                if step.analysis is not None:
                    yield f"{where}.canary.steps[{i}].analysis", step.analysis
        if holder.blue_green is not None:
            bg = holder.blue_green
            if bg.pre_promotion_analysis is not None:
                yield f"{where}.blueGreen.prePromotionAnalysis", bg.pre_promotion_analysis
            if bg.post_promotion_analysis is not None:
                yield f"{where}.blueGreen.postPromotionAnalysis", bg.post_promotion_analysis


def _strategy_path(spec: RolloutSpec, message: str) -> str:
    """Where the operator's strategy problem (plan/validate.py) lies in the spec."""
    if message.startswith("metric "):
        metric_name, _, rest = message.removeprefix("metric ").partition(": ")
        condition = rest.split(":")[0]
        for where, analysis in analyses_with_paths(spec):
            for j, metric in enumerate(analysis.metrics or []):
                if metric.name == metric_name:
                    return f"{where}.metrics[{j}].{condition}"
    if "setHeaderRoute" in message:
        canary = spec.strategy.canary or (
            spec.strategy.shadow.then.canary if spec.strategy.shadow else None
        )
        base = "spec.strategy.shadow.then" if spec.strategy.shadow else "spec.strategy"
        for i, step in enumerate(canary.steps if canary else []):
            if step.set_header_route is not None:
                return f"{base}.canary.steps[{i}].setHeaderRoute"
    if "spec.trafficRouting" in message:
        return "spec.trafficRouting"
    return "spec"


def _template_problems(
    doc: Document,
    spec: RolloutSpec,
    templates: dict[str, AnalysisTemplateSpec],
    external_templates: bool,
) -> list[Problem]:
    """Each analysis's templates, as the operator checks them when they are named."""
    problems = []
    for where, analysis in analyses_with_paths(spec):
        refs = list(analysis.templates or [])
        kept = [r for r in refs if r.name in templates or not external_templates]
        try:
            metrics_of(analysis.model_copy(update={"templates": kept}), templates)
        except StallError as error:
            missing = next((i for i, r in enumerate(refs) if r.name not in templates), None)
            path = f"{where}.templates[{missing}]" if missing is not None else f"{where}.templates"
            message = error.message
            if error.reason == "AnalysisTemplateNotFound":
                known = ", ".join(sorted(templates)) or "none"
                message = (
                    f"AnalysisTemplate {refs[missing or 0].name} is not in the files linted"
                    f" (there are: {known}); in the cluster, the operator stalls the Rollout"
                    " until it exists (--external-templates: it is in the cluster)"
                )
            problems.append(doc.problem(path, message, "operator", error.reason))
    return problems


def _rollout_problems(
    doc: Document, templates: dict[str, AnalysisTemplateSpec], external_templates: bool
) -> list[Problem]:
    meta = doc.body.get("metadata") or {}
    try:
        spec = RolloutSpec.model_validate(
            doc.body.get("spec") or {}, context={ROLLOUT_NAME_CONTEXT: meta.get("name", "")}
        )
    except ValidationError as exc:
        return _spec_errors(doc, exc)
    problem = conflict_problem(spec, Observed())
    if problem is not None:
        reason, message = problem
        return [doc.problem(_strategy_path(spec, message), message, "operator", reason)]
    return _template_problems(doc, spec, templates, external_templates)


def _template_spec(doc: Document) -> AnalysisTemplateSpec | None:
    try:
        return AnalysisTemplateSpec.model_validate(doc.body.get("spec") or {})
    except ValidationError:
        return None


def _analysis_template_problems(doc: Document) -> list[Problem]:
    try:
        spec = AnalysisTemplateSpec.model_validate(doc.body.get("spec") or {})
    except ValidationError as exc:
        return _spec_errors(doc, exc)
    problems = []
    for j, metric in enumerate(spec.metrics):
        try:
            policy(metric)
        except ValueError as exc:
            problems.append(doc.problem(f"spec.metrics[{j}]", str(exc), "operator", "InvalidSpec"))
    return problems


def lint_documents(docs: Sequence[Document], external_templates: bool = False) -> Report:
    """Every problem of every nonstop document (others are left alone)."""
    report = Report()
    ours = [d for d in docs if is_nonstop(d)]
    admitted = {}
    for doc in ours:
        problems = _admission(doc)
        report.problems += problems
        report.checked.append((doc.file, doc.kind, doc.name))
        admitted[id(doc)] = not problems
    for doc in ours:
        if not admitted[id(doc)]:
            continue  # the API server would not store it: the operator never sees it
        if doc.kind == "Rollout":
            templates = {
                t.name: spec
                for t in ours
                if t.kind == TEMPLATE_KIND
                and admitted[id(t)]
                and t.namespace in (None, doc.namespace)
                and (spec := _template_spec(t)) is not None
            }
            report.problems += _rollout_problems(doc, templates, external_templates)
        elif doc.kind == TEMPLATE_KIND:
            report.problems += _analysis_template_problems(doc)
    return report


def lint_paths(
    paths: Sequence[str], stdin: str | None = None, external_templates: bool = False
) -> Report:
    docs, unreadable = read_files(paths, stdin)
    report = lint_documents(docs, external_templates)
    report.problems[:0] = unreadable
    return report


def render_text(report: Report) -> str:
    if report.problems:
        return "".join(p.line + "\n" for p in report.problems)
    count = len(report.checked)
    return f"{count} object{'' if count == 1 else 's'} checked, no problems\n"


@click.command(
    "lint",
    help="Check Rollouts, AnalysisTemplates and RolloutActions offline, as the API server"
    " (schema and CEL rules) and the operator would: one line per problem,"
    " FILE: Kind/name: field: message. FILE - reads standard input. Exit 0: no problem;"
    " 1: problems; 2: usage.",
)
@click.argument("files", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per problem; json: problems and the objects checked.",
)
@click.option(
    "--external-templates",
    is_flag=True,
    help="AnalysisTemplates named but not in FILES exist in the cluster: do not report them.",
)
def command(files: tuple[str, ...], output: str, external_templates: bool) -> None:
    try:
        report = lint_paths(files, external_templates=external_templates)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    if output == "json":
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(render_text(report), nl=False)
    click.get_current_context().exit(1 if report.problems else 0)
