"""Row kernels along a short class axis against plain numpy and a read of the data.

For (n, C) float32 and float64 probabilities (C = 2 and 10 by default, n = 1e7), in one
process and interleaved (every repeat runs each job once, in turn, so a burst of load from
other processes hits all of them), the median of ``--repeats`` runs of

- the read floor: every byte of the probabilities read once (`_harness.read_once`, an
  OR-reduction of the array viewed as 64-bit words); ``floor + labels`` also reads the
  int64 labels (the inputs of log loss);
- the write floor: a fresh (n,) int64 array written once (what returning one label per
  row costs at least: page faults and the writes);
- plain numpy: ``np.argmax(p, axis=1)``, ``np.isfinite(p).all()``,
  ``p.sum(axis=1, dtype=np.float64)``, and the per-example log loss and
  ``predicted_labels`` as mlchecks computed them before the row kernels;
- the row kernels of `mlchecks.stats._rows` and the metric code that now uses them.

The table gives each median and its ratio to the read floor (the target: argmax,
finiteness and row sums within 2-3x of it). Every job's answer is compared with numpy's
first; a mismatch stops the script.

Run: ``python benchmarks/bench_rows.py [--n 10000000] [--classes 2 10] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _harness import describe_machine, read_once

from mlchecks._validate import as_array, as_labels, as_probabilities, check_same_length
from mlchecks.stats import _rows
from mlchecks.stats._metric_inputs import (
    _check_unit_interval,
    _log_loss_terms,
    predicted_labels,
)


def old_log_loss_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-example log loss as computed before the row kernels (validation included)."""
    probs = as_probabilities(y_pred, "y_pred")
    _check_unit_interval(probs, "y_pred")
    n_classes = probs.shape[1] if probs.ndim == 2 else 2
    labels = as_labels(y_true, "y_true", n_classes=n_classes)
    check_same_length(y_true=labels, y_pred=probs)
    if probs.ndim == 2:
        sums = probs.sum(axis=1, dtype=np.float64)
        worst = int(np.argmax(np.abs(sums - 1.0)))
        assert abs(sums[worst] - 1.0) <= 1e-3
    picked = np.take_along_axis(probs, labels[:, None], axis=1)[:, 0].astype(np.float64)
    eps = float(np.finfo(probs.dtype).eps)
    terms: np.ndarray = -np.log(np.clip(picked, eps, 1.0))
    return terms


def old_predicted_labels(y_pred: Any) -> np.ndarray:
    """predicted_labels before: the (n, C) isfinite gate, then np.argmax(axis=1)."""
    array = np.asarray(y_pred)
    assert not (~np.isfinite(array)).any()
    labels: np.ndarray = np.argmax(array, axis=1).astype(np.int64, copy=False)
    return labels


def fresh_labels(n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.int64)
    out.fill(1)
    return out


def jobs(p: np.ndarray, y: np.ndarray) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (group, call). Groups: floor, numpy (before), mlchecks (the row kernels)."""
    n = len(p)
    return {
        "read floor": ("floor", lambda: read_once(p)),
        "read floor + labels": ("floor", lambda: read_once(p, y)),
        "write floor: fresh (n,) int64": ("floor", lambda: fresh_labels(n)),
        "np.argmax(p, axis=1)": ("numpy", lambda: np.argmax(p, axis=1)),
        "argmax_rows(p)": ("mlchecks", lambda: _rows.argmax_rows(p)),
        "argmax_rows(p, finite=True)": ("mlchecks", lambda: _rows.argmax_rows(p, finite=True)),
        "argmax_rows(p, finite=True, dtype=uint8)": (
            "mlchecks",
            lambda: _rows.argmax_rows(p, finite=True, dtype=np.uint8),
        ),
        "np.isfinite(p).all()": ("numpy", lambda: bool(np.isfinite(p).all())),
        "all_finite(p)": ("mlchecks", lambda: _rows.all_finite(p)),
        "p.sum(axis=1, dtype=float64)": ("numpy", lambda: p.sum(axis=1, dtype=np.float64)),
        "row_sums(p)": ("mlchecks", lambda: _rows.row_sums(p)),
        "probability check before (isfinite, min, max, row sums)": (
            "numpy",
            lambda: old_probability_check(p),
        ),
        "scan_rows(p, tolerance=1e-3)": (
            "mlchecks",
            lambda: _rows.scan_rows(p, tolerance=1e-3).sums_ok,
        ),
        "predicted_labels before": ("numpy", lambda: old_predicted_labels(p)),
        "predicted_labels(p)": ("mlchecks", lambda: predicted_labels(p)),
        "log-loss terms before": ("numpy", lambda: old_log_loss_terms(y, p)),
        "log-loss terms (_log_loss_terms)": ("mlchecks", lambda: _log_loss_terms(y, p)),
    }


def old_probability_check(p: np.ndarray) -> bool:
    """The probability validation of log loss before: isfinite, min, max, float64 sums."""
    as_array(p, "y_pred", ndim=(1, 2))
    _check_unit_interval(p, "y_pred")
    sums = p.sum(axis=1, dtype=np.float64)
    return bool(np.abs(sums - 1.0).max() <= 1e-3)


def check_answers(p: np.ndarray, y: np.ndarray) -> None:
    """Every kernel's answer equals numpy's (bitwise for labels and log loss)."""
    expected = np.argmax(p, axis=1)
    for got in (
        _rows.argmax_rows(p),
        _rows.argmax_rows(p, finite=True, dtype=np.uint8),
        predicted_labels(p),
    ):
        if not np.array_equal(expected, got):
            sys.exit("argmax mismatch")
    if _rows.all_finite(p) != bool(np.isfinite(p).all()):
        sys.exit("all_finite mismatch")
    if not np.allclose(p.sum(axis=1, dtype=np.float64), _rows.row_sums(p), rtol=0, atol=1e-5):
        sys.exit("row sums mismatch")
    if not np.array_equal(old_log_loss_terms(y, p), _log_loss_terms(y, p)):
        sys.exit("log loss mismatch")


def make(n: int, c: int, dtype: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.empty((n, c), dtype=dtype)
    step = 1 << 20
    for start in range(0, n, step):  # Dirichlet(1) rows, a block at a time
        block = rng.exponential(size=(min(step, n - start), c))
        p[start : start + step] = block / block.sum(axis=1, keepdims=True)
    return p, rng.integers(0, c, size=n)


def time_interleaved(
    table: dict[str, tuple[str, Callable[[], Any]]], repeats: int
) -> dict[str, float]:
    for _, call in table.values():  # warm-up: page faults, lazy imports
        call()
    times: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(repeats):
        for name, (_, call) in table.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    machine = describe_machine()
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"numpy {machine['versions'].get('numpy')}, Python {machine['python']}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"median of {args.repeats} interleaved runs; x floor = median / read floor median\n")
    for n in args.n:
        for c in args.classes:
            for dtype_name in args.dtypes:
                p, y = make(n, c, np.dtype(dtype_name), args.seed)
                check_answers(p, y)
                table = jobs(p, y)
                medians = time_interleaved(table, args.repeats)
                floor = medians["read floor"]
                print(f"#### n = {n:.0e}, C = {c}, {dtype_name} ({p.nbytes / 2**20:,.0f} MiB)\n")
                print("| job | kind | median ms | x read floor |")
                print("| --- | --- | ---: | ---: |")
                for name, (group, _) in table.items():
                    ms = medians[name] * 1e3
                    print(f"| {name} | {group} | {ms:,.1f} | {medians[name] / floor:.1f} |")
                print(flush=True)
                del p, y, table
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
