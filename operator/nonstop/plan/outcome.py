"""What a strategy decides in one pass, before the planner turns it into status and Events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nonstop.api import Abort
from nonstop.api.status import FlagStatus, Phase, ShadowRecord
from nonstop.plan.analysis import Wanted
from nonstop.plan.conditions import Verdict
from nonstop.plan.model import Action, EventSpec

# Requeues are a guard, not how progress is seen: every change of the cluster wakes the
# Rollout (the operator's watch-fed cache), and what time alone changes (a pause, the next
# measurement, the progress deadline, a scale-down delay) is a requeue of its own.
IN_PROGRESS_REQUEUE = 30.0
IDLE_REQUEUE = 300.0
# After a pass that only moved the step on: the next pass carries the step out at once.
AT_ONCE = 0.05


@dataclass(frozen=True)
class Outcome:
    actions: list[Action]
    phase: Phase
    verdict: Verdict
    stable_revision: str | None
    abort: Abort | None
    last_progress: datetime
    step: str
    requeue_after: float
    step_index: int | None = None  # step-based strategies: the current step
    step_started_at: datetime | None = None
    # Service name -> the revision it selects (None: every revision). None: only
    # spec.service, selecting every revision (rolling, canary without a router).
    selects: dict[str, str | None] | None = None
    shadow: ShadowRecord | None = None  # the shadow strategy's record for this revision
    flag: FlagStatus | None = None  # the feature toggle's flag, as read back
    wanted: tuple[Wanted, ...] = ()  # the analysis runs the strategy wants this pass
    events: tuple[EventSpec, ...] = ()  # strategy-specific Events of this pass
    # revisions whose pods must stay this pass whatever else is decided (an analysis that
    # still judges them, an undo window)
    keep: frozenset[str] = frozenset()
