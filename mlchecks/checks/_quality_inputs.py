"""What `QualityCheck` takes: `GoldenSet`, and the converters of its per-metric limits.

`GoldenSet` is public through `mlchecks.checks.quality`; the converters turn what a user
writes (``{"accuracy": 0.9}`` or ``{"accuracy": AtLeast(0.9, severity="warn")}``) into the
conditions the check judges, with the metric's direction.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import numpy as np

from mlchecks._chunks import is_chunks, spill
from mlchecks._dask import is_dask, lazy_array, lazy_slices
from mlchecks._fields import renamed, tolerance
from mlchecks._labels import check_label_range, encode_labels, infer_task, unique_classes
from mlchecks._validate import as_array, describe, is_numeric, raw_labels, to_array
from mlchecks.conditions import AtLeast, AtMost, Between, NoWorseThan
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Status
from mlchecks.stats.metrics import METRICS, Metric, get_metric

__all__ = [
    "Floor",
    "GoldenSet",
    "TaskInputs",
    "task_inputs",
    "to_baseline",
    "to_classes",
    "to_labels",
    "to_max_improvement",
    "to_max_regression",
    "to_metric_limits",
    "to_predictions",
]

#: A metric limit: judged on the metric's confidence bound.
Floor = AtLeast | AtMost | Between


# --------------------------------------------------------------------------- golden examples


def _expected(value: Any) -> np.ndarray:
    raw = raw_labels(value, "expected")
    if raw.ndim == 1 and not is_numeric(raw):
        return raw  # class names
    return as_array(value, "expected", ndim=(1, 2))


def _classes(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    classes = raw_labels(value, "classes")
    items = classes.tolist()
    if classes.ndim != 1 or len(set(items)) != len(items):
        raise InvalidInput(f"'classes' must be a 1-D list of distinct classes (got {items})")
    return classes


@renamed({"atol": "prediction_atol", "rtol": "prediction_rtol"})
@attrs.frozen(eq=False)
class GoldenSet:
    """Known inputs with known-correct outputs, run through the model's ``predict``.

    Args:
        inputs: whatever ``predict`` takes (an array, a table, a list of rows).
        expected: (n,) or (n, k) expected outputs. When the model returns (n, C)
            probabilities and ``expected`` holds class labels, the predicted class (the
            argmax, mapped through ``classes``) is compared.
        prediction_atol: absolute tolerance, as ``atol`` in `numpy.isclose`.
        prediction_rtol: relative tolerance, as ``rtol`` in `numpy.isclose`.
        classes: the class list in the order of the probability columns (any hashable
            values, e.g. the estimator's ``classes_``); None: the check's ``classes``, or
            the ``classes_`` of the estimator whose bound method ``predict`` is, or (for
            integer ``expected``) column indices.

    Raises:
        InvalidInput: for NaN expected outputs, negative tolerances, or ``inputs`` whose
            length differs from ``expected``'s.

    >>> golden = GoldenSet(np.array([[0.0], [1.0]]), [0, 1])
    >>> golden.mismatches(np.array([0, 0]))
    [{'index': 1, 'expected': 1, 'got': 0}]
    >>> named = GoldenSet([[0.0], [1.0]], ["cat", "dog"], classes=["cat", "dog"])
    >>> named.mismatches(np.array([[0.9, 0.1], [0.8, 0.2]]))
    [{'index': 1, 'expected': 'dog', 'got': 'cat'}]
    """

    inputs: Any
    expected: np.ndarray = attrs.field(converter=_expected)
    prediction_atol: float = tolerance(0.0)
    prediction_rtol: float = tolerance(0.0)
    classes: np.ndarray | None = attrs.field(default=None, converter=_classes, kw_only=True)

    def __attrs_post_init__(self) -> None:
        try:
            n_inputs = len(self.inputs)
        except TypeError:
            return
        if n_inputs != len(self.expected):
            raise InvalidInput(
                f"'inputs' and 'expected' must have the same number of examples "
                f"(got {n_inputs} and {len(self.expected)})"
            )

    def __len__(self) -> int:
        return len(self.expected)

    def mismatches(self, outputs: Any, classes: Any = None) -> list[dict[str, Any]]:
        """Every example whose output differs from the expected one beyond the tolerance.

        Args:
            outputs: what ``predict(inputs)`` returned.
            classes: the class list to use when the set has no ``classes`` of its own.

        Returns:
            One ``{"index", "expected", "got"}`` dict per mismatch, in index order; values
            are Python scalars or lists. NaN outputs always mismatch.

        Raises:
            InvalidInput: when the outputs' shape cannot be compared with ``expected``.
        """
        got = np.asarray(outputs)
        expected = self.expected
        known = self.classes if self.classes is not None else _classes(classes)
        if known is not None and is_numeric(expected) and not is_numeric(known):
            known = None  # integer expected outputs are column indices
        if got.ndim == 2 and expected.ndim == 1:
            if known is None and not is_numeric(expected):
                raise InvalidInput(
                    "golden 'expected' holds class names but the model returns "
                    f"{got.shape[1]} probability columns and no class list is known: give "
                    "GoldenSet(..., classes=model.classes_)"
                )
            if known is not None or expected.dtype.kind in "iub":
                return self._class_mismatches(got, known)
        if got.shape != expected.shape:
            raise InvalidInput(
                f"golden outputs have shape {got.shape} but 'expected' has shape {expected.shape}"
            )
        if got.dtype.kind not in "biuf" or expected.dtype.kind not in "biuf":
            differ = got != expected
        else:
            differ = ~np.isclose(
                got, expected, rtol=self.prediction_rtol, atol=self.prediction_atol
            )
        if differ.ndim == 2:
            differ = differ.any(axis=1)
        return [
            {"index": int(i), "expected": expected[i].tolist(), "got": got[i].tolist()}
            for i in np.flatnonzero(differ)
        ]

    def _class_mismatches(
        self, scores: np.ndarray, classes: np.ndarray | None
    ) -> list[dict[str, Any]]:
        """Mismatches of the argmax class of (n, C) scores; rows with NaN always mismatch."""
        if len(scores) != len(self.expected):
            raise InvalidInput(
                f"golden outputs have {len(scores)} rows but 'expected' has {len(self.expected)}"
            )
        if classes is not None and scores.shape[1] != len(classes):
            raise InvalidInput(
                f"golden outputs have {scores.shape[1]} columns but there are {len(classes)} "
                f"classes {classes.tolist()[:10]}"
            )
        expected = self.expected
        if classes is not None:
            expected = encode_labels(expected, classes, name="expected")
        finite = np.isfinite(scores).all(axis=1) if scores.dtype.kind == "f" else None
        predicted = np.argmax(
            scores if finite is None else np.where(finite[:, None], scores, 0), axis=1
        )
        differ = predicted != expected
        if finite is not None:
            differ |= ~finite
        names = predicted if classes is None else classes[predicted]
        return [
            {
                "index": int(i),
                "expected": self.expected[i].item(),
                "got": names[i].item() if finite is None or finite[i] else scores[i].tolist(),
            }
            for i in np.flatnonzero(differ)
        ]


# --------------------------------------------------------------------------- per-metric limits


def _metric_name(value: Any, field: str) -> Metric:
    if not isinstance(value, str) or value not in METRICS:
        known = ", ".join(METRICS)
        raise InvalidInput(
            f"'{field}' keys must be known metric names (got {value!r}); known: {known}"
        )
    return get_metric(value)


def _metric_items(value: Any, field: str, what: str) -> Iterator[tuple[str, Metric, Any]]:
    """The (name, metric, item) entries of a mapping keyed by metric name (None: none)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"'{field}' must be a mapping of metric name to {what} (got {describe(value)})"
        )
    for name, item in value.items():
        yield name, _metric_name(name, field), item


def _number(value: Any) -> float | None:
    """``value`` as a finite float when it is a plain number, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _conditions(
    value: Any,
    field: str,
    what: str,
    accepted: tuple[type, ...],
    from_number: Callable[[str, float, Metric], Any],
) -> Iterator[tuple[str, Metric, Any]]:
    """(metric name, metric, condition) per entry: numbers converted, other types rejected."""
    for name, metric, item in _metric_items(value, field, f"a number or {what}"):
        number = _number(item)
        if number is not None:
            yield name, metric, from_number(name, number, metric)
        elif isinstance(item, accepted):
            yield name, metric, item
        else:
            hint = ""
            if isinstance(item, NoWorseThan) and field == "metric_limits":
                hint = "; use max_regression for NoWorseThan"
            raise InvalidInput(
                f"'{field}[{name!r}]' must be a number or {what} (got {item!r}){hint}"
            )


def to_metric_limits(value: Any) -> dict[str, Floor]:
    # A plain number is a floor for a score and a ceiling for a loss or an error.
    def from_number(name: str, number: float, metric: Metric) -> Floor:
        return AtLeast(number) if metric.higher_is_better else AtMost(number)

    items = _conditions(
        value,
        "metric_limits",
        "AtLeast, AtMost or Between",
        (AtLeast, AtMost, Between),
        from_number,
    )
    return {name: item for name, _, item in items}


def to_max_regression(value: Any) -> dict[str, NoWorseThan]:
    def from_number(name: str, number: float, metric: Metric) -> NoWorseThan:
        if number < 0:
            raise InvalidInput(f"'max_regression[{name!r}]' must be >= 0 (got {number:g})")
        return NoWorseThan(abs=number)

    items = _conditions(value, "max_regression", "NoWorseThan", (NoWorseThan,), from_number)
    # The direction of "worse" is the metric's own.
    return {
        name: attrs.evolve(item, higher_is_better=metric.higher_is_better)
        for name, metric, item in items
    }


def to_max_improvement(value: Any) -> dict[str, AtMost]:
    def from_number(name: str, number: float, metric: Metric) -> AtMost:
        return AtMost(number, severity=Status.WARN)

    out: dict[str, AtMost] = {}
    for name, _, item in _conditions(value, "max_improvement", "AtMost", (AtMost,), from_number):
        if not item.value > 0:
            raise InvalidInput(f"'max_improvement[{name!r}]' must be > 0 (got {item.value:g})")
        out[name] = item
    return out


def _predictions(value: Any, name: str) -> np.ndarray:
    raw = raw_labels(value, name) if to_array(value, name).dtype.kind in "USO" else None
    if raw is not None and raw.ndim == 1:
        return raw  # predicted class names
    return as_array(value, name, ndim=(1, 2), finite=False)


def _rows(value: Any, name: str) -> Any:
    """An iterator of chunks, written to a temporary file and memory-mapped; else as given."""
    return spill(value, name) if is_chunks(value) else value


def _model_outputs(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    if is_dask(value):  # kept lazy: read on the workers (`_quality_lazy`)
        lazy: np.ndarray = lazy_array(value, name, ndim=(1, 2))
        return lazy
    return _predictions(_rows(value, name), name)


def to_predictions(value: Any) -> np.ndarray | None:
    return _model_outputs(value, "predictions")


def to_baseline(value: Any) -> np.ndarray | None:
    return _model_outputs(value, "baseline_predictions")


def to_labels(value: Any) -> np.ndarray | None:
    if is_dask(value):
        lazy: np.ndarray = lazy_array(value, "labels", ndim=(1,))
        return lazy
    return None if value is None else raw_labels(_rows(value, "labels"), "labels")


def _slicing(value: Any, name: str) -> Any:
    return lazy_slices(value, name) if is_dask(value) else _rows(value, name)


def to_slices(value: Any) -> Any:
    """Slice ids as given, with iterators of chunks (also in a mapping) memory-mapped and
    Dask ids kept lazy."""
    if isinstance(value, Mapping):
        return {key: _slicing(v, f"slices[{key!r}]") for key, v in value.items()}
    return _slicing(value, "slices")


def to_classes(value: Any) -> np.ndarray | None:
    return _classes(value)


@attrs.frozen
class TaskInputs:
    """Labels and predictions coded for the task, once, at the check's boundary."""

    task: str
    labels: np.ndarray
    predictions: np.ndarray
    baseline: np.ndarray | None
    classes: np.ndarray | None


def task_inputs(
    task: str,
    classes: np.ndarray | None,
    labels: np.ndarray,
    predictions: np.ndarray,
    baseline: np.ndarray | None,
) -> TaskInputs:
    """Decide the task (``"auto"``: inferred) and code class labels of any dtype.

    Class names (labels, and predicted classes of 1-D predictions) become indices into
    ``classes`` (or the sorted unique labels) with `encode_labels`; regression targets
    and multi-label indicators are passed through.

    >>> coded = task_inputs("auto", None, np.array(["b", "a"]), np.array(["b", "b"]), None)
    >>> coded.task, coded.labels.tolist(), coded.predictions.tolist()
    ('classification', [1, 0], [1, 1])
    """
    named = [
        (k, v)
        for k, v in (("predictions", predictions), ("baseline_predictions", baseline))
        if v is not None and not is_numeric(v)
    ]
    resolved = task if task != "auto" else infer_task(labels, predictions)
    if resolved != "classification":
        for key, values in named:
            raise InvalidInput(
                f"'{key}' must be numbers for a {resolved} task (got {describe(values)})"
            )
        return TaskInputs(resolved, labels, predictions, baseline, None)
    if classes is None and not is_numeric(labels):
        classes = unique_classes(labels)
    for key, values in named:
        if classes is None or is_numeric(classes):
            raise InvalidInput(
                f"'{key}' hold class names ({describe(values)}, e.g. "
                f"{values.reshape(-1)[0].item()!r}) but "
                "'labels' and 'classes' are numbers: give predictions as numbers (scores, "
                "probabilities or class indices), or the class list in 'classes'"
            )
    codes = encode_labels(labels, classes)
    check_label_range(
        codes, {"predictions": predictions, "baseline_predictions": baseline}, classes
    )

    def coded(values: np.ndarray | None, name: str) -> np.ndarray | None:
        # 1-D predicted classes (names or integers) are coded; probabilities are not.
        if values is None or values.ndim != 1 or values.dtype.kind in "fc":
            return values
        return encode_labels(values, classes, name=name)

    cand = coded(predictions, "predictions")
    assert cand is not None
    return TaskInputs(resolved, codes, cand, coded(baseline, "baseline_predictions"), classes)
