"""A 95% CI of a paired accuracy difference: 1e6 rows, 2,000 resamples.

Two models' per-example correctness on the same n examples (default 1e6): they disagree
on 5% of the examples (a is the one that is right in 52% of those) and agree elsewhere
(both right 90% of the time), so the true difference is 0.002. The statistic is
``accuracy_a - accuracy_b`` with a 95% percentile interval.

Jobs:

- the floor reads both correctness arrays once;
- mlchecks ``bootstrap_counts``: `discordant_counts` (one pass) and 2,000 multinomial draws
  of the 3 cells that matter (only a right, only b right, the rest): resampling rows and
  counting them is the same as drawing the counts, so a resample costs O(cells), not O(n);
- mlchecks ``paired_accuracy_difference``: the analytic (Wald) interval, no resampling;
- mlchecks ``bootstrap_rows``: the same statistic by resampling rows (vectorized, chunked);
- numpy by hand: the multinomial draw written directly (what the counts trick costs);
- ``scipy.stats.bootstrap(paired=True, vectorized=True, method="percentile")`` with
  ``batch=50`` (2,000 x 1e6 resample indices at once would need 16 GB). scipy's default
  BCa method needs a jackknife of n leave-one-out samples, O(n^2) here, so it is not run.

Run: ``python benchmarks/bench_bootstrap.py [--n 1000000] [--resamples 2000]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _harness import Job, main, read_once

from mlchecks.stats.inference import discordant_counts, paired_accuracy_difference
from mlchecks.stats.intervals import bootstrap_counts, bootstrap_rows

State = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1_000_000, help="examples")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)


def make_data(params: dict[str, Any]) -> State:
    n = params["n"]
    rng = np.random.default_rng(params["seed"])
    both = rng.random(n) < 0.9
    discordant = rng.random(n) < 0.05
    a_side = rng.random(n) < 0.52
    correct_a = np.where(discordant, a_side, both)
    correct_b = np.where(discordant, ~a_side, both)
    return {"a": correct_a, "b": correct_b, "resamples": params["resamples"], "seed": 1}


def _difference(table: np.ndarray) -> np.ndarray:
    """(only a right - only b right) / n for a (r, 3) table of resampled counts."""
    difference: np.ndarray = (table[:, 0] - table[:, 1]) / table.sum(axis=1)
    return difference


def floor(s: State) -> int:
    return read_once(s["a"], s["b"])


def mlchecks_counts(s: State) -> tuple[float, float]:
    only_a, only_b, n = discordant_counts(s["a"], s["b"])
    res = bootstrap_counts(
        [only_a, only_b, n - only_a - only_b],
        _difference,
        n_resamples=s["resamples"],
        rng=s["seed"],
    )
    return res.ci.low, res.ci.high


def mlchecks_wald(s: State) -> tuple[float, float]:
    res = paired_accuracy_difference(s["a"], s["b"])
    return res.ci.low, res.ci.high


def _row_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    difference: np.ndarray = np.mean(a, axis=axis) - np.mean(b, axis=axis)
    return difference


def mlchecks_rows(s: State) -> tuple[float, float]:
    res = bootstrap_rows(
        _row_difference,
        s["a"],
        s["b"],
        n_resamples=s["resamples"],
        rng=s["seed"],
        vectorized=True,
    )
    return res.ci.low, res.ci.high


def numpy_multinomial(s: State) -> tuple[float, float]:
    a, b = s["a"], s["b"]
    n = len(a)
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    p = np.array([only_a, only_b, n - only_a - only_b]) / n
    draws = np.random.default_rng(s["seed"]).multinomial(n, p, size=s["resamples"])
    low, high = np.quantile((draws[:, 0] - draws[:, 1]) / n, [0.025, 0.975])
    return float(low), float(high)


def scipy_bootstrap(s: State) -> tuple[float, float]:
    from scipy.stats import bootstrap

    res = bootstrap(
        (s["a"], s["b"]),
        _row_difference,
        paired=True,
        vectorized=True,
        n_resamples=s["resamples"],
        batch=50,
        method="percentile",
        confidence_level=0.95,
        rng=np.random.default_rng(s["seed"]),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


JOBS = [
    Job("floor: read inputs once", "floor", make_data, floor, "one read of both arrays"),
    Job(
        "mlchecks bootstrap_counts",
        "mlchecks",
        make_data,
        mlchecks_counts,
        "discordant_counts + multinomial resampling",
        reference=True,
    ),
    Job("mlchecks Wald (no resampling)", "mlchecks", make_data, mlchecks_wald, "analytic CI"),
    Job(
        "mlchecks bootstrap_rows",
        "mlchecks",
        make_data,
        mlchecks_rows,
        "row resampling, vectorized",
        repeats=3,
    ),
    Job("numpy multinomial by hand", "numpy", make_data, numpy_multinomial, "counts by hand"),
    Job(
        "scipy.stats.bootstrap",
        "scipy",
        make_data,
        scipy_bootstrap,
        "paired, vectorized, percentile, batch=50",
        repeats=3,
    ),
]


if __name__ == "__main__":
    main(
        "95% CI of a paired accuracy difference (bench_bootstrap.py)",
        JOBS,
        add_arguments=add_arguments,
    )
