"""`kubectl nonstop plan FILE...`: what each step of the next release of a Rollout does, as
a table or JSON: pods per revision (and the peak, as a multiple of spec.replicas), where
traffic goes, the least time it takes, what needs a person, and what an abort there does.

The numbers are the real planner's over a simulated cluster (nonstop/simulate/plan.py
says how); this module reads the files and shows the result. The files are linted first
(cli/lint.py): a Rollout the API server or the operator would refuse has no plan.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from tabulate import tabulate

from nonstop.cli.lint import Document, UsageError, lint_documents, read_files
from nonstop.simulate.plan import (
    NEW,
    STABLE,
    PlanError,
    RolloutPlan,
    StepPlan,
    duration_text,
    plan_rollout,
    rollout_inputs,
)


def plans(
    docs: Sequence[Document],
    rollout: str | None = None,
    aborts: bool = True,
    image: str | None = None,
) -> list[RolloutPlan]:
    """The plan of every Rollout in the documents (or of the one named)."""
    bodies = [d.body for d in docs if isinstance(d.body, dict)]
    rollouts = [
        b
        for b in bodies
        if b.get("kind") == "Rollout"
        and str(b.get("apiVersion", "")).startswith("nonstop.dev/")
        and (rollout is None or (b.get("metadata") or {}).get("name") == rollout)
    ]
    if not rollouts:
        raise PlanError(f"no nonstop Rollout {rollout + ' ' if rollout else ''}in the files")
    return [plan_rollout(rollout_inputs(r, bodies, image), aborts=aborts) for r in rollouts]


def _pct(value: float) -> str:
    return f"{value:g}%"


def _traffic(step: StepPlan, toggle: bool) -> str:
    text = f"{_pct(step.traffic.get(STABLE, 0))} / {_pct(step.traffic.get(NEW, 0))}"
    extras = [f"header {h} -> new" for h in step.header_routes]
    if step.mirror:
        extras.append(f"mirror {_pct(step.mirror)} -> new")
    if toggle and step.flag is not None:
        extras.append(f"flag {_pct(step.flag)} of users")
    return "; ".join([text, *extras])


def table(plan: RolloutPlan) -> str:
    """The plan as a table, with its totals under it."""
    toggle = plan.strategy == "featureToggle"
    rows = [
        [
            "" if step.index is None else step.index,
            step.name,
            f"{step.pods.get(STABLE, 0)} / {step.pods.get(NEW, 0)}",
            f"{step.peak_pods} ({step.peak_multiple:g}x)",
            _traffic(step, toggle),
            duration_text(step.min_seconds),
            step.needs_person or "",
            step.abort.summary() if step.abort else "",
        ]
        for step in plan.steps
    ]
    headers = [
        "#",
        "step",
        "pods stable / new",
        "peak pods",
        "traffic stable / new" + (" (pods)" if toggle else ""),
        "at least",
        "needs a person",
        "abort here",
    ]
    title = (
        f"Rollout {plan.namespace}/{plan.name}: {plan.strategy}, {plan.replicas} replicas;"
        f" the next release: revision {plan.revisions[STABLE]} (stable) ->"
        f" {plan.revisions[NEW]} (new)"
    )
    people = {0: "never", 1: "once"}.get(plan.people, f"{plan.people} times")
    total = (
        f"at least {duration_text(plan.min_seconds)}; peak {plan.peak_pods} pods"
        f" ({plan.peak_pods / plan.replicas if plan.replicas else 0:g}x of {plan.replicas});"
        f" a person needed: {people}"
    )
    return f"{title}\n{tabulate(rows, headers=headers, tablefmt='simple')}\n{total}\n"


def as_json(found: Sequence[RolloutPlan]) -> dict[str, Any]:
    return {"plans": [p.as_json() for p in found]}


@click.command(
    "plan",
    help="What each step of a Rollout's next release does, from the real planner run over a"
    " simulated cluster: pods per revision and the peak, traffic, the least time, what"
    " needs a person, and what an abort there does. FILES may also hold the"
    " AnalysisTemplates, HTTPRoute and flag ConfigMap it names; - reads standard input.",
)
@click.argument("files", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option("--rollout", "rollout", default=None, help="Only the Rollout of this name.")
@click.option(
    "--image",
    default=None,
    help="The new revision's image (first container); default: the image's tag with -next.",
)
@click.option("--no-aborts", is_flag=True, help="Skip the abort of each step (faster).")
def command(
    files: tuple[str, ...], output: str, rollout: str | None, image: str | None, no_aborts: bool
) -> None:
    ctx = click.get_current_context()
    try:
        docs, unreadable = read_files(files)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    report = lint_documents(docs)
    problems = [*unreadable, *report.problems]
    if problems:
        for problem in problems:
            click.echo(problem.line, err=True)
        click.echo("no plan: fix these first (kubectl nonstop lint)", err=True)
        ctx.exit(1)
    try:
        found = plans(docs, rollout, aborts=not no_aborts, image=image)
    except PlanError as exc:
        click.echo(f"no plan: {exc}", err=True)
        ctx.exit(1)
    if output == "json":
        click.echo(json.dumps(as_json(found), indent=2))
    else:
        click.echo("\n".join(table(p) for p in found), nl=False)
