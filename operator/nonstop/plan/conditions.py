"""kstatus conditions (Ready, Reconciling, Stalled, Paused) from the outcome of a pass.

kstatus is what kubectl wait, Flux and Argo CD read: Ready=True means the spec is realised;
Reconciling=True means work is under way; Stalled=True means it will not get there without
a person. lastTransitionTime moves only when a condition's status changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from nonstop.api import Condition


@dataclass(frozen=True)
class Verdict:
    """How this pass ended, in kstatus terms."""

    ready: bool
    reconciling: bool
    stalled: bool
    reason: str
    message: str
    paused: bool = False
    paused_reason: str = ""


def conditions(
    previous: list[Condition], verdict: Verdict, generation: int, now: datetime
) -> list[Condition]:
    before = {c.type: c for c in previous}

    def make(type_: str, on: bool, reason: str, message: str) -> Condition:
        status: Literal["True", "False"] = "True" if on else "False"
        old = before.get(type_)
        since = old.last_transition_time if old and old.status == status else now
        return Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            observed_generation=generation,
            last_transition_time=since,
        )

    v = verdict
    return [
        make("Ready", v.ready, v.reason, v.message),
        make(
            "Reconciling",
            v.reconciling,
            v.reason if v.reconciling else "Idle",
            v.message if v.reconciling else "",
        ),
        make(
            "Stalled",
            v.stalled,
            v.reason if v.stalled else "NotStalled",
            v.message if v.stalled else "",
        ),
        make(
            "Paused",
            v.paused,
            v.paused_reason if v.paused else "NotPaused",
            v.message if v.paused else "",
        ),
    ]
