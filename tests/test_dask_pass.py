"""ReproducibilityCheck on Dask arrays: the pass runs on the workers, only tables travel.

The verdict must be the in-memory one on the same data: the same status, findings and
details, numbers equal up to the rounding of sums. The workers are real processes of a
`distributed.LocalCluster` on 127.0.0.1; the large test gives them less memory than the
data, which they generate themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _benchmarks import load_benchmark
from _dask_cluster import assert_same_result, local_client, refuse_whole_arrays

from mlchecks import Status
from mlchecks.checks import ReproducibilityCheck, TrainingRun
from mlchecks.exceptions import InvalidInput

pytestmark = pytest.mark.integration

dask = pytest.importorskip("dask")
da = pytest.importorskip(
    "dask.array", reason="dask is not installed (pip install 'dask[distributed]')"
)
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
#: The data the workers generate, and the subsample read to the client, as the benchmark's.
bench = load_benchmark("bench_dask_repro")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a two-process Dask cluster on 127.0.0.1 with 400 MB per worker."""
    with local_client("400MB") as c:
        yield c


@pytest.fixture(autouse=True)
def no_array_computed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check must never turn a Dask array into one numpy array on the client."""
    refuse_whole_arrays(monkeypatch)


def _lazy(x: np.ndarray, rows: int) -> Any:
    return da.from_array(x, chunks=(rows, *x.shape[1:]))


def _data(n: int, c: int, scenario: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, max(c, 2), n)
    slices = rng.integers(0, 9, n)
    if c == 0:  # regression
        p = rng.normal(size=n) * 3
        q = p + (rng.normal(size=n) * 1e-3 if scenario == "jitter" else 0.0)
        return {"y": p + rng.normal(size=n), "slices": slices, "a": p, "b": q}
    p = rng.dirichlet(np.ones(c), n).astype(np.float32)
    q = p.copy()
    if scenario == "jitter":
        q = (q * (1 + rng.normal(scale=1e-5, size=q.shape))).astype(np.float32)
        q /= q.sum(axis=1, keepdims=True)
    elif scenario == "fault":
        moved = rng.random(n) < 0.05
        q[moved] = rng.dirichlet(np.ones(c), int(moved.sum()))
    if c == 1:
        p, q = p[:, 0], q[:, 0]
    return {"y": y, "slices": slices, "a": p, "b": q}


def _runs(data: dict[str, np.ndarray], rows: int | None) -> list[TrainingRun]:
    def wrap(x: np.ndarray, k: int) -> Any:
        return x if rows is None else _lazy(x, rows + k)  # chunks that do not align

    return [
        TrainingRun(
            predictions=wrap(data[name], i),
            labels=wrap(data["y"], 3),
            slices=wrap(data["slices"], 5),
            name=name,
        )
        for i, name in enumerate(("a", "b"))
    ]


@pytest.mark.parametrize(
    ("c", "scenario"),
    [(2, "identical"), (2, "jitter"), (10, "fault"), (3, "jitter"), (1, "fault"), (0, "jitter")],
)
def test_the_verdict_on_dask_arrays_is_the_verdict_in_memory(
    client: Any, c: int, scenario: str
) -> None:
    data = _data(30_000, c, scenario, seed=c)
    # R² is not a mean of per-example values: not computed on Dask arrays.
    metrics = ["mse", "mae"] if c == 0 else None
    memory = ReproducibilityCheck(runs=_runs(data, None), metrics=metrics).run()
    lazy = ReproducibilityCheck(runs=_runs(data, 4_000), metrics=metrics).run()
    assert_same_result(lazy, memory)


def test_default_regression_metrics_leave_out_r2_on_dask(client: Any) -> None:
    data = _data(5_000, 0, "jitter", seed=3)
    result = ReproducibilityCheck(runs=_runs(data, 1_000)).run()
    names = {f.name for f in result.findings}
    assert {"metric.mse", "metric.mae"} <= names
    assert "metric.r2" not in names


def test_a_planted_fault_fails_on_dask_as_in_memory(client: Any) -> None:
    data = _data(30_000, 4, "fault", seed=11)
    lazy = ReproducibilityCheck(runs=_runs(data, 7_000)).run()
    assert lazy.status is Status.FAIL
    assert lazy.metrics["churn"] > 0.01


def test_exact_mode_and_class_indices_on_dask(client: Any) -> None:
    data = _data(20_000, 5, "fault", seed=4)
    data["a"], data["b"] = data["a"].argmax(axis=1), data["b"].argmax(axis=1)
    memory = ReproducibilityCheck(runs=_runs(data, None), exact=True).run()
    lazy = ReproducibilityCheck(runs=_runs(data, 3_000), exact=True).run()
    assert_same_result(lazy, memory)
    assert lazy.status is Status.FAIL


def test_metrics_that_need_every_example_are_skipped_with_the_reason(client: Any) -> None:
    data = _data(5_000, 2, "jitter", seed=2)
    result = ReproducibilityCheck(
        runs=_runs(data, 1_000), metrics=["accuracy", "log_loss", "roc_auc"]
    ).run()
    assert result.error is None, result.error
    assert "roc_auc" in result.details["skipped"]
    assert "Dask" in result.details["skipped"]["roc_auc"]
    assert "metric.accuracy" in {f.name for f in result.findings}


def test_labels_out_of_range_are_an_error_naming_them(client: Any) -> None:
    """As in memory, bad input raises (a suite reports it as an ERROR)."""
    data = _data(5_000, 3, "identical", seed=1)
    data["y"] = data["y"].copy()
    data["y"][4_321] = 7
    with pytest.raises(InvalidInput, match=r"'labels' must be class indices in \[0, 3\)"):
        ReproducibilityCheck(runs=_runs(data, 1_000)).run()


def test_what_dask_arrays_cannot_do_is_refused_clearly() -> None:
    x = _lazy(np.zeros((10, 2)), 5)
    with pytest.raises(InvalidInput, match="slice ids 0..k-1"):
        TrainingRun(predictions=x, slices=_lazy(np.array([-1] * 10), 5))
    with pytest.raises(InvalidInput, match="numeric"):
        TrainingRun(labels=_lazy(np.array(["a"] * 10), 5))
    with pytest.raises(InvalidInput, match="1-D"):
        TrainingRun(labels=_lazy(np.zeros((10, 2)), 5))
    runs = [
        TrainingRun(predictions=x, labels=_lazy(np.zeros(10, dtype=int), 5), name=name)
        for name in "ab"
    ]
    with pytest.raises(InvalidInput, match="'classes' cannot be used with Dask arrays"):
        ReproducibilityCheck(runs=runs, classes=["x", "y"]).run()


@pytest.mark.slow
def test_twenty_million_rows_on_workers_that_cannot_hold_them(client: Any) -> None:
    """2e7 rows (640 MB of predictions, labels and slices) on two workers of 400 MB: the
    check runs, and a 1e7-row subsample gives the same result in memory and on Dask."""
    n, rows = 20_000_000, 1_000_000
    runs = bench.generated(n, rows, seed=5)
    full = ReproducibilityCheck(runs=runs).run()
    assert full.error is None, full.error
    assert full.details["runs"][0]["n_examples"] == n
    lazy, memory = bench.both_ways(runs, n // 2)
    assert_same_result(lazy, memory)
    assert full.status is lazy.status
    assert [(f.name, f.status) for f in full.findings] == [
        (f.name, f.status) for f in lazy.findings
    ]


def test_numpy_predictions_with_dask_labels_and_slices_give_the_in_memory_result() -> None:
    """Mixed inputs: the numpy arrays are chunked like the Dask ones (local scheduler)."""
    data = _data(6_000, 3, "fault", seed=8)
    memory = ReproducibilityCheck(runs=_runs(data, None)).run()
    mixed = [
        TrainingRun(
            predictions=data[name],
            labels=_lazy(data["y"], 1_000),
            slices=_lazy(data["slices"], 1_500),
            name=name,
        )
        for name in ("a", "b")
    ]
    assert_same_result(ReproducibilityCheck(runs=mixed).run(), memory)


def test_dask_slices_that_the_pass_does_not_read() -> None:
    """Without labels there are no sliced metrics: the Dask slice ids are never read."""
    data = _data(3_000, 2, "fault", seed=9)
    runs = [
        TrainingRun(predictions=data[name], slices=_lazy(data["slices"], 500), name=name)
        for name in ("a", "b")
    ]
    result = ReproducibilityCheck(runs=runs).run()
    assert result.error is None, result.error
    assert result.status is Status.FAIL
    assert result.metrics["churn"] > 0
