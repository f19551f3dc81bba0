"""The data and the jobs of ``bench_checks.py``: whole checks, their peers and read floors.

Every job is a `_harness.Job` with ``extra={"group": ..., "rows": ...}``. A *group* is one
question ("are these two training runs reproducible?"), answered by one mlchecks check (the
group's ``reference``) and by the peers a user would write instead, and bounded below by the
group's floor (``role="floor"``: `read_once` of every input of the check). The timed call
builds the check from the arrays and runs it, as a user does (``TrainingRun`` validates its
arrays and ``QualityCheck`` encodes its slices when built, so building is part of the cost).
A peer starts from the same arrays and computes the same numbers (point estimates and the
sums a standard error needs, no tests, no report).

The inputs of one size are built once and shared by all the jobs of that size (`Inputs`):
labels ``y`` (int64, C classes), slice codes ``s`` (int64, 100 slices), and four (n, C)
float32 probability arrays: run ``a`` (softmax of N(0, 1) logits plus 2 on the true class:
about 92% accurate at C = 2), ``jitter`` (``a`` times 1 + N(0, 1e-6), value by value: the
same model rerun with nondeterministic kernels, every row differs), ``same`` (a copy of
``a``: a reproducible rerun) and ``previous`` (the logits of ``a`` plus N(0, 0.5): the
model serving today, which disagrees with ``a`` on a few percent of the rows). At
n = 1e7 and C = 10 they take 1.8 GB; at 3e7, 5.3 GB (16 n (C + 1) bytes).

The checks that work one record at a time in Python run on fewer rows (at C = 2 only):
``CanaryJudge`` on ``min(rows, --python-rows-cap)`` records (default cap 1e6),
``LossDecreasesCheck`` on as many loss steps, and ``PipelineCheck`` on
``min(rows, --pipeline-rows-cap)`` held-out rows (default 1e5: one request per row).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from _harness import Job, read_once

__all__ = [
    "DEFAULT_METRICS",
    "Inputs",
    "all_jobs",
    "four_metrics",
    "have",
    "make_arrays",
    "notes",
]

State = dict[str, Any]
Params = dict[str, Any]

#: Rows generated at a time (bounds the float64 temporaries of the data generation).
CHUNK = 1 << 20
#: The metrics of the "default" QualityCheck: ReproducibilityCheck's default metrics.
DEFAULT_METRICS = ("accuracy", "log_loss")
SLICES = 100


def four_metrics(classes: int) -> tuple[str, ...]:
    """Accuracy, log loss, ROC AUC and F1; for C > 2 F1 macro and no AUC (binary only)."""
    if classes == 2:
        return ("accuracy", "log_loss", "roc_auc", "f1")
    return ("accuracy", "log_loss", "f1_macro")


def have(module: str) -> bool:
    """True when ``module`` can be imported (a peer is skipped with a note otherwise)."""
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- inputs


class Inputs:
    """The arrays of one size, built on first use and shared by every job of the size."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self._cache: State = {}

    def arrays(self) -> State:
        """``y``, ``s``, ``a``, ``jitter``, ``same``, ``previous`` (module docstring)."""
        if not self._cache:
            self._cache.update(make_arrays(self.params["rows"], self.params["classes"]))
        return self._cache


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def make_arrays(n: int, classes: int, seed: int = 0) -> State:
    """Labels, slices and the four probability arrays, generated `CHUNK` rows at a time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    s = rng.integers(0, SLICES, n)
    out = {k: np.empty((n, classes), dtype=np.float32) for k in ("a", "jitter", "previous")}
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        logits = rng.normal(size=(hi - lo, classes))
        logits[np.arange(hi - lo), y[lo:hi]] += 2.0
        a = _softmax(logits)
        out["a"][lo:hi] = a
        noise = rng.normal(0.0, 1e-6, a.shape).astype(np.float32)
        out["jitter"][lo:hi] = a * (np.float32(1.0) + noise)
        out["previous"][lo:hi] = _softmax(logits + rng.normal(0.0, 0.5, logits.shape))
    out["same"] = out["a"].copy()
    return {"y": y, "s": s, **out}


# --------------------------------------------------------------------------- peers


def _log_loss_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    eps = np.finfo(p.dtype).eps
    terms: np.ndarray = -np.log(np.maximum(p[np.arange(len(y)), y], eps).astype(np.float64))
    return terms


def numpy_pair(y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, ...]:
    """By hand: churn, correctness churn, both models' accuracy and log loss overall and in
    every slice, and the sums of squares of the paired differences per slice (bincounts)."""
    ka, kb = a.argmax(axis=1), b.argmax(axis=1)
    ok_a, ok_b = ka == y, kb == y
    ll_a, ll_b = _log_loss_terms(a, y), _log_loss_terms(b, y)
    counts = np.bincount(s, minlength=SLICES)
    sums = [np.bincount(s, weights=w, minlength=SLICES) for w in (ok_a, ok_b, ll_a, ll_b)]
    d_ok = ok_a.astype(np.float64) - ok_b
    d_ll = ll_a - ll_b
    for d in (d_ok, d_ll):
        np.bincount(s, weights=d * d, minlength=SLICES)
    n = counts.sum()
    return float(np.mean(ka != kb)), float(sums[0].sum() / n), float(sums[1].sum() / n)


def pandas_pair(y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, ...]:
    """numpy's argmax and log-probabilities, then one ``DataFrame.groupby`` over the slices."""
    import pandas as pd

    ka, kb = a.argmax(axis=1), b.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "slice": s,
            "churn": ka != kb,
            "ok_a": ka == y,
            "ok_b": kb == y,
            "ll_a": _log_loss_terms(a, y),
            "ll_b": _log_loss_terms(b, y),
        }
    )
    frame["d_ok"] = frame["ok_a"].astype(np.float64) - frame["ok_b"]
    frame["d_ll"] = frame["ll_a"] - frame["ll_b"]
    frame.groupby("slice").agg(["mean", "std"])
    overall = frame[["churn", "ok_a", "ok_b"]].mean()
    return float(overall["churn"]), float(overall["ok_a"]), float(overall["ok_b"])


def _slice_rows(s: np.ndarray) -> list[np.ndarray]:
    """The rows of each slice, from one stable argsort: a per-slice loop's index."""
    order = np.argsort(s, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(s, minlength=SLICES))])
    return [order[bounds[j] : bounds[j + 1]] for j in range(SLICES)]


def sklearn_pair(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray, metrics: tuple[str, ...]
) -> tuple[float, ...]:
    """scikit-learn's metrics of both models, overall and in each slice (a loop over the
    slices' rows), and churn from ``accuracy_score`` of the two predicted classes."""
    from sklearn import metrics as skm

    labels = np.arange(a.shape[1])
    ka, kb = a.argmax(axis=1), b.argmax(axis=1)

    def compute(rows: Any) -> list[float]:
        yy = y[rows]
        values = []
        for p, k in ((a[rows], ka[rows]), (b[rows], kb[rows])):
            for name in metrics:
                if name == "accuracy":
                    values.append(float(skm.accuracy_score(yy, k)))
                elif name == "log_loss":
                    values.append(float(skm.log_loss(yy, p, labels=labels)))
                elif name == "roc_auc":
                    values.append(float(skm.roc_auc_score(yy, p[:, 1])))
                elif name == "f1":
                    values.append(float(skm.f1_score(yy, k, zero_division=0)))
                elif name == "f1_macro":
                    f1 = skm.f1_score(yy, k, average="macro", labels=labels, zero_division=0)
                    values.append(float(f1))
        return values

    compute(slice(None))
    for rows in _slice_rows(s):
        compute(rows)
    accuracy = [float(skm.accuracy_score(y, k)) for k in (ka, kb)]
    return 1.0 - float(skm.accuracy_score(ka, kb)), *accuracy


def numpy_quality(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray, metrics: tuple[str, ...]
) -> tuple[float, ...]:
    """By hand: accuracy, log loss, F1 (confusion bincounts) and ROC AUC (ranks within each
    slice from one lexsort, ties broken by position) of both models, overall and per slice."""
    n, k = len(y), a.shape[1]
    counts = np.bincount(s, minlength=SLICES)
    starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    preds = [a.argmax(axis=1), b.argmax(axis=1)]
    out = [float(np.mean(preds[0] != preds[1]))]
    for p, pred in zip((a, b), preds, strict=True):
        ok = pred == y
        np.bincount(s, weights=ok, minlength=SLICES)
        np.bincount(s, weights=_log_loss_terms(p, y), minlength=SLICES)
        np.bincount((s * k + y) * k + pred, minlength=SLICES * k * k)
        if "roc_auc" in metrics:
            order = np.lexsort((p[:, 1], s))
            ranks = np.empty(n, dtype=np.float64)
            ranks[order] = np.arange(n) - np.repeat(starts, counts) + 1.0
            positive = y == 1
            np.bincount(s, weights=ranks * positive, minlength=SLICES)
        out.append(float(np.mean(ok)))
    return tuple(out)


def pandas_quality(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray, metrics: tuple[str, ...]
) -> tuple[float, ...]:
    """A DataFrame per model: groupby means (accuracy, log loss) and sums (F1's counts), and
    ``groupby(...).rank()`` (midranks within each slice) for ROC AUC."""
    import pandas as pd

    preds = [a.argmax(axis=1), b.argmax(axis=1)]
    out = [float(np.mean(preds[0] != preds[1]))]
    for p, pred in zip((a, b), preds, strict=True):
        frame = pd.DataFrame({"slice": s, "ok": pred == y, "ll": _log_loss_terms(p, y)})
        frame["tp"] = (pred == 1) & (y == 1)
        frame["fp"] = (pred == 1) & (y != 1)
        frame["fn"] = (pred != 1) & (y == 1)
        frame.groupby("slice")[["ok", "ll", "tp", "fp", "fn"]].agg(["mean", "sum"])
        if "roc_auc" in metrics:
            frame["pos"] = y == 1
            frame["rank"] = pd.Series(p[:, 1]).groupby(s).rank()
            frame["pos_rank"] = frame["rank"] * frame["pos"]
            frame.groupby("slice")[["pos", "pos_rank"]].sum()
        out.append(float(frame["ok"].mean()))
    return tuple(out)


# --------------------------------------------------------------------------- mlchecks


def mlchecks_reproducibility(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[Any, ...]:
    """``ReproducibilityCheck`` of two `TrainingRun` at its defaults."""
    from mlchecks.checks import ReproducibilityCheck, TrainingRun

    runs = [
        TrainingRun(predictions=a, labels=y, slices={"slice": s}, name="a"),
        TrainingRun(predictions=b, labels=y, slices={"slice": s}, name="b"),
    ]
    result = ReproducibilityCheck(runs).run()
    return result.status.label, float(result.metrics["churn"])


def mlchecks_quality(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, b: np.ndarray, metrics: tuple[str, ...]
) -> tuple[Any, ...]:
    """``QualityCheck`` of candidate ``a`` against the previous model ``b``, overall and in
    every slice, with a margin of 0.01 on each metric."""
    from mlchecks.checks import QualityCheck

    result = QualityCheck(
        labels=y,
        predictions=a,
        baseline_predictions=b,
        slices={"slice": s},
        max_regression=dict.fromkeys(metrics, 0.01),
    ).run()
    return (
        result.status.label,
        float(result.metrics["accuracy"]),
        float(result.metrics["accuracy.baseline"]),
    )


# --------------------------------------------------------------------------- groups


def _group(
    inputs: Inputs,
    group: str,
    other: str,
    floor_what: str,
    check: tuple[str, Callable[..., Any], str],
    peers: list[tuple[str, str, Callable[..., Any], str]],
) -> list[Job]:
    """Floor, one mlchecks check and its peers, all on ``y``, ``s``, ``a`` and ``other``."""

    def setup(params: Params) -> State:
        data = inputs.arrays()
        return {"args": (data["y"], data["s"], data["a"], data[other])}

    def floor(st: State) -> int:
        return read_once(*st["args"])

    def call(fn: Callable[..., Any]) -> Callable[[State], Any]:
        return lambda st: fn(*st["args"])

    check_name, check_fn, check_what = check
    ref = f"{group}: {check_name}"
    jobs = [
        Job(f"{group}: floor", "floor", setup, floor, floor_what),
        Job(ref, "mlchecks", setup, call(check_fn), check_what, reference=True),
    ]
    for name, role, fn, what in peers:
        module = {"pandas": "pandas", "sklearn": "sklearn"}.get(role)
        if module is None or have(module):
            jobs.append(Job(f"{group}: {name}", role, setup, call(fn), what, versus=ref))
    return jobs


def array_jobs(params: Params, inputs: Inputs) -> list[Job]:
    """ReproducibilityCheck (two pairs of runs) and QualityCheck (two sets of metrics)."""
    pair_peers: list[tuple[str, str, Callable[..., Any], str]] = [
        ("numpy by hand", "numpy", numpy_pair, "argmax, churn, accuracy, log loss per slice"),
        ("pandas groupby", "pandas", pandas_pair, "numpy argmax, then groupby(slice).agg"),
        (
            "sklearn metrics",
            "sklearn",
            partial(sklearn_pair, metrics=DEFAULT_METRICS),
            "accuracy_score, log_loss; overall + per slice",
        ),
    ]
    repro = ("ReproducibilityCheck", mlchecks_reproducibility, "two TrainingRuns, defaults")
    jobs = _group(
        inputs, "repro jitter", "jitter", "y, s, a, a * (1 + 1e-6 noise)", repro, pair_peers
    )
    jobs += _group(inputs, "repro identical", "same", "y, s, a, copy of a", repro, pair_peers)

    def quality(metrics: tuple[str, ...]) -> tuple[str, Callable[..., Any], str]:
        what = f"max_regression {', '.join(metrics)}; 100 slices"
        return ("QualityCheck", partial(mlchecks_quality, metrics=metrics), what)

    jobs += _group(
        inputs,
        "quality default",
        "previous",
        "y, s, candidate, previous",
        quality(DEFAULT_METRICS),
        pair_peers,
    )
    metrics = four_metrics(params["classes"])
    names = ", ".join(metrics)
    auc = "roc_auc" in metrics
    jobs += _group(
        inputs,
        f"quality {len(metrics)} metrics",
        "previous",
        "y, s, candidate, previous",
        quality(metrics),
        [
            (
                "numpy by hand",
                "numpy",
                partial(numpy_quality, metrics=metrics),
                "bincounts, confusion" + (", lexsort ranks (AUC)" if auc else ""),
            ),
            (
                "pandas groupby",
                "pandas",
                partial(pandas_quality, metrics=metrics),
                "groupby mean/sum" + (", groupby rank (AUC)" if auc else ""),
            ),
            (
                "sklearn metrics",
                "sklearn",
                partial(sklearn_pair, metrics=metrics),
                f"{names}; overall + per slice",
            ),
        ],
    )
    for job in jobs:
        job.extra.update(group=job.name.split(":", 1)[0], rows=params["rows"])
    return jobs


def notes(params: Params) -> list[str]:
    """Printed with the table: the peers skipped, the capped checks, the checks not timed."""
    out = [
        f"{name} is not installed: its jobs are skipped"
        for name in ("pandas", "sklearn")
        if not have(name)
    ]
    if params["classes"] != 2:
        out.append(
            "C > 2: the metrics set is accuracy, log_loss, f1_macro (roc_auc is binary only); "
            "the per-record checks run at C = 2 only"
        )
    else:
        n = min(params["rows"], params["python_rows_cap"])
        m = min(params["rows"], params["pipeline_rows_cap"])
        if n < params["rows"] or m < params["rows"]:
            out.append(
                f"per-record Python checks on fewer rows: CanaryJudge {n:,} records and "
                f"LossDecreasesCheck {n:,} steps (--python-rows-cap), PipelineCheck {m:,} rows "
                "(--pipeline-rows-cap)"
            )
    out.append(
        "not timed per row: CheckpointRestoreCheck and SingleBatchCheck (their time is the "
        "user's train_step, save and load over a fixed number of steps), RollbackCheck and "
        "CanaryCheck (a fixed number of requests to the user's server; their bookkeeping per "
        "request is the CanaryJudge row's); all of them on the demo: bench_demo.py"
    )
    return out


def all_jobs(params: Params, inputs: Inputs) -> list[Job]:
    """Every job of one (rows, classes) size; the per-record checks at C = 2 only."""
    from _checks_records import record_jobs

    jobs = array_jobs(params, inputs)
    if params["classes"] == 2:
        jobs += record_jobs(params)
    return jobs
