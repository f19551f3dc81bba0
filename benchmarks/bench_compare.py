"""Example-by-example comparison of two runs' predictions, (n, C) float32 (default 1e7 x 2).

Run A's probabilities ``a`` are (p, 1 - p) for C = 2 (``--classes``), uniform random rows
normalized to sum to 1 otherwise. Run B (``--scenario``):

- ``identical``: a copy of A, what a reproducible pipeline gives (the common case);
- ``jitter``: A plus float32 noise of about 1e-6 in every value, what nondeterministic
  GPU kernels give: every row differs, a few argmax flips near p = 0.5;
- ``sparse``: 1% of rows differ by up to 0.1.

Jobs: the floor reads both arrays once (`_harness.read_once`); "numpy" computes by hand the
same numbers as `compare_predictions` (max and mean absolute difference, rows beyond
``atol``, top-1 churn), and `np.array_equal` answers only "identical?";
``argmax(axis=1)`` of both arrays is the predicted classes alone;
`numpy.testing.assert_allclose` is what a test suite calls (it raises on a difference, which
is caught); pandas ``DataFrame.compare`` lists the differing cells (frames built outside
the timed call). mlchecks runs `compare_predictions` with and without the (sampled)
rank correlation.

Run: ``python benchmarks/bench_compare.py --scenario identical [--n 10000000]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _harness import Job, main, read_once

from mlchecks.stats.compare import compare_predictions

State = dict[str, Any]
ATOL = 1e-5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=10_000_000, help="examples")
    parser.add_argument(
        "--scenario", choices=("identical", "jitter", "sparse"), default="identical"
    )
    parser.add_argument("--classes", type=int, default=2, help="columns of each array")
    parser.add_argument("--seed", type=int, default=0)


def make_data(params: dict[str, Any]) -> State:
    n, classes = params["n"], params["classes"]
    rng = np.random.default_rng(params["seed"])
    if classes == 2:
        p = rng.random(n, dtype=np.float32)
        a = np.empty((n, 2), dtype=np.float32)
        a[:, 1] = p
        a[:, 0] = 1.0 - p
        del p
    else:
        a = rng.random((n, classes), dtype=np.float32)
        a /= a.sum(axis=1, keepdims=True)
    if params["scenario"] == "identical":
        b = a.copy()
    elif params["scenario"] == "jitter":
        noise = rng.normal(0.0, 1e-6, n).astype(np.float32)
        b = a.copy()
        b[:, 1] += noise
        b[:, 0] -= noise
        del noise
    else:
        b = a.copy()
        rows = rng.choice(n, n // 100, replace=False)
        shift = rng.uniform(-0.1, 0.1, rows.size).astype(np.float32)
        if classes == 2:
            b[rows, 1] = np.clip(b[rows, 1] + shift, 0.0, 1.0)
            b[rows, 0] = 1.0 - b[rows, 1]
        else:
            b[rows, 1] += shift
            b[rows, 0] -= shift
        del rows, shift
    return {"a": a, "b": b}


def with_frames(params: dict[str, Any]) -> State:
    import pandas as pd

    state = make_data(params)
    return {"a": pd.DataFrame(state["a"]), "b": pd.DataFrame(state["b"])}


def floor(s: State) -> int:
    return read_once(s["a"], s["b"])


def numpy_array_equal(s: State) -> float:
    return float(np.array_equal(s["a"], s["b"]))


def numpy_argmax(s: State) -> float:
    """Only the predicted classes of both runs: DESIGN §6's "argmax costs many reads"."""
    return float(s["a"].argmax(axis=1)[0] + s["b"].argmax(axis=1)[0])


def numpy_by_hand(s: State) -> tuple[float, float]:
    """The numbers compare_predictions reports, computed the obvious way on whole arrays."""
    a, b = s["a"], s["b"]
    diff = np.abs(a - b)
    row_max = diff.max(axis=1)
    beyond = int(np.count_nonzero(row_max > ATOL))
    _ = float(row_max.max()), float(diff.mean(dtype=np.float64))
    churn = int(np.count_nonzero(a.argmax(axis=1) != b.argmax(axis=1)))
    return float(churn), float(beyond)


def assert_allclose(s: State) -> float:
    try:
        np.testing.assert_allclose(s["a"], s["b"], rtol=0.0, atol=ATOL)
    except AssertionError:
        return 0.0
    return 1.0


def pandas_compare(s: State) -> float:
    return float(len(s["a"].compare(s["b"])))


def mlchecks_compare(s: State) -> tuple[float, float]:
    c = compare_predictions(s["a"], s["b"], atol=ATOL)
    return float(c.churn_count), float(c.count_beyond_tolerance)


def mlchecks_compare_no_rank(s: State) -> tuple[float, float]:
    c = compare_predictions(s["a"], s["b"], atol=ATOL, rank_correlation=False)
    return float(c.churn_count), float(c.count_beyond_tolerance)


JOBS = [
    Job("floor: read inputs once", "floor", make_data, floor, "one read of a and b"),
    Job("numpy array_equal", "numpy", make_data, numpy_array_equal, "identical? only"),
    Job("numpy argmax(axis=1) x2", "numpy", make_data, numpy_argmax, "predicted classes only"),
    Job("numpy by hand", "numpy", make_data, numpy_by_hand, "same stats, whole arrays"),
    Job("numpy assert_allclose", "numpy", make_data, assert_allclose, "rtol=0, atol=1e-5"),
    Job(
        "mlchecks compare",
        "mlchecks",
        make_data,
        mlchecks_compare,
        "compare_predictions(a, b, atol=1e-5)",
        reference=True,
    ),
    Job(
        "mlchecks compare, no rank",
        "mlchecks",
        make_data,
        mlchecks_compare_no_rank,
        "rank_correlation=False",
    ),
    Job("pandas DataFrame.compare", "pandas", with_frames, pandas_compare, "differing cells"),
]


if __name__ == "__main__":
    main(
        "Example-by-example comparison of two (n, 2) float32 arrays (bench_compare.py)",
        JOBS,
        add_arguments=add_arguments,
    )
