"""One reconcile pass of one Rollout: observe -> plan -> apply -> status (one patch)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from nonstop.kube.apply import apply
from nonstop.kube.client import Kube
from nonstop.kube.observe import observe
from nonstop.plan import plan
from nonstop.plan.analysis import fold
from nonstop.plan.model import Measure, SetTemplate
from nonstop.plan.views import rollout_view
from nonstop.providers import read

log = structlog.get_logger("nonstop.reconcile")
RETRY_AFTER_FAILURE = 3.0
_last_failure: dict[tuple[str, str], str] = {}


def status_body(status: Any) -> dict[str, Any]:
    """Status as a merge patch: fields that are gone are sent as null, so they are removed."""
    body: dict[str, Any] = status.model_dump(by_alias=True, mode="json")
    return body


def reconcile(kube: Kube, namespace: str, name: str, now: datetime | None = None) -> float | None:
    """Run one pass; returns seconds until the next one, or None when the Rollout is gone."""
    raw = kube.get_rollout(namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp"):
        return None
    view = rollout_view(raw)
    observed = observe(kube, view)
    decision = plan(view, observed, now or datetime.now(UTC))
    bound = log.bind(namespace=namespace, rollout=name, **decision.log)

    # An undo's new template goes in only after the status that records the undo is saved.
    now_actions = tuple(a for a in decision.actions if not isinstance(a, SetTemplate))
    later = tuple(a for a in decision.actions if isinstance(a, SetTemplate))
    failures = apply(kube, namespace, now_actions)
    for action in decision.actions:
        bound.info("applied", action=type(action).__name__)
    for event in decision.events:
        bound.info("event", reason=event.reason, message=event.message)
        kube.post_event(raw, event.type, event.reason, event.message)
    for failure in failures:
        bound.warning("apply failed", error=failure)
    said = "; ".join(failures)
    if (
        said and _last_failure.get((namespace, name)) != said
    ):  # an Event per new failure, not per pass
        kube.post_event(raw, "Warning", "ApplyFailed", said)
    _last_failure[(namespace, name)] = said

    readings = [(m, *read(kube, namespace, m)) for m in decision.actions if isinstance(m, Measure)]
    for measure, reading, _ in readings:
        bound.info("measured", run=measure.run, metric=measure.metric.name, error=reading.error)
    status = fold(decision.status, readings, now or datetime.now(UTC))
    new_status = status_body(status)
    if new_status != status_body(view.status):
        kube.patch_rollout_status(namespace, name, new_status)
    if later:
        generation = view.meta.generation
        undo_failures = apply(kube, namespace, later, name, generation)
        for failure in undo_failures:
            bound.warning("apply failed", error=failure)
            kube.post_event(raw, "Warning", "ApplyFailed", failure)
        failures.extend(undo_failures)
    # Only once the Rollout's status (which records the action) is saved is it answered.
    for answer in decision.answers:
        at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        bound.info("action answered", action=answer.name, phase=answer.phase)
        kube.answer_action(
            namespace,
            answer.name,
            {"phase": answer.phase, "message": answer.message, "appliedAt": at},
        )
    return RETRY_AFTER_FAILURE if failures else decision.requeue_after
