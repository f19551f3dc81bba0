"""`QualityCheck` on Dask arrays: the one pass runs on the workers, only tables travel.

When labels, predictions, baseline predictions or slice ids are Dask arrays, the check
computes what it must know before reading (rows with NaN or infinity, the label range, the
range of 1-D predictions) in one `dask.compute`, then sends one task per chunk of rows to
the workers. Each builds the joint class counts and the moments of the mean metrics' terms
of its rows with the code used in memory (an `Evaluation` of the chunk) and returns them;
the client adds the counts and merges the moments in row order, and the check judges them
as it judges those of an in-memory evaluation set. Verdicts equal the in-memory ones on the
same data, numbers to the rounding of sums (tests/test_dask_quality.py).

Supported there: classification with integer class labels, (n, C) probabilities or
scores, (n,) probabilities of class 1 or predicted class indices, and the metrics the pass
computes (`LAZY_METRICS`). Metrics that need every example at once (ROC AUC, ...),
regression, multi-label data and class names are refused with an error that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._dask import compute, dask_module, is_dask, row_blocks
from mlchecks._labels import scores_task
from mlchecks.checks._quality_eval import MEAN_METRICS, Evaluation, Summaries
from mlchecks.checks._quality_inputs import TaskInputs
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._joint import merge_terms
from mlchecks.stats.metrics import CORRECTNESS_METRICS, get_metric
from mlchecks.stats.paired import CONFUSION_METRICS
from mlchecks.stats.sliced import SliceCodes

if TYPE_CHECKING:
    from mlchecks.checks.quality import QualityCheck

__all__ = ["LAZY_METRICS", "is_lazy", "lazy_evaluation", "lazy_facts", "refuse_lazy"]

#: The metrics `QualityCheck` computes on Dask arrays: those of the one pass.
LAZY_METRICS = (*CORRECTNESS_METRICS, *CONFUSION_METRICS, *MEAN_METRICS)


def is_lazy(check: QualityCheck, slicings: dict[str, SliceCodes]) -> bool:
    """Whether the check reads any Dask array (labels, predictions or slice ids)."""
    arrays = (check.labels, check.predictions, check.baseline_predictions)
    codes = (s.codes for s in slicings.values())
    return any(x is not None and is_dask(x) for x in (*arrays, *codes))


def refuse_lazy(check: QualityCheck) -> None:
    """Raise for what the check cannot do on Dask arrays (before anything is read)."""
    fields = {
        "metric_limits": check.metric_limits,
        "max_regression": check.max_regression,
        "max_improvement": check.max_improvement,
    }
    for field, metrics in fields.items():
        for name in metrics:
            if name not in LAZY_METRICS:
                raise InvalidInput(
                    f"'{field}' {name!r} cannot be computed on Dask arrays: it needs every "
                    "example at once, and the check reads Dask arrays chunk by chunk on the "
                    f"workers; there it computes {', '.join(LAZY_METRICS)}"
                )
    if check.task not in ("auto", "classification"):
        raise InvalidInput(
            f"task={check.task!r} is not supported with Dask arrays (only classification)"
        )
    if check.classes is not None:
        raise InvalidInput(
            "'classes' cannot be used with Dask arrays: give labels and predicted classes as "
            "integer class indices"
        )


def lazy_facts(labels: Any, models: dict[str, Any]) -> dict[Any, Any]:
    """What the check must know before reading, computed together on the workers.

    ``models`` maps a field name to its predictions (or None). Keys: ``"y_min"``,
    ``"y_max"`` (and ``"y_fractional"``) of the labels; per field, ``(field, "bad")`` the
    rows with NaN or infinity, and for 1-D predictions their ``"min"``, ``"max"`` (and
    ``"fractional"``).
    """
    da = dask_module("dask.array")
    wanted: dict[Any, Any] = {"y_min": labels.min(), "y_max": labels.max()}
    if labels.dtype.kind == "f":
        wanted["y_fractional"] = (labels != _xp(labels, da).round(labels)).any()
    for key, x in models.items():
        if x is None:
            continue
        xp = _xp(x, da)
        if x.dtype.kind == "f":
            invalid = ~xp.isfinite(x)
            wanted[key, "bad"] = (invalid.any(axis=1) if x.ndim == 2 else invalid).sum()
        if x.ndim == 1:
            wanted[key, "min"], wanted[key, "max"] = x.min(), x.max()
            if x.dtype.kind == "f":
                wanted[key, "fractional"] = (x != xp.round(x)).any()
    values = compute(*wanted.values())
    return {k: v.item() if hasattr(v, "item") else v for k, v in zip(wanted, values, strict=True)}


def _xp(x: Any, da: Any) -> Any:
    return da if is_dask(x) else np


def lazy_evaluation(
    check: QualityCheck,
    facts: dict[Any, Any],
    slicings: dict[str, SliceCodes],
    metrics: list[str],
    rng: np.random.Generator,
) -> tuple[TaskInputs, Evaluation]:
    """The check's evaluation of Dask arrays (without NaN rows), its pass run on the workers.

    Returns:
        The coded inputs (still lazy) and the evaluation, answering from merged tables.

    Raises:
        InvalidInput: for labels that are not class indices the predictions can express,
            regression data, or predictions the pass does not take (scores outside [0, 1],
            negative class indices; for log loss and Brier, rows that are not
            probabilities), naming the field and where the rows start.
    """
    labels, candidate = check.labels, check.predictions
    baseline = check.baseline_predictions
    assert labels is not None
    assert candidate is not None
    if check.task == "auto" and candidate.ndim == 1 and candidate.dtype.kind == "f":
        task = scores_task(
            labels_fractional=bool(facts.get("y_fractional", False)),
            outside=facts["predictions", "min"] < 0.0 or facts["predictions", "max"] > 1.0,
            fractional=bool(facts.get(("predictions", "fractional"), False)),
        )
        if task != "classification":
            raise InvalidInput(
                "the labels and predictions look like a regression task, which is not "
                "supported with Dask arrays (only classification)"
            )
    models = {"predictions": candidate, "baseline_predictions": baseline}
    n_classes = _n_classes(facts, models)
    labels = labels if labels.dtype.kind in "iu" else labels.astype(np.int64)
    coded = TaskInputs("classification", labels, candidate, baseline, None)
    evaluation = _evaluation(
        (labels, candidate, baseline), slicings, metrics, n_classes, rng, check.n_resamples
    )
    settings = {
        "n_classes": n_classes,
        "metrics": metrics,
        "slicings": [(name, codes.names) for name, codes in slicings.items()],
    }
    codes = [c.codes for c in slicings.values()]
    starts, blocks = row_blocks([labels, candidate, baseline, *codes])
    delayed = dask_module().delayed
    tasks = [
        delayed(_chunk)(settings, start, [column[k] for column in blocks])
        for k, start in enumerate(starts)
    ]
    evaluation.use(_merged(compute(*tasks)))
    return coded, evaluation


def _n_classes(facts: dict[Any, Any], models: dict[str, Any]) -> int:
    """The class count of the joint table, after checking the labels against it."""
    if facts.get("y_fractional"):
        raise InvalidInput("'labels' must be class indices for classification (got fractions)")
    bounds: list[int] = []  # classes the probabilities express (they bound the labels)
    widths: list[int] = []
    for key, x in models.items():
        if x is None:
            continue
        if x.ndim == 2:
            bounds.append(int(x.shape[1]))
            continue
        low, high = facts[key, "min"], facts[key, "max"]
        if x.dtype.kind == "f":
            if low < 0.0 or high > 1.0:
                raise InvalidInput(
                    f"'{key}' are 1-D scores outside [0, 1] (from {low:g} to {high:g}): on "
                    "Dask arrays give probabilities of class 1, (n, C) scores or class indices"
                )
            bounds.append(2)
        elif low < 0:
            raise InvalidInput(f"'{key}' must be class indices >= 0 (got {low})")
        else:
            widths.append(int(high) + 1)
    y_low, y_high = facts["y_min"], facts["y_max"]
    width = min(bounds) if bounds else None
    if y_low < 0 or (width is not None and y_high >= width):
        inside = f"[0, {width})" if width is not None else ">= 0"
        classes = f"; there are {width} classes" if width is not None else ""
        raise InvalidInput(
            f"'labels' must be class indices in {inside} (got values from {y_low:g} to "
            f"{y_high:g}){classes}"
        )
    return max([*bounds, *widths, int(y_high) + 1])


def _chunk(settings: dict[str, Any], start: int, arrays: list[Any]) -> Summaries:
    """One worker's task: the joint counts and mean-term moments of rows ``start ..``."""
    labels, candidate, baseline, *codes = (None if a is None else np.asarray(a) for a in arrays)
    assert labels is not None
    assert candidate is not None
    slicings = {
        name: SliceCodes(c, names)
        for (name, names), c in zip(settings["slicings"], codes, strict=True)
    }
    metrics: list[str] = settings["metrics"]
    evaluation = _evaluation(
        (labels, candidate, baseline), slicings, metrics, settings["n_classes"], None
    )
    means = [name for name in dict.fromkeys(metrics) if name in MEAN_METRICS]
    joint, moments = evaluation.summaries(means)
    where = f"(rows from example {start:,})"
    if joint is None:
        raise InvalidInput(
            f"the predictions are not what the check's one pass reads {where}: on Dask "
            "arrays give (n, C) finite scores, probabilities of class 1 or class indices"
        )
    for name, found in moments.items():
        if found is None:
            metric = get_metric(name)
            assert metric.per_example is not None
            for values in (candidate, baseline):
                if values is not None:
                    try:
                        metric.per_example(labels, values)
                    except InvalidInput as exc:
                        raise InvalidInput(f"{exc} {where}") from None
            raise InvalidInput(
                f"{name} on Dask arrays needs probabilities in [0, 1] whose rows sum to 1 "
                f"within 1e-3 {where}"
            )
    return joint, moments


def _evaluation(
    arrays: tuple[Any, Any, Any],
    slicings: dict[str, SliceCodes],
    metrics: list[str],
    n_classes: int,
    rng: np.random.Generator | None = None,
    n_resamples: int = 100,
) -> Evaluation:
    """The `Evaluation` of a classification on labels, candidate and baseline ``arrays``
    (no ``rng`` on a worker: nothing is drawn there, only the pass runs)."""
    labels, candidate, baseline = arrays
    generator = rng if rng is not None else np.random.default_rng(0)
    return Evaluation(
        labels,
        candidate,
        baseline,
        slicings,
        "classification",
        metrics,
        n_resamples,
        generator,
        n_classes=n_classes,
    )


def _merged(parts: tuple[Summaries, ...]) -> Summaries:
    """The summaries of consecutive chunks as one: counts added, moments merged in order."""
    joint: dict[str | None, np.ndarray] = {}
    moments: dict[str, dict[str | None, Any] | None] = {}
    for part_joint, part_moments in parts:
        assert part_joint is not None
        for key, table in part_joint.items():
            joint[key] = joint[key] + table if key in joint else table
        for name, by_slicing in part_moments.items():
            assert by_slicing is not None
            held = moments.get(name)
            moments[name] = (
                dict(by_slicing)
                if held is None
                else {key: merge_terms(held[key], value) for key, value in by_slicing.items()}
            )
    return joint, moments
