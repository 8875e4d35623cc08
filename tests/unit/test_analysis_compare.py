"""The built-in canary-versus-stable comparison (one-sided Mann-Whitney U)."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from nonstop.analysis.compare import compare, mann_whitney_u

# Hollander & Wolfe (1973, p. 69): permeability constants of the human chorioamnion, the
# example of R's wilcox.test. scipy.stats.mannwhitneyu(X, Y, alternative="greater") gives
# U=35 and p=0.1272061272061272 (exact: 5 values in Y, no ties).
X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
Y = [1.15, 0.88, 0.90, 0.74, 1.21]

# NAG Library g08ahf/g08amc example (two groups of 16 and 23 with many ties): U=86 for group
# 1, normal statistic z=-2.8039 with tie and continuity corrections, tail probability 0.0025.
G1 = [13, 6, 12, 7, 12, 7, 10, 7, 10, 7, 16, 7, 10, 8, 9, 8]
G2 = [17, 6, 10, 8, 15, 8, 15, 10, 15, 10, 14, 10, 14, 11, 14, 11, 13, 12, 13, 12, 13, 12, 12]


def brute_force_p(a: list[float], b: list[float]) -> tuple[float, float]:
    """(U, P(U' >= U)) by enumerating every way to split the pooled ranks (no ties)."""
    pooled = sorted([*a, *b])
    u = sum(1.0 for x in a for y in b if x > y)
    hits = total = 0
    for chosen in combinations(range(len(pooled)), len(a)):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u_other = sum(1 for i in chosen for y in rest if pooled[i] > y)
        total += 1
        hits += u_other >= u
    return u, hits / total


class TestMannWhitney:
    def test_smallest_complete_separation(self) -> None:
        # 3 vs 3: 20 equally likely orders; a all above b is 1 of them.
        assert mann_whitney_u([4, 5, 6], [1, 2, 3]) == (9.0, 0.05)
        assert mann_whitney_u([1, 2, 3], [4, 5, 6]) == (0.0, 1.0)
        assert mann_whitney_u([4, 5, 6, 7], [1, 2, 3]) == (12.0, 1 / 35)

    def test_hand_computed_exact(self) -> None:
        # a=[3, 5], b=[1, 4]: pairs a>b are (3,1) (5,1) (5,4), so U=3. Of the C(4,2)=6 orders,
        # U=4 once (a on top), U=3 once (ranks {2,4}) -> P(U >= 3) = 2/6.
        u, p = mann_whitney_u([3, 5], [1, 4])
        assert u == 3.0
        assert p == pytest.approx(2 / 6)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ([1.5, 2.5, 9.0], [1.0, 2.0, 3.0, 4.0]),
            ([0.1, 0.7, 0.3, 0.9, 0.5], [0.2, 0.4, 0.6, 0.8]),
            ([10.0, 11.0, 12.0, 1.0, 2.0], [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
            ([5.0], [1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0]),
        ],
    )
    def test_exact_matches_enumeration(self, a: list[float], b: list[float]) -> None:
        u, p = mann_whitney_u(a, b)
        expected_u, expected_p = brute_force_p(a, b)
        assert u == expected_u
        assert p == pytest.approx(expected_p, abs=1e-12)

    def test_textbook_exact(self) -> None:
        u, p = mann_whitney_u(X, Y, method="exact")
        assert u == 35.0
        assert p == pytest.approx(0.1272061272061272, rel=1e-12)

    def test_textbook_normal_approximation(self) -> None:
        # 10 values in X: "auto" approximates. Hand computation: mean 25, var = 50*16/12,
        # z = (35 - 25 - 0.5) / sqrt(66.67) = 1.16351, p = 1 - Phi(z) = 0.122312.
        u, p = mann_whitney_u(X, Y)
        assert u == 35.0
        assert p == pytest.approx(0.1223118, abs=1e-6)
        assert mann_whitney_u(X, Y, method="asymptotic") == (u, p)

    def test_textbook_with_ties(self) -> None:
        u, p = mann_whitney_u(G1, G2)
        assert u == 86.0
        assert p > 0.99  # G1 is not greater: the other tail
        u2, p2 = mann_whitney_u(G2, G1)
        assert u2 == 16 * 23 - 86
        assert p2 == pytest.approx(0.0025, abs=5e-5)
        # z = -2.8039: p2 = Phi(-2.8039)
        assert p2 == pytest.approx(math.erfc(2.8039 / math.sqrt(2)) / 2, rel=1e-4)

    def test_ties_count_one_half(self) -> None:
        u, _ = mann_whitney_u([1, 2, 2], [2, 3])
        # pairs a>b: none; ties: (2,2) twice -> U = 1
        assert u == 1.0

    def test_ties_use_the_normal_approximation_even_when_small(self) -> None:
        u, p = mann_whitney_u([2, 3, 3], [1, 1, 2])
        # ranks: 1,1 -> 1.5; 2,2 -> 3.5; 3,3 -> 5.5; R_a = 3.5 + 11 = 14.5, U = 14.5 - 6 = 8.5
        # var = 9/12 * (7 - 3*6/30) = 4.8, z = (8.5 - 4.5 - 0.5)/sqrt(4.8)
        assert u == 8.5
        assert p == pytest.approx(math.erfc(3.5 / math.sqrt(4.8) / math.sqrt(2)) / 2)

    def test_all_equal_gives_no_evidence(self) -> None:
        assert mann_whitney_u([1, 1, 1], [1, 1]) == (3.0, 1.0)

    def test_exact_refuses_ties(self) -> None:
        with pytest.raises(ValueError, match="assumes no ties"):
            mann_whitney_u([1, 2], [2, 3], method="exact")

    def test_refuses_empty_and_nan(self) -> None:
        with pytest.raises(ValueError, match="both samples need values, got 0 and 2"):
            mann_whitney_u([], [1, 2])
        with pytest.raises(ValueError, match="NaN"):
            mann_whitney_u([1, math.nan], [1, 2])

    def test_infinities_rank_like_numbers(self) -> None:
        assert mann_whitney_u([math.inf, 5, 6], [1, 2, -math.inf]) == (9.0, 0.05)

    def test_the_two_tails_add_up_with_the_probability_of_equality(self) -> None:
        a, b = [1.0, 4.0, 6.0, 8.0], [2.0, 3.0, 5.0, 7.0]
        u, p_greater = mann_whitney_u(a, b)
        u_other, p_other = mann_whitney_u(b, a)
        assert u + u_other == 16
        # P(U' >= u) + P(U' <= u) = 1 + P(U' = u); by enumeration P(U' = 9) = 7/70
        assert p_greater + p_other == pytest.approx(1 + 7 / 70)


STABLE = [100.0, 102.0, 98.0, 101.0, 99.0, 103.0, 97.0, 100.5, 99.5, 101.5]


class TestCompare:
    def test_clearly_worse(self) -> None:
        canary = [x + 50 for x in STABLE]
        result = compare(canary, STABLE)
        assert result.verdict == "Worse"
        assert result.u == 100.0
        assert result.p_value is not None and result.p_value < 0.001
        assert (result.canary_median, result.stable_median) == (150.25, 100.25)
        assert result.message == (
            "canary is worse than stable (higher is worse): median 150 vs 100, p=9.13e-05 < 0.05"
            " (one-sided Mann-Whitney U=100, 10 canary and 10 stable samples)"
        )

    def test_same_is_not_worse(self) -> None:
        result = compare(list(reversed(STABLE)), STABLE)
        assert result.verdict == "NotWorse"
        assert result.p_value is not None and result.p_value > 0.5
        assert result.message.startswith("canary is not worse than stable (higher is worse)")
        assert "p=0.515 >= 0.05" in result.message

    def test_better_is_not_worse(self) -> None:
        assert compare([x - 50 for x in STABLE], STABLE).verdict == "NotWorse"

    def test_lower_is_worse(self) -> None:
        # success rate: a canary that succeeds less is worse
        stable = [0.99, 0.995, 0.98, 0.99, 0.985, 0.99]
        canary = [0.90, 0.91, 0.89, 0.92, 0.90, 0.88]
        result = compare(canary, stable, higher_is_worse=False)
        assert result.verdict == "Worse"
        assert result.u == 36.0  # every pair has the canary lower
        assert "(lower is worse)" in result.message
        assert compare(canary, stable, higher_is_worse=True).verdict == "NotWorse"

    def test_confidence(self) -> None:
        # a mild shift: p is between 0.01 and 0.05
        canary = [1, 3, 5, 7, 9, 11, 12, 13]
        stable = [0, 0.5, 2, 2.5, 4, 4.5, 6, 8]
        p = mann_whitney_u(canary, stable).p_value
        assert p == pytest.approx(321 / 12870)  # exact: 8 each, no ties; C(16, 8) = 12870
        assert compare(canary, stable, confidence=0.95).verdict == "Worse"
        assert compare(canary, stable, confidence=0.99).verdict == "NotWorse"

    def test_too_few_samples_is_inconclusive(self) -> None:
        result = compare([1, 2, 3, 4], STABLE)
        assert result.verdict == "Inconclusive"
        assert (result.p_value, result.u) == (None, None)
        assert result.canary_median == 2.5
        assert result.message == (
            "not enough samples to compare: 4 canary and 10 stable samples, need at least 5 each"
        )
        assert compare([], []).canary_median is None
        assert compare(STABLE, STABLE, min_samples=11).verdict == "Inconclusive"

    def test_nan_samples_are_dropped_and_counted(self) -> None:
        canary = [x + 50 for x in STABLE] + [math.nan, math.nan]
        result = compare(canary, [*STABLE, math.nan])
        assert result.verdict == "Worse"
        assert result.message.endswith("; dropped 3 NaN samples (2 canary, 1 stable)")
        one = compare([*STABLE, math.nan], STABLE)
        assert one.message.endswith("; dropped 1 NaN sample (1 canary, 0 stable)")

    def test_nan_samples_can_make_it_inconclusive(self) -> None:
        result = compare([1, 2, 3, 4, math.nan], STABLE)
        assert result.verdict == "Inconclusive"
        assert "4 canary and 10 stable samples" in result.message
        assert "dropped 1 NaN sample (1 canary, 0 stable)" in result.message

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"confidence": 1.0}, "confidence must be between 0 and 1, not 1.0"),
            ({"confidence": 0}, "confidence must be between 0 and 1"),
            ({"min_samples": 0}, "min_samples must be at least 1, not 0"),
        ],
    )
    def test_invalid_arguments(self, kwargs: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            compare(STABLE, STABLE, **kwargs)  # type: ignore[arg-type]
