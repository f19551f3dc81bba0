"""Tests for mlchecks.checks._series: bounded series for report figures."""

from __future__ import annotations

import numpy as np
import pytest

from mlchecks.checks._series import (
    MAX_POINTS,
    even_indices,
    priority_indices,
    quantile_sample,
    significant,
)


class TestEvenIndices:
    def test_short_series_is_kept_whole(self) -> None:
        """A series no longer than the limit keeps every index."""
        assert list(range(7)) == even_indices(7, limit=7).tolist()

    @pytest.mark.parametrize("n", [501, 1000, 12_345])
    def test_long_series_is_bounded_and_keeps_both_ends(self, n: int) -> None:
        """At most MAX_POINTS sorted, distinct indices, the first and last included."""
        idx = even_indices(n)
        assert len(idx) <= MAX_POINTS
        assert (0, n - 1) == (idx[0], idx[-1])
        assert np.all(np.diff(idx) > 0)

    def test_kept_indices_survive(self) -> None:
        """Marked steps (a divergence) are always among the indices."""
        idx = even_indices(10_000, keep=[4321, 17]).tolist()
        assert {4321, 17} <= set(idx)
        assert len(idx) <= MAX_POINTS

    def test_kept_indices_outside_the_range_are_ignored(self) -> None:
        """A kept index beyond the series does not appear."""
        assert 9999 not in even_indices(1000, limit=10, keep=[9999, -1]).tolist()

    def test_many_kept_indices_are_thinned_to_the_bound(self) -> None:
        """More kept indices than the limit allows are thinned, never overflowing it."""
        idx = even_indices(100_000, limit=50, keep=range(0, 100_000, 7))
        assert len(idx) <= 50

    def test_empty_series(self) -> None:
        """No steps give no indices."""
        assert [] == even_indices(0).tolist()


class TestPriorityIndices:
    def test_important_entries_are_kept(self) -> None:
        """Failures in a long run of successes all survive when they fit in half the limit."""
        flags = np.zeros(5000, dtype=bool)
        flags[[10, 2500, 4999]] = True
        idx = priority_indices(flags, limit=100).tolist()
        assert {10, 2500, 4999} <= set(idx)
        assert len(idx) <= 100

    def test_many_important_entries_take_at_most_half(self) -> None:
        """When most entries are important, the others still get room."""
        flags = np.ones(1000, dtype=bool)
        flags[::10] = False
        idx = priority_indices(flags, limit=40)
        assert len(idx) <= 40
        assert (~flags[idx]).any()

    def test_short_series_is_kept_whole(self) -> None:
        """Nothing is dropped below the limit."""
        assert [0, 1, 2] == priority_indices([False, True, False], limit=5).tolist()


class TestQuantileSample:
    def test_small_sample_is_sorted(self) -> None:
        """Up to the limit, the sample itself comes back sorted."""
        assert [1.0, 2.0, 3.0] == quantile_sample([3.0, 1.0, 2.0])

    def test_large_sample_keeps_extremes_and_the_median(self) -> None:
        """Quantiles of a large sample keep its minimum, median and maximum."""
        values = np.random.default_rng(0).lognormal(size=10_001)
        sample = quantile_sample(values, limit=201)
        assert 201 == len(sample)
        assert sample[0] == pytest.approx(values.min(), rel=1e-3)
        assert sample[100] == pytest.approx(np.median(values), rel=1e-3)
        assert sample[-1] == pytest.approx(values.max(), rel=1e-3)

    def test_empty_sample(self) -> None:
        """No latencies give an empty list."""
        assert [] == quantile_sample([])


class TestSignificant:
    def test_rounds_to_significant_digits(self) -> None:
        """Values keep four significant digits by default, infinities unchanged."""
        assert [0.001235, 98770.0, float("inf")] == significant([0.00123456, 98765.4, np.inf])

    def test_returns_python_floats(self) -> None:
        """numpy scalars become Python floats."""
        assert all(type(v) is float for v in significant(np.array([1.5, 2.5])))
