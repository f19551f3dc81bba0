"""`QualityCheck` end to end on probabilities, against the time to read its inputs once.

The data (built once, untimed): ``--rows`` labelled examples (default 1e6) in ``--slices``
slices (default 100), ``--classes`` classes (2 or 10), and the (n, C) float32 class
probabilities of a previous model and of a candidate that is the previous model plus a
little noise (both about 91% accurate; they disagree on a few percent of the examples).
Labels and slice ids are int64, as most pipelines produce them.

Jobs, timed in this one process, interleaved (one repeat of every job, then the next
round), median of ``--repeats``:

- ``floor``: read every input byte once (`_harness.read_once`): labels, slice ids and both
  probability arrays. No check that looks at all its inputs can be faster.
- ``default``: the usual release gate: ``metric_limits={"accuracy": 0.85}`` and
  ``max_regression={"accuracy": 0.01}`` against the previous model, overall and in every
  slice (paired tests, Holm across slices).
- ``four``: limits and regression tests of accuracy, log loss, ROC AUC and F1, overall and
  in every slice (binary only: ROC AUC and F1 are binary metrics; with ``--classes 10``
  the job uses ``f1_macro`` and leaves out ROC AUC).

For each job: the median wall time, its ratio to the floor's median, the median CPU time
(`time.process_time`, all threads) and the extra peak memory per row: the peak that
`tracemalloc` sees during one extra, untimed run (numpy reports its allocations to it)
divided by the number of rows.

Run: ``python benchmarks/bench_quality_check.py --rows 10000000 --classes 10 --repeats 5``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import describe_machine, read_once

from mlchecks.checks.quality import QualityCheck

State = dict[str, Any]


def make_data(rows: int, classes: int, slices: int, seed: int) -> State:
    """Labels, slice ids and two models' float32 probabilities (see the module docstring)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    codes = rng.integers(0, slices, rows)
    # Logits: the true class gets a margin, so the previous model is about 91% accurate.
    margin = 1.9 if classes == 2 else 3.1
    base = np.empty((rows, classes), dtype=np.float32)
    cand = np.empty((rows, classes), dtype=np.float32)
    step = 1 << 20
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        logits = rng.normal(0.0, 1.0, (stop - start, classes))
        logits[np.arange(stop - start), y[start:stop]] += margin
        noisy = logits + rng.normal(0.0, 0.15, logits.shape)
        for out, z in ((base, logits), (cand, noisy)):
            z = np.exp(z - z.max(axis=1, keepdims=True))
            z /= z.sum(axis=1, keepdims=True)
            out[start:stop] = z
    return {"y": y, "codes": codes, "base": base, "cand": cand, "classes": classes}


def floor(s: State) -> Any:
    return read_once(s["y"], s["codes"], s["cand"], s["base"])


def default_check(s: State) -> Any:
    result = QualityCheck(
        labels=s["y"],
        predictions=s["cand"],
        baseline_predictions=s["base"],
        slices={"segment": s["codes"]},
        metric_limits={"accuracy": 0.85},
        max_regression={"accuracy": 0.01},
    ).run()
    return result


def four_metric_names(classes: int) -> list[str]:
    """Accuracy, log loss, ROC AUC and F1; for more than 2 classes macro F1 and no AUC."""
    if classes == 2:
        return ["accuracy", "log_loss", "roc_auc", "f1"]
    return ["accuracy", "log_loss", "f1_macro"]


def four_check(s: State) -> Any:
    names = four_metric_names(s["classes"])
    limits = {"accuracy": 0.85, "log_loss": 0.5, "roc_auc": 0.9, "f1": 0.85, "f1_macro": 0.85}
    margins = {"accuracy": 0.01, "log_loss": 0.02, "roc_auc": 0.01, "f1": 0.01, "f1_macro": 0.01}
    result = QualityCheck(
        labels=s["y"],
        predictions=s["cand"],
        baseline_predictions=s["base"],
        slices={"segment": s["codes"]},
        metric_limits={m: limits[m] for m in names},
        max_regression={m: margins[m] for m in names},
    ).run()
    return result


JOBS: dict[str, Callable[[State], Any]] = {
    "floor": floor,
    "default": default_check,
    "four": four_check,
}


def summary(value: Any) -> str:
    """A few numbers of a job's answer, to see that the runs computed the same thing."""
    if isinstance(value, int):
        return f"or={value:#x}"
    table = value.details["table"]
    tested = [r for r in table if r["slice"] != "all" and r["verdict"] != "skipped"]
    return (
        f"{value.status.label}, {len(table)} rows, {len(tested)} slice tests, "
        f"accuracy {value.metrics['accuracy']:.5f}"
    )


def peak_bytes(job: Callable[[State], Any], s: State) -> int:
    """The peak of traced allocations during one run, above what was allocated before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        job(s)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6, help="examples (1e6, 1e7, ...)")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=list(JOBS), help="jobs to run")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows = int(args.rows)
    names = ["floor", *[n for n in JOBS if n != "floor" and (not args.only or n in args.only)]]

    start = time.perf_counter()
    s = make_data(rows, args.classes, args.slices, args.seed)
    setup = time.perf_counter() - start
    input_bytes = sum(s[k].nbytes for k in ("y", "codes", "cand", "base"))
    load_before = os.getloadavg()
    checks = {name: summary(JOBS[name](s)) for name in names}  # warm-up, untimed
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            c0, t0 = time.process_time(), time.perf_counter()
            JOBS[name](s)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    memory = {}
    if not args.no_memory:
        memory = {name: peak_bytes(JOBS[name], s) / rows for name in names}
    load_after = os.getloadavg()

    floor_median = statistics.median(wall["floor"])
    print(
        f"QualityCheck end to end: {rows:,} rows, {args.classes} classes, {args.slices} "
        f"slices, float32 probabilities; inputs {input_bytes / 2**20:,.0f} MiB; setup "
        f"{setup:.1f} s; {args.repeats} repeats, interleaved"
    )
    print(f"{'job':<8} {'median':>10} {'min':>10} {'x floor':>8} {'CPU':>10} {'B/row':>7}  answer")
    results = []
    for name in names:
        median = statistics.median(wall[name])
        row = {
            "job": name,
            "median_s": median,
            "min_s": min(wall[name]),
            "x_floor": median / floor_median,
            "cpu_s": statistics.median(cpu[name]),
            "extra_bytes_per_row": memory.get(name, float("nan")),
            "answer": checks[name],
        }
        results.append(row)
        print(
            f"{name:<8} {_ms(median):>10} {_ms(row['min_s']):>10} {row['x_floor']:>7.1f}x "
            f"{_ms(row['cpu_s']):>10} {row['extra_bytes_per_row']:>7.1f}  {checks[name]}"
        )
    four = ", ".join(four_metric_names(args.classes))
    print(f"four = {four}")
    print(
        "load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in load_after)}"
    )
    document = {
        "rows": rows,
        "classes": args.classes,
        "slices": args.slices,
        "repeats": args.repeats,
        "four_metrics": four_metric_names(args.classes),
        "load_before": load_before,
        "load_after": load_after,
        "machine": describe_machine(),
        "jobs": results,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return document


if __name__ == "__main__":
    main()
