from __future__ import annotations

import itertools
import math
from typing import Any

import attrs
import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings

from mlchecks.exceptions import InvalidInput
from mlchecks.stats import _compare_kernel, _rank_correlation
from mlchecks.stats import compare as compare_module
from mlchecks.stats.compare import (
    Comparer,
    PredictionComparison,
    compare_predictions,
    first_mismatch,
    loss_divergence,
)


def brute_force(
    a: np.ndarray,
    b: np.ndarray,
    labels: np.ndarray | None,
    atol: float,
    rtol: float,
    top_k: int,
) -> dict[str, Any]:
    """The same statistics with full-size temporaries and a Python loop for the top k."""
    a2 = a.reshape(len(a), -1).astype(np.float64)
    b2 = b.reshape(len(b), -1).astype(np.float64)
    diff = np.abs(a2 - b2)
    row = diff.max(axis=1)
    if a.ndim == 2:
        la, lb = a.argmax(axis=1), b.argmax(axis=1)
    else:
        la, lb = a > 0.5, b > 0.5
    beyond = (diff > atol + rtol * np.maximum(np.abs(a2), np.abs(b2))).any(axis=1)
    ranked = sorted((-row[i], i) for i in range(len(a)) if row[i] > 0)[:top_k]
    out: dict[str, Any] = {
        "churn_count": int((la != lb).sum()),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "count_beyond_tolerance": int(beyond.sum()),
        "differing_count": int((row > 0).sum()),
        "top_indices": tuple(i for _, i in ranked),
        "top_diffs": tuple(-v for v, _ in ranked),
    }
    if labels is not None:
        out["correctness_churn_count"] = int(((la == labels) != (lb == labels)).sum())
    return out


@st.composite
def prediction_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Small (n, C) or (n,) pairs from a coarse grid, so ties and equal rows are common."""
    n = draw(st.integers(1, 30))
    c = draw(st.sampled_from([0, 2, 3]))
    shape = (n, c) if c else (n,)
    grid = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
    a = np.array(draw(st.lists(grid, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))))
    a = a.reshape(shape)
    change = np.array(draw(st.lists(st.booleans(), min_size=a.size, max_size=a.size)))
    other = np.array(draw(st.lists(grid, min_size=a.size, max_size=a.size))).reshape(shape)
    b = np.where(change.reshape(shape), other, a)
    labels = np.array(draw(st.lists(st.integers(0, max(c, 2) - 1), min_size=n, max_size=n)))
    return a, b, labels


class TestComparePredictions:
    @given(prediction_pairs(), st.integers(1, 7), st.sampled_from([0.0, 0.2]))
    @settings(max_examples=80, deadline=None)
    def test_matches_brute_force_for_any_chunk_size(
        self, pair: tuple[np.ndarray, np.ndarray, np.ndarray], chunk: int, rtol: float
    ) -> None:
        """Every statistic equals the full-size reference, whatever the chunk size."""
        a, b, labels = pair
        result = compare_predictions(
            a, b, labels=labels, atol=0.1, rtol=rtol, top_k=3, chunk_size=chunk
        )
        expected = brute_force(a, b, labels, 0.1, rtol, 3)
        got = attrs.asdict(result)
        for key, value in expected.items():
            assert value == pytest.approx(got[key]), key
        assert result.identical == (expected["differing_count"] == 0)

    def test_chunked_equals_unchunked_on_gpu_runs(self, gpu_arrays: dict[str, np.ndarray]) -> None:
        """A tiny chunk size gives the same result (sums up to rounding) on real runs."""
        a, b = gpu_arrays["gpu_nondet_seed0_a__probs"], gpu_arrays["gpu_nondet_seed0_b__probs"]
        y = gpu_arrays["y_test"]
        whole = attrs.asdict(compare_predictions(a, b, labels=y, atol=1e-6))
        chunked = attrs.asdict(compare_predictions(a, b, labels=y, atol=1e-6, chunk_size=37))
        assert whole.pop("mean_abs_diff") == pytest.approx(chunked.pop("mean_abs_diff"), rel=1e-9)
        assert whole == chunked

    def test_gpu_nondeterministic_runs(self, gpu_arrays: dict[str, np.ndarray]) -> None:
        """Recorded nondeterministic GPU runs churn on 15.65% of examples (7.18% correctness)."""
        a, b = gpu_arrays["gpu_nondet_seed0_a__probs"], gpu_arrays["gpu_nondet_seed0_b__probs"]
        result = compare_predictions(a, b, labels=gpu_arrays["y_test"], atol=1e-6)
        assert (1565, 718) == (result.churn_count, result.correctness_churn_count)
        assert 0.4297 == pytest.approx(result.max_abs_diff, abs=1e-4)
        assert 1.0 == result.fraction_beyond_tolerance
        assert (0, 2648) == (result.first_diff_index, result.top_indices[0])

    def test_gpu_deterministic_runs_identical(self, gpu_arrays: dict[str, np.ndarray]) -> None:
        """Deterministic runs give identical predictions: zero everywhere, correlation 1."""
        a, b = gpu_arrays["gpu_det_seed0_a__probs"], gpu_arrays["gpu_det_seed0_b__probs"]
        result = compare_predictions(a, b, labels=gpu_arrays["y_test"])
        assert result.identical
        assert (0, 0.0, (), None, 1.0) == (
            result.churn_count,
            result.max_abs_diff,
            result.top_indices,
            result.first_diff_index,
            result.rank_correlation,
        )

    def test_rank_correlation_is_spearman_of_top1(self) -> None:
        """For (n, C) input the correlation is scipy's Spearman of each row's maximum."""
        rng = np.random.default_rng(0)
        a = rng.dirichlet(np.ones(4), size=200)
        b = a + rng.normal(scale=0.05, size=a.shape)
        expected = scipy.stats.spearmanr(a.max(axis=1), b.max(axis=1)).statistic
        assert expected == pytest.approx(compare_predictions(a, b).rank_correlation)

    def test_rank_correlation_with_ties_1d(self) -> None:
        """Tied scores use midranks, as scipy's Spearman does."""
        a = np.array([0.1, 0.1, 0.3, 0.3, 0.9, 0.5])
        b = np.array([0.2, 0.1, 0.3, 0.4, 0.4, 0.6])
        expected = scipy.stats.spearmanr(a, b).statistic
        assert expected == pytest.approx(compare_predictions(a, b).rank_correlation)

    def test_rank_correlation_sampled_above_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Above RANK_SAMPLE examples the correlation uses every k-th example."""
        monkeypatch.setattr(compare_module, "RANK_SAMPLE", 10)
        rng = np.random.default_rng(1)
        a, b = rng.random(35), rng.random(35)
        expected = scipy.stats.spearmanr(a[::4], b[::4]).statistic
        assert expected == pytest.approx(compare_predictions(a, b).rank_correlation)

    def test_rank_correlation_undefined(self) -> None:
        """n = 1, a constant vector, or rank_correlation=False give None."""
        assert compare_predictions([0.2], [0.3]).rank_correlation is None
        assert compare_predictions([0.2, 0.2], [0.3, 0.4]).rank_correlation is None
        assert compare_predictions([0.2, 0.2], [0.2, 0.2]).rank_correlation is None
        options = {"rank_correlation": False}
        assert compare_predictions([0.1, 0.2], [0.3, 0.2], **options).rank_correlation is None

    def test_n_equals_one(self) -> None:
        """One example that changes class is churn 1."""
        result = compare_predictions([[0.6, 0.4]], [[0.4, 0.6]], labels=[0])
        assert (1.0, 1.0, (0,)) == (result.churn, result.correctness_churn, result.top_indices)

    def test_ties_inside_a_row_break_to_the_first_class(self) -> None:
        """A row that becomes tied keeps class 0 (argmax picks the first maximum): no churn."""
        result = compare_predictions([[0.6, 0.4]], [[0.5, 0.5]])
        assert (0, 1) == (result.churn_count, result.differing_count)

    def test_integer_labels_compare_as_classes(self) -> None:
        """(n,) integer predictions are class labels: churn is the fraction that differ."""
        result = compare_predictions(np.array([0, 3, 2]), np.array([0, 1, 2]), labels=[0, 3, 1])
        assert (1, 1) == (result.churn_count, result.correctness_churn_count)

    def test_threshold_for_scores(self) -> None:
        """(n,) scores are classes by `score > threshold`."""
        result = compare_predictions([0.3, 0.8], [0.35, 0.6], threshold=0.7)
        assert 0.5 == result.churn

    def test_relative_tolerance_is_symmetric(self) -> None:
        """rtol scales by the larger magnitude, so swapping runs does not change the verdict."""
        ab = compare_predictions([1.0, 10.0], [1.05, 10.4], rtol=0.04)
        ba = compare_predictions([1.05, 10.4], [1.0, 10.0], rtol=0.04)
        assert 1 == ab.count_beyond_tolerance == ba.count_beyond_tolerance

    def test_top_k_zero_and_larger_than_differing(self) -> None:
        """top_k=0 lists nothing; a large top_k lists only the examples that differ."""
        a, b = np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.25, 0.3])
        assert () == compare_predictions(a, b, top_k=0).top_indices
        assert (1,) == compare_predictions(a, b, top_k=10).top_indices

    def test_top_k_ties_keep_smallest_indices(self) -> None:
        """Equal differences are listed by index, across chunk boundaries too."""
        a = np.zeros(10)
        b = np.full(10, 0.5)
        assert (0, 1, 2) == compare_predictions(a, b, top_k=3, chunk_size=4).top_indices

    def test_float32_differences_are_exact(self) -> None:
        """Differences are taken in float64, so a float32 ulp shows exactly."""
        a = np.array([1.0], dtype=np.float32)
        b = np.nextafter(a, np.float32(2))
        assert float(b[0]) - 1.0 == compare_predictions(a, b).max_abs_diff

    def test_to_dict_is_plain(self) -> None:
        """to_dict gives lists and Python numbers."""
        data = compare_predictions([0.2, 0.6], [0.2, 0.4]).to_dict()
        assert [1] == data["top_indices"]
        assert isinstance(data["churn"], float)

    def test_result_type(self) -> None:
        """The kernel returns a PredictionComparison with Python scalars."""
        result = compare_predictions([[1.0, 0.0]], [[1.0, 0.0]])
        assert isinstance(result, PredictionComparison)
        assert isinstance(result.max_abs_diff, float)


class TestComparePredictionsValidation:
    @pytest.mark.parametrize(
        ("a", "b", "kwargs", "match"),
        [
            ([0.1, 0.2], [0.1], {}, r"same shape \(got \(2,\) and \(1,\)\)"),
            ([[0.1, 0.9]], [0.1, 0.9], {}, "same shape"),
            ([], [], {}, "at least 1 rows"),
            ([0.1, float("nan")], [0.1, 0.2], {}, "'a' must be finite .* first in row 1"),
            ([[0.1, 0.2], [0.1, np.inf]], [[0.1, 0.2], [0.1, 0.2]], {"chunk_size": 2}, "row 1"),
            ([0.1, 0.2], [0.1, float("nan")], {}, "'b' must be finite"),
            ([0.1], [0.2], {"labels": [0, 1]}, "one label per example"),
            ([[0.1, 0.9]], [[0.1, 0.9]], {"labels": [2]}, r"class indices in \[0, 2\)"),
            ([0.1], [0.2], {"atol": -1}, "'atol' must be a finite number >= 0"),
            ([0.1], [0.2], {"rtol": float("inf")}, "'rtol' must be a finite number"),
            ([0.1], [0.2], {"top_k": -1}, "'top_k' must be an integer >= 0"),
            ([0.1], [0.2], {"top_k": 1.5}, "'top_k' must be an int"),
            ([0.1], [0.2], {"chunk_size": 0}, "'chunk_size' must be an integer >= 1"),
            ([0.1], [0.2], {"atol": True}, "'atol' must be a number"),
            (["x"], ["y"], {}, "must be numeric"),
        ],
    )
    def test_bad_input_rejected(self, a: Any, b: Any, kwargs: dict[str, Any], match: str) -> None:
        """Shapes, NaN, empty input, labels and options are validated with clear messages."""
        with pytest.raises(InvalidInput, match=match):
            compare_predictions(a, b, **kwargs)


def brute_force_divergence(a: list[float], b: list[float], tol: float) -> tuple[Any, Any]:
    """First step differing at all and beyond tol, by a Python loop."""
    first = beyond = None
    for step, (x, y) in enumerate(zip(a, b, strict=False)):
        same = x == y or (np.isnan(x) and np.isnan(y))
        if not same and first is None:
            first = step
        if not same and not abs(x - y) <= tol and beyond is None:
            beyond = step
    if len(a) != len(b):
        n = min(len(a), len(b))
        first = n if first is None else first
        beyond = n if beyond is None else beyond
    return first, beyond


class TestLossDivergence:
    @given(
        st.lists(st.sampled_from([1.0, 1.0 + 1e-7, 1.5, float("nan")]), max_size=12),
        st.lists(st.sampled_from([1.0, 1.0 + 1e-7, 1.5, float("nan")]), max_size=12),
    )
    @settings(max_examples=60, deadline=None)
    def test_matches_loop(self, a: list[float], b: list[float]) -> None:
        """First steps equal a Python loop, NaN equal to NaN, any length."""
        if not a or not b:
            return
        result = loss_divergence(a, b, tolerance=1e-6)
        assert brute_force_divergence(a, b, 1e-6) == (result.first_step, result.first_step_beyond)

    def test_gpu_nondeterministic_losses(self, gpu_arrays: dict[str, np.ndarray]) -> None:
        """The recorded runs differ from step 18 and by more than 1e-6 from step 160."""
        a = gpu_arrays["gpu_nondet_seed0_a__losses"]
        b = gpu_arrays["gpu_nondet_seed0_b__losses"]
        result = loss_divergence(a, b, tolerance=1e-6)
        assert (18, 160) == (result.first_step, result.first_step_beyond)
        assert (a[160], b[160]) == (result.loss_a, result.loss_b)
        assert result.diverged

    def test_identical(self) -> None:
        """Identical curves never diverge."""
        result = loss_divergence([1.0, float("nan")], [1.0, float("nan")])
        assert (None, None, False) == (result.first_step, result.first_step_beyond, result.diverged)

    def test_run_that_stops_early(self) -> None:
        """A shorter run diverges where it stops, with no loss values to show."""
        result = loss_divergence([1.0, 0.9], [1.0])
        assert (1, 1, None) == (result.first_step, result.first_step_beyond, result.loss_a)

    def test_infinite_loss_is_beyond(self) -> None:
        """An infinite loss against a finite one is beyond any tolerance."""
        assert 0 == loss_divergence([np.inf], [1.0], tolerance=1e9).first_step_beyond

    @pytest.mark.parametrize(
        ("a", "kwargs", "match"),
        [
            ([], {}, "at least 1 rows"),
            ([[1.0]], {}, "must be 1-D"),
            ([1.0], {"tolerance": -1.0}, "'tolerance' must be a finite number >= 0"),
        ],
    )
    def test_bad_input_rejected(self, a: Any, kwargs: dict[str, Any], match: str) -> None:
        """Empty, 2-D input and negative tolerances are rejected."""
        with pytest.raises(InvalidInput, match=match):
            loss_divergence(a, [1.0], **kwargs)


class TestFirstMismatch:
    def test_cases(self) -> None:
        """First differing index; a shorter sequence differs at its end; equal gives None."""
        assert 0 == first_mismatch(["a"], ["b"])
        assert 2 == first_mismatch(["a", "b"], ["a", "b", "c"])
        assert first_mismatch(["a", "b"], ["a", "b"]) is None


# ------------------------------------------------------------- blocked kernel vs whole arrays


BLOCK_SIZES = {
    # (values per block, values per sub-block, share of differing values below which a
    # block gathers its differing rows)
    "tiny": (7, 3, 1 / 8),
    "small": (64, 8, 1 / 2),
    "even": (8, 8, 1 / 2),
}


@pytest.fixture(params=["default", "tiny", "small", "even"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the kernel's own block sizes, or with tiny or small blocks and sub-blocks,
    so that n is never a multiple of them and every route is taken: equal blocks, sparse
    ones (differing rows gathered across blocks), dense ones with and without equal rows."""
    if request.param != "default":
        block, sub_block, sparse = BLOCK_SIZES[request.param]
        monkeypatch.setattr(_compare_kernel, "_BLOCK_VALUES", block)
        monkeypatch.setattr(_compare_kernel, "_DENSE_VALUES", sub_block)
        monkeypatch.setattr(_compare_kernel, "_MIN_SUB_ROWS", 1)
        monkeypatch.setattr(_compare_kernel, "_SPARSE_FRACTION", sparse)
    return str(request.param)


def pair(n: int, c: int, scenario: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, c) float32 probabilities (c = 0: (n,) scores) and a second run of a scenario.

    Values come from a coarse grid, so rows with tied maxima and equal differences are
    common: ``identical`` copies, ``sparse`` changes about 5% of the rows, ``dense``
    changes every value by a float32 ulp or more, ``mixed`` changes half of the values.
    """
    rng = np.random.default_rng(seed)
    shape = (n, c) if c else (n,)
    a = (rng.integers(0, 8, size=shape) / 8).astype(np.float32)
    b = a.copy()
    if scenario == "sparse":
        rows = rng.random(n) < 0.05
        b[rows] = (rng.integers(0, 8, size=b[rows].shape) / 8).astype(np.float32)
    elif scenario == "dense":
        b = np.nextafter(a, np.float32(2)) + (rng.integers(0, 3, size=shape) / 8).astype(np.float32)
    elif scenario == "mixed":
        change = rng.random(shape) < 0.5
        b[change] = (rng.integers(0, 8, size=int(change.sum())) / 8).astype(np.float32)
    return a, b


def assert_matches_brute_force(
    a: np.ndarray,
    b: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    atol: float = 0.1,
    rtol: float = 0.0,
    top_k: int = 5,
    chunk_size: int = 1_000_000,
) -> PredictionComparison:
    """Every statistic equals the whole-array reference exactly; the mean up to rounding.

    One column, (n, 1), is classified like (n,) scores, by the threshold.
    """
    result = compare_predictions(
        a, b, labels=labels, atol=atol, rtol=rtol, top_k=top_k, chunk_size=chunk_size
    )
    one_column = a.ndim == 2 and a.shape[1] == 1
    expected = brute_force(
        a[:, 0] if one_column else a, b[:, 0] if one_column else b, labels, atol, rtol, top_k
    )
    got = attrs.asdict(result)
    assert expected.pop("mean_abs_diff") == pytest.approx(got["mean_abs_diff"], rel=1e-12)
    assert expected == {key: got[key] for key in expected}
    assert (expected["differing_count"] == 0) == result.identical
    first = np.flatnonzero((a != b).reshape(len(a), -1).any(axis=1))
    assert (int(first[0]) if first.size else None) == result.first_diff_index
    return result


class TestComparePredictionsBlocks:
    @pytest.mark.parametrize("c", [0, 1, 2, 3, 10, 50])
    @pytest.mark.parametrize("scenario", ["identical", "sparse", "dense", "mixed"])
    def test_blocks_match_whole_arrays(self, blocks: str, c: int, scenario: str) -> None:
        """Blocked, column-wise statistics equal the whole-array ones for every C and route."""
        a, b = pair(101, c, scenario)
        labels = np.random.default_rng(1).integers(0, max(c, 2), size=101)
        assert_matches_brute_force(a, b, labels)

    @pytest.mark.parametrize("c", [0, 1, 2, 3, 10, 50])
    def test_relative_tolerance_column_wise(self, blocks: str, c: int) -> None:
        """With rtol the per-value limits are taken column by column, as on whole rows."""
        a, b = pair(57, c, "mixed", seed=2)
        assert_matches_brute_force(a, b, atol=0.01, rtol=0.3)

    @pytest.mark.parametrize("c", [0, 1, 2, 3, 10, 50])
    @pytest.mark.parametrize("scenario", ["identical", "dense"])
    def test_one_example(self, blocks: str, c: int, scenario: str) -> None:
        """A single example is compared like any other."""
        a, b = pair(1, c, scenario, seed=3)
        assert_matches_brute_force(a, b, np.array([0]))

    @pytest.mark.parametrize("chunk_size", [1, 2, 5, 64])
    def test_any_chunk_size(self, blocks: str, chunk_size: int) -> None:
        """Small chunk sizes (blocks of a few rows) give the same statistics."""
        a, b = pair(40, 3, "mixed", seed=4)
        assert_matches_brute_force(a, b, np.zeros(40, dtype=int), chunk_size=chunk_size)

    @pytest.mark.parametrize("c", [3, 10, 50])
    def test_argmax_ties_keep_the_first_class(self, blocks: str, c: int) -> None:
        """Rows whose largest value is tied take the first of them, as np.argmax does."""
        a = np.zeros((20, c))
        a[:, 1] = a[:, c - 1] = 0.5  # tied: class 1
        b = a.copy()
        b[::2, 0] = 0.5  # now tied with class 0, which comes first: churn
        b[1::4, c - 1] = 0.6  # class c - 1 is now the only maximum: churn
        result = assert_matches_brute_force(a, b)
        assert (15, 15) == (result.churn_count, result.differing_count)

    def test_top_k_ties_across_blocks(self, blocks: str) -> None:
        """Equal largest differences are listed by index, wherever the blocks end."""
        a = np.zeros((30, 2))
        b = a.copy()
        b[[3, 11, 12, 25, 29], 0] = 0.5
        b[[7, 20], 1] = 0.25
        result = assert_matches_brute_force(a, b, top_k=6)
        assert (3, 11, 12, 25, 29, 7) == result.top_indices

    def test_integer_labels_and_booleans(self, blocks: str) -> None:
        """(n,) integer labels and boolean predictions take the same kernels."""
        rng = np.random.default_rng(5)
        a = rng.integers(0, 4, size=70)
        b = np.where(rng.random(70) < 0.3, rng.integers(0, 4, size=70), a)
        y = rng.integers(0, 4, size=70)
        result = compare_predictions(a, b, labels=y, top_k=3)
        expected = brute_force(a.astype(float), b.astype(float), None, 0.0, 0.0, 3)
        changed = int((a != b).sum())
        assert (changed, changed) == (result.churn_count, result.differing_count)
        assert int(((a == y) != (b == y)).sum()) == result.correctness_churn_count
        assert expected["top_indices"] == result.top_indices
        assert expected["max_abs_diff"] == result.max_abs_diff
        flags = a > 1
        assert int((flags != (b > 1)).sum()) == compare_predictions(flags, b > 1).churn_count

    @pytest.mark.parametrize("c", [1, 2, 3, 4, 10, 50])
    def test_integer_scores(self, blocks: str, c: int) -> None:
        """(n, C) integer scores: rows differ where any value does, classes by argmax."""
        rng = np.random.default_rng(8)
        a = rng.integers(0, 3, size=(45, c))
        b = np.where(rng.random((45, c)) < 0.2, rng.integers(0, 3, size=(45, c)), a)
        result = compare_predictions(a, b, top_k=4)
        differ = (a != b).any(axis=1)
        assert int(differ.sum()) == result.differing_count
        if c > 1:
            assert int((a.argmax(axis=1) != b.argmax(axis=1)).sum()) == result.churn_count
        expected = brute_force(a.astype(float), b.astype(float), None, 0.0, 0.0, 4)
        assert expected["top_indices"] == result.top_indices

    def test_integers_beyond_float64_precision_still_differ(self, blocks: str) -> None:
        """Integers that differ but convert to the same float64 count as differing rows."""
        a = np.array([[2**53, 0], [5, 1], [2**53, 7]], dtype=np.int64)
        b = np.array([[2**53 + 1, 0], [5, 1], [2**53, 7]], dtype=np.int64)
        result = compare_predictions(a, b)
        assert (1, 0, 0.0, (0,)) == (
            result.differing_count,
            result.first_diff_index,
            result.max_abs_diff,
            result.top_indices,
        )

    def test_rows_that_agree_never_churn(self, blocks: str) -> None:
        """Equal rows are not counted as churn even when the runs' dtypes classify them
        differently (integer labels against float scores)."""
        labels = np.array([2, 0, 1, 0, 1, 3, 0, 1] * 4)
        scores = labels.astype(np.float64)
        scores[[1, 9]] = 0.9  # two rows differ: 0 vs 0.9 > 0.5
        result = compare_predictions(labels, scores)
        assert (2, 2) == (result.differing_count, result.churn_count)

    def test_threshold_compared_in_the_input_dtype(self, blocks: str) -> None:
        """float32 scores are compared with the threshold rounded to float32, as numpy does."""
        a = np.array([0.3, 0.1, 0.3], dtype=np.float32)  # float32(0.3) > 0.3 in float64
        b = np.array([0.2, 0.3, 0.3], dtype=np.float32)
        assert 0 == compare_predictions(a, b, threshold=0.3).churn_count
        assert 1 == compare_predictions(a, b.astype(np.float64), threshold=0.3).churn_count

    def test_float32_differences_taken_in_float64(self, blocks: str) -> None:
        """Differences of float32 values far apart in magnitude are exact float64 ones."""
        a = np.array([[1e-30, 0.7], [0.5, 0.5]], dtype=np.float32)
        b = np.array([[0.3, 0.7], [0.5, 0.5]], dtype=np.float32)
        expected = float(np.float64(b[0, 0]) - np.float64(a[0, 0]))
        assert expected == compare_predictions(a, b).max_abs_diff

    @pytest.mark.parametrize(
        ("where", "value", "chunk_size", "match"),
        [
            ("a", np.nan, 1_000_000, "'a' must be finite .* first in row 33"),
            ("b", np.nan, 1_000_000, "'b' must be finite .* first in row 33"),
            ("both", np.inf, 1_000_000, "'a' must be finite .* first in row 33"),
            ("a", -np.inf, 1_000_000, "'a' must be finite .* first in row 33"),
            ("b_early", np.inf, 1_000_000, "'a' must be finite .* first in row 33"),
            ("b_early", np.inf, 40, "'b' must be finite .* first in row 5"),
        ],
    )
    def test_non_finite_rejected_wherever_it_is(
        self, blocks: str, where: str, value: float, chunk_size: int, match: str
    ) -> None:
        """NaN or infinity is rejected in equal and differing rows alike, named as before:
        the first chunk (of chunk_size values) with one, a before b."""
        for scenario in ("identical", "sparse", "dense"):
            a, b = pair(60, 2, scenario, seed=6)
            a, b = a.astype(np.float64), b.astype(np.float64)
            if where in ("a", "both"):
                a[33, 1] = value
            if where in ("b", "both"):
                b[33, 1] = value
            if where == "b_early":
                a[33, 0] = np.nan
                b[5, 1] = value
            with pytest.raises(InvalidInput, match=match):
                compare_predictions(a, b, chunk_size=chunk_size)

    def test_overflowing_differences_are_not_errors(self, blocks: str) -> None:
        """Finite values whose difference overflows float64 are compared, not rejected."""
        a = np.array([1e308, 0.0])
        b = np.array([-1e308, 0.0])
        with pytest.warns(RuntimeWarning, match="overflow"):
            result = compare_predictions(a, b)
        assert (1, math.inf) == (result.differing_count, result.max_abs_diff)


class TestMidranks:
    @given(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0]), min_size=1, max_size=40))
    @settings(max_examples=60, deadline=None)
    def test_equal_to_scipy_with_ties(self, values: list[float]) -> None:
        """Midranks equal scipy.stats.rankdata bit for bit, ties included."""
        x = np.array(values)
        assert scipy.stats.rankdata(x).tolist() == _rank_correlation._midranks(x).tolist()

    def test_no_ties_and_float32(self) -> None:
        """Distinct float32 values get ranks 1..n in their order."""
        x = np.random.default_rng(7).random(1000).astype(np.float32)
        assert scipy.stats.rankdata(x).tolist() == _rank_correlation._midranks(x).tolist()

    def test_identical_runs_correlation_read_in_blocks(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Identical runs correlate 1.0 when any top-1 score differs, even late; else None."""
        monkeypatch.setattr(_compare_kernel, "_BLOCK_VALUES", 9)
        a = np.full((20, 3), 0.25)
        a[:, 0] = 0.5
        assert compare_predictions(a, a.copy()).rank_correlation is None
        a[17] = [0.1, 0.2, 0.7]
        assert 1.0 == compare_predictions(a, a.copy()).rank_correlation


class TestComparerMerge:
    """Comparisons of disjoint row ranges (on different workers) combine into the whole."""

    @pytest.mark.parametrize("scenario", ["identical", "sparse", "dense"])
    @pytest.mark.parametrize(("n", "c"), [(7, 1), (1000, 2), (5000, 10), (3000, 30)])
    def test_merged_parts_equal_one_pass(self, scenario: str, n: int, c: int) -> None:
        a, b = pair(n, 0 if c == 1 else c, scenario, seed=n + c)
        labels = np.random.default_rng(1).integers(0, max(c, 2), n)
        whole = compare_predictions(a, b, labels=labels, atol=1e-3, top_k=5)
        cuts = [0, n // 3, n // 3 + 1, n]
        parts = []
        for low, high in itertools.pairwise(cuts):
            comparer = Comparer(
                n, a.shape, a.dtype, b.dtype, labelled=True, atol=1e-3, rtol=0.0, top_k=5
            )
            comparer.block(a[low:high], b[low:high], labels[low:high], low)
            parts.append(comparer.totals())
        merged = Comparer(n, a.shape, a.dtype, b.dtype, labelled=True, atol=1e-3, rtol=0.0, top_k=5)
        for totals in parts:
            merged.merge(totals)
        result = merged.result()
        for field in attrs.fields(type(whole)):
            expected, got = getattr(whole, field.name), getattr(result, field.name)
            if field.name == "mean_abs_diff":
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-300)
            else:
                assert got == expected, field.name

    def test_a_bad_row_of_a_block_is_named_by_its_row(self) -> None:
        a, b = pair(100, 3, "dense", seed=2)
        a = a.astype(np.float64)
        a[70, 1] = np.nan
        comparer = Comparer(100, a.shape, a.dtype, b.dtype, labelled=False, atol=0.0, rtol=0.0)
        comparer.block(a[:50], b[:50], None, 0)
        with pytest.raises(InvalidInput, match=r"'a' must be finite .* first in row 70"):
            comparer.block(a[50:], b[50:], None, 50)
