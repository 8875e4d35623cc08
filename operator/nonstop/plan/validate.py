"""What admission cannot see but makes a Rollout impossible to carry out: found before any
strategy runs, so that a Rollout that cannot go on stops before it moves a pod."""

from __future__ import annotations

from collections.abc import Mapping

from nonstop.api import RolloutSpec
from nonstop.api.spec import AnalysisTemplateSpec
from nonstop.plan.analysis import analyses_of, conditions_problem, metrics_of
from nonstop.plan.model import Observed, StallError
from nonstop.plan.steps import step_kind

Problem = tuple[str, str]  # (condition reason, message)


def semantic_problem(spec: RolloutSpec, observed: Observed) -> Problem | None:
    """The first thing that makes this Rollout impossible, or None."""
    return conflict_problem(spec, observed) or templates_problem(spec, observed.templates)


def conflict_problem(spec: RolloutSpec, observed: Observed) -> Problem | None:
    """A strategy this version cannot carry out, or an object under one of nonstop's names
    that is someone else's: nothing may be written, not even a rollback."""
    problem = _strategy_problem(spec)
    if problem is not None:
        return problem
    for service in (observed.service, *observed.services):
        if service is not None and not service.owned:
            return (
                "ServiceConflict",
                f"Service {service.name} already exists and does not belong to this Rollout."
                " Pick another name for it in the spec, or delete that Service so that"
                " nonstop can create its own",
            )
    if observed.foreign_deployment is not None:
        return (
            "DeploymentConflict",
            f"Deployment {observed.foreign_deployment} already exists and does not belong to"
            " this Rollout (nonstop names the Deployment of a revision <rollout>-<revision>)."
            " nonstop does not take it over: delete or rename it, or rename the Rollout",
        )
    return None


def templates_problem(
    spec: RolloutSpec, templates: Mapping[str, AnalysisTemplateSpec]
) -> Problem | None:
    """Every AnalysisTemplate the spec names, checked when it is named (its conditions
    parse, it exists), not when a step first needs it."""
    for analysis in analyses_of(spec):
        try:
            metrics_of(analysis, templates)
        except StallError as error:
            return error.reason, error.message
    return None


def _strategy_problem(spec: RolloutSpec) -> Problem | None:
    """Parts of the chosen strategy this version cannot carry out, or that contradict."""
    shadow = spec.strategy.shadow
    canary = spec.strategy.canary or (shadow.then.canary if shadow else None)
    blue_green = spec.strategy.blue_green or (shadow.then.blue_green if shadow else None)
    if (problem := conditions_problem(spec)) is not None:
        return "InvalidSpec", problem
    if canary is not None:
        kinds = {step_kind(s) for s in canary.steps}
        if "setHeaderRoute" in kinds and spec.traffic_routing is None:
            return "InvalidSpec", "setHeaderRoute steps need spec.trafficRouting"
    if blue_green is not None:
        if spec.traffic_routing is not None and shadow is None:
            return (
                "InvalidSpec",
                "blueGreen switches Services, not route weights: remove spec.trafficRouting"
                " (or use canary)",
            )
        if blue_green.preview_service == spec.service.name:
            return "InvalidSpec", "blueGreen.previewService must differ from spec.service.name"
    return None
