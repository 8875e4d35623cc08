"""One reconcile pass of one Rollout: observe -> plan -> apply -> status (one patch).

The order matters: the actions (traffic first, stopping at a failed traffic write), the
Events of what was done, the metric readings, then the status; only then the Events of
the new state and the answers to RolloutActions, which a later pass can give again. An
Event that cannot be posted is logged and never costs the pass its status.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes.client.exceptions import ApiException

from nonstop import metrics, providers
from nonstop.kube.apply import apply
from nonstop.kube.observe import observe
from nonstop.kube.port import KubePort
from nonstop.plan import plan
from nonstop.plan.analysis import fold
from nonstop.plan.events import action_events
from nonstop.plan.model import EventSpec, Measure, Plan, Reading, SetTemplate
from nonstop.plan.outcome import AT_ONCE
from nonstop.plan.status import apply_failed
from nonstop.plan.views import rollout_view

log = structlog.get_logger("nonstop.reconcile")
RETRY_AFTER_FAILURE = 3.0
MAX_RETRY_AFTER_FAILURE = 300.0
# per Rollout: the last failure said in an Event, and how many passes in a row failed
_last_failure: dict[tuple[str, str], str] = {}
_failed_passes: dict[tuple[str, str], int] = {}


def status_body(status: Any) -> dict[str, Any]:
    """Status as a merge patch: fields that are gone are sent as null, so they are removed."""
    body: dict[str, Any] = status.model_dump(by_alias=True, mode="json")
    return body


def retry_after(failed_passes: int) -> float:
    """Back off a write that keeps failing: 3 s, 6 s, 12 s ... at most 5 minutes."""
    backoff: float = RETRY_AFTER_FAILURE * 2.0 ** max(0, failed_passes - 1)
    return min(MAX_RETRY_AFTER_FAILURE, backoff)


def _post(kube: KubePort, raw: dict[str, Any], event: EventSpec, bound: Any) -> None:
    bound.info("event", reason=event.reason, message=event.message)
    try:
        kube.post_event(raw, event.type, event.reason, event.message)
    except (ApiException, OSError) as exc:  # an Event is worth a log line, not the pass
        bound.warning("event not posted", reason=event.reason, error=str(exc))


def reconcile(
    kube: KubePort,
    namespace: str,
    name: str,
    now: datetime | None = None,
    *,
    read: Callable[[KubePort, str, Measure], tuple[Reading, Reading | None]] = providers.read,
    on_plan: Callable[[Plan], None] | None = None,
) -> float | None:
    """Run one pass; returns seconds until the next one, or None when the Rollout is gone."""
    key = (namespace, name)
    raw = kube.get_rollout(namespace, name)
    if raw is None or raw["metadata"].get("deletionTimestamp"):
        _last_failure.pop(key, None)
        _failed_passes.pop(key, None)
        return None
    view = rollout_view(raw)
    observed = observe(kube, view)
    at = now or datetime.now(UTC)
    decision = plan(view, observed, at)
    if on_plan is not None:  # tests see the Plan the pass computed
        on_plan(decision)
    bound = log.bind(namespace=namespace, rollout=name, **decision.log)

    # An undo's new template goes in only after the status that records the undo is saved.
    now_actions = tuple(a for a in decision.actions if not isinstance(a, SetTemplate))
    later = tuple(a for a in decision.actions if isinstance(a, SetTemplate))
    applied = apply(kube, namespace, now_actions)
    for action in applied.done:
        bound.info("applied", action=type(action).__name__)
    for action in applied.skipped:
        bound.info("held back", action=type(action).__name__)
    # the story in order: what starts, what was done, the state reached (posting an Event
    # never raises: a failed one is logged and the status below is still written)
    for event in (*decision.events[: decision.opening], *action_events(applied.done)):
        _post(kube, raw, event, bound)
    failures = applied.failures
    for failure in failures:
        bound.warning("apply failed", error=failure)
    said = "; ".join(failures)
    if said and _last_failure.get(key) != said:  # an Event per new failure, not per pass
        _post(kube, raw, EventSpec("Warning", "ApplyFailed", said), bound)
    _last_failure[key] = said

    readings = [(m, *read(kube, namespace, m)) for m in decision.measures]
    for measure, reading, _ in readings:
        bound.info("measured", run=measure.run, metric=measure.metric.name, error=reading.error)
    status = fold(decision.status, readings, at)
    if failures:
        status = apply_failed(status, failures, view.meta.generation, at)
    new_status = status_body(status)
    old_status = status_body(view.status)
    if new_status != old_status:
        kube.patch_rollout_status(namespace, name, new_status)
        # what the pass did (a step ended, a promotion, an abort, measurements), counted
        # once the status that records it is accepted
        metrics.observe_status(namespace, old_status, new_status, at)
    for event in decision.events[decision.opening :]:
        _post(kube, raw, event, bound)
    if later and not failures:
        undo = apply(kube, namespace, later, name, view.meta.generation)
        for failure in undo.failures:
            bound.warning("apply failed", error=failure)
            _post(kube, raw, EventSpec("Warning", "ApplyFailed", failure), bound)
        failures = [*failures, *undo.failures]
    # Only once the Rollout's status (which records the action) is saved is it answered.
    for answer in decision.answers:
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        bound.info("action answered", action=answer.name, phase=answer.phase)
        kube.answer_action(
            namespace,
            answer.name,
            {"phase": answer.phase, "message": answer.message, "appliedAt": stamp},
        )
    if failures:
        _failed_passes[key] = _failed_passes.get(key, 0) + 1
        return retry_after(_failed_passes[key])
    _failed_passes.pop(key, None)
    # A pass that changed the cluster runs again at once: it reads its own writes from the
    # cache (their watch events are no news to it, so they wake nothing), and what the
    # writes allow next (the route shown, the Service switched) is its to do now.
    requeue = min(decision.requeue_after, AT_ONCE) if applied.done else decision.requeue_after
    bound.debug("pass done", requeue_after=requeue)
    return requeue
