"""The row kernels give numpy's answers on every dtype, shape, layout and storage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlchecks.stats import _rows
from mlchecks.stats._rows import all_finite, argmax_rows, non_finite, row_sums, scan_rows

BLOCK = _rows._rows_per_block(np.zeros((1, 2)))  # rows per block at two columns
SIZES = [0, 1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3]
CLASSES = [1, 2, 3, 10, 40]
DTYPES: list[Any] = [np.float32, np.float64]


def _data(n: int, c: int, dtype: Any, seed: int = 0, ties: bool = True) -> np.ndarray:
    """Random scores with many ties (values on a coarse grid) and some negative values."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-3, 4, size=(n, c)) / 4 if ties else rng.normal(size=(n, c))
    return values.astype(dtype)


def _layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as C-ordered, F-ordered, strided and read-only arrays."""
    wide = np.zeros((a.shape[0], 2 * a.shape[1] + 1), dtype=a.dtype)
    wide[:, 1::2] = a
    frozen = a.copy()
    frozen.flags.writeable = False
    layouts: dict[str, np.ndarray] = {
        "c": np.ascontiguousarray(a),
        "f": np.asfortranarray(a),
        "strided": wide[:, 1::2],
        "reversed": np.ascontiguousarray(a[::-1])[::-1],
        "readonly": frozen,
    }
    return layouts


def _with_bad(a: np.ndarray, seed: int, value: float) -> np.ndarray:
    out: np.ndarray = a.copy()
    if out.size:
        rng = np.random.default_rng(seed)
        flat = rng.choice(out.size, size=max(1, out.size // 50), replace=False)
        out.reshape(-1)[flat] = value
    return out


class TestArgmaxRows:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("c", [*CLASSES, 16, 24, 32])
    @pytest.mark.parametrize("n", SIZES)
    def test_equals_numpy_on_every_layout(self, n: int, c: int, dtype: Any) -> None:
        """Ties, negative values, every layout: the answer of np.argmax(axis=1)."""
        for name, a in _layouts(_data(n, c, dtype, seed=n + c)).items():
            got = argmax_rows(a)
            assert got.dtype == np.intp, name
            np.testing.assert_array_equal(np.argmax(a, axis=1), got, err_msg=name)

    @pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("c", [2, 3, 10, 40])
    def test_nan_and_infinity_as_numpy(self, c: int, dtype: Any, value: float) -> None:
        """A row holding NaN gives its first NaN; infinities compare as numbers."""
        n = BLOCK + 7
        for name, a in _layouts(_with_bad(_data(n, c, dtype), c, value)).items():
            np.testing.assert_array_equal(np.argmax(a, axis=1), argmax_rows(a), err_msg=name)

    def test_all_nan_and_all_infinite_rows(self) -> None:
        """Rows of only NaN, only +inf or only -inf, and +inf beside -inf."""
        a = np.array(
            [[np.nan, np.nan], [np.inf, np.inf], [-np.inf, -np.inf], [-np.inf, np.inf]] * 3
        )
        for c in (2, 3):
            b = np.repeat(a, c - 1, axis=1)[:, :c]
            np.testing.assert_array_equal(np.argmax(b, axis=1), argmax_rows(b))

    def test_signed_zeros_tie(self) -> None:
        """-0.0 and 0.0 are equal: the first wins, as in numpy."""
        a = np.array([[-0.0, 0.0, -0.0], [0.0, -0.0, 0.0]])
        np.testing.assert_array_equal([0, 0], argmax_rows(a))
        np.testing.assert_array_equal([0, 0], argmax_rows(a[:, :2]))

    @pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.float16, np.longdouble])
    def test_other_dtypes(self, dtype: Any) -> None:
        """Integers, booleans, half and long double precision give numpy's answer."""
        for c in (2, 3, 10):
            a = _data(BLOCK + 5, c, np.float64, seed=c)
            a = (a > 0) if dtype is np.bool_ else (np.abs(a) * 4).astype(dtype)
            np.testing.assert_array_equal(np.argmax(a, axis=1), argmax_rows(a))

    def test_finite_flag_and_small_dtype(self) -> None:
        """finite=True skips the NaN test; dtype=np.uint8 writes one byte per row."""
        a = _data(3 * BLOCK, 10, np.float32)
        got = argmax_rows(a, finite=True, dtype=np.uint8)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(np.argmax(a, axis=1), got)
        a2 = _data(3 * BLOCK, 2, np.float32)
        np.testing.assert_array_equal(np.argmax(a2, axis=1), argmax_rows(a2, dtype=np.uint8))

    def test_memmap_is_read_not_copied(self, tmp_path: Path) -> None:
        """A read-only memory-mapped file gives numpy's answer, block by block."""
        a = _data(2 * BLOCK + 1, 10, np.float32)
        path = tmp_path / "p.npy"
        np.save(path, a)
        mapped = np.lib.format.open_memmap(path, mode="r")
        np.testing.assert_array_equal(np.argmax(a, axis=1), argmax_rows(mapped))
        two = tmp_path / "p2.npy"
        np.save(two, a[:, :2])
        mapped2 = np.lib.format.open_memmap(two, mode="r")
        np.testing.assert_array_equal(np.argmax(a[:, :2], axis=1), argmax_rows(mapped2))

    def test_shapes_rejected_as_numpy(self) -> None:
        """1-D input and rows without columns are errors; no rows is an empty answer."""
        with pytest.raises(ValueError, match="2-D"):
            argmax_rows(np.zeros(3))
        with pytest.raises(ValueError, match="empty sequence"):
            argmax_rows(np.zeros((3, 0)))
        assert argmax_rows(np.zeros((0, 0))).shape == (0,)

    @settings(max_examples=200, deadline=None)
    @given(
        hnp.arrays(
            st.sampled_from([np.float32, np.float64]),
            hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
            elements={"allow_nan": True, "allow_infinity": True, "allow_subnormal": True},
        )
    )
    def test_property_equals_numpy(self, a: np.ndarray) -> None:
        """Any values, any small shape: numpy's answer, also transposed and strided."""
        if a.shape[1] == 0 and a.shape[0]:
            return
        for b in (a, np.asfortranarray(a), a[::2]):
            np.testing.assert_array_equal(np.argmax(b, axis=1), argmax_rows(b))


class TestFinite:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("c", CLASSES)
    @pytest.mark.parametrize("n", SIZES)
    def test_all_finite_equals_numpy(self, n: int, c: int, dtype: Any) -> None:
        """True exactly when np.isfinite(a).all(), for every layout."""
        for value in (None, np.nan, np.inf, -np.inf):
            base = _data(n, c, dtype, ties=False)
            a = base if value is None else _with_bad(base, n, value)
            for name, b in _layouts(a).items():
                assert bool(np.isfinite(b).all()) == all_finite(b), (name, value)

    def test_large_finite_values_are_finite(self) -> None:
        """Values near the largest float (whose sum would overflow) are finite."""
        for dtype in DTYPES:
            big = np.full((BLOCK + 1, 3), np.finfo(dtype).max, dtype=dtype)
            big[::2] *= -1
            assert all_finite(big)

    def test_other_dtypes_and_shapes(self) -> None:
        """Integers are finite; 0-d, 1-D and 3-D arrays are checked too."""
        assert all_finite(np.arange(5))
        assert not all_finite(np.array(np.nan))
        assert all_finite(np.array([1.0, 6e4], dtype=np.float16))
        assert not all_finite(np.array([1.0, np.inf], dtype=np.float16))
        cube = np.zeros((4, 3, 2))
        cube[2, 1, 0] = np.nan
        assert not all_finite(cube)
        assert non_finite(cube) == (1, 1, int(np.flatnonzero(np.isnan(cube))[0]))

    def test_non_finite_counts_and_first_index(self) -> None:
        """Counts of values and rows and the first C-order index, as numpy finds them."""
        a = _with_bad(_data(3 * BLOCK, 10, np.float32), 3, np.nan)
        bad = ~np.isfinite(a)
        expected = (
            int(bad.sum()),
            int(bad.any(axis=1).sum()),
            int(np.flatnonzero(bad)[0]),
        )
        assert expected == non_finite(a)
        assert expected == non_finite(np.asfortranarray(a))
        assert (0, 0, -1) == non_finite(np.zeros((3, 2)))

    def test_memmap(self, tmp_path: Path) -> None:
        """A memory-mapped file is checked without a copy."""
        a = _with_bad(_data(2 * BLOCK, 2, np.float64), 1, np.inf)
        path = tmp_path / "f.npy"
        np.save(path, a)
        assert not all_finite(np.lib.format.open_memmap(path, mode="r"))


class TestRowSums:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("c", CLASSES)
    @pytest.mark.parametrize("n", SIZES)
    def test_equals_numpy_up_to_rounding(self, n: int, c: int, dtype: Any) -> None:
        """Within float rounding of p.sum(axis=1, dtype=float64), every layout."""
        for name, a in _layouts(_data(n, c, dtype, ties=False)).items():
            got = row_sums(a)
            assert got.dtype == np.float64
            expected = a.sum(axis=1, dtype=np.float64)
            tol = 4 * c * np.finfo(dtype).eps * np.abs(a).sum(axis=1)
            assert np.all(np.abs(got - expected) <= tol), name

    def test_integers_exact(self) -> None:
        """Integer rows are summed exactly in float64."""
        a = np.arange(30).reshape(10, 3)
        np.testing.assert_array_equal(a.sum(axis=1), row_sums(a))


class TestScanRows:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("c", [2, 3, 10, 40])
    def test_scan_and_pick(self, c: int, dtype: Any) -> None:
        """Range, row sums and picked probabilities equal numpy's, on every layout."""
        rng = np.random.default_rng(c)
        n = 2 * BLOCK + 1
        p = rng.dirichlet(np.ones(c), size=n).astype(dtype)
        labels = rng.integers(0, c, size=n)
        for name, a in _layouts(p).items():
            scan = scan_rows(a, tolerance=1e-3, labels=labels)
            assert scan.finite, name
            assert scan.sums_ok, name
            assert (float(a.min()), float(a.max())) == (scan.low, scan.high)
            picked = np.take_along_axis(a, labels[:, None], axis=1)[:, 0].astype(np.float64)
            assert scan.picked is not None
            np.testing.assert_array_equal(picked, scan.picked, err_msg=name)

    def test_rows_off_by_more_than_the_tolerance(self) -> None:
        """A row off by 2e-3 fails; rows within rounding of the tolerance are not called."""
        p = np.full((BLOCK + 2, 2), 0.5)
        assert scan_rows(p, tolerance=1e-3).sums_ok
        p[BLOCK + 1, 0] += 2e-3
        assert not scan_rows(p, tolerance=1e-3).sums_ok
        p[BLOCK + 1, 0] = 0.5 + 1e-3  # at the tolerance: left to numpy's exact test
        assert not scan_rows(p.astype(np.float32), tolerance=1e-3).sums_ok

    def test_non_finite_stops_the_scan(self) -> None:
        """NaN anywhere: finite is False (and no range or sums are reported)."""
        p = np.full((10, 3), 1 / 3)
        p[7, 2] = np.nan
        scan = scan_rows(p, tolerance=1e-3)
        assert not scan.finite
        assert scan.sums_ok is None

    def test_binary_pick(self) -> None:
        """1-D probabilities: p for label 1 and 1 - p (in float64) for label 0."""
        p = np.array([0.9, 0.2, 0.3], dtype=np.float32)
        labels = np.array([1, 0, 1])
        scan = scan_rows(p, labels=labels)
        expected = np.where(labels == 1, p, 1.0 - p.astype(np.float64))
        assert scan.picked is not None
        np.testing.assert_array_equal(expected, scan.picked)


def _kernels() -> list[Callable[[np.ndarray], Any]]:
    return [argmax_rows, all_finite, row_sums, lambda a: scan_rows(a, tolerance=1e-3)]


@pytest.mark.parametrize("kernel", _kernels())
def test_no_whole_copy_of_a_memmap(kernel: Callable[[np.ndarray], Any], tmp_path: Path) -> None:
    """The kernels read a memory map in blocks: the input is never copied whole."""
    import tracemalloc

    a = np.full((4 * BLOCK, 10), 0.1, dtype=np.float32)
    path = tmp_path / "m.npy"
    np.save(path, a)
    mapped = np.lib.format.open_memmap(path, mode="r")
    tracemalloc.start()
    try:
        kernel(mapped)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < a.nbytes / 2


# ----------------------------------------------------------------- metrics as before


def _old_probability_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """The validation of log loss and Brier before the row kernels (the reference)."""
    from mlchecks._validate import as_labels, as_probabilities, check_same_length
    from mlchecks.exceptions import InvalidInput
    from mlchecks.stats._metric_inputs import _check_unit_interval

    probs = as_probabilities(y_pred, "y_pred")
    _check_unit_interval(probs, "y_pred")
    labels = as_labels(y_true, "y_true", n_classes=probs.shape[1] if probs.ndim == 2 else 2)
    check_same_length(y_true=labels, y_pred=probs)
    if probs.ndim == 2:
        sums = probs.sum(axis=1, dtype=np.float64)
        worst = int(np.argmax(np.abs(sums - 1.0)))
        if abs(sums[worst] - 1.0) > 1e-3:
            raise InvalidInput(
                f"'y_pred' rows must be probabilities summing to 1 (row {worst} sums to "
                f"{sums[worst]:.6g}); apply a softmax to scores first"
            )
    return labels, probs


def _old_picked(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    if probs.ndim == 1:
        return np.where(labels == 1, probs, 1.0 - probs.astype(np.float64))
    return np.take_along_axis(probs, labels[:, None], axis=1)[:, 0].astype(np.float64)


def _old_log_loss_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    labels, probs = _old_probability_inputs(y_true, y_pred)
    eps = float(np.finfo(probs.dtype).eps)
    terms: np.ndarray = -np.log(np.clip(_old_picked(labels, probs), eps, 1.0))
    return terms


def _old_brier_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    labels, probs = _old_probability_inputs(y_true, y_pred)
    if probs.ndim == 1:
        out: np.ndarray = (probs.astype(np.float64) - labels) ** 2
        return out
    squares = np.einsum("ij,ij->i", probs, probs, dtype=np.float64)
    out = squares - 2.0 * _old_picked(labels, probs) + 1.0
    return out


def _outcome(fn: Callable[..., Any], *args: Any) -> Any:
    """The value, or the type and message of the exception."""
    try:
        return fn(*args)
    except Exception as exc:  # compared, not swallowed
        return (type(exc), str(exc))


def _same(expected: Any, got: Any) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray)
        assert expected.dtype == got.dtype
        np.testing.assert_array_equal(expected.view(np.uint64), got.view(np.uint64))
    else:
        assert expected == got


class TestMetricsAsBefore:
    """Log loss, Brier and predicted labels give bitwise the answers (and errors) of before."""

    @pytest.mark.parametrize("dtype", [*DTYPES, np.float16, np.int64])
    @pytest.mark.parametrize("c", [0, 1, 2, 3, 10, 40])
    @pytest.mark.parametrize("n", [1, 2, BLOCK - 1, BLOCK + 1])
    def test_terms_bitwise_equal(self, n: int, c: int, dtype: Any) -> None:
        """Per-example log loss and Brier terms equal the old code's bit for bit."""
        from mlchecks.stats._metric_inputs import _brier_terms, _log_loss_terms

        rng = np.random.default_rng(n + c)
        if c == 0:  # 1-D probabilities of class 1
            p = rng.random(n)
            p[: n // 3] = rng.integers(0, 2, size=n // 3)  # exact 0 and 1: the clipping
            labels = rng.integers(0, 2, size=n)
        else:
            p = rng.dirichlet(np.full(c, 0.3), size=n)
            labels = rng.integers(0, c, size=n)
        if dtype is np.int64:
            p = (p > 0.5).astype(np.int64)
            if c:
                p[:, 0] = 1 - p[:, 1:].sum(axis=1).clip(0, 1)
                p[:, 1:] *= p[:, :1] == 0
        else:
            p = p.astype(dtype)
        layouts = _layouts(p) if c else {"c": p, "strided": np.repeat(p, 2)[::2]}
        for a in layouts.values():
            for new, old in (
                (_log_loss_terms, _old_log_loss_terms),
                (_brier_terms, _old_brier_terms),
            ):
                _same(_outcome(old, labels, a), _outcome(new, labels, a))

    @pytest.mark.parametrize(
        "case",
        [
            "nan",
            "inf",
            "negative",
            "above_one",
            "bad_sum",
            "near_sum",
            "label_range",
            "label_float",
            "length",
            "nan_and_label",
            "negative_and_label",
            "label_and_sum",
            "length_and_sum",
            "strings",
            "three_d",
            "empty",
        ],
    )
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_errors_in_the_same_order(self, case: str, dtype: Any) -> None:
        """Every bad input raises the old error, and with several the old one first."""
        from mlchecks.stats._metric_inputs import _brier_terms, _log_loss_terms

        rng = np.random.default_rng(1)
        n, c = BLOCK + 9, 3
        p: Any = rng.dirichlet(np.ones(c), size=n).astype(dtype)
        y: Any = rng.integers(0, c, size=n)
        if "nan" in case:
            p[n - 2, 1] = np.nan
        if case == "inf":
            p[5, 0] = np.inf
        if "negative" in case:
            p[7, 2] = -0.25
        if case == "above_one":
            p[BLOCK + 1, 0] = 1.5
        if "sum" in case:
            p[BLOCK + 3, 0] += 0.5 if case != "near_sum" else 1e-3
        if "label" in case:
            y[3] = 3 if case != "label_float" else 0.5
            y = y.astype(np.float64) if case == "label_float" else y
        if "length" in case:
            y = y[:-1]
        if case == "strings":
            p = p.astype(str)
        if case == "three_d":
            p = p[:, :, None]
        if case == "empty":
            p, y = p[:0], y[:0]
        for new, old in ((_log_loss_terms, _old_log_loss_terms), (_brier_terms, _old_brier_terms)):
            _same(_outcome(old, y, p), _outcome(new, y, p))

    @pytest.mark.parametrize("c", [2, 3, 10, 40, 300])
    def test_predicted_labels_as_argmax(self, c: int) -> None:
        """predicted_labels is np.argmax as int64."""
        from mlchecks.stats._metric_inputs import predicted_labels

        p = _data(BLOCK + 3, c, np.float32)
        expected = np.argmax(p, axis=1).astype(np.int64)
        got = predicted_labels(p)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(expected, got)


class TestValidatedOnce:
    def test_as_scores_checks_the_input_not_its_float64_copy(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A widening cast cannot make values finite: the input is scanned, once."""
        from mlchecks import _validate

        calls = []
        real = _rows.all_finite

        def counting(a: Any) -> bool:
            calls.append(a.dtype)
            return real(a)

        monkeypatch.setattr(_validate, "all_finite", counting)
        p = np.full((10, 2), 0.5, dtype=np.float32)
        _validate.as_scores(p, "p", ndim=2)
        assert calls == [np.dtype(np.float32)]

    def test_error_message_unchanged(self) -> None:
        """The message names the argument, the count and the first bad index."""
        from mlchecks._validate import as_array, as_scores
        from mlchecks.exceptions import InvalidInput

        p = np.zeros((BLOCK + 5, 3), dtype=np.float32)
        p[BLOCK + 2, 1] = np.nan
        p[BLOCK + 4, 0] = np.inf
        message = (
            f"'p' must be finite (got 2 NaN or infinite values of {p.size}, first at index "
            f"{np.unravel_index((BLOCK + 2) * 3 + 1, p.shape)})"
        )
        calls: list[Callable[[], Any]] = [
            lambda: as_array(p, "p"),
            lambda: as_scores(p, "p", ndim=2),
        ]
        for call in calls:
            with pytest.raises(InvalidInput) as info:
                call()
            assert message == str(info.value)
        with pytest.raises(InvalidInput, match=r"first at index 4\)"):
            as_array([0.0, 1.0, 2.0, 3.0, np.nan], "x")
