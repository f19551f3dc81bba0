"""Inputs given as an iterator of chunks, kept in a memory-mapped file instead of in memory.

A run's predictions (or labels, or slice ids) may come from an inference loop, one batch at
a time, and be larger than memory. `spill` writes each chunk, as it arrives, to an
anonymous temporary file (created in ``MLCHECKS_TMPDIR`` or the system's temporary folder
and unlinked at once, so nothing is left behind) and returns a read-only memory map of it:
memory holds one chunk at a time, the operating system pages the file in as the check reads
it, and the check reads it exactly as an array in memory, so the verdict is the same.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput

__all__ = ["is_chunks", "spill"]


def is_chunks(value: object) -> bool:
    """Whether ``value`` is an iterator of chunks (a generator, ``iter(...)``, ``map(...)``).

    Lists and arrays are not: a list is an array of rows.

    >>> is_chunks(iter([[1, 2]])), is_chunks([[1, 2]]), is_chunks(np.zeros(2))
    (True, False, False)
    """
    return isinstance(value, Iterator)


def spill(chunks: Iterator[Any], name: str, ndim: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """Write an iterator of aligned chunks to a temporary file; return a memory map of it.

    Every chunk is an array (or nested list) of rows of the same dtype and row shape: (m,)
    or (m, C) with the same C.

    Raises:
        InvalidInput: naming ``name`` and the chunk (counted from 0): a chunk that is not
            numeric or text, of another dtype, row shape or number of dimensions than the
            first, or no rows at all.

    >>> x = spill(iter([np.arange(3.0), np.arange(2.0)]), "predictions")
    >>> x.tolist(), x.flags.writeable
    ([0.0, 1.0, 2.0, 0.0, 1.0], False)
    """
    folder = os.environ.get("MLCHECKS_TMPDIR") or None
    with tempfile.TemporaryFile(dir=folder) as file:
        dtype: np.dtype[Any] | None = None
        row_shape: tuple[int, ...] = ()
        rows = 0
        for index, chunk in enumerate(chunks):
            array = np.asarray(chunk)
            where = f"'{name}' chunk {index}"
            if array.dtype.kind not in "biufUS":
                raise InvalidInput(f"{where} must be numeric or text (got {describe(array)})")
            if dtype is None:
                if array.ndim not in ndim:
                    dims = " or ".join(f"{d}-D" for d in ndim)
                    raise InvalidInput(f"{where} must be {dims} (got {describe(array)})")
                dtype, row_shape = array.dtype, array.shape[1:]
            elif array.dtype != dtype or array.shape[1:] != row_shape or array.ndim == 0:
                raise InvalidInput(
                    f"{where} must have the dtype and row shape of chunk 0 ({dtype}, rows of "
                    f"shape {row_shape}) (got {describe(array)})"
                )
            np.ascontiguousarray(array).tofile(file)  # no bytes copy of the chunk
            rows += len(array)
        if dtype is None or rows == 0:
            raise InvalidInput(f"'{name}' must not be empty (got an iterator of no rows)")
        file.flush()
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    # The map keeps the (already unlinked) file's pages until the array is gone.
    return np.frombuffer(mapped, dtype=dtype).reshape((rows, *row_shape))
