"""Dask arrays as inputs: recognised without importing dask, validated without computing.

A check that reads its inputs in one pass of mergeable tables (`ReproducibilityCheck`)
sends that pass to the Dask workers that hold the data, so only the tables travel; these
helpers check what can be checked from an array's metadata (dimensions, dtype, length) and
compute the few numbers the check needs up front in one `dask.compute`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput

if TYPE_CHECKING:
    from mlchecks.stats.sliced import SliceCodes

__all__ = [
    "compute",
    "dask_module",
    "is_dask",
    "lazy_array",
    "lazy_slices",
    "row_blocks",
    "take_rows",
]


def is_dask(value: object) -> bool:
    """Whether ``value`` is a Dask array (or collection), without importing dask.

    >>> is_dask([1, 2]), is_dask(np.zeros(2))
    (False, False)
    """
    module = type(value).__module__
    return (module == "dask" or module.startswith("dask.")) and hasattr(value, "__dask_graph__")


def lazy_array(value: Any, name: str, ndim: tuple[int, ...]) -> Any:
    """A Dask array checked from its metadata: dimensions, a numeric dtype, a known length.

    Booleans become int64 (as in memory). Values (finite, in range) are checked when the
    check reads them.

    Raises:
        InvalidInput: naming ``name``, for another number of dimensions, a non-numeric
            dtype, no rows, or chunks of unknown size.
    """
    if not hasattr(value, "ndim") or not hasattr(value, "chunks"):
        raise InvalidInput(f"'{name}' must be a Dask array (got {describe(value)})")
    if value.ndim not in ndim:
        dims = " or ".join(f"{d}-D" for d in ndim)
        raise InvalidInput(f"'{name}' must be {dims} (got a {value.ndim}-D Dask array)")
    kind = np.dtype(value.dtype).kind
    if kind not in "biuf":
        raise InvalidInput(
            f"'{name}' must be numeric (got a Dask array of {value.dtype}): a Dask array of "
            "class names must be encoded as integer class indices first"
        )
    if any(np.isnan(size) for size in value.chunks[0]):
        raise InvalidInput(
            f"'{name}' is a Dask array whose chunk sizes are unknown: call "
            f"`{name}.compute_chunk_sizes()` first"
        )
    if value.shape[0] == 0:
        raise InvalidInput(f"'{name}' must not be empty (got a Dask array of 0 rows)")
    if value.ndim == 2 and value.shape[1] == 0:
        raise InvalidInput(f"'{name}' must have at least one column (got shape {value.shape})")
    return value.astype(np.int64) if kind == "b" else value


def dask_module(name: str = "dask") -> Any:
    """``dask`` or one of its modules, imported on first use (an optional extra)."""
    return importlib.import_module(name)


def compute(*values: Any) -> tuple[Any, ...]:
    """`dask.compute` of ``values`` (one pass over what they share)."""
    return tuple(dask_module().compute(*values))


def take_rows(array: Any, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` as a numpy array (a few rows of a Dask array, computed)."""
    if is_dask(array):
        order = np.argsort(rows, kind="stable")
        taken = np.asarray(array[rows[order]].compute())
        out = np.empty_like(taken)
        out[order] = taken
        return out
    return np.asarray(array[rows])


def row_blocks(columns: list[Any]) -> tuple[list[int], list[list[Any]]]:
    """The same chunks of rows of every column, as delayed numpy blocks.

    ``columns`` are Dask arrays, numpy arrays or None, of equal length, at least one a
    Dask array; all are cut where the first Dask array's row chunks end (a 2-D array's
    columns stay together). Returns each chunk's first row and, per column, its blocks
    (None for a None column).
    """
    da = dask_module("dask.array")
    rows = next(x for x in columns if x is not None and is_dask(x)).chunks[0]
    blocks: list[list[Any]] = []
    for x in columns:
        if x is None:
            blocks.append([None] * len(rows))
            continue
        x = x if is_dask(x) else da.from_array(x, chunks=(rows, *x.shape[1:]))
        x = x.rechunk((rows,) + ((-1,) if x.ndim == 2 else ()))
        pieces = x.to_delayed()
        blocks.append(list(pieces[:, 0] if x.ndim == 2 else pieces))
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int).tolist()
    return starts, blocks


def lazy_slices(value: Any, name: str) -> SliceCodes:
    """Dask slice ids ``0..k-1`` as codes, like integer ids in memory (slice ``i`` is named
    ``str(i)``); the codes stay lazy, their range is computed on the workers.

    Raises:
        InvalidInput: naming ``name``, for ids that are not integers ``0..k-1`` (with ``k``
            at most the number of examples, or `MAX_EMPTY_SLICES`).
    """
    from mlchecks.stats.sliced import MAX_EMPTY_SLICES, SliceCodes

    codes = lazy_array(value, name, ndim=(1,))
    if codes.dtype.kind not in "iu":
        raise InvalidInput(
            f"'{name}' must be integer slice ids 0..k-1 when it is a Dask array (got "
            f"{codes.dtype}); encode other slice labels first"
        )
    low, high = (int(v) for v in compute(codes.min(), codes.max()))
    if low < 0 or high >= max(len(codes), MAX_EMPTY_SLICES):
        raise InvalidInput(
            f"'{name}' must be integer slice ids 0..k-1 when it is a Dask array (got ids from "
            f"{low} to {high}); encode sparse or negative ids first"
        )
    return SliceCodes(codes, tuple(str(i) for i in range(high + 1)))
