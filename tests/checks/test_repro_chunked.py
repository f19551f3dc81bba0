"""ReproducibilityCheck on inputs larger than memory: iterators of chunks and memory maps.

Both give exactly the in-memory verdict (the same arrays are read); memory holds one chunk
at a time while an iterator is consumed.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks.checks import ReproducibilityCheck, TrainingRun
from mlchecks.exceptions import InvalidInput


def _data(n: int, c: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(c), n).astype(np.float32)
    q = p.copy()
    moved = rng.random(n) < 0.03
    q[moved] = rng.dirichlet(np.ones(c), int(moved.sum()))
    return {"a": p, "b": q, "y": rng.integers(0, c, n), "slices": rng.integers(0, 6, n)}


def chunks(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """What an inference loop yields: one batch of rows at a time."""
    for start in range(0, len(x), size):
        yield x[start : start + size].copy()


def _result_of(runs: list[TrainingRun]) -> dict[str, Any]:
    return ReproducibilityCheck(runs=runs).run().to_dict() | {"duration_s": 0.0}


def test_iterators_of_chunks_give_the_in_memory_result() -> None:
    data = _data(10_000, 4, seed=1)
    memory = [
        TrainingRun(predictions=data[k], labels=data["y"], slices=data["slices"], name=k)
        for k in "ab"
    ]
    chunked = [
        TrainingRun(
            predictions=chunks(data[k], 999),
            labels=chunks(data["y"], 2_000),
            slices={"slice": chunks(data["slices"], 333)},
            name=k,
        )
        for k in "ab"
    ]
    result = _result_of(chunked)
    assert result == _result_of(memory)
    # The planted fault (3% of rows moved to another class) fails from chunks as in memory.
    assert result["status"] == "fail"
    assert result["metrics"]["churn"] > 0.01
    assert not chunked[0].predictions.flags.writeable  # type: ignore[union-attr]


def test_memory_mapped_npy_files_give_the_in_memory_result(tmp_path: Path) -> None:
    data = _data(10_000, 3, seed=2)
    for key, value in data.items():
        np.save(tmp_path / f"{key}.npy", value)

    def load(key: str) -> np.ndarray:
        return np.load(tmp_path / f"{key}.npy", mmap_mode="r")

    mapped = [
        TrainingRun(predictions=load(k), labels=load("y"), slices=load("slices"), name=k)
        for k in "ab"
    ]
    memory = [
        TrainingRun(predictions=data[k], labels=data["y"], slices=data["slices"], name=k)
        for k in "ab"
    ]
    assert _result_of(mapped) == _result_of(memory)


def test_an_iterator_is_read_one_chunk_at_a_time() -> None:
    """Consuming 80 MB of chunks allocates about two chunks' worth (1.6 MB each), not the
    whole: writing them, then checking the memory map block by block."""
    rng = np.random.default_rng(3)
    chunk = rng.random((100_000, 2)).astype(np.float64)

    def batches() -> Iterator[np.ndarray]:
        for _ in range(50):
            yield chunk + 0.0  # a fresh 1.6 MB batch each time, as a model would return

    tracemalloc.start()
    try:
        run = TrainingRun(predictions=batches(), name="a")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.predictions is not None
    assert run.predictions.shape == (5_000_000, 2)
    assert peak < 3 * chunk.nbytes, peak  # the batch and its bytes on the way to the file


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([np.zeros((3, 2)), np.zeros((3, 3))], r"'predictions' chunk 1 must have the dtype and"),
        ([np.zeros((3, 2)), np.zeros((3, 2), np.float32)], r"chunk 1 must have the dtype"),
        ([np.zeros((3, 2, 2))], r"'predictions' chunk 0 must be 1-D or 2-D"),
        ([np.array([object()])], r"'predictions' chunk 0 must be numeric or text"),
        ([], r"'predictions' must not be empty \(got an iterator of no rows\)"),
        ([np.zeros((0, 2))], r"'predictions' must not be empty"),
    ],
)
def test_bad_chunks_are_named(parts: list[np.ndarray], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        TrainingRun(predictions=iter(parts))


def test_chunks_of_labels_and_slices_are_checked_like_arrays() -> None:
    with pytest.raises(InvalidInput, match="'predictions' and 'labels' must have the same"):
        TrainingRun(predictions=np.zeros((4, 2)), labels=iter([np.zeros(3, int)]))
    with pytest.raises(InvalidInput, match=r"'slices\['s'\]' chunk 0 must be 1-D"):
        TrainingRun(predictions=np.zeros((4, 2)), slices={"s": iter([np.zeros((4, 2), int)])})
