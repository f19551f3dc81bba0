"""ROC AUC's midrank tables against the sorts they are made of, interleaved in one process.

Times, at ``--rows`` (default 1e7) float32 scores of two models and 100 slices: the read
floor of the inputs (labels, slice codes, both score columns), `np.argsort` of one model's
float32 scores, the 64-bit key sort `rank_tables` uses (`_Order`), and `rank_tables` for
one model overall, and for two models overall and per slice (what `QualityCheck` computes
for ``max_regression={"roc_auc": ...}``). Medians of ``--repeats`` interleaved rounds, and
each as a multiple of the floor. Run: ``python benchmarks/bench_auc_tables.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _checks_jobs import make_arrays

from mlchecks.stats._auc_tables import _Order, rank_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = int(args.rows)
    data = make_arrays(n, 2)
    y, s = data["y"], data["s"]
    a, b = data["a"][:, 1], data["previous"][:, 1]

    def floor() -> Any:
        return [np.bitwise_or.reduce(x.view(np.uint64).reshape(-1)) for x in (y, s)] + [
            np.bitwise_or.reduce(x.view(np.uint64).reshape(-1))
            for x in (data["a"], data["previous"])
        ]

    jobs: dict[str, Callable[[], Any]] = {
        "floor (y, s, both (n, 2) float32)": floor,
        "np.argsort(float32 scores)": lambda: np.argsort(a),
        "64-bit key sort (_Order)": lambda: _Order(a),
        "rank_tables, one model, overall": lambda: rank_tables(y, a, None, [(None, 1)]),
        "rank_tables, two models, overall + 100 slices": lambda: rank_tables(
            y, a, b, [(None, 1), (s, 100)]
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for job in jobs.values():
        job()  # warm-up
    for _ in range(args.repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["floor (y, s, both (n, 2) float32)"])
    print(f"rows {n:,}, repeats {args.repeats}, numpy {np.__version__}")
    print("| job | median | x floor |")
    print("| --- | ---: | ---: |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} s | {median / base:,.0f}x |")


if __name__ == "__main__":
    main()
