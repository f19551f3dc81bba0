"""QualityCheck on inputs larger than memory: iterators of chunks and memory maps give the
result of the same data in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks.checks import QualityCheck
from mlchecks.exceptions import InvalidInput


def _data(n: int, c: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    base = p.copy()
    worse = rng.random(n) < 0.05
    base[worse] = np.roll(base[worse], 1, axis=1)
    return {
        "y": y,
        "p": p.astype(np.float32),
        "base": base.astype(np.float32),
        "region": rng.integers(0, 8, n),
    }


def chunks(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(x), size):
        yield x[start : start + size]


def _result(**inputs: Any) -> dict[str, Any]:
    check = QualityCheck(
        metric_limits={"accuracy": 0.5, "log_loss": 1.5},
        max_regression={"accuracy": 0.01, "log_loss": 0.02},
        **inputs,
    )
    return check.run().to_dict() | {"duration_s": 0.0}


def test_iterators_of_chunks_give_the_in_memory_result() -> None:
    d = _data(20_000, 3, seed=1)
    memory = _result(
        labels=d["y"],
        predictions=d["p"],
        baseline_predictions=d["base"],
        slices={"region": d["region"]},
    )
    chunked = _result(
        labels=chunks(d["y"], 4_000),
        predictions=chunks(d["p"], 1_234),
        baseline_predictions=chunks(d["base"], 5_000),
        slices={"region": chunks(d["region"], 777)},
    )
    assert chunked == memory
    assert memory["status"] != "error"


def test_memory_mapped_npy_files_give_the_in_memory_result(tmp_path: Path) -> None:
    d = _data(20_000, 4, seed=2)
    for key, value in d.items():
        np.save(tmp_path / f"{key}.npy", value)

    def load(key: str) -> np.ndarray:
        array: np.ndarray = np.load(tmp_path / f"{key}.npy", mmap_mode="r")
        return array

    memory = _result(
        labels=d["y"], predictions=d["p"], baseline_predictions=d["base"], slices=d["region"]
    )
    mapped = _result(
        labels=load("y"),
        predictions=load("p"),
        baseline_predictions=load("base"),
        slices=load("region"),
    )
    assert mapped == memory


def test_a_regression_fails_from_chunks_as_in_memory() -> None:
    """The planted fault: the candidate is the worse model (5% of rows shifted a class)."""
    d = _data(20_000, 3, seed=3)
    memory = _result(
        labels=d["y"],
        predictions=d["base"],
        baseline_predictions=d["p"],
        slices={"region": d["region"]},
    )
    chunked = _result(
        labels=chunks(d["y"], 3_000),
        predictions=chunks(d["base"], 2_500),
        baseline_predictions=chunks(d["p"], 4_096),
        slices={"region": chunks(d["region"], 999)},
    )
    assert chunked == memory
    assert chunked["status"] == "fail"
    failed = {f["name"] for f in chunked["findings"] if f["status"] == "fail"}
    assert "regression.accuracy" in failed


def test_a_bad_chunk_is_named() -> None:
    with pytest.raises(InvalidInput, match="'baseline_predictions' chunk 1 must have the dtype"):
        QualityCheck(
            labels=[0, 1, 0, 1],
            predictions=np.full((4, 2), 0.5),
            baseline_predictions=iter([np.full((2, 2), 0.5), np.full((2, 3), 0.5)]),
        )
