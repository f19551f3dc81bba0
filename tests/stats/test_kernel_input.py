"""Bad input to the kernels: one validation path, clear errors, bounded time (issue 16)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest

from mlchecks import stats
from mlchecks._validate import as_array, as_labels, raw_labels
from mlchecks.exceptions import InvalidInput
from mlchecks.stats import intervals, paired, trend
from mlchecks.stats.metrics import accuracy, mse, roc_auc


class TestOneGate:
    @pytest.mark.parametrize(
        ("value", "what"),
        [
            (np.array(["9", "10"]), "strings"),
            (np.array([b"1", b"0"]), "bytes"),
            (np.array([0.2 + 1j, 0.9]), "complex numbers"),
            (np.array(["2024-01-01"], dtype="datetime64[D]"), "datetimes"),
            (np.array([1, 2], dtype="timedelta64[s]"), "timedeltas"),
            (np.array([0.1, None], dtype=object), "Python objects"),
        ],
    )
    def test_non_numbers_rejected_naming_the_argument(self, value: Any, what: str) -> None:
        """Strings, complex numbers, datetimes and objects are never converted to numbers."""
        with pytest.raises(InvalidInput, match=f"'scores' must be numeric .*{what}"):
            as_array(value, "scores")

    def test_empty_trailing_dimension_rejected(self) -> None:
        """An (n, 0) array is an error naming the argument."""
        with pytest.raises(InvalidInput, match="'y_pred' must have at least 1 column"):
            as_array(np.zeros((5, 0)), "y_pred")

    def test_ragged_rejected(self) -> None:
        """A ragged nested list is an error naming the argument, not numpy's ValueError."""
        with pytest.raises(InvalidInput, match="'codes' must be array-like"):
            stats.sliced_sum([[0], [0, 1]], 2)

    def test_out_of_range_label_named_with_its_index(self) -> None:
        """The first label outside the classes is named with its index."""
        with pytest.raises(InvalidInput, match=r"\[0, 3\).*: 7 at index 2 is outside"):
            as_labels([0, 1, 7], n_classes=3)

    def test_huge_whole_floats_are_not_cast(self) -> None:
        """Whole floats beyond int64 are rejected instead of wrapping around."""
        with pytest.raises(InvalidInput, match="'labels' must be integer class indices"):
            as_labels([0.0, 1e300])

    def test_object_labels_of_numbers_become_numbers(self) -> None:
        """An object array of plain numbers reads as numbers; None is a missing label."""
        assert "i" == raw_labels(np.array([0, 1], dtype=object)).dtype.kind
        with pytest.raises(InvalidInput, match="'labels' must be hashable class names"):
            raw_labels(np.array(["a", None], dtype=object))


class TestSilentVerdicts:
    def test_string_scores_rejected_not_sorted_as_text(self) -> None:
        """roc_auc of string scores raised nothing and compared them as text; now an error."""
        with pytest.raises(InvalidInput, match="'scores' must be numeric"):
            stats.roc_auc_midrank([0, 0, 1, 1], np.array(["9", "10", "2", "3"]))
        with pytest.raises(InvalidInput, match="'y_pred' must be numeric"):
            roc_auc([0, 0, 1, 1], np.array(["9", "10", "2", "3"]))

    def test_complex_predictions_rejected(self) -> None:
        """Complex predictions are rejected rather than losing their imaginary part."""
        with pytest.raises(InvalidInput, match="'y_pred' must be numeric .*complex"):
            mse([0.5, 1.0], np.array([0.5 + 2j, 1.0]))

    def test_labels_outside_the_probability_columns_rejected(self) -> None:
        """accuracy of labels 5 and 7 against 2 probability columns is an error, not 0.5."""
        probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.1, 0.9]])
        with pytest.raises(InvalidInput, match=r"'y_true' .*\[0, 2\).*5 at index 2"):
            accuracy([0, 1, 5, 7], probs)
        with pytest.raises(InvalidInput, match="'y_true'"):
            stats.metric_estimate("accuracy", [0, 1, 5, 7], probs)

    @pytest.mark.parametrize("kernel", [stats.js_divergence, stats.psi])
    def test_all_zero_histogram_rejected(self, kernel: Any) -> None:
        """js_divergence([0, 0, 0], [10, 20, 30]) was 0.0: an empty histogram is an error."""
        with pytest.raises(InvalidInput, match="'counts_a' must hold at least one count"):
            kernel([0, 0, 0], [10, 20, 30])
        with pytest.raises(InvalidInput, match="'counts_b' must be non-negative .* -1"):
            kernel([1, 2, 3], [1, -1, 3])

    def test_huge_regression_values_rejected(self) -> None:
        """Values whose squared errors overflow float64 are an error, not inf with a warning."""
        with pytest.raises(InvalidInput, match="'y_pred' must be at most 1e\\+150"):
            mse([1.0, 2.0], [1e300, 2.0])

    def test_clopper_pearson_checks_its_counts(self) -> None:
        """Counts above n or of strings are errors, not intervals of garbage."""
        with pytest.raises(InvalidInput, match="0 <= successes <= n"):
            intervals.clopper_pearson(np.array([11]), np.array([10]))
        with pytest.raises(InvalidInput, match="'successes' must be numeric"):
            intervals.clopper_pearson(np.array(["1"]), np.array([10]))

    def test_timedelta_is_not_an_integer(self) -> None:
        """A timedelta passed as a count is rejected with a clear message, not a TypeError."""
        with pytest.raises(InvalidInput, match="'successes' must be an integer"):
            stats.wilson_interval(np.timedelta64(3, "s"), 10)


class TestObscureErrors:
    def test_no_columns_in_compare_predictions(self) -> None:
        """(n, 0) predictions raised ZeroDivisionError in compare.py; now InvalidInput."""
        with pytest.raises(InvalidInput, match="'a' must have at least 1 column"):
            stats.compare_predictions(np.zeros((5, 0)), np.zeros((5, 0)))

    def test_no_columns_in_a_metric(self) -> None:
        """(n, 0) predictions gave numpy's argmax message; now InvalidInput naming y_pred."""
        with pytest.raises(InvalidInput, match="'y_pred' must have at least 1 column"):
            accuracy([0, 1], np.zeros((2, 0)))

    def test_huge_n_slices_rejected_before_allocating(self) -> None:
        """n_slices=10**12 tried to allocate 7 TiB; now a clear error naming the bound."""
        with pytest.raises(InvalidInput, match="'n_slices' must be at most 65,536"):
            stats.sliced_sum(np.array([0, 1]), 10**12)
        with pytest.raises(InvalidInput, match="'n_slices' must be an integer"):
            stats.sliced_sum(np.array([0, 1]), 2.5)

    def test_many_empty_slices_still_allowed(self) -> None:
        """Up to 65,536 slices are fine whatever the number of examples (empty slices)."""
        assert 1000 == len(stats.sliced_sum(np.array([0, 999]), 1000))

    @pytest.mark.parametrize("n_blocks", [200, 10**18])
    def test_reachability_in_bounded_time(self, n_blocks: int) -> None:
        """n_blocks=200 overflowed and 10**18 never returned (math.factorial); now bounded."""
        start = time.perf_counter()
        if n_blocks <= trend.MAX_BLOCKS:
            trend.check_reachable(n_blocks, 0.01)
        else:
            with pytest.raises(InvalidInput, match="'n_blocks' must be at most 200"):
                trend.check_reachable(n_blocks, 0.01)
        assert time.perf_counter() - start < 0.5

    def test_min_blocks_at_a_tiny_alpha(self) -> None:
        """min_blocks works down to the smallest float alpha (no float overflow)."""
        assert 5 == trend.min_blocks(0.05)
        assert 179 == trend.min_blocks(5e-324)

    def test_kendall_beyond_170_blocks_is_finite(self) -> None:
        """The exact Kendall p-value of 200 blocks was NaN (200! overflows); now a p-value."""
        import scipy.stats

        means = np.random.default_rng(0).random(200)
        expected = scipy.stats.kendalltau(np.arange(200), means, alternative="less").pvalue
        assert float(expected) == pytest.approx(trend.kendall_pvalue_less(means), abs=2e-3)

    def test_standard_errors_of_huge_values_do_not_overflow(self) -> None:
        """The standard error of values near 1e300 is finite, computed without a warning."""
        assert math.isfinite(paired.mean_standard_error(np.array([1e300, -1e300])))
