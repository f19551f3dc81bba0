"""Example-by-example comparison of two runs' predictions, in bounded memory.

`compare_predictions` reads two prediction arrays (class probabilities or scores) in chunks
and reports how far apart they are: top-1 churn, correctness churn, the largest and mean
absolute differences, the fraction of examples beyond a tolerance, the most different
examples, and a rank correlation.

Two runs of a reproducible system give (nearly) identical arrays, so the kernel compares
values elementwise first, in blocks that stay in a core's L2 cache, and computes the other
statistics only for the rows that differ. For those it works column by column (a running
`np.maximum` for the largest difference of a row, comparisons of columns for its argmax)
instead of with numpy's reductions along a short class axis, which cost many times a plain
elementwise pass (DESIGN §6). Temporaries are bounded by ``chunk_size`` values (and reused
from block to block), so 1e7 x C float32 inputs never allocate a full-size copy.

>>> import numpy as np
>>> a = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
>>> b = np.array([[0.7, 0.3], [0.6, 0.4], [0.5, 0.5]])
>>> c = compare_predictions(a, b, labels=[0, 1, 0])
>>> c.churn, c.correctness_churn, round(c.max_abs_diff, 6), c.top_indices
(0.3333333333333333, 0.3333333333333333, 0.2, (1,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks._validate import as_array, as_labels, check_int, check_number, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.stats import _compare_kernel
from mlchecks.stats._compare_kernel import _Comparison
from mlchecks.stats._rank_correlation import _confidence, _spearman

__all__ = [
    "RANK_SAMPLE",
    "LossDivergence",
    "PredictionComparison",
    "compare_predictions",
    "first_mismatch",
    "loss_divergence",
]

#: The rank correlation uses at most this many evenly spaced examples (every k-th row), so
#: its sort stays small (tens of MB, a fraction of a second) on 1e7-row inputs; the sampling
#: standard error of the correlation is then at most about 0.002.
RANK_SAMPLE = 262_144


@attrs.frozen
class PredictionComparison:
    """How two runs' predictions on the same examples differ.

    An example *differs* when any of its values differs; it is *beyond tolerance* when any
    value satisfies ``|a - b| > atol + rtol * max(|a|, |b|)`` (symmetric in the two runs).

    Attributes:
        n: number of examples.
        churn: fraction of examples whose predicted class differs (argmax of each row for
            (n, C) input; ``score > threshold`` for (n,) float scores; the values themselves
            for (n,) integer labels). ``churn_count`` is the count.
        correctness_churn: fraction of examples correct in one run and wrong in the other
            (None without labels); ``correctness_churn_count`` is the count.
        max_abs_diff: largest absolute difference of any value.
        mean_abs_diff: mean absolute difference over all n x C values.
        fraction_beyond_tolerance: fraction of examples beyond tolerance;
            ``count_beyond_tolerance`` is the count.
        differing_count: number of examples with any difference at all.
        first_diff_index: index of the first example that differs (None when identical).
        top_indices: the (at most ``top_k``) most different examples, largest difference
            first (ties by index); only examples that differ are listed.
        top_diffs: their largest absolute difference, same order.
        rank_correlation: Spearman correlation of the two runs' scores for (n,) input, of
            each example's top-1 probability for (n, C) input (on every k-th example when
            n > `RANK_SAMPLE`); None when undefined (n < 2 or a constant vector) or not
            computed.
        identical: True when every value is exactly equal.
    """

    n: int
    churn: float
    churn_count: int
    correctness_churn: float | None
    correctness_churn_count: int | None
    max_abs_diff: float
    mean_abs_diff: float
    fraction_beyond_tolerance: float
    count_beyond_tolerance: int
    differing_count: int
    first_diff_index: int | None
    top_indices: tuple[int, ...]
    top_diffs: tuple[float, ...]
    rank_correlation: float | None
    identical: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        data = attrs.asdict(self)
        data["top_indices"] = list(self.top_indices)
        data["top_diffs"] = list(self.top_diffs)
        return data


def as_predictions(value: Any, name: str) -> np.ndarray:
    """Predictions to compare: a numeric (n,) or (n, C) array (booleans as int8)."""
    array = as_array(value, name, ndim=(1, 2), finite=False)
    if array.dtype.kind == "b":
        array = array.astype(np.int8)
    elif array.dtype.kind not in "iuf":
        raise InvalidInput(f"'{name}' must be numeric (got {describe(array)})")
    return array


def compare_predictions(
    a: Any,
    b: Any,
    *,
    labels: Any = None,
    atol: float = 0.0,
    rtol: float = 0.0,
    top_k: int = 10,
    threshold: float = 0.5,
    rank_correlation: bool = True,
    chunk_size: int = 1_000_000,
) -> PredictionComparison:
    """Compare two runs' predictions on the same examples, example by example.

    Args:
        a: run A's predictions: (n, C) probabilities or scores, (n,) scores, or (n,)
            integer labels.
        b: run B's predictions, the same shape.
        labels: optional (n,) true labels, for correctness churn.
        atol: absolute tolerance per value (>= 0).
        rtol: relative tolerance per value (>= 0), times ``max(|a|, |b|)``.
        top_k: how many of the most different examples to return (>= 0).
        threshold: for (n,) float scores, the class is 1 where ``score > threshold``.
        rank_correlation: compute the Spearman correlation. It needs a sort, the costliest
            step on large inputs, so above `RANK_SAMPLE` examples it uses every k-th
            example (at most `RANK_SAMPLE` of them); identical runs give 1.0 without one.
        chunk_size: at most how many values (rows x C) are processed at a time; bounds
            the size of every temporary array. (Blocks are smaller still, about 131,072
            values, so that they stay in the cache.) The result does not depend on it, up
            to the rounding of the sum behind ``mean_abs_diff``.

    Returns:
        A `PredictionComparison`.

    Raises:
        InvalidInput: for shapes that differ, empty input, NaN or infinite values (naming
            the first bad row), labels of the wrong length or out of range, or bad options.

    >>> import numpy as np
    >>> a = np.array([0.2, 0.6, 0.9, 0.4])
    >>> b = np.array([0.2, 0.4, 0.9, 0.45])
    >>> c = compare_predictions(a, b, atol=0.01)
    >>> c.churn, c.fraction_beyond_tolerance, c.first_diff_index, c.top_indices
    (0.25, 0.5, 1, (1, 3))
    """
    first = as_predictions(a, "a")
    second = as_predictions(b, "b")
    if first.shape != second.shape:
        raise InvalidInput(
            f"'a' and 'b' must have the same shape (got {first.shape} and {second.shape})"
        )
    atol = check_number(atol, "atol", low=0.0)
    rtol = check_number(rtol, "rtol", low=0.0)
    threshold = check_number(threshold, "threshold")
    top_k = check_int(top_k, "top_k")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    n = len(first)
    n_classes = first.shape[1] if first.ndim == 2 else 1
    truth: np.ndarray | None = None
    if labels is not None:
        truth = as_labels(labels, "labels", n_classes=n_classes if n_classes > 1 else None)
        if len(truth) != n:
            raise InvalidInput(
                f"'labels' must have one label per example (got {len(truth)} for {n} examples)"
            )

    comparer = Comparer(
        n,
        first.shape,
        first.dtype,
        second.dtype,
        labelled=truth is not None,
        atol=atol,
        rtol=rtol,
        threshold=threshold,
        top_k=top_k,
        chunk_size=chunk_size,
        rank_correlation=rank_correlation,
    )
    comparer.rows(first, second, truth, 0, n)
    return comparer.result()


class Comparer:
    """One comparison of two runs' predictions on ``n`` examples, fed blocks of rows.

    `compare_predictions` validates its inputs and feeds every row; a check that reads
    several arrays in one pass (`ReproducibilityCheck`) feeds its own blocks, in order
    (`block` or `rows`), then asks for the `result`. Comparisons of disjoint row ranges
    (on Dask workers, say) combine: `totals` of one, `merge` into the other.

    ``shape`` is the shape of either prediction array ((n,) or (n, C)), ``labelled``
    whether true labels come with the blocks (for the correctness churn).
    """

    def __init__(
        self,
        n: int,
        shape: tuple[int, ...],
        dtype_a: np.dtype[Any],
        dtype_b: np.dtype[Any],
        *,
        labelled: bool,
        atol: float,
        rtol: float,
        threshold: float = 0.5,
        top_k: int = 10,
        chunk_size: int = 1_000_000,
        rank_correlation: bool = True,
    ) -> None:
        self.n = n
        self.labelled = labelled
        self.n_classes = n_classes = shape[1] if len(shape) == 2 else 1
        rows_per_chunk = max(1, chunk_size // n_classes)
        self.block_rows = max(1, min(rows_per_chunk, _compare_kernel._BLOCK_VALUES // n_classes))
        self.kernel = _Comparison(
            n_classes,
            dtype_a,
            dtype_b,
            atol=atol,
            rtol=rtol,
            threshold=threshold,
            top_k=top_k,
            block_rows=self.block_rows,
            rows_per_chunk=rows_per_chunk,
        )
        #: Every `step`-th example's top-1 score of each run, for the rank correlation.
        self.step = -(-n // RANK_SAMPLE) if rank_correlation else 0
        self.samples: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

    def rows(
        self, first: np.ndarray, second: np.ndarray, truth: np.ndarray | None, start: int, stop: int
    ) -> None:
        """Compare rows ``start:stop`` of the whole arrays (ranges in order, no gaps)."""
        n = len(first)
        self.kernel.whole = (first.reshape(n, self.n_classes), second.reshape(n, self.n_classes))
        step = self.block_rows
        for low in range(start, stop, step):
            high = min(low + step, stop)
            self.block(
                first[low:high], second[low:high], None if truth is None else truth[low:high], low
            )

    def block(self, a: np.ndarray, b: np.ndarray, truth: np.ndarray | None, start: int) -> None:
        """Compare rows ``a``, ``b`` (any number), whose first row is row ``start``."""
        m = len(a)
        a2, b2 = a.reshape(m, self.n_classes), b.reshape(m, self.n_classes)
        if self.step:
            offset = -start % self.step
            # Copies: a view would keep the whole block alive.
            self.samples[0].append(_confidence(a[offset:], self.step).copy())
            self.samples[1].append(_confidence(b[offset:], self.step).copy())
        kernel, size = self.kernel, self.block_rows
        with np.errstate(invalid="ignore"):  # inf - inf: reported as non-finite input instead
            for low in range(0, m, size):
                high = min(low + size, m)
                y = None if truth is None else truth[low:high]
                kernel.block(a2[low:high], b2[low:high], y, start + low)

    def totals(self) -> dict[str, Any]:
        """What this comparison has counted, to `merge` into another of the same examples."""
        with np.errstate(invalid="ignore"):
            self.kernel.flush()
        out = self.kernel.totals()
        out["samples"] = tuple(np.concatenate(s) if s else np.empty(0) for s in self.samples)
        return out

    def merge(self, totals: dict[str, Any]) -> None:
        """Add the `totals` of a comparison of later rows (its samples come after ours)."""
        with np.errstate(invalid="ignore"):
            self.kernel.flush()
        self.kernel.merge(totals)
        for held, sample in zip(self.samples, totals["samples"], strict=True):
            held.append(sample)

    def result(self) -> PredictionComparison:
        """The comparison of every row fed or merged (after the last one)."""
        kernel, n = self.kernel, self.n
        with np.errstate(invalid="ignore"):
            kernel.flush()
        differing = kernel.differing
        identical = differing == 0
        correlation: float | None = None
        if self.step:
            sample_a, sample_b = (np.concatenate(s) if s else np.empty(0) for s in self.samples)
            if not identical:
                correlation = _spearman(sample_a, sample_b)
            elif sample_a.size and sample_a.min() != sample_a.max():
                correlation = 1.0
        labelled = self.labelled
        return PredictionComparison(
            n=n,
            churn=kernel.churn / n,
            churn_count=kernel.churn,
            correctness_churn=kernel.correctness / n if labelled else None,
            correctness_churn_count=kernel.correctness if labelled else None,
            max_abs_diff=kernel.max_diff,
            mean_abs_diff=kernel.abs_sum / (n * self.n_classes),
            fraction_beyond_tolerance=kernel.beyond / n,
            count_beyond_tolerance=kernel.beyond,
            differing_count=differing,
            first_diff_index=kernel.first_diff,
            top_indices=tuple(int(i) for i in kernel.top_index),
            top_diffs=tuple(float(v) for v in kernel.top_values),
            rank_correlation=correlation,
            identical=identical,
        )


@attrs.frozen
class LossDivergence:
    """Where two runs' per-step losses first part.

    Attributes:
        steps: the number of steps compared (the shorter run's length).
        first_step: the first step whose losses differ at all (NaN equals NaN), or the
            shorter run's length when one run stops early; None when they never differ.
        first_step_beyond: the first step where ``|a - b| > tolerance`` (a NaN against a
            number counts as beyond, as does a missing step); None when never.
        tolerance: the absolute tolerance used.
        loss_a: run A's loss at ``first_step_beyond`` (None when that step is missing).
        loss_b: run B's loss there.
    """

    steps: int
    first_step: int | None
    first_step_beyond: int | None
    tolerance: float
    loss_a: float | None
    loss_b: float | None

    @property
    def diverged(self) -> bool:
        """True when the losses differ beyond the tolerance somewhere."""
        return self.first_step_beyond is not None


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def loss_divergence(a: Any, b: Any, *, tolerance: float = 0.0) -> LossDivergence:
    """Find the first training step where two runs' losses differ, exactly and beyond a tolerance.

    Args:
        a: run A's loss at every step (1-D; NaN and infinity allowed: a run may blow up).
        b: run B's losses.
        tolerance: absolute tolerance for "beyond" (>= 0).

    Returns:
        A `LossDivergence`.

    Raises:
        InvalidInput: for non-numeric, empty or 2-D input, or a negative tolerance.

    >>> d = loss_divergence([2.0, 1.5, 1.2000001, 1.1], [2.0, 1.5, 1.2, 1.0], tolerance=1e-3)
    >>> d.first_step, d.first_step_beyond, d.loss_a, d.loss_b
    (2, 3, 1.1, 1.0)
    """
    first = as_array(a, "a", ndim=1, dtype=np.float64, finite=False)
    second = as_array(b, "b", ndim=1, dtype=np.float64, finite=False)
    tolerance = check_number(tolerance, "tolerance", low=0.0)
    steps = min(len(first), len(second))
    x, y = first[:steps], second[:steps]
    both_nan = np.isnan(x) & np.isnan(y)
    differ = (x != y) & ~both_nan
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= tolerance
    beyond = differ & ~close
    exact_step = _first(differ)
    beyond_step = _first(beyond)
    if len(first) != len(second):
        exact_step = steps if exact_step is None else exact_step
        beyond_step = steps if beyond_step is None else beyond_step
    loss_a = loss_b = None
    if beyond_step is not None and beyond_step < steps:
        loss_a, loss_b = float(x[beyond_step]), float(y[beyond_step])
    return LossDivergence(steps, exact_step, beyond_step, tolerance, loss_a, loss_b)


def first_mismatch(a: Sequence[Any], b: Sequence[Any]) -> int | None:
    """The first index where two sequences (per-step parameter hashes) differ.

    A sequence that ends early differs at its length; None when they are equal.

    >>> first_mismatch(["3fa2", "91c0", "77aa"], ["3fa2", "91c1", "77aa"])
    1
    >>> first_mismatch(["3fa2"], ["3fa2", "91c0"]), first_mismatch(["x"], ["x"])
    (1, None)
    """
    for step, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return step
    return None if len(a) == len(b) else min(len(a), len(b))
