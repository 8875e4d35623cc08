"""The feature-toggle strategy: ship the code dark, then widen the flag user by user.

The five stages of the technique: (1) the flag's new variant is off (weight 0) before
anything else; (2) the template is rolled out as a rolling update (maxSurge 25%,
maxUnavailable 0) when it changed; (3) steps (setWeight, pause) move the share of users
that get the new variant, written as flagd `fractional` targeting of that one flag in the
ConfigMap's document (traffic/flagd.py edits only that targeting, every other byte stays);
(4) after the last step the new variant gets 100%; (5) the rollout is done, the flag stays.

A step is done when the ConfigMap read back shows its weight. An abort (RolloutAction, or
the progress deadline of the deploy) sets the weight to 0 at once: every user is back on
the default variant, the flag stays ENABLED (DISABLED would fall back to the code's own
defaults, which is not "off" for everyone). A document that is not valid flagd JSON, or
lacks the flag or the variant, stops the rollout with a Stalled condition and changes
nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from nonstop.api import RolloutSpec
from nonstop.api.spec import FlagRef
from nonstop.api.status import FlagStatus
from nonstop.plan.canary import step_outcome
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import (
    Action,
    Observed,
    RolloutMeta,
    RolloutView,
    StallError,
    UpdateConfigMap,
)
from nonstop.plan.rolling import IDLE_REQUEUE, Outcome, rolling_context, rolling_pass
from nonstop.plan.steps import Promotion, advance, step_kind, target_at
from nonstop.traffic import FlagError, read_flag, set_weight
from nonstop.traffic.flagd import flag_weight

SURGE, UNAVAILABLE = "25%", 0


def _document(flag: FlagRef, meta: RolloutMeta, observed: Observed) -> tuple[dict[str, Any], str]:
    where = f"ConfigMap {meta.namespace}/{flag.config_map}"
    if observed.config_map is None:
        raise StallError(
            "FlagDocumentNotFound",
            f"{where} named in spec.strategy.featureToggle.flag cannot be read:"
            f" {observed.config_map_error or 'it does not exist'}",
        )
    data = observed.config_map.get("data") or {}
    if flag.file not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise StallError(
            "FlagDocumentInvalid",
            f"{where} has no key {flag.file} (its keys: {keys}): set flag.file to the key"
            " that holds the flagd document",
        )
    return observed.config_map, str(data[flag.file])


def _write(config_map: dict[str, Any], file: str, document: str, note: str) -> UpdateConfigMap:
    body = {**config_map, "data": {**config_map["data"], file: document}}
    return UpdateConfigMap(body, note)


def plan_feature_toggle(
    rollout: RolloutView,
    spec: RolloutSpec,
    revision: str,
    observed: Observed,
    now: datetime,
    promotion: Promotion = None,
) -> Outcome:
    toggle = spec.strategy.feature_toggle
    assert toggle is not None
    flag, meta, prev = toggle.flag, rollout.meta, rollout.status
    config_map, document = _document(flag, meta, observed)
    source = f"ConfigMap {meta.namespace}/{flag.config_map} key {flag.file}"
    try:
        current = read_flag(document, flag.key, flag.variant, source=source)
    except FlagError as exc:
        raise StallError("FlagDocumentInvalid", str(exc)) from exc
    if not current.owned:
        raise StallError(
            "FlagDocumentInvalid",
            f"{source}: flag {flag.key} has a targeting rule nonstop did not write; nonstop"
            " owns the targeting of the flag it rolls out: remove the rule (or roll out"
            " another flag)",
        )

    ctx = rolling_context(rollout, spec, revision, observed, SURGE, UNAVAILABLE)
    record = FlagStatus(
        config_map=flag.config_map,
        key=flag.key,
        variant=flag.variant,
        revision=revision,
        state=current.state,
        weight=current.weight,
    )
    same = prev.flag is not None and prev.flag.identity == record.identity
    aborted = prev.abort is not None and prev.abort.revision == revision
    deploy = rolling_pass(ctx, now)
    steps = toggle.steps
    settled = ctx.settled(revision) and not ctx.paused
    index = prev.current_step_index if same and prev.current_step_index is not None else None

    def flag_to(weight: float) -> tuple[list[Action], bool]:
        if current.weight == flag_weight(weight):
            return [], True
        text = set_weight(document, flag.key, flag.variant, weight, source=source)
        note = f"flag {flag.key} in ConfigMap {flag.config_map}: {flag.variant} {current.weight:g}% -> {weight:g}%"
        return [_write(config_map, flag.file, text, note)], False

    if aborted or not settled or (not same and current.weight > 0 and index is None):
        # dark first (and on abort, at once): nobody gets the new variant
        writes, _ = flag_to(0)
        outcome = replace(deploy, actions=[*writes, *deploy.actions], flag=record)
        if aborted and settled:
            message = f"aborted: flag {flag.key} is back to 0% {flag.variant}; {prev.abort.message if prev.abort else ''}"
            verdict = Verdict(False, False, True, "RolloutAborted", message)
            return replace(
                outcome,
                phase="Degraded",
                verdict=verdict,
                abort=prev.abort,
                requeue_after=IDLE_REQUEUE,
            )
        return outcome

    fresh = index is None
    index = 0 if index is None else index
    started = now if fresh else prev.step_started_at or now
    if index >= len(steps):
        writes, shown = flag_to(100.0)
        message = (
            f"flag {flag.key}: {flag.variant} for 100% of users; revision {revision} is stable"
        )
        verdict = (
            Verdict(True, False, False, "RolloutCompleted", message)
            if shown
            else Verdict(False, True, False, "RolloutInProgress", f"setting {message}")
        )
        return replace(
            deploy,
            actions=[*writes, *deploy.actions],
            phase="Healthy" if shown else "Progressing",
            verdict=verdict,
            step=f"{len(steps)}/{len(steps)}",
            step_index=len(steps),
            step_started_at=started,
            requeue_after=IDLE_REQUEUE if shown else 0.5,
            flag=record,
        )
    target = target_at(steps, index)
    writes, shown = flag_to(target.weight)
    progress = advance(steps, index, started, now, applied=shown, promotion=promotion)
    at_pause = step_kind(steps[index]) == "pause" and progress.index == index
    moved = progress.index != index or fresh
    describe = (
        f"step {index + 1}/{len(steps)} ({step_kind(steps[index])}): flag {flag.key} gives"
        f" {flag.variant} to {current.weight:g}% of users"
    )
    outcome = step_outcome(
        ctx,
        len(steps),
        progress,
        describe,
        [*writes, *deploy.actions],
        now,
        now,
        moved=moved,
        at_pause=at_pause,
    )
    return replace(outcome, stable_revision=revision, flag=record)
