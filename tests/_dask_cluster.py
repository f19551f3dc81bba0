"""Shared by the Dask tests: a small real cluster on 127.0.0.1 and result comparison.

The verdict on Dask arrays must be the in-memory one on the same data: the same status,
findings and details, numbers equal up to the rounding of sums.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from mlchecks.result import Result


@contextmanager
def local_client(memory_limit: str | None = "400MB", *, daemon: bool = True) -> Iterator[Any]:
    """A client of a two-process Dask cluster on 127.0.0.1, each worker with one thread
    (``daemon=False``: workers that may start processes of their own)."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')"
    )
    import dask

    with (
        dask.config.set({"distributed.worker.daemon": daemon}),
        distributed.LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            # Not None: that still binds the HTTP server to port 8787 and warns (an error
            # here) when the port is taken; port 0 is any free port.
            dashboard_address="127.0.0.1:0",
            memory_limit=memory_limit,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def refuse_whole_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make turning a Dask array into one numpy array on the client fail the test."""
    da = pytest.importorskip("dask.array")

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a Dask array of shape {self.shape} was read whole")

    monkeypatch.setattr(da.Array, "__array__", refuse)


def assert_same_result(lazy: Result, memory: Result) -> None:
    """Equal verdicts: statuses, findings and every number up to the rounding of sums."""
    assert lazy.error is None, lazy.error
    assert lazy.status is memory.status
    assert [(f.name, f.status) for f in lazy.findings] == [
        (f.name, f.status) for f in memory.findings
    ]
    _same(lazy.metrics, memory.metrics, "metrics")
    _same(lazy.details, memory.details, "details")


def _same(a: Any, b: Any, path: str) -> None:
    if isinstance(b, dict):
        assert isinstance(a, dict), path
        assert a.keys() == b.keys(), path
        for key in b:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(b, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(b, float) and isinstance(a, float):
        if math.isnan(b):
            assert math.isnan(a), path
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path
