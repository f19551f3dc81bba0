"""How the canary reads one response's outputs: its shape, its class, and disagreement.

Outputs are read per request as one example's: a vector of class scores of shape ``(k,)``
or ``(1, k)`` (the leading batch axis of a single-row request, as V2 servers answer), or
one score of shape ``()``, ``(1,)`` or ``(1, 1)``.

>>> output_label([[0.1, 0.7, 0.2]], classify=None, score_bins=(0.5,))
1
>>> outputs_disagree(0.50, 0.55, classify=None, score_bins=(0.5,), score_atol=0.1)
False
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlchecks.checks._traffic import as_output_array

__all__ = ["brief", "example_shape", "one_example", "output_label", "outputs_disagree"]

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


def output_label(
    outputs: Any, *, classify: Classify | None, score_bins: Sequence[float]
) -> int | None:
    """A response's class: ``classify(outputs)`` when given, else the argmax of a class-score
    vector, the bin of a scalar score in ``score_bins``, an integer scalar as is (None: no
    class)."""
    if classify is not None:
        try:
            label = classify(outputs)
        except Exception:
            return None
        return None if label is None else int(label)
    array = as_output_array(outputs)
    if array is None or array.size == 0:
        return None
    example = one_example(array)
    if example.ndim == 0:
        if example.dtype.kind in "biu":
            return int(example)
        score = float(example)
        if not math.isfinite(score):
            return None
        return int(np.searchsorted(np.asarray(score_bins), score, side="right"))
    if example.ndim == 1:
        return int(np.argmax(example))
    return None


def outputs_disagree(
    candidate: Any,
    baseline: Any,
    *,
    classify: Classify | None,
    score_bins: Sequence[float],
    score_atol: float,
) -> bool | None:
    """Whether two versions' outputs for one request differ (None: not comparable).

    With ``classify``: their classes differ. Otherwise class-score vectors differ in
    their argmax, scalar scores by more than ``score_atol`` (integer scalars when
    unequal), and outputs of different shapes always; batch outputs are not compared.
    """
    if classify is not None:
        c_label = output_label(candidate, classify=classify, score_bins=score_bins)
        b_label = output_label(baseline, classify=classify, score_bins=score_bins)
        return None if c_label is None or b_label is None else c_label != b_label
    c_array, b_array = as_output_array(candidate), as_output_array(baseline)
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
    return abs(x - y) > score_atol


def brief(outputs: Any, label: int | None) -> dict[str, Any]:
    """A JSON-safe summary of one response's outputs for the report."""
    array = as_output_array(outputs)
    if array is not None and array.size <= 10:
        return {"class": label, "outputs": array.tolist()}
    return {"class": label}
