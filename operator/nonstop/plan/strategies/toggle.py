"""The feature-toggle strategy: ship the code dark, then widen the flag user by user.

The five stages of the technique: (1) the flag's new variant is off (weight 0) before
anything else; (2) the template is rolled out as a rolling update (maxSurge 25%,
maxUnavailable 0) when it changed; (3) steps (setWeight, pause) move the share of users
that get the new variant, through the flag store (flagd `fractional` targeting of that one
flag in a ConfigMap); (4) after the last step the new variant gets 100%; (5) the rollout is
done, the flag stays.

A step is done when the store read back shows its weight. Once the steps have started, the
pods of the revision are the kernel's business only: a pod that turns unready, a scale of
the Rollout or an HPA resize holds the steps where they are but never takes the feature
away from anyone. Only an abort (RolloutAction, or the progress deadline of the deploy)
sets the weight to 0 at once: every user is back on the default variant, the flag stays
ENABLED (DISABLED would fall back to the code's own defaults, which is not "off" for
everyone).
"""

from __future__ import annotations

from dataclasses import replace

from nonstop.api.status import FlagStatus
from nonstop.plan.conditions import Verdict
from nonstop.plan.context import PassContext
from nonstop.plan.flags import FlagStore
from nonstop.plan.kernel.fleet import fleet
from nonstop.plan.kernel.settle import settle
from nonstop.plan.kernel.stepped import step_outcome, waits
from nonstop.plan.model import Action
from nonstop.plan.outcome import AT_ONCE, IDLE_REQUEUE, Outcome
from nonstop.plan.steps import advance, step_kind, target_at

SURGE, UNAVAILABLE = "25%", 0


def plan_feature_toggle(ctx: PassContext) -> Outcome:
    toggle = ctx.spec.strategy.feature_toggle
    assert toggle is not None and ctx.flags is not None
    store: FlagStore = ctx.flags
    ref, prev, revision = toggle.flag, ctx.prev, ctx.revision
    current = store.flag
    record = FlagStatus(
        config_map=ref.config_map,
        key=ref.key,
        variant=ref.variant,
        revision=revision,
        state=current.state,
        weight=current.weight,
    )
    same = prev.flag is not None and prev.flag.identity == record.identity
    pods = fleet(ctx, SURGE, UNAVAILABLE, one_service=True)
    deploy = settle(pods)
    steps = toggle.steps
    settled = pods.settled(revision)
    started = same and prev.current_step_index is not None and not ctx.restart_steps

    def flag_to(weight: float) -> tuple[list[Action], bool]:
        write, shown = store.towards(weight)
        return ([write] if write else []), shown

    if ctx.abort is not None or not started:
        # dark first (and on abort, at once): nobody gets the new variant
        writes, _ = flag_to(0)
        outcome = replace(deploy, actions=[*writes, *deploy.actions], flag=record)
        if ctx.abort is not None:
            if not settled:
                return outcome
            message = f"aborted: flag {ref.key} is back to 0% {ref.variant}; {ctx.abort.message}"
            verdict = Verdict(False, False, True, "RolloutAborted", message)
            return replace(
                outcome,
                phase="Degraded",
                verdict=verdict,
                abort=ctx.abort,
                requeue_after=IDLE_REQUEUE,
            )
        if not settled or ctx.paused:
            return outcome
        index = 0  # the revision is deployed, every user still dark: the steps begin
        step_started = ctx.now
        fresh = True
    else:
        index = prev.current_step_index or 0
        step_started = prev.step_started_at or ctx.now
        fresh = False

    if index >= len(steps):
        writes, shown = flag_to(100.0)
        message = f"flag {ref.key}: {ref.variant} for 100% of users; revision {revision} is stable"
        if shown and not settled:  # pods of a completed rollout come and go: the flag stays
            return replace(
                deploy,
                actions=[*writes, *deploy.actions],
                step=f"{len(steps)}/{len(steps)}",
                step_index=len(steps),
                step_started_at=step_started,
                flag=record,
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
            step_started_at=step_started,
            requeue_after=IDLE_REQUEUE if shown else AT_ONCE,
            flag=record,
        )
    target = target_at(steps, index)
    writes, shown = flag_to(target.weight)
    if ctx.paused:
        writes = []
    # a step moves on only while the revision's pods are whole: a blip holds it
    progress = advance(
        steps,
        index,
        step_started,
        ctx.now,
        applied=shown and settled and not ctx.paused,
        promotion=ctx.promotion if settled and not ctx.paused else None,
    )
    at_pause = waits(steps, index, progress.index)
    moved = progress.index != index or fresh
    describe = (
        f"step {index + 1}/{len(steps)} ({step_kind(steps[index])}): flag {ref.key} gives"
        f" {ref.variant} to {current.weight:g}% of users"
    )
    if not settled:
        describe += f"; waiting for revision {revision} to be whole ({deploy.step} pods)"
    outcome = step_outcome(
        ctx,
        len(steps),
        progress,
        describe,
        [*writes, *deploy.actions],
        ctx.now,
        moved=moved,
        at_pause=at_pause,
    )
    return replace(outcome, stable_revision=revision, flag=record)
