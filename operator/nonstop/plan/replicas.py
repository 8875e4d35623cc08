"""Replica arithmetic of a rolling replacement, bounded by maxSurge and maxUnavailable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Pods:
    """One revision's pods as the arithmetic counts them."""

    name: str
    spec: int  # replicas asked for
    pods: int  # pods that exist or are about to
    available: int  # available pods that will stay


def resolve(value: int | str, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * replicas / 100
    return math.ceil(share) if round_up else math.floor(share)


def bounds(replicas: int, max_surge: int | str, max_unavailable: int | str) -> tuple[int, int]:
    """(surge, unavailable) in pods. Surge rounds up and unavailable down, as Deployments do;
    when both come to 0 the rollout could not move, so one pod of surge is allowed (never
    one of unavailability: nonstop errs on the side of serving)."""
    surge = resolve(max_surge, replicas, round_up=True)
    unavailable = min(resolve(max_unavailable, replicas, round_up=False), replicas)
    if surge == 0 and unavailable == 0:
        surge = 1
    return surge, unavailable


def rolling_targets(
    desired: int,
    surge: int,
    unavailable: int,
    target: Pods,
    others: Sequence[Pods],
    ready_endpoints: int | None,
) -> dict[str, int]:
    """Replicas for each revision after one batch towards `target`.

    The target grows while the total stays within desired + surge. The others shrink by
    their pods that are not available (removing those costs nothing: the ReplicaSet
    controller deletes unready pods first) and by as many available pods as keep the
    available total at or above desired - unavailable. Availability is the smaller of what
    the Deployments report and what the Service's EndpointSlices show, so nothing is taken
    away before the endpoints show its replacement. Others are cut in the order given.
    """
    result: dict[str, int] = {}
    # The target may have as many pods as the others leave room for under the surge.
    cap = desired + surge - sum(o.pods for o in others)
    if target.spec < desired:
        result[target.name] = max(target.spec, min(desired, cap))
    else:
        # Scaled down (or done): no more than the surge allows beside the others' pods,
        # but never fewer than the target's own available pods (up to desired).
        result[target.name] = max(0, min(desired, cap), min(target.available, desired))

    available = target.available + sum(o.available for o in others)
    if ready_endpoints is not None:
        available = min(available, ready_endpoints)
    budget = max(0, available - (desired - unavailable))
    for other in others:
        keep = min(other.spec, other.available)  # the unavailable ones go for free
        cut = min(budget, keep)
        budget -= cut
        result[other.name] = keep - cut
    return result
