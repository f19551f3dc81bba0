"""How the canary reads what a request answered: its rows, their classes, and disagreement.

A request carries one row (a feature vector) or many (a batch, ``(n_rows, n_features)``;
`mlchecks.checks._traffic.request_rows` counts them), and its outputs hold one answer per
row. One row's answer is a vector of class scores (``(k,)``, or ``(1, k)`` with the leading
batch axis of a single-row request, as V2 servers answer), one score (``()``, ``(1,)`` or
``(1, 1)``), or one class label: an integer, or a string (V2 ``BYTES``). String labels are
coded through ``classes`` when given (their position in it; a label outside it has no
class), else in the order they are first seen.

>>> reader = LabelReader(score_bins=(0.5,))
>>> reader.labels([[0.1, 0.7, 0.2]], 1)
[1]
>>> reader.labels([[0.9, 0.1], [0.2, 0.8]], 2)
[0, 1]
>>> LabelReader(classes=("benign", "malignant")).labels(["malignant", "benign"], 2)
[1, 0]
>>> reader.disagreements([0.50, 0.90], [0.55, 0.10], 2)
[False, True]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks._validate import describe, is_collection
from mlchecks.exceptions import InvalidInput

__all__ = [
    "LabelReader",
    "Row",
    "brief",
    "classes_field",
    "example_shape",
    "label_array",
    "offline_field",
    "one_example",
    "row_outputs",
]

Classify = Callable[[Any], "int | None"]


def example_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one example's output: ``(1, k) -> (k,)``, any single value -> ``()``."""
    if math.prod(shape) == 1:
        return ()
    if len(shape) >= 2 and shape[0] == 1:
        return shape[1:]
    return shape


def one_example(array: np.ndarray) -> np.ndarray:
    """``array`` as one example's output: a single-row batch axis dropped (see `example_shape`).

    V2 servers answer a one-row request with shape ``(1, k)``; ``(k,)`` and ``(1, k)`` both
    mean one example's ``k`` class scores, and ``()``, ``(1,)`` and ``(1, 1)`` one score.
    """
    return array.reshape(example_shape(array.shape))


def _is_text(value: Any) -> bool:
    return isinstance(value, str | bytes | np.str_ | np.bytes_)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def label_array(outputs: Any) -> np.ndarray | None:
    """Outputs as an array of numbers or of text labels (object arrays of ``str``/``bytes``
    become ``str`` arrays); None for anything else (a mapping of named outputs, ragged
    lists, objects).

    >>> label_array([b"yes", "no"]).tolist(), label_array({"a": 1}) is None
    (['yes', 'no'], True)
    """
    if isinstance(outputs, Mapping):
        return None
    try:
        array = np.asarray(outputs)
    except (TypeError, ValueError):
        return None
    kind = array.dtype.kind
    if kind in "biuf" or kind == "U":
        return array
    if kind == "S" or (kind == "O" and all(_is_text(v) for v in array.flat)):
        flat = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.flat
        ]
        return np.array(flat, dtype=str).reshape(array.shape)
    return None


def row_outputs(outputs: Any, n_rows: int) -> list[Any] | None:
    """One answer per row of a request of ``n_rows`` rows (None: the outputs cannot be split).

    One row's outputs are returned whole; a batch's are split along their row axis after
    dropping leading axes of length one (``(1, n, k)`` is ``n`` rows of ``k`` values).

    >>> [r.tolist() for r in row_outputs(np.array([[0.1, 0.9], [0.8, 0.2]]), 2)]
    [[0.1, 0.9], [0.8, 0.2]]
    >>> row_outputs([1.0, 2.0, 3.0], 2) is None
    True
    """
    if n_rows == 1:
        return [outputs]
    array = label_array(outputs)
    if array is None:
        return None
    shape = array.shape
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    if not shape or shape[0] != n_rows:
        return None
    return list(array.reshape(shape))


@attrs.define
class LabelReader:
    """Reads classes and disagreement from outputs, with the canary's settings.

    Attributes:
        classify: ``classify(outputs) -> int | None``, one row's class (None: the default
            reading: the argmax of a score vector, the bin of a scalar score in
            ``score_bins``, an integer as is, a text label by ``classes``).
        score_bins: bin edges that turn a scalar score into a class.
        score_atol: two scalar scores differ when further apart than this.
        classes: the class labels, in class order; text labels are coded by their position.
    """

    classify: Classify | None = None
    score_bins: Sequence[float] = (0.5,)
    score_atol: float = 0.1
    classes: tuple[Any, ...] | None = None
    _codes: dict[Any, int] = attrs.field(factory=dict, init=False)

    def code(self, label: Any) -> int | None:
        """The class number of one label value: its position in ``classes`` when given
        (None when it is not there), else an integer as is and text in first-seen order."""
        value = label.item() if isinstance(label, np.generic) else label
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if self.classes is not None:
            for i, known in enumerate(self.classes):
                if known == value or (isinstance(known, bytes) and known.decode() == value):
                    return i
            return None
        if isinstance(value, str):
            return self._codes.setdefault(value, len(self._codes))
        if isinstance(value, bool | int):
            return int(value)
        return None

    def label(self, outputs: Any) -> int | None:
        """One row's class (None: no class can be read)."""
        if self.classify is not None:
            try:
                label = self.classify(outputs)
            except Exception:
                return None
            return None if label is None else int(label)
        if type(outputs) is int or type(outputs) is str:  # a class label: no array needed
            return self.code(outputs)
        array = label_array(outputs)
        if array is None or array.size == 0:
            return None
        example = one_example(array)
        if example.ndim == 0:
            if example.dtype.kind in "biuU":
                return self.code(example[()])
            score = float(example)
            if not math.isfinite(score):
                return None
            return int(np.searchsorted(np.asarray(self.score_bins), score, side="right"))
        if example.ndim == 1 and example.dtype.kind in "biuf":
            return int(np.argmax(example))
        return None

    def labels(self, outputs: Any, n_rows: int) -> list[int | None]:
        """The class of each of a request's ``n_rows`` rows (all None when the outputs do
        not hold ``n_rows`` answers)."""
        rows = row_outputs(outputs, n_rows)
        if rows is None:
            return [None] * n_rows
        return [self.label(row) for row in rows]

    def row_label(self, outputs: Any, n_rows: int, row: int) -> int | None:
        """The class of row ``row`` of a request of ``n_rows`` rows (None: no class)."""
        rows = row_outputs(outputs, n_rows)
        return None if rows is None else self.label(rows[row])

    def disagree(self, candidate: Any, baseline: Any) -> bool | None:
        """Whether two versions' answers for one row differ (None: not comparable).

        With ``classify`` or text labels: their classes differ. Otherwise class-score
        vectors differ in their argmax, scalar scores by more than ``score_atol``
        (integers when unequal), and answers of different shapes always.
        """
        c_array, b_array = label_array(candidate), label_array(baseline)
        text = any(a is not None and a.dtype.kind == "U" for a in (c_array, b_array))
        if self.classify is not None or text:
            c_label, b_label = self.label(candidate), self.label(baseline)
            if text and (c_label is None or b_label is None) and self.classify is None:
                return _text_differs(c_array, b_array)
            return None if c_label is None or b_label is None else c_label != b_label
        if c_array is None or b_array is None or c_array.size == 0 or b_array.size == 0:
            return None
        c, b = one_example(c_array), one_example(b_array)
        if c.ndim > 1 or b.ndim > 1:
            return None
        if c.shape != b.shape:
            return True
        if c.ndim == 1:
            return int(np.argmax(c)) != int(np.argmax(b))
        if c.dtype.kind in "biu" and b.dtype.kind in "biu":
            return int(c) != int(b)
        x, y = float(c), float(b)
        finite = (math.isfinite(x), math.isfinite(y))
        if not all(finite):
            return True if any(finite) else None  # NaN against a number differs
        return abs(x - y) > self.score_atol

    def disagreements(self, candidate: Any, baseline: Any, n_rows: int) -> list[bool | None]:
        """`disagree` for each of a request's ``n_rows`` rows."""
        c_rows, b_rows = row_outputs(candidate, n_rows), row_outputs(baseline, n_rows)
        if c_rows is None or b_rows is None:
            return [None] * n_rows
        return [self.disagree(c, b) for c, b in zip(c_rows, b_rows, strict=True)]


def _text_differs(c: np.ndarray | None, b: np.ndarray | None) -> bool | None:
    """Text labels outside ``classes`` compared as text (None: not both text)."""
    if c is None or b is None or c.dtype.kind != "U" or b.dtype.kind != "U":
        return None
    return bool(c.reshape(-1).tolist() != b.reshape(-1).tolist())


def offline_field(value: Any) -> Any:
    """`CanaryCheck.offline_predictions` checked: None, a callable, or label arrays."""
    if value is None or callable(value):
        return value
    array = label_array(value)
    if array is not None and array.ndim > 0:
        return array
    if isinstance(value, list | tuple) and value:  # one array per probe, batches of any size
        parts = [label_array(v) for v in value]
        if all(p is not None and p.ndim > 0 for p in parts):
            return tuple(parts)
    raise InvalidInput(
        "'offline_predictions' must be predictions (numbers or labels) one per probe row, "
        f"one array per probe, or a callable (got {describe(value)})"
    )


def classes_field(value: Any) -> tuple[Any, ...] | None:
    """`CanaryCheck.classes` checked: None or a tuple of distinct str, bytes or int labels."""
    if value is None:
        return None
    if not is_collection(value):
        raise InvalidInput(f"'classes' must be a sequence of class labels (got {describe(value)})")
    labels = tuple(v.item() if isinstance(v, np.generic) else v for v in value)
    if not labels or not all(isinstance(v, str | bytes | int) for v in labels):
        raise InvalidInput(
            f"'classes' must be a non-empty sequence of str, bytes or int labels (got {value!r})"
        )
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"'classes' must not repeat a label (got {value!r})")
    return labels


@attrs.frozen
class Row:
    """A request's row count and the row drawn at random to speak for it in the shift test."""

    n: int
    drawn: int

    def disagreement(self, reader: LabelReader, candidate: Any, baseline: Any) -> Any:
        """Whether one row's answers differ; for a batch, the share of its comparable rows
        whose answers differ (None: no row comparable)."""
        if self.n == 1:
            return reader.disagree(candidate, baseline)
        known = [d for d in reader.disagreements(candidate, baseline, self.n) if d is not None]
        return sum(known) / len(known) if known else None


def brief(outputs: Any, label: int | None) -> dict[str, Any]:
    """A JSON-safe summary of one response's outputs for the report."""
    array = label_array(outputs)
    if array is not None and array.size <= 10:
        return {"class": label, "outputs": array.tolist()}
    return {"class": label}
