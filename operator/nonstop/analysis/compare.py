"""Built-in canary-versus-stable comparison: a one-sided Mann-Whitney U test, no service needed.

The test (Mann & Whitney 1947; Wilcoxon's rank-sum test) asks whether the canary's samples
tend to be larger than the stable's, without assuming any distribution:

    Pool both samples and rank them 1..N (N = n1 + n2); tied values share the mean of their
    ranks (mid-ranks). With R1 the rank sum of the canary (n1 samples),

        U = R1 - n1 (n1 + 1) / 2

    which equals the number of (canary, stable) pairs where the canary is larger, ties
    counting one half. Under H0 (same distribution) U ranges over 0..n1 n2 around n1 n2 / 2;
    a large U says the canary is stochastically greater. The one-sided p-value is
    P(U' >= U | H0).

Exact distribution (no ties, both samples of at most EXACT_MAX = 8): all C(N, n1) orders of
the pooled sample are equally likely under H0, and the number of orders giving U = u is the
coefficient of q^u in the Gaussian binomial coefficient [N choose n1]_q
= prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i) (Mann & Whitney's recursion, solved in closed
form), so p = #{orders with U' >= U} / C(N, n1), computed in exact integers.

Normal approximation otherwise, with the tie correction of the variance (Siegel 1956;
Lehmann 1975, p. 20) and a continuity correction of 1/2:

    mean  = n1 n2 / 2
    var   = n1 n2 / 12 * ((N + 1) - sum_k (t_k^3 - t_k) / (N (N - 1)))
    z     = (U - mean - 1/2) / sqrt(var)
    p     = 1 - Phi(z) = erfc(z / sqrt(2)) / 2

where t_k is the size of the k-th group of tied values. This is what
scipy.stats.mannwhitneyu(canary, stable, alternative="greater") computes with
method="asymptotic" (and method="exact" for the exact branch), see
https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.mannwhitneyu.html (checked
against scipy 1.17 on random samples with and without ties: same U, p within 1e-15). scipy's
own "auto" picks the exact distribution in more cases (one small sample is enough); this
module keeps to both samples of at most 8, where enumeration is certainly cheap; pass
method="exact" to insist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Literal, NamedTuple

EXACT_MAX = 8

Method = Literal["auto", "exact", "asymptotic"]
Verdict = Literal["Worse", "NotWorse", "Inconclusive"]


class MannWhitney(NamedTuple):
    u: float  # U of the first sample (pairs where it is larger; ties count 1/2)
    p_value: float  # one-sided: P(U' >= u) under H0, in [0, 1]


def mann_whitney_u(
    a: Sequence[float], b: Sequence[float], *, method: Method = "auto"
) -> MannWhitney:
    """One-sided Mann-Whitney U test of "a is stochastically greater than b".

    method: "auto" uses the exact distribution when there are no ties and both samples have
    at most EXACT_MAX values, else the normal approximation; "exact" insists (and refuses
    ties, which the exact distribution does not model); "asymptotic" always approximates.
    Raises ValueError for an empty sample or a NaN (which has no rank).
    """
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError(f"both samples need values, got {n1} and {n2}")
    pooled = [*a, *b]
    if any(math.isnan(x) for x in pooled):
        raise ValueError("samples contain NaN, which has no rank: drop it first")
    ranks, ties = _midranks(pooled)
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    exact = method == "exact" or (method == "auto" and not ties and max(n1, n2) <= EXACT_MAX)
    if exact:
        if ties:
            raise ValueError(
                "the exact distribution of U assumes no ties; use the normal approximation"
            )
        return MannWhitney(u, _exact_p(round(u), n1, n2))
    return MannWhitney(u, _normal_p(u, n1, n2, ties))


def _midranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Ranks 1..N with ties sharing the mean of their ranks; and the size of each tie group."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        rank = (start + end) / 2 + 1
        for i in order[start : end + 1]:
            ranks[i] = rank
        if end > start:
            ties.append(end - start + 1)
        start = end + 1
    return ranks, ties


def _exact_p(u: int, n1: int, n2: int) -> float:
    """P(U' >= u) under H0 with no ties, from the coefficients of [n1 + n2 choose n1]_q."""
    size = n1 * n2 + 1
    counts = [1] + [0] * (size - 1)
    # Power series modulo q^size: exact, since the result is a polynomial of degree n1 n2.
    for i in range(1, n1 + 1):
        step = n2 + i
        for k in range(size - 1, step - 1, -1):  # times (1 - q^(n2+i))
            counts[k] -= counts[k - step]
        for k in range(i, size):  # divided by (1 - q^i)
            counts[k] += counts[k - i]
    total = math.comb(n1 + n2, n1)
    return min(1.0, sum(counts[max(u, 0) :]) / total)


def _normal_p(u: float, n1: int, n2: int, ties: Sequence[int]) -> float:
    """P(U' >= u) under H0 by the normal approximation with tie and continuity corrections."""
    n = n1 + n2
    mean = n1 * n2 / 2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:  # every value is the same: no evidence either way
        return 1.0
    z = (u - mean - 0.5) / math.sqrt(variance)
    return min(1.0, max(0.0, math.erfc(z / math.sqrt(2)) / 2))


@dataclass(frozen=True)
class ComparisonResult:
    verdict: Verdict
    p_value: float | None  # None when there were too few samples to test
    u: float | None  # U of the canary in the "worse" direction
    canary_median: float | None  # None when the canary has no samples
    stable_median: float | None
    message: str


def compare(
    canary: Sequence[float],
    stable: Sequence[float],
    *,
    confidence: float = 0.95,
    higher_is_worse: bool = True,
    min_samples: int = 5,
) -> ComparisonResult:
    """Is the canary worse than stable? One-sided Mann-Whitney U test in the "worse" direction
    (larger values when higher_is_worse, e.g. latency or error rate; smaller otherwise, e.g.
    success rate). Worse when p < 1 - confidence; Inconclusive when either side has fewer than
    min_samples usable samples; NotWorse otherwise. NaN samples are dropped and counted in
    the message.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, not {min_samples}")
    canary_ok = [x for x in canary if not math.isnan(x)]
    stable_ok = [x for x in stable if not math.isnan(x)]
    dropped_canary, dropped_stable = len(canary) - len(canary_ok), len(stable) - len(stable_ok)
    dropped = ""
    if dropped_canary or dropped_stable:
        total = dropped_canary + dropped_stable
        samples = "sample" if total == 1 else "samples"
        dropped = (
            f"; dropped {total} NaN {samples} ({dropped_canary} canary, {dropped_stable} stable)"
        )
    canary_median = median(canary_ok) if canary_ok else None
    stable_median = median(stable_ok) if stable_ok else None
    counts = f"{len(canary_ok)} canary and {len(stable_ok)} stable samples"
    if len(canary_ok) < min_samples or len(stable_ok) < min_samples:
        return ComparisonResult(
            "Inconclusive",
            None,
            None,
            canary_median,
            stable_median,
            f"not enough samples to compare: {counts}, need at least {min_samples} each{dropped}",
        )
    # "canary worse" is "canary greater" when higher is worse, else "stable greater".
    worse, better = (canary_ok, stable_ok) if higher_is_worse else (stable_ok, canary_ok)
    # U of (stable, canary) counts the pairs where the canary is lower: the canary's U in the
    # "worse" direction either way.
    u, p = mann_whitney_u(worse, better)
    alpha = 1 - confidence
    direction = "higher" if higher_is_worse else "lower"
    assert canary_median is not None and stable_median is not None
    medians = f"median {_show(canary_median)} vs {_show(stable_median)}"
    test = f"one-sided Mann-Whitney U={_show(u)}, {counts}"
    if p < alpha:
        verdict: Verdict = "Worse"
        message = f"canary is worse than stable ({direction} is worse): {medians}, p={_show(p)} < {_show(alpha)} ({test}){dropped}"
    else:
        verdict = "NotWorse"
        message = f"canary is not worse than stable ({direction} is worse): {medians}, p={_show(p)} >= {_show(alpha)} ({test}){dropped}"
    return ComparisonResult(verdict, p, u, canary_median, stable_median, message)


def _show(value: float) -> str:
    return format(value, ".3g")
