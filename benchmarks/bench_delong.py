"""DeLong's test of two correlated ROC AUCs at n = 1e6.

Binary labels (30% positives) and two models' float64 scores ``y + noise`` with noise
standard deviations 1.0 and 1.1 that share half of their variance, so the two AUCs are
close (about 0.76 and 0.74) and strongly correlated.

Jobs:

- the floor reads the labels and both score vectors once;
- "numpy sort": one ``np.argsort`` of each score vector: every exact AUC needs the scores'
  order, so this is the floor of any rank-based method;
- mlchecks ``delong``: both AUCs, their covariance and the paired z-test (midranks,
  O(n log n));
- mlchecks ``roc_auc_midrank`` twice: the AUCs alone;
- scikit-learn ``roc_auc_score`` twice: the AUCs alone, no variance or test;
- ``scipy.stats.bootstrap(paired=True)`` of the AUC difference, what one does without
  DeLong: it runs ``--bootstrap-resamples`` resamples (default 20, each a full AUC pair
  on 1e6 rows); the docs scale its time to 2,000 resamples.

Run: ``python benchmarks/bench_delong.py [--n 1000000]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _harness import Job, main, read_once

from mlchecks.stats.auc import delong, roc_auc_midrank

State = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1_000_000, help="examples")
    parser.add_argument("--bootstrap-resamples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)


def make_data(params: dict[str, Any]) -> State:
    n = params["n"]
    rng = np.random.default_rng(params["seed"])
    y = (rng.random(n) < 0.3).astype(np.int64)
    shared = rng.normal(0.0, 1.0, n)
    a = y + np.sqrt(0.5) * shared + np.sqrt(0.5) * rng.normal(0.0, 1.0, n)
    b = y + np.sqrt(0.5) * 1.1 * shared + np.sqrt(0.5) * 1.1 * rng.normal(0.0, 1.0, n)
    return {"y": y, "a": a, "b": b, "resamples": params["bootstrap_resamples"]}


def floor(s: State) -> int:
    return read_once(s["y"], s["a"], s["b"])


def numpy_sort(s: State) -> float:
    order_a = np.argsort(s["a"])
    order_b = np.argsort(s["b"])
    return float(order_a[0] + order_b[0])


def mlchecks_delong(s: State) -> tuple[float, float, float]:
    res = delong(s["y"], s["a"], s["b"])
    return res.auc_a, res.auc_b, res.pvalue


def mlchecks_auc(s: State) -> tuple[float, float]:
    return roc_auc_midrank(s["y"], s["a"]), roc_auc_midrank(s["y"], s["b"])


def sklearn_auc(s: State) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(s["y"], s["a"])), float(roc_auc_score(s["y"], s["b"]))


def _auc_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, a) - roc_auc_score(y, b))


def scipy_bootstrap(s: State) -> tuple[float, float]:
    from scipy.stats import bootstrap

    res = bootstrap(
        (s["y"], s["a"], s["b"]),
        _auc_difference,
        paired=True,
        vectorized=False,
        n_resamples=s["resamples"],
        method="percentile",
        rng=np.random.default_rng(1),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


JOBS = [
    Job("floor: read inputs once", "floor", make_data, floor, "one read of y, a, b"),
    Job("numpy argsort a and b", "numpy", make_data, numpy_sort, "the sort every AUC needs"),
    Job(
        "mlchecks delong",
        "mlchecks",
        make_data,
        mlchecks_delong,
        "two AUCs, covariance, z-test",
        reference=True,
    ),
    Job("mlchecks roc_auc_midrank x2", "mlchecks", make_data, mlchecks_auc, "AUCs only"),
    Job("sklearn roc_auc_score x2", "sklearn", make_data, sklearn_auc, "AUCs only"),
    Job(
        "scipy bootstrap (few resamples)",
        "scipy",
        make_data,
        scipy_bootstrap,
        "paired, percentile, --bootstrap-resamples",
        repeats=3,
    ),
]


if __name__ == "__main__":
    main(
        "DeLong's test of two correlated AUCs (bench_delong.py)", JOBS, add_arguments=add_arguments
    )
