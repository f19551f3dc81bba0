"""The compiled path of ReproducibilityCheck's pass equals its numpy path, bit for bit.

The kernels of `mlchecks.stats._fused` are plain Python until numba compiles them: the
brute-force tests of the kernels run them as Python (no numba needed); the tests of the
check run it twice, ``MLCHECKS_COMPILED=0`` and ``=1``, and skip without numba.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks import Status
from mlchecks.checks import ReproducibilityCheck, TrainingRun, _repro_pass
from mlchecks.checks._repro_eval import Evaluation
from mlchecks.checks._repro_pass import Summary, Table
from mlchecks.stats import _fused
from mlchecks.stats.metrics import custom_metric


def _probabilities(n: int, c: int, seed: int, dtype: Any = np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    return out


# --------------------------------------------------------------------------- kernels


class TestKernelsAgainstNumpy:
    """The kernels, run as Python, against numpy on edge cases (ties, NaN, bad values)."""

    @pytest.mark.parametrize("c", [1, 2, 3, 5])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_classes_are_numpys_argmax_with_its_ties_and_nans(self, c: int, dtype: Any) -> None:
        rng = np.random.default_rng(c)
        p = rng.integers(0, 3, (200, c)).astype(dtype)  # many ties
        p[rng.random((200, c)) < 0.05] = np.nan
        p[rng.random((200, c)) < 0.05] = np.inf
        classes = np.empty(200, dtype=np.int64)
        none = np.empty(0)
        assert 0 == _fused.scan_2d(p, np.empty(0, np.int64), none[:0].astype(np.int64), classes,
                                   none, none, 0.0, 1.0)  # fmt: skip
        np.testing.assert_array_equal(np.argmax(p, axis=1), classes)

    @pytest.mark.parametrize("c", [2, 3])
    def test_picked_and_brier_terms_are_the_numpy_paths_bit_for_bit(self, c: int) -> None:
        p = _probabilities(300, c, seed=c)
        p[0] = 0.0
        p[0, 0] = 1.0  # a zero probability: clipped at eps
        y = np.random.default_rng(0).integers(0, c, 300)
        picked, squares = np.empty(300), np.empty(300)
        truth = np.empty(0, np.int64)
        eps = float(np.finfo(p.dtype).eps)
        bad = _fused.scan_2d(p, y, truth, np.empty(0, np.int64), picked, squares, eps, 1e-3)
        assert 0 == bad
        true_class = np.take_along_axis(p, y[:, None], 1)[:, 0].astype(np.float64)
        np.testing.assert_array_equal(np.clip(true_class, eps, 1), picked)
        brier = np.einsum("ij,ij->i", p, p, dtype=np.float64) - 2.0 * true_class + 1.0
        np.testing.assert_allclose(squares, brier, rtol=0, atol=4e-16)

    @pytest.mark.parametrize(
        "change", ["nan", "inf", "negative", "above one", "row sum", "label", "negative label"]
    )
    def test_a_value_outside_the_checks_is_reported(self, change: str) -> None:
        p = _probabilities(50, 3, seed=1, dtype=np.float64)
        y = np.zeros(50, dtype=np.int64)
        row = 31
        if change == "nan":
            p[row, 1] = np.nan
        elif change == "inf":
            p[row, 1] = np.inf
        elif change == "negative":
            p[row] = [-0.1, 0.6, 0.5]
        elif change == "above one":
            p[row] = [1.1, -0.1, 0.0]
        elif change == "row sum":
            p[row] = [0.5, 0.5, 0.01]
        elif change == "label":
            y[row] = 3
        else:
            y[row] = -1
        none = np.empty(0, np.int64)
        assert 1 == _fused.scan_2d(p, y, none, none, np.empty(50), np.empty(0), 1e-16, 1e-3)

    def test_one_dimensional_probabilities(self) -> None:
        p = np.array([0.2, 0.5, 0.9, 0.0, 1.0], dtype=np.float32)
        y = np.array([1, 0, 1, 1, 0])
        classes, picked, squares = np.empty(5, np.int64), np.empty(5), np.empty(5)
        eps = float(np.finfo(np.float32).eps)
        assert 0 == _fused.scan_1d(p, y, y[:0], classes, picked, squares, eps, True)
        np.testing.assert_array_equal((p > 0.5).astype(int), classes)
        ref = np.clip(np.where(y == 1, p, 1.0 - p.astype(np.float64)), eps, 1.0)
        np.testing.assert_array_equal(ref, picked)
        np.testing.assert_array_equal((p.astype(np.float64) - y) ** 2, squares)
        p[2] = 1.5
        assert 1 == _fused.scan_1d(p, y, y[:0], classes, picked, squares, eps, True)

    @pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 1000, 4099, 65_537])
    def test_pairwise_sums_are_numpys_bit_for_bit(self, n: int) -> None:
        rng = np.random.default_rng(n)
        a, b = rng.normal(size=n) * 1e3, rng.normal(size=n)
        d = -a - b
        mean = d.mean() if n else 0.0
        assert np.sum(-a) == _fused.pairwise(a, -1.0, b, 0.0, 0.0, 0, 0, n)
        assert np.sum(d) == _fused.pairwise(a, -1.0, b, 1.0, 0.0, 1, 0, n)
        assert np.sum(np.square(d - mean)) == _fused.pairwise(a, -1.0, b, 1.0, mean, 2, 0, n)


def test_the_environment_variable_chooses_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """0 never compiles; auto leaves small inputs to numpy (below MIN_ROWS until loaded)."""
    monkeypatch.setenv(_fused.ENV, "0")
    assert _fused.kernels(10**12) is None
    monkeypatch.setenv(_fused.ENV, "auto")
    assert _fused.kernels(_fused.LOADED_MIN_ROWS - 1) is None
    assert _fused.LOADED_MIN_ROWS < _fused.MIN_ROWS


def test_with_numba_1_compiles_whatever_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    monkeypatch.setenv(_fused.ENV, "1")
    kernels = _fused.kernels(1)
    assert kernels is not None
    monkeypatch.setenv(_fused.ENV, "auto")
    assert kernels is _fused.kernels(_fused.LOADED_MIN_ROWS)  # loaded: a lower threshold


# --------------------------------------------------------------------------- the check


def _tables(
    monkeypatch: pytest.MonkeyPatch, runs: list[TrainingRun], compiled: bool, **options: Any
) -> tuple[Any, Table | None]:
    monkeypatch.setenv(_fused.ENV, "1" if compiled else "0")
    tables: list[Table] = []
    used: list[bool] = []
    original = Evaluation.use

    def spy(self: Evaluation, summary: Summary) -> None:
        tables.append(summary.table)
        used.append(summary.fused is not None)
        original(self, summary)

    monkeypatch.setattr(Evaluation, "use", spy)
    result = ReproducibilityCheck(runs=runs, **options).run()
    monkeypatch.setattr(Evaluation, "use", original)
    if compiled and used:
        assert used == [True]
    return result, tables[0] if tables else None


def _assert_same(numpy_side: tuple[Any, Table | None], compiled: tuple[Any, Table | None]) -> None:
    """Counts, sums and moments bit for bit; the results' dicts equal."""
    (result_a, table_a), (result_b, table_b) = numpy_side, compiled
    if table_a is None or table_b is None:
        assert table_a is table_b
        assert result_a.to_dict() == result_b.to_dict()
        return
    assert table_a.n == table_b.n
    assert table_a.sums.keys() == table_b.sums.keys()
    for key, value in table_a.sums.items():
        np.testing.assert_array_equal(value, table_b.sums[key], err_msg=str(key))
        assert value.dtype == table_b.sums[key].dtype, key
    assert table_a.moments == table_b.moments
    assert result_a.to_dict() == result_b.to_dict()


def _runs(n: int, c: int, seed: int, **kw: Any) -> list[TrainingRun]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    slices = {"slice": rng.integers(0, 7, n)}
    a = _probabilities(n, c, seed, **kw)
    changed = rng.random(n) < 0.3  # some rows of the rerun differ, most are identical
    b = np.where(changed[:, None], _probabilities(n, c, seed + 1, **kw), a)
    return [
        TrainingRun(predictions=a, labels=y, slices=slices, name="a"),
        TrainingRun(predictions=b, labels=y, slices=slices, name="b"),
    ]


@pytest.fixture
def numba_kernels() -> None:
    pytest.importorskip("numba")


@pytest.mark.usefixtures("numba_kernels")
class TestCompiledCheck:
    """ReproducibilityCheck with the kernels equals it without, bit for bit."""

    @pytest.mark.parametrize(("n", "c"), [(1, 2), (2, 2), (4095, 3), (4097, 2), (20_000, 10)])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_tables_and_results_equal_the_numpy_path(
        self, monkeypatch: pytest.MonkeyPatch, n: int, c: int, dtype: Any
    ) -> None:
        monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 12)
        runs = _runs(n, c, seed=n, dtype=dtype)
        _assert_same(
            _tables(monkeypatch, runs, compiled=False), _tables(monkeypatch, runs, compiled=True)
        )

    @pytest.mark.parametrize(
        "metrics",
        [
            ["accuracy", "log_loss", "brier"],
            ["error_rate", "brier"],
            ["log_loss", custom_metric(lambda y, p: 0.0, "top", per_example=lambda y, p: p[:, 0])],
        ],
        ids=["three", "brier", "custom"],
    )
    def test_other_metrics_and_three_runs(
        self, monkeypatch: pytest.MonkeyPatch, metrics: list[Any]
    ) -> None:
        monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 12)
        runs = _runs(9000, 3, seed=4)
        third = TrainingRun(predictions=_probabilities(9000, 3, 9), labels=runs[0].labels,
                            slices=runs[0].slices, name="c")  # fmt: skip
        runs.append(third)
        numpy_side = _tables(monkeypatch, runs, compiled=False, metrics=metrics)
        _assert_same(numpy_side, _tables(monkeypatch, runs, compiled=True, metrics=metrics))

    def test_one_dimensional_and_label_predictions(self, monkeypatch: pytest.MonkeyPatch) -> None:
        rng = np.random.default_rng(2)
        y = rng.integers(0, 2, 5000)
        p = rng.random(5000)
        for pair in ([p, p.copy()], [p > 0.5, p > 0.4], [y.copy(), (y + (p > 0.9)) % 2]):
            runs = [TrainingRun(predictions=v, labels=y, name=f"r{i}") for i, v in enumerate(pair)]
            _assert_same(
                _tables(monkeypatch, runs, compiled=False),
                _tables(monkeypatch, runs, compiled=True),
            )

    def test_read_only_memory_mapped_and_strided_inputs(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 12)
        runs = _runs(6000, 4, seed=8)
        a = runs[0].predictions
        assert a is not None
        path = tmp_path / "a.npy"
        np.save(path, a)
        mapped = np.load(path, mmap_mode="r")
        wide = np.zeros((6000, 8), dtype=a.dtype)
        wide[:, ::2] = runs[1].predictions
        runs = [
            TrainingRun(predictions=mapped, labels=runs[0].labels, slices=runs[0].slices),
            TrainingRun(predictions=wide[:, ::2], labels=runs[0].labels, slices=runs[0].slices),
        ]
        _assert_same(
            _tables(monkeypatch, runs, compiled=False), _tables(monkeypatch, runs, compiled=True)
        )

    @pytest.mark.parametrize("bad", ["row sum", "negative", "above one"])
    def test_bad_rows_give_the_numpy_paths_errors(
        self, monkeypatch: pytest.MonkeyPatch, bad: str
    ) -> None:
        """A late bad row: the same skipped metric, naming the same row, in both paths."""
        monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 12)
        runs = _runs(10_000, 2, seed=5, dtype=np.float64)
        p = runs[1].predictions.copy()  # type: ignore[union-attr]
        p[9_000] = {"row sum": [0.7, 0.7], "negative": [-0.5, 1.5], "above one": [1.5, 0.0]}[bad]
        runs[1] = TrainingRun(predictions=p, labels=runs[1].labels, slices=runs[1].slices)
        numpy_side = _tables(monkeypatch, runs, compiled=False, metrics=["log_loss"])
        compiled = _tables(monkeypatch, runs, compiled=True, metrics=["log_loss"])
        assert numpy_side[0].error == compiled[0].error
        _assert_same(numpy_side, compiled)

    def test_a_row_sum_at_the_tolerance_is_decided_by_numpy(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        runs = _runs(3000, 2, seed=6, dtype=np.float64)
        p = runs[0].predictions.copy()  # type: ignore[union-attr]
        p[100] = [0.5, 0.5 + 1e-3]  # within the tolerance by numpy's float64 sum, barely
        runs[0] = TrainingRun(predictions=p, labels=runs[0].labels, slices=runs[0].slices)
        _assert_same(
            _tables(monkeypatch, runs, compiled=False), _tables(monkeypatch, runs, compiled=True)
        )


@pytest.mark.usefixtures("numba_kernels")
def test_a_planted_fault_fails_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun whose predictions change class on 30% of rows FAILs alike on both paths."""
    runs = _runs(20_000, 3, seed=11)
    numpy_side, compiled = _tables(monkeypatch, runs, False), _tables(monkeypatch, runs, True)
    assert numpy_side[0].status is Status.FAIL
    assert numpy_side[0].finding("churn").status is Status.FAIL
    _assert_same(numpy_side, compiled)
