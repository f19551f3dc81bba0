"""The task of a `ReproducibilityCheck` run: classification, regression or multi-label.

`prepare_task` decides the task (``task=`` or inferred), picks the task's default metrics,
and turns labels and predicted classes of any dtype into integer codes through the class
list, once, with `mlchecks._labels.encode_labels`. `judge_label_churn` is the churn of a
multi-label task, label by label. `judge_rate` judges a rate (churn, correctness churn,
the fraction beyond tolerance) against its limit with exact confidence bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._fields import held
from mlchecks._labels import check_label_range, encode_labels, infer_task
from mlchecks._text import fmt, listing, pct
from mlchecks._validate import describe, is_numeric
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Finding, Status
from mlchecks.stats._metric_inputs import multilabel_inputs
from mlchecks.stats.intervals import clopper_pearson
from mlchecks.stats.metrics import Metric, get_metric

if TYPE_CHECKING:
    from mlchecks.checks._repro_eval import Evaluation

__all__ = [
    "DEFAULT_METRICS",
    "class_list",
    "judge_label_churn",
    "judge_rate",
    "label_accuracies",
    "prepare_task",
    "rate_bounds",
    "rate_status",
]

#: The metrics each task compares when ``metrics`` is not given.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "log_loss"),
    "regression": ("mse", "mae", "r2"),
    "multilabel": ("hamming_loss", "subset_accuracy"),
}


def class_list(ev: Evaluation) -> np.ndarray | None:
    """The classes labels are coded by: the check's, a run's, or the sorted unique names.

    None when the labels and predicted classes are integers already (class indices).
    """
    given: np.ndarray | None = ev.check.classes
    if given is not None:
        return given
    for p in ev.prepared:
        if p.run.classes is not None:
            return p.run.classes
    found: set[Any] = set()
    if ev.labels is not None and not is_numeric(ev.labels):
        found.update(ev.labels.tolist())
    for p in ev.prepared:
        predictions = p.run.predictions
        if predictions is not None and not is_numeric(predictions):
            found.update(predictions.tolist())
    if not found:
        return None
    try:
        return np.asarray(sorted(found))
    except TypeError:  # names of mixed types: sorted by their text
        return np.asarray(sorted(found, key=str), dtype=object)


def prepare_task(ev: Evaluation) -> None:
    """Set ``ev.task``, ``ev.metrics``, the coded ``ev.labels`` and each run's predictions."""
    check = ev.check
    first = next((p.run.predictions for p in ev.prepared if p.run.predictions is not None), None)
    task = check.task if check.task != "auto" else infer_task(ev.labels, first)
    ev.task = task
    names = check.metrics if check.metrics is not None else DEFAULT_METRICS[task]
    given = [p.run.predictions for p in ev.prepared if p.run.predictions is not None]
    if check.metrics is None and given and all(_class_names(x) for x in given):
        names = ("accuracy",)  # predicted classes carry no probability for a log loss
    ev.metrics = tuple(m if isinstance(m, Metric) else get_metric(m) for m in names)
    ev.out.detail("task", task)
    for p in ev.prepared:
        p.predictions = p.run.predictions
    if task == "regression":
        if ev.labels is not None:
            ev.labels = _as_float(ev.labels, "labels")
        for p in ev.prepared:
            if p.predictions is not None:
                p.predictions = _as_float(p.predictions, "predictions")
        return
    if task == "multilabel":
        return
    if ev.labels is not None and ev.labels.ndim != 1:
        raise InvalidInput(
            f"'labels' must be 1-D class labels for classification (got {describe(ev.labels)})"
            "; (n, L) labels are multi-label 0/1 indicators (task='multilabel')"
        )
    classes = class_list(ev)
    named = [p.name for p in ev.prepared if p.predictions is not None and _names(p.predictions)]
    listed = check.classes is not None or any(p.run.classes is not None for p in ev.prepared)
    if named and ev.labels is not None and is_numeric(ev.labels) and not listed:
        raise InvalidInput(
            f"'predictions' of run {listing(named)} hold class names but 'labels' are numbers: "
            "give predictions as numbers (probabilities or class indices) or the class list "
            "in 'classes'"
        )
    if classes is not None:
        ev.out.detail("classes", classes.tolist())
    if ev.labels is not None and (classes is not None or not is_numeric(ev.labels)):
        ev.labels = encode_labels(ev.labels, classes)
    for p in ev.prepared:
        if p.predictions is not None and _class_names(p.predictions):
            p.predictions = encode_labels(p.predictions, classes, name="predictions")
        columns = None if p.predictions is None else p.predictions.shape[1:]
        if columns and classes is not None and columns[0] != len(classes):
            raise InvalidInput(
                f"run {p.name!r} has {columns[0]} probability columns but "
                f"there are {len(classes)} classes ({classes.tolist()[:5]})"
            )
    if ev.labels is not None:  # every label a class the predictions express
        check_label_range(
            ev.labels, {f"run {p.name!r} predictions": p.predictions for p in ev.prepared}
        )


def _names(predictions: np.ndarray) -> bool:
    """True for predicted class names (strings or other objects), not numbers."""
    return not is_numeric(predictions)


def _class_names(predictions: np.ndarray) -> bool:
    """True for 1-D predicted classes (integers or names), not probabilities or scores."""
    return predictions.ndim == 1 and predictions.dtype.kind not in "fc"


def _as_float(array: np.ndarray, name: str) -> np.ndarray:
    if not is_numeric(array):
        raise InvalidInput(f"'{name}' of a regression task must be numbers (got {array.dtype})")
    return array.astype(np.float64, copy=False)


def rate_bounds(count: int, n: int, alpha: float, comparisons: int = 1) -> tuple[float, float]:
    """Exact (Clopper-Pearson) one-sided confidence bounds of the rate ``count / n``.

    The lower bound is at level ``1 - alpha / comparisons`` (Bonferroni over the pairs of
    runs and labels whose worst rate is judged), the upper bound at level ``1 - alpha``:
    a true rate at or below a limit has its lower bound above the limit with probability
    at most ``alpha`` over all comparisons, and a true rate above it has its upper bound
    at or below the limit with probability at most ``alpha``.

    >>> [round(b, 4) for b in rate_bounds(100, 10_000, 0.05)]
    [0.0084, 0.0118]
    >>> rate_bounds(0, 10_000, 0.05)[0]
    0.0
    """
    low, high = clopper_pearson(count, n, 1.0 - alpha / comparisons, upper_tail=alpha)
    return float(low), float(high)


def rate_status(count: int, n: int, limit: float, alpha: float, comparisons: int = 1) -> Status:
    """The verdict on the rate ``count / n`` against the maximum ``limit``, before severity.

    FAIL when the lower bound of `rate_bounds` exceeds ``limit``, PASS when the upper bound
    is at or below it, WARN (inconclusive) otherwise; a ``limit`` of 0 FAILs any count.

    >>> [rate_status(k, 10_000, 0.01, 0.05).value for k in (20, 100, 150)]
    ['pass', 'warn', 'fail']
    """
    if limit <= 0.0:
        return Status.PASS if count == 0 else Status.FAIL
    low, high = rate_bounds(count, n, alpha, comparisons)
    if low > limit:
        return Status.FAIL
    return Status.PASS if high <= limit else Status.WARN


def judge_rate(
    ev: Evaluation,
    name: str,
    limit: AtMost | None,
    count: int,
    n: int,
    *,
    comparisons: int = 1,
    identical: bool = False,
    context: str = "",
) -> Finding | None:
    """Judge the rate ``count / n`` against ``limit`` with exact confidence bounds.

    FAIL (or the limit's severity) when the lower confidence bound exceeds the limit, PASS
    when the upper bound is at or below it, WARN (inconclusive) in between; both bounds are
    in the message and in ``details["intervals"][name]``. A limit of 0 (``exact=True``, or
    ``max_churn=0``) is a hard rule: any difference fails. When every pair of runs has
    bit-identical predictions (``identical``) there is no nondeterminism whose rate the
    examples would sample: the rate is 0 and PASSes at any number of examples. None records
    nothing.
    """
    if limit is None or n == 0:
        return None
    rate = count / n
    alpha = ev.check.alpha
    low, high = rate_bounds(count, n, alpha, comparisons)
    level = pct(round(1.0 - 2.0 * alpha, 6))
    adjusted = f", lower bound Bonferroni-adjusted over {comparisons}" if comparisons > 1 else ""
    interval = f"{level} CI {fmt(low)} to {fmt(high)}{adjusted}"
    ev.out.details.setdefault("intervals", {})[name] = {
        "low": low,
        "high": high,
        "confidence": 1.0 - 2.0 * alpha,
        "comparisons": comparisons,
        "method": "clopper-pearson",
    }
    bound = fmt(limit.value)
    if count == 0 and identical:
        status = Status.PASS
        message = (
            f"{name} 0 is within the maximum {bound} (predictions are bit-identical in every "
            f"run){context}"
        )
    else:
        verdict = rate_status(count, n, limit.value, alpha, comparisons)
        status = limit.severity if verdict is Status.FAIL else verdict
        if limit.value <= 0.0:
            verb = "is within" if count == 0 else "exceeds"
            message = f"{name} {fmt(rate)} {verb} the maximum {bound} (any difference fails)"
        elif verdict is Status.FAIL:
            message = f"{name} {fmt(rate)} exceeds the maximum {bound} ({interval})"
        elif verdict is Status.PASS:
            message = f"{name} {fmt(rate)} is within the maximum {bound} ({interval})"
        else:
            message = (
                f"{name} {fmt(rate)} is inconclusive against the maximum {bound} ({interval}, "
                f"which includes the limit)"
            )
        message += context
        if verdict is Status.WARN:
            message += "; more examples narrow the interval"
    return ev.out.add(Finding(name, status, rate, limit.describe(), message))


def judge_label_churn(ev: Evaluation) -> None:
    """Multi-label churn: per label, the fraction of examples whose predicted label flips.

    ``churn`` is the largest per-label churn over every pair of runs (judged against
    ``max_churn``); ``churn.any_label`` the fraction of examples with any label changed.
    The per-label values are in ``details["pairs"][k]["per_label_churn"]``.
    """
    worst: tuple[float, int, int, int] | None = None
    any_label = 0.0
    n = n_labels = 0
    identical = True
    for k, (i, j) in enumerate(ev.pairs):
        a, b = ev.prepared[i].predictions, ev.prepared[j].predictions
        if a is None or b is None:
            continue
        try:
            first, second = multilabel_inputs(a, b)
        except InvalidInput as exc:
            ev.skipped["churn"] = str(exc)
            return
        flips = first != second
        identical = identical and bool(np.array_equal(a, b))
        n, n_labels = int(flips.shape[0]), int(flips.shape[1])
        per_label = flips.mean(axis=0)
        ev.out.details["pairs"][k]["per_label_churn"] = per_label.tolist()
        label = int(np.argmax(per_label))
        count = int(flips[:, label].sum())
        if worst is None or per_label[label] > worst[0]:
            worst = (float(per_label[label]), label, count, k)
        any_label = max(any_label, float(flips.any(axis=1).mean()))
    if worst is None:
        return
    value, label, count, k = worst
    context = (
        f": label {label} changed on {count:,} of {n:,} examples between "
        f"{ev.pair_label(*ev.pairs[k])}"
    )
    limit = AtMost(0.0) if ev.exact else held(ev.check.max_churn)
    comparisons = len(ev.pairs) * n_labels
    judge_rate(
        ev,
        "churn",
        limit,
        count,
        n,
        comparisons=comparisons,
        identical=identical,
        context=context,
    )
    ev.out.metric("churn", value)
    ev.out.metric("churn.any_label", any_label)


def label_accuracies(ev: Evaluation) -> None:
    """Per-label accuracy of every run of a multi-label task, in ``details["runs"]``."""
    if ev.labels is None:
        return
    for row, p in zip(ev.out.details["runs"], ev.prepared, strict=True):
        if p.predictions is None:
            continue
        try:
            truth, guess = multilabel_inputs(ev.labels, p.predictions)
        except InvalidInput:
            continue
        row["per_label_accuracy"] = (truth == guess).mean(axis=0).tolist()
