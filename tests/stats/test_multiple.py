from __future__ import annotations

import numpy as np
import pytest

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.multiple import adjust, benjamini_hochberg, holm


def holm_by_definition(p: np.ndarray) -> np.ndarray:
    """Holm's adjusted p-values straight from the definition, with explicit loops."""
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    adjusted = np.empty(m)
    for rank, i in enumerate(order):
        adjusted[i] = max(min(1.0, (m - j) * p[order[j]]) for j in range(rank + 1))
    return adjusted


def holm_rejections(p: np.ndarray, alpha: float) -> set[int]:
    """Holm's step-down procedure: reject in ascending order while p_(k) <= alpha / (m - k)."""
    order = np.argsort(p, kind="stable")
    rejected: set[int] = set()
    for k, i in enumerate(order):
        if p[i] > alpha / (len(p) - k):
            break
        rejected.add(int(i))
    return rejected


def bh_rejections(p: np.ndarray, alpha: float) -> set[int]:
    """Benjamini-Hochberg step-up: reject the k smallest for the largest k with p_(k) <= k a / m."""
    order = np.argsort(p, kind="stable")
    m = len(p)
    passing = [k for k in range(1, m + 1) if p[order[k - 1]] <= k * alpha / m]
    top = max(passing, default=0)
    return {int(i) for i in order[:top]}


pvalue_sets = [
    np.array([0.01, 0.04, 0.03, 0.005]),
    np.array([0.02, 0.02, 0.02, 0.5, 0.9]),  # ties
    np.array([0.3]),  # m = 1
    np.array([0.0, 1.0, 0.5, 0.0]),  # the extremes
    np.random.default_rng(3).random(25) ** 3,
]


class TestHolm:
    @pytest.mark.parametrize("p", pvalue_sets)
    def test_matches_the_definition(self, p: np.ndarray) -> None:
        """Adjusted p-values equal the brute-force max over j <= i of min(1, (m-j+1) p_(j))."""
        np.testing.assert_allclose(holm_by_definition(p), holm(p), rtol=0, atol=1e-15)

    @pytest.mark.parametrize("p", pvalue_sets)
    @pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.2])
    def test_thresholding_is_the_step_down_procedure(self, p: np.ndarray, alpha: float) -> None:
        """Rejecting where the adjusted p-value <= alpha is Holm's procedure at alpha."""
        assert holm_rejections(p, alpha) == set(np.flatnonzero(holm(p) <= alpha).tolist())

    def test_hand_computed_example(self) -> None:
        """Sorted 0.005, 0.01, 0.03, 0.04 scale by 4, 3, 2, 1 and are made monotone."""
        expected = [0.03, 0.06, 0.06, 0.02]
        np.testing.assert_allclose(expected, holm([0.01, 0.04, 0.03, 0.005]))

    def test_result_is_clipped_and_never_below_the_raw_pvalue(self) -> None:
        """Adjusted values lie in [p, 1]."""
        p = np.random.default_rng(0).random(50)
        adjusted = holm(p)
        assert np.all(adjusted >= p)
        assert 1.0 == adjusted.max()

    def test_empty_input_gives_empty_output(self) -> None:
        """No p-values, nothing to adjust."""
        assert (0,) == holm([]).shape

    def test_nan_is_rejected(self) -> None:
        """A NaN p-value is an error naming the argument."""
        with pytest.raises(InvalidInput, match="'pvalues' must be finite"):
            holm([0.1, float("nan")])

    def test_out_of_range_is_rejected(self) -> None:
        """A p-value above 1 is an error naming the range."""
        with pytest.raises(InvalidInput, match=r"'pvalues' must lie in \[0, 1\]"):
            holm([0.1, 1.5])

    def test_two_dimensional_input_is_rejected(self) -> None:
        """P-values must be a vector."""
        with pytest.raises(InvalidInput, match="'pvalues' must be 1-D"):
            holm([[0.1, 0.2]])


class TestBenjaminiHochberg:
    def test_hand_computed_example(self) -> None:
        """Sorted 0.005, 0.01, 0.03, 0.04 give 4p/j = 0.02, 0.02, 0.04, 0.04 (already monotone)."""
        expected = [0.02, 0.04, 0.04, 0.02]
        np.testing.assert_allclose(expected, benjamini_hochberg([0.01, 0.04, 0.03, 0.005]))

    def test_hand_computed_example_needing_the_running_minimum(self) -> None:
        """A larger p later in the order lowers earlier adjusted values: min over j >= i."""
        # sorted 0.01, 0.02, 0.025 -> 3p/j = 0.03, 0.03, 0.025 -> running min from the top.
        expected = [0.025, 0.025, 0.025]
        np.testing.assert_allclose(expected, benjamini_hochberg([0.01, 0.02, 0.025]))

    @pytest.mark.parametrize("p", pvalue_sets)
    @pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.2])
    def test_thresholding_is_the_step_up_procedure(self, p: np.ndarray, alpha: float) -> None:
        """Rejecting where the adjusted p-value <= alpha is the BH procedure at alpha."""
        adjusted = benjamini_hochberg(p)
        assert bh_rejections(p, alpha) == set(np.flatnonzero(adjusted <= alpha + 1e-15).tolist())

    def test_empty_input_gives_empty_output(self) -> None:
        """No p-values, nothing to adjust."""
        assert (0,) == benjamini_hochberg([]).shape

    def test_nan_is_rejected(self) -> None:
        """A NaN p-value is an error naming the argument."""
        with pytest.raises(InvalidInput, match="'pvalues' must be finite"):
            benjamini_hochberg([float("nan")])


class TestAdjust:
    def test_dispatches_by_name(self) -> None:
        """'holm', 'bh' and 'none' pick the procedure."""
        p = [0.01, 0.04, 0.03]
        np.testing.assert_array_equal(holm(p), adjust(p, "holm"))
        np.testing.assert_array_equal(benjamini_hochberg(p), adjust(p, "bh"))
        np.testing.assert_array_equal(np.array(p), adjust(p, "none"))

    def test_unknown_method_is_rejected(self) -> None:
        """The error lists the known methods."""
        with pytest.raises(InvalidInput, match="'method' must be one of 'holm', 'bh', 'none'"):
            adjust([0.1], "bonferroni")  # type: ignore[arg-type]
