"""`ReproducibilityCheck` on Dask arrays: the pass runs on the workers, only tables travel.

When a run's predictions, labels or slices are Dask arrays, the check decides the task and
validates what it must know before reading (label range, whether 1-D predictions are
probabilities) from a few reductions computed together, then sends one task per chunk of
rows to the workers: each reads its chunk of every run into a `Summary` (the same code as
in memory) and returns its partial table and comparison totals, which the client merges
in row order. The verdict is the in-memory one on the same data, up to the rounding of
sums (tests/test_dask_pass.py).

Supported there: numeric predictions ((n, C) probabilities or scores, (n,) scores or
class indices, regression outputs), 1-D labels that are class indices or regression
targets, and slice ids ``0..k-1``. Metrics that are not means of per-example values
(ROC AUC, F1, R²) need every example at once and are not computed on Dask arrays; class
names (``classes``) and multi-label data are refused with a clear error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._dask import compute, dask_module, is_dask, row_blocks
from mlchecks._labels import scores_task
from mlchecks.checks._repro_pass import Chunk, Plan, Summary
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.metrics import Metric, get_metric

if TYPE_CHECKING:
    from mlchecks.checks._repro_eval import Evaluation

__all__ = ["is_lazy", "prepare_lazy", "read_lazy", "same_lazy"]

#: Why a metric is not computed on Dask arrays.
NOT_LAZY = (
    "it is not a mean of per-example values, so it needs every example at once; it is not "
    "computed on Dask arrays (report it in the run's metrics to compare it)"
)


def is_lazy(ev: Evaluation) -> bool:
    """Whether any run holds a Dask array (predictions, labels or slices)."""
    for p in ev.prepared:
        run = p.run
        slices = [codes.codes for codes in (run.slices or {}).values()]
        if any(is_dask(x) for x in (run.predictions, run.labels, *slices)):
            return True
    return False


def same_lazy(a: Any, b: Any) -> tuple[int, int]:
    """How many rows of two equally long arrays differ, and the first that does (or -1)."""
    unequal = a != b
    if unequal.ndim == 2:
        unequal = unequal.any(axis=1)
    count, first = compute(unequal.sum(), unequal.argmax())
    return int(count), int(first) if count else -1


def prepare_lazy(ev: Evaluation, default_metrics: dict[str, tuple[str, ...]]) -> None:
    """Set the task, metrics, labels and predictions of a check on Dask arrays."""
    check = ev.check
    if check.classes is not None or any(p.run.classes is not None for p in ev.prepared):
        raise InvalidInput(
            "'classes' cannot be used with Dask arrays: give labels and predicted classes as "
            "integer class indices"
        )
    labels = ev.labels
    facts = _facts(ev)
    first = next((r for r, p in enumerate(ev.prepared) if p.run.predictions is not None), -1)
    task = check.task
    if task == "multilabel":
        raise InvalidInput("task='multilabel' is not supported with Dask arrays")
    if task == "auto":
        x = ev.prepared[first].run.predictions if first >= 0 else None
        task = "classification"
        if x is not None and x.ndim == 1 and x.dtype.kind == "f":
            task = scores_task(
                labels_fractional=facts.get("y_fractional", False),
                outside=facts[("p_min", first)] < 0.0 or facts[("p_max", first)] > 1.0,
                fractional=facts.get(("p_fractional", first), False),
            )
    ev.task = task
    ev.out.detail("task", task)
    names = check.metrics if check.metrics is not None else default_metrics[task]
    given = [p.run.predictions for p in ev.prepared if p.run.predictions is not None]
    if check.metrics is None and given and all(x.ndim == 1 and x.dtype.kind != "f" for x in given):
        names = ("accuracy",)  # predicted classes carry no probability for a log loss
    metrics = tuple(m if isinstance(m, Metric) else get_metric(m) for m in names)
    if check.metrics is None:
        metrics = tuple(m for m in metrics if m.per_example is not None)
    ev.metrics = metrics
    for p in ev.prepared:
        p.predictions = p.run.predictions
    if task == "regression":
        if labels is not None:
            ev.labels = labels.astype(np.float64)
        for p in ev.prepared:
            if p.predictions is not None:
                p.predictions = p.predictions.astype(np.float64)
        return
    for r, p in enumerate(ev.prepared):
        x = p.predictions
        if x is not None:
            low = facts.get(("p_min", r))
            integers = x.dtype.kind != "f"
            p.classified = low is None or (low >= 0 and (integers or facts[("p_max", r)] <= 1))
    if labels is None:
        return
    if facts.get("y_fractional"):
        raise InvalidInput("'labels' must be class indices for classification (got fractions)")
    width = _label_bound(ev, facts)
    low, high = facts["y_min"], facts["y_max"]
    if low < 0 or (width is not None and high >= width):
        bound = f"[0, {width})" if width is not None else ">= 0"
        raise InvalidInput(
            f"'labels' must be class indices in {bound} (got values from {low:g} to {high:g})"
        )
    ev.labels = labels if labels.dtype.kind in "iu" else labels.astype(np.int64)
    ev.int_labels = ev.labels


def _facts(ev: Evaluation) -> dict[Any, Any]:
    """The numbers the check needs before reading, computed together on the workers."""
    wanted: dict[Any, Any] = {}
    labels = ev.labels
    if labels is not None:
        wanted["y_min"], wanted["y_max"] = labels.min(), labels.max()
        if labels.dtype.kind == "f":
            wanted["y_fractional"] = (labels != labels.round()).any()
    for r, p in enumerate(ev.prepared):
        x = p.run.predictions
        if x is not None and x.ndim == 1:
            wanted["p_min", r], wanted["p_max", r] = x.min(), x.max()
            if x.dtype.kind == "f":
                wanted["p_fractional", r] = (x != x.round()).any()
    values = compute(*wanted.values()) if wanted else ()
    return {k: v.item() if hasattr(v, "item") else v for k, v in zip(wanted, values, strict=True)}


def _label_bound(ev: Evaluation, facts: dict[Any, Any]) -> int | None:
    """How many classes the predictions express (as `check_label_range`), or None."""
    widths = []
    for r, p in enumerate(ev.prepared):
        x = p.predictions
        if x is None or x.dtype.kind != "f":
            continue
        if x.ndim == 2:
            widths.append(int(x.shape[1]))
        elif facts[("p_min", r)] >= 0.0 and facts[("p_max", r)] <= 1.0:
            widths.append(2)
    return min(widths) if widths else None


def _chunk(plan: Plan, start: int, arrays: tuple[Any, ...]) -> dict[str, Any]:
    """One worker's task: the partial summary of rows ``start ..`` of every array."""
    n_runs, rest = arrays[0], arrays[1:]
    predictions = tuple(None if a is None else np.asarray(a) for a in rest[:n_runs])
    labels, truth, *slices = rest[n_runs:]
    summary = Summary(plan)
    summary.read(
        Chunk(
            start,
            predictions,
            None if labels is None else np.asarray(labels),
            None if truth is None else np.asarray(truth),
            tuple(np.asarray(codes) for codes in slices),
        )
    )
    return summary.partial()


def read_lazy(ev: Evaluation, plan: Plan, summary: Summary) -> None:
    """Read every chunk of rows on the workers and merge the partials into ``summary``."""
    dask = dask_module()
    predictions = [p.predictions for p in ev.prepared]
    slicings = ev.slices if plan.slicings and ev.slices is not None else {}
    columns: list[Any] = [
        *predictions,
        ev.labels if plan.termed else None,
        ev.int_labels if (plan.scored or any(c[3] for c in plan.compared)) else None,
        *(codes.codes for codes in slicings.values()),
    ]
    lazy = [x for x in columns if x is not None and is_dask(x)]
    if not lazy:  # only arrays the pass does not read are Dask arrays (say, unused labels)
        n_runs = len(predictions)
        labels, truth = columns[n_runs], columns[n_runs + 1]
        summary.read(Chunk(0, tuple(predictions), labels, truth, tuple(columns[n_runs + 2 :])))
        return
    starts, blocks = row_blocks(columns)
    tasks = [
        dask.delayed(_chunk)(plan, start, (len(predictions), *(b[k] for b in blocks)))
        for k, start in enumerate(starts)
    ]
    for partial in compute(*tasks):
        summary.merge(partial)
