"""QualityCheck on Dask arrays: the one pass runs on the workers, only tables travel.

Written as a user with data on a Dask cluster writes it: labels, predictions, the previous
model's predictions and slice ids as Dask arrays, given to `QualityCheck` as they are. The
verdict must be the in-memory one on the same data. The workers are real processes of a
`distributed.LocalCluster` on 127.0.0.1, and no Dask array may be read whole on the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _dask_cluster import assert_same_result, local_client, refuse_whole_arrays

from mlchecks import Status
from mlchecks.checks import QualityCheck
from mlchecks.exceptions import InvalidInput

pytestmark = pytest.mark.integration

da = pytest.importorskip(
    "dask.array", reason="dask is not installed (pip install 'dask[distributed]')"
)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_client("400MB") as c:
        yield c


@pytest.fixture(autouse=True)
def no_array_computed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_whole_arrays(monkeypatch)


def _data(n: int, c: int, *, fault: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Labels, a baseline and a candidate of the same quality (or worse in region 3)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    region = rng.integers(0, 6, n)

    def model(skill: float) -> np.ndarray:
        p = rng.dirichlet(np.ones(c), n)
        p[np.arange(n), y] += skill
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    baseline, candidate = model(0.6), model(0.6)
    if fault:  # the candidate guesses in one region
        hit = region == 3
        candidate[hit] = rng.dirichlet(np.ones(c), int(hit.sum())).astype(np.float32)
    return {"y": y, "region": region, "candidate": candidate, "baseline": baseline}


def _check(data: dict[str, np.ndarray], wrap: Any, **kwargs: Any) -> QualityCheck:
    settings: dict[str, Any] = {
        "metric_limits": {"accuracy": 0.4, "log_loss": 1.5},
        "max_regression": {"accuracy": 0.01, "log_loss": 0.02, "f1_macro": 0.01},
    }
    settings.update(kwargs)
    return QualityCheck(
        labels=wrap(data["y"]),
        predictions=wrap(data["candidate"]),
        baseline_predictions=wrap(data["baseline"]),
        slices={"region": wrap(data["region"])},
        **settings,
    )


def _lazy(rows: int) -> Any:
    return lambda x: da.from_array(x, chunks=(rows, *x.shape[1:]))


def _same(x: np.ndarray) -> np.ndarray:
    return x


@pytest.mark.parametrize("c", [2, 3, 10])
def test_a_healthy_candidate_passes_on_dask_as_in_memory(client: Any, c: int) -> None:
    data = _data(40_000, c, seed=c)
    lazy = _check(data, _lazy(7_001)).run()
    memory = _check(data, _same).run()
    assert memory.status is Status.PASS
    assert_same_result(lazy, memory)


def test_a_regression_in_one_slice_fails_on_dask_as_in_memory(client: Any) -> None:
    data = _data(40_000, 3, fault=True)
    lazy = _check(data, _lazy(9_000)).run()
    memory = _check(data, _same).run()
    assert memory.status is Status.FAIL
    assert memory.finding("slice.regression.accuracy").status is Status.FAIL
    assert_same_result(lazy, memory)


def test_chunks_that_do_not_align_and_numpy_columns_mix(client: Any) -> None:
    data = _data(30_000, 2, fault=True, seed=4)
    check = QualityCheck(
        labels=da.from_array(data["y"], chunks=4_000),
        predictions=da.from_array(data["candidate"], chunks=(6_500, 2)),
        baseline_predictions=data["baseline"],  # in memory beside the Dask arrays
        slices={"region": da.from_array(data["region"], chunks=10_000)},
        max_regression={"accuracy": 0.01, "brier": 0.01},
    )
    memory = QualityCheck(
        labels=data["y"],
        predictions=data["candidate"],
        baseline_predictions=data["baseline"],
        slices={"region": data["region"]},
        max_regression={"accuracy": 0.01, "brier": 0.01},
    ).run()
    assert memory.status is Status.FAIL
    assert_same_result(check.run(), memory)


def test_probabilities_of_class_1_and_predicted_classes(client: Any) -> None:
    data = _data(30_000, 2, fault=True, seed=5)
    scores = {k: v[:, 1].copy() for k, v in data.items() if k in ("candidate", "baseline")}
    classes = {k: v.argmax(axis=1) for k, v in data.items() if k in ("candidate", "baseline")}
    for outputs, limits in (
        (scores, {"accuracy": 0.01, "log_loss": 0.02}),
        (classes, {"accuracy": 0.01, "f1": 0.01}),
    ):
        both = {**data, **outputs}
        lazy = _check(both, _lazy(8_000), metric_limits={}, max_regression=limits).run()
        memory = _check(both, _same, metric_limits={}, max_regression=limits).run()
        assert memory.status is Status.FAIL
        assert_same_result(lazy, memory)


def test_nan_rows_fail_as_in_memory(client: Any) -> None:
    data = _data(20_000, 3, seed=6)
    data["candidate"][[5, 17_000]] = np.nan
    lazy = _check(data, _lazy(6_000)).run()
    memory = _check(data, _same).run()
    assert memory.finding("predictions").status is Status.FAIL
    assert_same_result(lazy, memory)


def test_what_dask_arrays_cannot_do_is_refused_clearly(client: Any) -> None:
    data = _data(5_000, 2)
    with pytest.raises(InvalidInput, match=r"'metric_limits' 'roc_auc' cannot be computed"):
        _check(data, _lazy(1_000), metric_limits={"roc_auc": 0.6})
    with pytest.raises(InvalidInput, match="'classes' cannot be used with Dask arrays"):
        _check(data, _lazy(1_000), classes=["no", "yes"])
    with pytest.raises(InvalidInput, match="task='regression' is not supported"):
        _check(data, _lazy(1_000), task="regression", metric_limits={"accuracy": 0.1})
    wrong = {**data, "y": data["y"] + 1}  # labels 1..2 for two probability columns
    with pytest.raises(InvalidInput, match=r"'labels' must be class indices in \[0, 2\)"):
        _check(wrong, _lazy(1_000)).run()
    classes = {**data, "candidate": data["candidate"].argmax(axis=1)}
    with pytest.raises(InvalidInput, match="rows from example"):
        _check(classes, _lazy(1_000)).run()  # a log loss of predicted classes
