"""Sliced metrics of two models: mlchecks vs a hand-written numpy floor vs pandas groupby.

The data: n examples (default 1e7) in k slices (default 100), C classes (default 10),
true labels ``y`` and the predicted classes of two models ``a`` and ``b`` (a is right
90% of the time, b changes 2% of a's predictions). Slice codes are ``intp`` and labels
``int64``, as `mlchecks.stats.sliced.encode_slices` and most pipelines produce them.

Two tasks (``--task``):

- ``accuracy``: the accuracy of each model in every slice.
- ``confusion``: the confusion matrix of each model in every slice (k x C x C counts,
  from which precision, recall and F1 per slice follow).

The floor reads every input once (`_harness.read_once`): no correct kernel can be faster.
"numpy" jobs are what a careful user writes by hand; "mlchecks" jobs call the public
kernels (`sliced_metric`, `sliced_accuracy`, `sliced_confusion`) and, for accuracy, the
whole `QualityCheck` with a per-slice paired regression test and Holm's correction; the
pandas jobs group an existing DataFrame (its construction is not timed).

Run: ``python benchmarks/bench_sliced.py --task accuracy [--n 10000000] [--repeats 7]``
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _harness import Job, main, read_once

from mlchecks.checks.quality import QualityCheck
from mlchecks.conditions import NoWorseThan
from mlchecks.stats.sliced import sliced_accuracy, sliced_confusion, sliced_metric

State = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("accuracy", "confusion"), default="accuracy")
    parser.add_argument("--n", type=int, default=10_000_000, help="examples")
    parser.add_argument("--slices", type=int, default=100, help="slices")
    parser.add_argument("--classes", type=int, default=10, help="classes")
    parser.add_argument("--seed", type=int, default=0)


def make_data(params: dict[str, Any]) -> State:
    """Codes, labels and two models' predicted classes (see the module docstring)."""
    n, k, c = params["n"], params["slices"], params["classes"]
    rng = np.random.default_rng(params["seed"])
    codes = rng.integers(0, k, n).astype(np.intp)
    y = rng.integers(0, c, n)
    wrong = rng.random(n) < 0.1
    pred_a = np.where(wrong, (y + rng.integers(1, c, n)) % c, y)
    del wrong
    changed = rng.random(n) < 0.02
    pred_b = np.where(changed, (pred_a + 1) % c, pred_a)
    del changed
    return {"codes": codes, "y": y, "a": pred_a, "b": pred_b, "k": k, "c": c}


def with_frame(params: dict[str, Any]) -> State:
    import pandas as pd

    state = make_data(params)
    state["df"] = pd.DataFrame(
        {"slice": state["codes"], "y": state["y"], "a": state["a"], "b": state["b"]}
    )
    for key in ("codes", "y", "a", "b"):
        del state[key]
    return state


# --------------------------------------------------------------------------- accuracy


def floor(s: State) -> int:
    return read_once(s["codes"], s["y"], s["a"], s["b"])


def numpy_two_bincounts(s: State) -> tuple[float, float]:
    """The obvious hand-written version: one weighted bincount per model."""
    codes, y, k = s["codes"], s["y"], s["k"]
    counts = np.bincount(codes, minlength=k)
    acc_a = np.bincount(codes, weights=s["a"] == y, minlength=k) / counts
    acc_b = np.bincount(codes, weights=s["b"] == y, minlength=k) / counts
    return float(acc_a[7]), float(acc_b[7])


def numpy_fused(s: State) -> tuple[float, float]:
    """The best hand-written version: one bincount over (slice, a right, b right)."""
    codes, y, k = s["codes"], s["y"], s["k"]
    key = codes * 4
    key += (s["a"] == y) * 2
    key += s["b"] == y
    table = np.bincount(key, minlength=4 * k).reshape(k, 4)
    counts = table.sum(axis=1)
    acc_a = (table[:, 2] + table[:, 3]) / counts
    acc_b = (table[:, 1] + table[:, 3]) / counts
    return float(acc_a[7]), float(acc_b[7])


def numpy_fused_chunked(s: State) -> tuple[float, float]:
    """The fused bincount on blocks of 65,536 rows: temporaries stay in cache and are reused."""
    codes, y, a, b, k = s["codes"], s["y"], s["a"], s["b"], s["k"]
    chunk = 1 << 16
    table = np.zeros(4 * k, dtype=np.int64)
    key = np.empty(chunk, dtype=np.intp)
    hit = np.empty(chunk, dtype=bool)
    for start in range(0, len(codes), chunk):
        stop = min(start + chunk, len(codes))
        kb, hb = key[: stop - start], hit[: stop - start]
        np.left_shift(codes[start:stop], 2, out=kb)
        np.equal(a[start:stop], y[start:stop], out=hb)
        kb += hb
        kb += hb
        np.equal(b[start:stop], y[start:stop], out=hb)
        kb += hb
        table += np.bincount(kb, minlength=4 * k)
    cells = table.reshape(k, 4)
    counts = cells.sum(axis=1)
    acc_a = (cells[:, 2] + cells[:, 3]) / counts
    acc_b = (cells[:, 1] + cells[:, 3]) / counts
    return float(acc_a[7]), float(acc_b[7])


def mlchecks_sliced_metric(s: State) -> tuple[float, float]:
    acc_a = sliced_metric("accuracy", s["codes"], s["k"], s["y"], s["a"])
    acc_b = sliced_metric("accuracy", s["codes"], s["k"], s["y"], s["b"])
    return float(acc_a[7]), float(acc_b[7])


def mlchecks_sliced_accuracy(s: State) -> tuple[float, float]:
    y = s["y"]
    _, acc_a = sliced_accuracy(s["codes"], s["k"], s["a"] == y)
    _, acc_b = sliced_accuracy(s["codes"], s["k"], s["b"] == y)
    return float(acc_a[7]), float(acc_b[7])


def mlchecks_quality_check(s: State) -> tuple[float, float]:
    check = QualityCheck(
        labels=s["y"],
        predictions=s["a"],
        baseline_predictions=s["b"],
        slices=s["codes"],
        max_regression={"accuracy": NoWorseThan(abs=0.01)},
    )
    result = check.run()
    row = next(r for r in result.details["table"] if r["slice"] == "slice=7")
    return float(row["candidate"]), float(row["baseline"])


def pandas_groupby(s: State) -> tuple[float, float]:
    df = s["df"]
    correct = df.assign(a=df["a"] == df["y"], b=df["b"] == df["y"])
    acc = correct.groupby("slice")[["a", "b"]].mean()
    return float(acc["a"].iloc[7]), float(acc["b"].iloc[7])


def pandas_groupby_with_frame(s: State) -> tuple[float, float]:
    """The same, counting the construction of the DataFrame from the arrays."""
    import pandas as pd

    df = pd.DataFrame({"slice": s["codes"], "y": s["y"], "a": s["a"], "b": s["b"]})
    return pandas_groupby({"df": df})


# --------------------------------------------------------------------------- confusion


def numpy_confusion(s: State) -> tuple[float, float]:
    """Hand-written: one bincount per model over the fused (slice, true, predicted) key."""
    codes, y, k, c = s["codes"], s["y"], s["k"], s["c"]
    base = codes * (c * c)
    base += y * c
    tables = [np.bincount(base + p, minlength=k * c * c).reshape(k, c, c) for p in (s["a"], s["b"])]
    return float(tables[0][7, 3, 3]), float(tables[1][7, 3, 3])


def numpy_confusion_chunked(s: State) -> tuple[float, float]:
    """The fused confusion key on blocks of 65,536 rows, buffers reused."""
    codes, y, k, c = s["codes"], s["y"], s["k"], s["c"]
    chunk = 1 << 16
    cells = k * c * c
    tables = [np.zeros(cells, dtype=np.int64), np.zeros(cells, dtype=np.int64)]
    base = np.empty(chunk, dtype=np.intp)
    key = np.empty(chunk, dtype=np.intp)
    for start in range(0, len(codes), chunk):
        stop = min(start + chunk, len(codes))
        bb, kb = base[: stop - start], key[: stop - start]
        np.multiply(codes[start:stop], c * c, out=bb)
        bb += y[start:stop] * c
        for table, pred in zip(tables, (s["a"], s["b"]), strict=True):
            np.add(bb, pred[start:stop], out=kb)
            table += np.bincount(kb, minlength=cells)
    a, b = (t.reshape(k, c, c) for t in tables)
    return float(a[7, 3, 3]), float(b[7, 3, 3])


def mlchecks_confusion(s: State) -> tuple[float, float]:
    tables = [sliced_confusion(s["codes"], s["k"], s["y"], p, s["c"]) for p in (s["a"], s["b"])]
    return float(tables[0][7, 3, 3]), float(tables[1][7, 3, 3])


def pandas_confusion(s: State) -> tuple[float, float]:
    df = s["df"]
    a = df.groupby(["slice", "y", "a"]).size()
    b = df.groupby(["slice", "y", "b"]).size()
    return float(a.loc[(7, 3, 3)]), float(b.loc[(7, 3, 3)])


def jobs(params: dict[str, Any]) -> list[Job]:
    read = Job("floor: read inputs once", "floor", make_data, floor, "codes, y, a, b read once")
    if params["task"] == "confusion":
        return [
            read,
            Job("numpy fused bincount", "numpy", make_data, numpy_confusion, "one per model"),
            Job(
                "numpy fused, chunked",
                "numpy",
                make_data,
                numpy_confusion_chunked,
                "65,536-row blocks",
            ),
            Job(
                "mlchecks sliced_confusion",
                "mlchecks",
                make_data,
                mlchecks_confusion,
                "once per model",
                reference=True,
            ),
            Job("pandas groupby.size", "pandas", with_frame, pandas_confusion, "once per model"),
        ]
    return [
        read,
        Job("numpy 3 bincounts", "numpy", make_data, numpy_two_bincounts, "weighted, per model"),
        Job("numpy fused bincount", "numpy", make_data, numpy_fused, "(slice, a ok, b ok) key"),
        Job("numpy fused, chunked", "numpy", make_data, numpy_fused_chunked, "65,536-row blocks"),
        Job(
            "mlchecks sliced_metric",
            "mlchecks",
            make_data,
            mlchecks_sliced_metric,
            'sliced_metric("accuracy", ...) per model',
            reference=True,
        ),
        Job(
            "mlchecks sliced_accuracy",
            "mlchecks",
            make_data,
            mlchecks_sliced_accuracy,
            "sliced_accuracy(codes, k, pred == y) per model",
        ),
        Job(
            "mlchecks QualityCheck",
            "mlchecks",
            make_data,
            mlchecks_quality_check,
            "paired regression test in every slice + Holm",
        ),
        Job("pandas groupby.mean", "pandas", with_frame, pandas_groupby, "existing DataFrame"),
        Job(
            "pandas DataFrame + groupby",
            "pandas",
            make_data,
            pandas_groupby_with_frame,
            "DataFrame built from the arrays",
        ),
    ]


if __name__ == "__main__":
    main(
        "Sliced metrics of two models (bench_sliced.py)",
        jobs,
        add_arguments=add_arguments,
        default_repeats=7,
    )
