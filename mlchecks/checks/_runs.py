"""`TrainingRun`, what one training run leaves behind, and how runs are checked together.

`TrainingRun` is public through `mlchecks.checks.reproducibility` (and `mlchecks`); this
module holds it with the validation of its fields and of a list of runs.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks._chunks import is_chunks, spill
from mlchecks._dask import is_dask, lazy_array, lazy_slices
from mlchecks._fields import name_field
from mlchecks._validate import as_array, check_same_length, describe, raw_labels
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.sliced import SliceCodes, encode_slicings

__all__ = [
    "TrainingRun",
    "check_compatible",
    "classes_converter",
    "display_names",
    "runs_converter",
]


def _run_metrics(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"'metrics' must be a mapping of name to number (got {describe(value)})")
    out: dict[str, float] = {}
    for key, number in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"'metrics' keys must be non-empty strings (got {key!r})")
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise InvalidInput(f"'metrics[{key!r}]' must be a number (got {describe(number)})")
        out[key] = float(number)
    return out


def _optional_predictions(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if is_dask(value):
        lazy: np.ndarray = lazy_array(value, "predictions", ndim=(1, 2))
        return lazy
    if is_chunks(value):
        value = spill(value, "predictions")
    raw = raw_labels(value, "predictions")
    if raw.ndim == 1 and raw.dtype.kind not in "biuf":
        return raw  # predicted class names, encoded through the class list by the check
    array = as_array(value, "predictions", ndim=(1, 2))
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iuf":
        raise InvalidInput(f"'predictions' must be numeric (got {describe(array)})")
    return array


def _optional_labels(value: Any) -> np.ndarray | None:
    if is_dask(value):
        lazy: np.ndarray = lazy_array(value, "labels", ndim=(1,))
        return lazy
    if is_chunks(value):
        value = spill(value, "labels")
    return None if value is None else raw_labels(value, "labels")


def classes_converter(value: Any) -> np.ndarray | None:
    """A ``classes`` field: None, or a 1-D list of distinct classes as an array."""
    if value is None:
        return None
    classes = raw_labels(value, "classes")
    if classes.ndim != 1:
        raise InvalidInput(f"'classes' must be a 1-D list of classes (got {describe(classes)})")
    items = classes.tolist()
    if len(set(items)) != len(items):
        raise InvalidInput(f"'classes' must not repeat a class (got {items})")
    return classes


def _optional_slices(value: Any) -> dict[str, SliceCodes] | None:
    if value is None:
        return None
    if is_dask(value):
        return {"slice": lazy_slices(value, "slices")}
    if is_chunks(value):
        value = spill(value, "slices", ndim=(1,))
    if isinstance(value, Mapping):
        value = {key: _slicing(v, f"slices[{key!r}]") for key, v in value.items()}
    return encode_slicings(value)


def _slicing(value: Any, name: str) -> Any:
    """One slicing of a mapping: Dask ids kept lazy, chunks spilled, others as given."""
    if is_dask(value):
        return lazy_slices(value, name)
    return spill(value, name, ndim=(1,)) if is_chunks(value) else value


def _optional_losses(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return as_array(value, "losses", ndim=1, dtype=np.float64, finite=False)


def _optional_hashes(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInput(f"'step_hashes' must be a sequence of str (got {describe(value)})")
    items = tuple(value)
    bad = next((h for h in items if not isinstance(h, str)), None)
    if bad is not None:
        raise InvalidInput(f"'step_hashes' must contain str (got {bad!r})")
    if not items:
        raise InvalidInput("'step_hashes' must not be empty (got 0 hashes)")
    return items


@attrs.frozen(eq=False)
class TrainingRun:
    """What one training run leaves behind, for `ReproducibilityCheck`.

    Every field is optional; give what your training records. Arrays are validated at
    construction: NaN predictions are rejected, and predictions, labels and every slicing
    must have one row per example.

    Inputs larger than memory: predictions, labels and slice ids may be memory-mapped
    arrays (``np.load(path, mmap_mode="r")``, read in place, never copied whole), iterators
    of chunks (a generator yielding batches of rows, as an inference loop does: written to
    an unlinked temporary file as they arrive and memory-mapped, so memory holds one chunk),
    or Dask arrays (kept lazy: `ReproducibilityCheck` reads them on the workers that hold
    them and only small tables travel; see docs/cookbook/dask.md). Each gives the verdict of
    the same data in memory.

    Args:
        metrics: aggregate metrics the run computed itself (name -> number).
        predictions: (n, C) class probabilities, (n,) probabilities or scores, (n,)
            class labels of any dtype (strings too), (n,) regression outputs, or (n, L)
            multi-label indicators or probabilities, on a fixed evaluation set.
        labels: (n,) true labels of any dtype (or regression targets), or (n, L) 0/1
            multi-label indicators, of that set.
        slices: one slice id or label per example, or a mapping of slicing name to ids;
            stored encoded, as a mapping name -> `SliceCodes` (a bare array is named
            ``"slice"``).
        losses: the training loss at every step (NaN allowed: a run may blow up).
        step_hashes: a fingerprint of all parameters after every step (any strings, e.g.
            a SHA-256 prefix of the parameter bytes).
        name: the run's name in reports.
        classes: the class list that string (or other non-integer) labels and predicted
            classes are mapped through, in the order of the probability columns (e.g. the
            estimator's ``classes_``); keyword-only. None: the check's ``classes``, or the
            sorted unique labels.

    Raises:
        InvalidInput: for mismatched lengths, NaN predictions, empty arrays or wrong types.

    >>> run = TrainingRun(predictions=[[0.9, 0.1], [0.2, 0.8]], labels=[0, 1], name="a")
    >>> run.predictions.shape, run.n_examples
    ((2, 2), 2)
    >>> TrainingRun(predictions=[0.1, 0.9], labels=[0])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'predictions' and 'labels' must have the same number ...
    """

    metrics: Mapping[str, float] = attrs.field(factory=dict, converter=_run_metrics)
    predictions: np.ndarray | None = attrs.field(default=None, converter=_optional_predictions)
    labels: np.ndarray | None = attrs.field(default=None, converter=_optional_labels)
    slices: Mapping[str, SliceCodes] | None = attrs.field(default=None, converter=_optional_slices)
    losses: np.ndarray | None = attrs.field(default=None, converter=_optional_losses)
    step_hashes: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_hashes)
    name: str = name_field("run", kw_only=False)
    classes: np.ndarray | None = attrs.field(
        default=None, converter=classes_converter, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("'name' must be a non-empty string (got '')")
        arrays: dict[str, Any] = {"predictions": self.predictions, "labels": self.labels}
        for key, codes in (self.slices or {}).items():
            arrays[f"slices[{key!r}]"] = codes.codes
        check_same_length(**arrays)

    @property
    def n_examples(self) -> int | None:
        """The number of evaluation examples (None when the run has no per-example data)."""
        for array in (self.predictions, self.labels):
            if array is not None:
                return len(array)
        for codes in (self.slices or {}).values():
            return len(codes.codes)
        return None


def runs_converter(value: Any) -> tuple[TrainingRun, ...] | None:
    """The ``runs`` field: None, or a sequence of at least two `TrainingRun` as a tuple."""
    if value is None:
        return None
    if isinstance(value, TrainingRun) or not isinstance(value, Sequence):
        raise InvalidInput(f"'runs' must be a list of TrainingRun (got {describe(value)})")
    runs = tuple(value)
    for run in runs:
        if not isinstance(run, TrainingRun):
            raise InvalidInput(f"'runs' must contain TrainingRun objects (got {describe(run)})")
    if len(runs) < 2:
        raise InvalidInput(f"'runs' must hold at least 2 runs to compare (got {len(runs)})")
    return runs


def check_compatible(runs: Sequence[TrainingRun], names: Sequence[str]) -> None:
    """Runs with per-example data must share the evaluation set size and prediction shape."""
    shapes = [
        (n, r.predictions.shape)
        for n, r in zip(names, runs, strict=True)
        if r.predictions is not None
    ]
    for name, shape in shapes[1:]:
        if shape != shapes[0][1]:
            raise InvalidInput(
                f"runs must predict on the same examples: run {name!r} has predictions of shape "
                f"{shape}, run {shapes[0][0]!r} {shapes[0][1]}"
            )
    sized = [(n, r.n_examples) for n, r in zip(names, runs, strict=True) if r.n_examples]
    for name, size in sized[1:]:
        if size != sized[0][1]:
            raise InvalidInput(
                f"runs must be evaluated on the same examples: run {name!r} has {size} "
                f"examples, run {sized[0][0]!r} {sized[0][1]}"
            )


def display_names(runs: Sequence[TrainingRun], seeds: Sequence[int] | None) -> list[str]:
    """The runs' names in reports: ``"seed 3"`` for an unnamed trained run, and
    ``"seed 3, run 2"`` for names that repeat (the second run of the same seed)."""
    base = []
    for i, run in enumerate(runs):
        if seeds is not None and run.name == "run":
            base.append(f"seed {seeds[i]}")
        else:
            base.append(run.name)
    return [f"{b}, run {i + 1}" if base.count(b) > 1 else b for i, b in enumerate(base)]
