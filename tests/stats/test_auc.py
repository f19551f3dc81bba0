from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.auc import delong, delong_ci, roc_auc_midrank


def structural_components(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's V10 (per positive) and V01 (per negative) by O(m * n) pairwise comparison."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def brute_force_delong(
    y: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[float, float, float, float]:
    """AUCs, and the variance of their difference, from DeLong's 1988 covariance matrix."""
    v10 = np.vstack([structural_components(y, a)[0], structural_components(y, b)[0]])
    v01 = np.vstack([structural_components(y, a)[1], structural_components(y, b)[1]])
    cov = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    contrast = np.array([1.0, -1.0])
    return v10[0].mean(), v10[1].mean(), float(contrast @ cov @ contrast), float(cov[0, 0])


def tied_data(seed: int, n: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated score vectors rounded to make many ties."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.round(y + rng.normal(0, 1.0, n), 1)
    b = np.round(0.5 * a + rng.normal(0, 0.8, n), 0)
    return y, a, b


class TestRocAucMidrank:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_matches_pairwise_comparison_with_ties(self, seed: int) -> None:
        """AUC equals the mean over positive-negative pairs of 1{>} + 0.5 * 1{=}."""
        y, _, b = tied_data(seed)
        assert structural_components(y, b)[0].mean() == pytest.approx(roc_auc_midrank(y, b))

    def test_matches_scipy_mann_whitney(self) -> None:
        """AUC is U / (m * n) from scipy.stats.mannwhitneyu."""
        y, a, _ = tied_data(4)
        u = scipy.stats.mannwhitneyu(a[y == 1], a[y == 0]).statistic
        assert u / (np.sum(y == 1) * np.sum(y == 0)) == pytest.approx(roc_auc_midrank(y, a))

    def test_constant_scores_give_one_half(self) -> None:
        """All scores tied: every pair counts one half."""
        assert 0.5 == roc_auc_midrank([0, 1, 1, 0], [3.0, 3.0, 3.0, 3.0])

    def test_two_column_probabilities_use_column_one(self) -> None:
        """(n, 2) probabilities are scored by P(class 1)."""
        p1 = np.array([0.1, 0.8, 0.4, 0.3])
        probs = np.column_stack([1 - p1, p1])
        assert roc_auc_midrank([0, 1, 1, 0], p1) == roc_auc_midrank([0, 1, 1, 0], probs)

    def test_a_single_class_is_rejected(self) -> None:
        """AUC needs both classes; the message gives the counts."""
        with pytest.raises(InvalidInput, match="got 3 positives and 0 negatives"):
            roc_auc_midrank([1, 1, 1], [0.1, 0.2, 0.3])

    def test_nan_scores_are_rejected(self) -> None:
        """NaN scores are an error naming the argument."""
        with pytest.raises(InvalidInput, match="'scores' must be finite"):
            roc_auc_midrank([0, 1], [0.1, float("nan")])

    def test_labels_other_than_zero_and_one_are_rejected(self) -> None:
        """The AUC here is binary."""
        with pytest.raises(InvalidInput, match="'y_true' must be class indices in \\[0, 2\\)"):
            roc_auc_midrank([0, 2], [0.1, 0.2])

    def test_more_than_two_columns_are_rejected(self) -> None:
        """Multiclass probabilities are not binary scores."""
        with pytest.raises(InvalidInput, match="got 3 columns"):
            roc_auc_midrank([0, 1], np.full((2, 3), 1 / 3))


class TestDeLong:
    @pytest.mark.parametrize("seed", [0, 1, 2, 3])
    def test_matches_the_brute_force_covariance(self, seed: int) -> None:
        """AUCs and the difference's variance equal the O(m*n) structural-component form."""
        y, a, b = tied_data(seed)
        auc_a, auc_b, variance, _ = brute_force_delong(y, a, b)
        result = delong(y, a, b, confidence=0.9)
        assert (auc_a, auc_b) == pytest.approx((result.auc_a, result.auc_b))
        assert math.sqrt(variance) == pytest.approx(result.standard_error, rel=1e-10)
        z = (auc_a - auc_b) / math.sqrt(variance)
        assert 2 * scipy.stats.norm.sf(abs(z)) == pytest.approx(result.pvalue, rel=1e-9)
        half = scipy.stats.norm.ppf(0.95) * math.sqrt(variance)
        assert (auc_a - auc_b - half, auc_a - auc_b + half) == pytest.approx(result.ci)

    def test_identical_scores_have_zero_variance(self) -> None:
        """The same model twice: difference 0, se 0, p = 1."""
        y, a, _ = tied_data(0)
        result = delong(y, a, a)
        assert (0.0, 0.0, 0.0, 1.0) == (
            result.difference,
            result.standard_error,
            result.statistic,
            result.pvalue,
        )

    def test_float32_scores_are_ranked_in_float64(self) -> None:
        """float32 inputs give the same answer as their float64 copies."""
        y, a, b = tied_data(1)
        assert delong(y, a, b) == delong(y, a.astype(np.float32), b.astype(np.float32))

    def test_fewer_than_two_per_class_is_rejected(self) -> None:
        """DeLong's variance needs at least two positives and two negatives."""
        with pytest.raises(InvalidInput, match="at least 2 positive and 2 negative"):
            delong([0, 0, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])

    def test_different_lengths_are_rejected(self) -> None:
        """Both models score the same examples."""
        with pytest.raises(InvalidInput, match="'scores_a' and 'scores_b' must have the same"):
            delong([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3])

    def test_nan_is_rejected(self) -> None:
        """NaN scores are an error naming the argument."""
        with pytest.raises(InvalidInput, match="'scores_b' must be finite"):
            delong([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, float("nan")])


class TestDeLongCI:
    @pytest.mark.parametrize("seed", [0, 5])
    def test_matches_the_brute_force_variance(self, seed: int) -> None:
        """The interval is auc ± z * sqrt(var(V10)/m + var(V01)/n) from pairwise components."""
        y, a, b = tied_data(seed)
        auc, _, _, variance = brute_force_delong(y, a, b)
        half = scipy.stats.norm.ppf(0.975) * math.sqrt(variance)
        assert (auc - half, auc + half) == pytest.approx(delong_ci(y, a))

    def test_is_clipped_to_the_unit_interval(self) -> None:
        """A perfect separator has AUC 1 and zero variance: the interval is [1, 1]."""
        assert (1.0, 1.0) == delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])

    def test_a_single_class_is_rejected(self) -> None:
        """One class: no AUC at all."""
        with pytest.raises(InvalidInput, match="got 0 positives and 4 negatives"):
            delong_ci([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])


def rankdata_components(
    scores: np.ndarray, positive: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The components from three scipy rankdata calls (the implementation before 0.3)."""
    m, n = int(positive.sum()), int((~positive).sum())
    pos, neg = scores[positive], scores[~positive]
    overall = scipy.stats.rankdata(np.concatenate([pos, neg]))
    v10 = (overall[:m] - scipy.stats.rankdata(pos)) / n
    v01 = 1.0 - (overall[m:] - scipy.stats.rankdata(neg)) / m
    return float(np.clip(v10.mean(), 0.0, 1.0)), v10, v01


class TestComponents:
    """One sort gives the rankdata components' sums exactly."""

    @pytest.mark.parametrize("kind", ["distinct", "integers", "rounded", "signed zeros"])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_components_equal_rankdata_bit_for_bit(self, kind: str, dtype: type) -> None:
        """U equals the sum of rankdata's V10 numerators exactly, the AUC is U / (m n) as
        `metrics.roc_auc` gives it, and the variance equals the components' to rounding."""
        from mlchecks.stats._auc_tables import rank_tables
        from mlchecks.stats.auc import table_auc
        from mlchecks.stats.metrics import roc_auc

        rng = np.random.default_rng(len(kind))
        for size in (2, 3, 17, 500):
            scores = {
                "distinct": rng.random(size),
                "integers": rng.integers(0, 4, size).astype(float),
                "rounded": np.round(rng.normal(size=size), 1),
                "signed zeros": np.where(rng.random(size) < 0.5, -0.0, 0.0),
            }[kind].astype(dtype)
            positive = np.arange(size) % 3 == 0
            m, n = int(positive.sum()), size - int(positive.sum())
            _, v10, v01 = rankdata_components(scores.astype(np.float64), positive)
            table = rank_tables(positive.astype(int), scores, None, [(None, 1)])[0]  # type: ignore[index]
            assert round(2 * (v10 * n).sum()) == table.u_a[0]
            assert roc_auc(positive.astype(int), scores) == table_auc(table)[0]
            if m > 1 and n > 1:
                expected = np.var(v10, ddof=1), np.var(v01, ddof=1)
                got = (
                    table.positive[2][0] / (4.0 * n * n) / (m - 1),
                    table.negative[2][0] / (4.0 * m * m) / (n - 1),
                )
                assert expected == pytest.approx(got, rel=1e-12, abs=1e-18)

    def test_float32_scores_are_ranked_as_their_float64_values(self) -> None:
        """delong on float32 scores equals delong on the same scores as float64."""
        y, a, b = tied_data(3, n=400)
        low = delong(y, a.astype(np.float32), b.astype(np.float32))
        high = delong(
            y, a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
        )
        assert low == high
