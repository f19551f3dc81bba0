from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from mlchecks.exceptions import InvalidInput
from mlchecks.stats import _auc_tables
from mlchecks.stats._auc_tables import rank_tables
from mlchecks.stats.auc import table_auc, table_delong, table_delong_ci
from mlchecks.stats.metrics import roc_auc


def rankdata_below(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per example: negatives (positives) below it, ties one half, from scipy's midranks."""
    out = np.empty(len(scores))
    overall = scipy.stats.rankdata(scores)
    out[positive] = overall[positive] - scipy.stats.rankdata(scores[positive])
    out[~positive] = overall[~positive] - scipy.stats.rankdata(scores[~positive])
    return out


def reference_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """The implementation before 0.3: AUCs and the standard error from rankdata components."""
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    below_a, below_b = rankdata_below(a, positive), rankdata_below(b, positive)
    v10 = (below_a - below_b)[positive] / n
    v01 = -(below_a - below_b)[~positive] / m
    variance = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return roc_auc(y, a), roc_auc(y, b), math.sqrt(variance)


def data(kind: str, n: int, seed: int, dtype: type = np.float64) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a: np.ndarray = {
        "distinct": rng.random(n) + y * 0.3,
        "integers": rng.integers(0, 4, n) + y * 1.0,
        "rounded": np.round(y + rng.normal(size=n), 1),
        "signed zeros": np.where(rng.random(n) < 0.5, -0.0, 0.0) + y * (rng.random(n) < 0.3),
    }[kind].astype(dtype)
    b: np.ndarray = np.round(0.5 * a + rng.normal(0, 0.8, n), 0).astype(dtype)
    slices = rng.integers(0, 7, n)
    slices[slices == 6] = 5  # slice 6 is empty
    slices[:3] = 6
    y[:3] = 1  # slice 6: three positives, no negative
    return y, a, b, slices


KINDS = ["distinct", "integers", "rounded", "signed zeros"]


class TestRankTables:
    """Midrank sums per slice from one sort per model equal rankdata's, slice by slice."""

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("block", [5, 1 << 16])
    def test_every_slice_matches_rankdata(
        self, kind: str, dtype: type, block: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """U is exact and the variance equals the rankdata components' to rounding, also
        when ties run across blocks (block=5) and a slice has one class or one row."""
        monkeypatch.setattr(_auc_tables, "_BLOCK", block)
        y, a, b, slices = data(kind, 400, len(kind), dtype)
        overall, sliced = rank_tables(y, a, b, [(None, 1), (slices, 8)])  # type: ignore[misc]
        for code in range(8):
            rows = np.flatnonzero(slices == code)
            m = int(y[rows].sum())
            assert (m, len(rows) - m) == (sliced.positive[0][code], sliced.negative[0][code])
            if min(m, len(rows) - m) < 2:
                with pytest.raises(InvalidInput, match=f"got {m} positives"):
                    table_delong(sliced, code)
                continue
            got = table_delong(sliced, code)
            auc_a, auc_b, se = reference_delong(y[rows], a[rows], b[rows])
            assert (auc_a, auc_b) == (got.auc_a, got.auc_b)  # bit for bit
            assert se == pytest.approx(got.standard_error, rel=1e-12, abs=1e-15)
        got = table_delong(overall)
        auc_a, auc_b, se = reference_delong(y, a, b)
        assert (auc_a, auc_b) == (got.auc_a, got.auc_b)
        assert se == pytest.approx(got.standard_error, rel=1e-12)

    def test_twice_u_is_the_exact_rank_sum(self) -> None:
        """2 U equals twice the sum of the positives' midrank differences, as integers."""
        y, a, _, slices = data("integers", 1000, 3)
        table = rank_tables(y, a, None, [(slices, 7)])[0]  # type: ignore[index]
        for code in range(7):
            rows = slices == code
            below = rankdata_below(a[rows], y[rows] == 1)
            assert round(2 * below[y[rows] == 1].sum()) == table.u_a[code]

    def test_float32_and_their_float64_copies_give_identical_tables(self) -> None:
        """The tables hold exact integers, read in row order: the sort path does not matter."""
        y, a, b, slices = data("rounded", 3000, 9, np.float32)
        low = rank_tables(y, a, b, [(None, 1), (slices, 7)])
        high = rank_tables(y, a.astype(np.float64), b.astype(np.float64), [(None, 1), (slices, 7)])
        assert low is not None
        assert high is not None
        for one, two in zip(low, high, strict=True):
            np.testing.assert_array_equal(one.u_a, two.u_a)
            for x, z in zip(one.positive + one.negative, two.positive + two.negative, strict=True):
                np.testing.assert_array_equal(x, z)

    def test_strided_read_only_and_memmapped_scores(self, tmp_path: object) -> None:
        """Column 1 of (n, 2) probabilities, read-only and memory-mapped, needs no copy."""
        y, a, b, _slices = data("distinct", 500, 2, np.float32)
        path = f"{tmp_path}/probs.npy"
        np.save(path, np.column_stack([1 - a, a]))
        mapped = np.load(path, mmap_mode="r")
        frozen = np.column_stack([1 - b, b])
        frozen.setflags(write=False)
        got = table_delong(rank_tables(y, mapped[:, 1], frozen[:, 1], [(None, 1)])[0])  # type: ignore[index]
        assert got == table_delong(rank_tables(y, a.copy(), b.copy(), [(None, 1)])[0])  # type: ignore[index]

    def test_one_row_and_labels_outside_zero_one(self) -> None:
        """One example: counted, no variance; labels other than 0/1 take the general path."""
        table = rank_tables(np.array([1]), np.array([0.3]), None, [(None, 1)])
        assert table is not None
        assert (table[0].u_a[0], table[0].positive[0][0]) == (0, 1)
        assert rank_tables(np.array([0, 2]), np.array([0.1, 0.2]), None, [(None, 1)]) is None

    def test_one_model_interval_matches_the_components(self) -> None:
        """delong_ci from a one-model table: auc ± z * sqrt(var(V10)/m + var(V01)/n)."""
        y, a, _, _ = data("rounded", 300, 4)
        positive = y == 1
        m, n = int(positive.sum()), int((~positive).sum())
        below = rankdata_below(a, positive)
        variance = (
            np.var(below[positive] / n, ddof=1) / m + np.var(below[~positive] / m, ddof=1) / n
        )
        table = rank_tables(y, a, None, [(None, 1)])[0]  # type: ignore[index]
        auc = table_auc(table)[0]
        half = scipy.stats.norm.ppf(0.975) * math.sqrt(variance)
        assert auc == roc_auc(y, a)
        assert (auc - half, auc + half) == pytest.approx(table_delong_ci(table), rel=1e-12)


class TestMoments:
    def test_int64_kept_values_give_the_int32_moments(self) -> None:
        """Beyond 2**29 rows the values are int64 and the totals Python integers: same floats."""
        rng = np.random.default_rng(8)
        values = rng.integers(-(1 << 30), 1 << 30, 5_000)
        labels, codes = rng.integers(0, 2, 5_000), rng.integers(0, 3, 5_000)
        narrow = _auc_tables._moments(values.astype(np.int32), labels, codes, 3)
        wide = _auc_tables._moments(values.astype(np.int64), labels, codes, 3)
        for one, two in zip(narrow[0] + narrow[1], wide[0] + wide[1], strict=True):
            np.testing.assert_array_equal(one, two)
        for code in range(3):
            part = values[(labels == 1) & (codes == code)].astype(np.float64)
            expected = float(((part - part.mean()) ** 2).sum())
            assert expected == pytest.approx(narrow[0][2][code], rel=1e-12)

    def test_a_slice_alone_gives_the_same_floats(self) -> None:
        """Exact sums: a slice's DeLong result is the same taken alone or from the slicing."""
        y, a, b, slices = data("rounded", 2_000, 6)
        sliced = rank_tables(y, a, b, [(slices, 7)])[0]  # type: ignore[index]
        rows = slices == 2
        alone = rank_tables(y[rows], a[rows], b[rows], [(None, 1)])[0]  # type: ignore[index]
        assert table_delong(alone) == table_delong(sliced, 2)
