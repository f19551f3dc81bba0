"""Rubric test 1: training is reproducible.

"Train two models on the same data, and observe any differences in aggregate metrics,
sliced metrics, or example-by-example predictions" (Breck et al., ML Test Score).

`TrainingRun` is what one training run leaves behind; `ReproducibilityCheck` compares two
or more of them, or trains them itself from a ``train(seed)`` callable on the context's
executor. It measures

- every aggregate metric of every run and the pairwise differences, with a TOST
  equivalence test where labels allow;
- the same metrics per slice, flagging slices whose difference exceeds ``slice_tolerance``
  after Holm correction;
- example-by-example differences: churn, correctness churn, max / mean absolute
  difference, the fraction beyond a tolerance, the most different examples;
- the first training step where losses or parameter hashes diverge;
- with three or more runs, the run-to-run spread.

Defaults and their sources are in ``docs/checks/reproducibility.md``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, size=500)
>>> probs = rng.dirichlet(np.ones(3), size=500)
>>> a = TrainingRun(predictions=probs, labels=y, name="a")
>>> b = TrainingRun(predictions=probs.copy(), labels=y, name="b")
>>> ReproducibilityCheck([a, b]).run().status
<Status.PASS: 'pass'>
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.checks._series import even_indices
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Finding, Result, Status
from mlchecks._validate import (
    as_array,
    as_labels,
    check_number,
    check_same_length,
    describe,
    int_at_least,
    number_in,
    optional,
)
from mlchecks.stats.compare import (
    LossDivergence,
    PredictionComparison,
    compare_predictions,
    first_mismatch,
    loss_divergence,
)
from mlchecks.stats.inference import (
    mcnemar_exact_counts,
    normal_pvalue,
    paired_accuracy_difference_counts,
    tost_paired_accuracy_counts,
)
from mlchecks.stats.metrics import METRICS, Metric, get_metric, predicted_labels
from mlchecks.stats.multiple import holm
from mlchecks.stats.sliced import SliceCodes, encode_slicings, sliced_metric, sliced_sum

__all__ = ["ReproducibilityCheck", "TrainingRun"]

#: Metrics judged with the exact paired tests on per-example correctness.
_CORRECTNESS_METRICS = ("accuracy", "error_rate")


# --------------------------------------------------------------------------- TrainingRun


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
    array = as_array(value, "predictions", ndim=(1, 2))
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iuf":
        raise InvalidInput(f"'predictions' must be numeric (got {describe(array)})")
    return array


def _optional_labels(value: Any) -> np.ndarray | None:
    return None if value is None else as_array(value, "labels", ndim=1)


def _optional_slices(value: Any) -> dict[str, SliceCodes] | None:
    return None if value is None else encode_slicings(value)


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

    Args:
        metrics: aggregate metrics the run computed itself (name -> number).
        predictions: (n, C) class probabilities, (n,) probabilities or scores, or (n,)
            class labels (or regression outputs) on a fixed evaluation set.
        labels: (n,) true labels (or regression targets) of that set.
        slices: one slice id or label per example, or a mapping of slicing name to ids;
            stored encoded, as a mapping name -> `SliceCodes` (a bare array is named
            ``"slice"``).
        losses: the training loss at every step (NaN allowed: a run may blow up).
        step_hashes: a fingerprint of all parameters after every step (any strings, e.g.
            a SHA-256 prefix of the parameter bytes).
        name: the run's name in reports.

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
    name: str = attrs.field(default="run", validator=attrs.validators.instance_of(str))

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


# --------------------------------------------------------------------------- field validators


_FRACTION = number_in(0.0, 1.0)
_NON_NEGATIVE = number_in(0.0)
_ALPHA = number_in(0.0, 0.5, low_open=True, high_open=True)


def _rubric(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7
    ):
        raise InvalidInput(f"'rubric' must be an int in 1..7 or None (got {value!r})")


def _bool(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidInput(f"'{attribute.name}' must be True or False (got {value!r})")


def _tolerances(value: Any) -> float | Mapping[str, float]:
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for key, number in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"'metric_tolerance' keys must be metric names (got {key!r})")
            out[key] = check_number(number, f"metric_tolerance[{key!r}]", low=0.0)
        return out
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"'metric_tolerance' must be a number >= 0 or a mapping of metric name to number "
            f"(got {describe(value)})"
        )
    return check_number(value, "metric_tolerance", low=0.0)


def _runs(value: Any) -> tuple[TrainingRun, ...] | None:
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


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidInput(f"'seeds' must be a sequence of int (got {describe(value)})")
    seeds = tuple(value)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise InvalidInput(f"'seeds' must contain ints (got {seed!r})")
    if len(seeds) < 2:
        raise InvalidInput(f"'seeds' must hold at least 2 seeds (got {len(seeds)})")
    return tuple(int(s) for s in seeds)


def _metric_list(value: Any) -> tuple[Metric, ...]:
    if isinstance(value, str) or callable(value):
        value = (value,)
    if not isinstance(value, Sequence):
        raise InvalidInput(
            f"'metrics' must be a sequence of metric names or callables (got {value!r})"
        )
    found = tuple(get_metric(m) for m in value)
    names = [m.name for m in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"'metrics' must not repeat a name (got {duplicates} twice)")
    return found


def _check_compatible(runs: Sequence[TrainingRun], names: Sequence[str]) -> None:
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


def _display_names(runs: Sequence[TrainingRun], seeds: Sequence[int] | None) -> list[str]:
    base = []
    for i, run in enumerate(runs):
        if seeds is not None and run.name == "run":
            base.append(f"seed {seeds[i]}")
        else:
            base.append(run.name)
    return [f"{b}#{i + 1}" if base.count(b) > 1 else b for i, b in enumerate(base)]


# --------------------------------------------------------------------------- small helpers


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _pfmt(value: float) -> str:
    return "< 0.0001" if value < 1e-4 else f"= {value:.2g}"


def _distinct(a: float, b: float) -> tuple[str, str]:
    """Both numbers with just enough digits to tell them apart."""
    for digits in range(5, 18):
        left, right = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if left != right:
            return left, right
    return repr(a), repr(b)


def _is_correctness(metric: Metric) -> bool:
    """True for the built-in accuracy and error rate (means of per-example correctness)."""
    return metric.name in _CORRECTNESS_METRICS and METRICS.get(metric.name) is metric


def _sliced_standard_errors(codes: SliceCodes, counts: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Standard error of the mean of ``d`` in each slice (inf for slices of < 2 examples)."""
    k = codes.n_slices
    total = sliced_sum(codes.codes, k, d)
    squares = sliced_sum(codes.codes, k, d * d)
    many = counts > 1
    mean = np.divide(total, counts, out=np.zeros(k), where=counts > 0)
    variance = np.divide(squares - counts * mean**2, counts - 1, out=np.zeros(k), where=many)
    out = np.full(k, np.inf)
    np.sqrt(np.maximum(variance, 0.0) / np.maximum(counts, 1), out=out, where=many)
    return out


def _earliest(*steps: int | None) -> int | None:
    present = [s for s in steps if s is not None]
    return min(present) if present else None


def _hash_at(run: TrainingRun, step: int) -> str:
    hashes = run.step_hashes or ()
    return hashes[step] if step < len(hashes) else "(none: the run ended)"


def _trajectory_length(a: TrainingRun, b: TrainingRun) -> int:
    lengths = [len(x) for r in (a, b) for x in (r.losses, r.step_hashes) if x is not None]
    return max(lengths, default=0)


def _paired_mean_tost(
    differences: np.ndarray, margin: float, alpha: float
) -> tuple[float, tuple[float, float], float, bool]:
    """TOST on the mean of paired per-example differences (t distribution, n - 1 df).

    Returns (mean difference, (1 - 2 alpha) CI, TOST p-value, equivalent).
    """
    from scipy.stats import t as student

    n = differences.size
    mean = float(differences.mean())
    sd = float(differences.std(ddof=1)) if n > 1 else 0.0
    se = sd / math.sqrt(n)
    if se == 0.0:
        inside = abs(mean) < margin
        return mean, (mean, mean), 0.0 if inside else 1.0, inside
    df = n - 1
    half = float(student.ppf(1.0 - alpha, df)) * se
    low, high = mean - half, mean + half
    p_low = float(student.sf((mean + margin) / se, df))
    p_high = float(student.cdf((mean - margin) / se, df))
    return mean, (low, high), max(p_low, p_high), -margin < low and high < margin


# --------------------------------------------------------------------------- the check


@attrs.frozen(eq=False)
class ReproducibilityCheck:
    """Compare two or more training runs: metrics, sliced metrics, predictions, trajectories.

    Give either ``runs`` (two or more `TrainingRun`) or ``train``, a callable
    ``train(seed) -> TrainingRun`` that the check calls once per entry of ``seeds``, in
    parallel on the context's executor (`Context.submit`). The default ``seeds=(0, 0)``
    trains twice with the same seed: the runs should then be identical up to the
    tolerances.

    In the default *tolerance mode* the check fails when

    - churn (the fraction of examples whose predicted class changes) exceeds ``max_churn``,
      or correctness churn exceeds ``max_correctness_churn``;
    - an aggregate metric is not shown equivalent within ``metric_tolerance``: a TOST at
      ``alpha`` on paired per-example values when the runs have predictions and labels
      (accuracy, error rate, log loss, Brier, MSE, MAE), else ``|difference| >
      metric_tolerance``;
    - a slice's metric differs by more than ``slice_tolerance`` with a Holm-adjusted
      p-value at most ``alpha``;
    - more than ``max_fraction_beyond_tolerance`` of examples have a prediction value
      beyond ``prediction_atol + prediction_rtol * |p|`` (not judged by default).

    Losses that part beyond ``loss_tolerance`` give a WARN: the trajectories differ, and the
    outcome findings above say whether that matters. With ``exact=True`` every tolerance
    is zero: any difference in metrics, predictions, losses or parameter hashes fails, and
    the findings say where it first appears.

    Args:
        runs: two or more `TrainingRun`, or None when ``train`` is given.
        train: ``train(seed) -> TrainingRun``, or None when ``runs`` is given.
        seeds: the seed of each training run (at least 2), used with ``train``.
        exact: demand bit-identical runs.
        metric_tolerance: the equivalence margin for aggregate metrics (absolute), one
            number or a mapping of metric name to margin (other metrics use 0.01).
        max_churn: the largest allowed churn, in [0, 1].
        max_correctness_churn: the largest allowed correctness churn, in [0, 1]
            (None: ``max_churn``).
        prediction_atol: absolute tolerance per prediction value.
        prediction_rtol: relative tolerance per prediction value (times ``max(|a|, |b|)``).
        max_fraction_beyond_tolerance: the largest allowed fraction of examples with a
            value beyond the prediction tolerance, in [0, 1]; None reports without judging.
        slice_tolerance: the largest allowed per-slice metric difference (absolute).
        loss_tolerance: the absolute loss difference that counts as divergence.
        alpha: the level of the TOST and of the Holm-corrected slice tests, in (0, 0.5).
        metrics: metric names (see `mlchecks.stats.metrics.METRICS`), `Metric` objects or
            callables ``f(y_true, y_pred) -> float``, computed from predictions and labels
            when a run does not report them.
        top_k: how many of the most different examples to list per pair of runs.
        name: the check's name in reports.
        rubric: the ML Test Score infrastructure test (1).

    Raises:
        InvalidInput: for a bad field (the message names it and the value).

    >>> ReproducibilityCheck(train=lambda seed: TrainingRun(), max_churn=1.5)
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'max_churn' must be in [0, 1] (got 1.5)
    """

    runs: tuple[TrainingRun, ...] | None = attrs.field(default=None, converter=_runs)
    train: Callable[[int], TrainingRun] | None = attrs.field(default=None, kw_only=True)
    seeds: tuple[int, ...] = attrs.field(default=(0, 0), converter=_seeds, kw_only=True)
    exact: bool = attrs.field(default=False, validator=_bool, kw_only=True)
    metric_tolerance: float | Mapping[str, float] = attrs.field(
        default=0.01, converter=_tolerances, kw_only=True
    )
    max_churn: float = attrs.field(default=0.01, validator=_FRACTION, kw_only=True)
    max_correctness_churn: float | None = attrs.field(
        default=None, validator=optional(_FRACTION), kw_only=True
    )
    prediction_atol: float = attrs.field(default=1e-6, validator=_NON_NEGATIVE, kw_only=True)
    prediction_rtol: float = attrs.field(default=0.0, validator=_NON_NEGATIVE, kw_only=True)
    max_fraction_beyond_tolerance: float | None = attrs.field(
        default=None, validator=optional(_FRACTION), kw_only=True
    )
    slice_tolerance: float = attrs.field(default=0.02, validator=_NON_NEGATIVE, kw_only=True)
    loss_tolerance: float = attrs.field(default=1e-6, validator=_NON_NEGATIVE, kw_only=True)
    alpha: float = attrs.field(default=0.05, validator=_ALPHA, kw_only=True)
    metrics: tuple[Metric, ...] = attrs.field(
        default=("accuracy", "log_loss"), converter=_metric_list, kw_only=True
    )
    top_k: int = attrs.field(default=10, validator=int_at_least(0), kw_only=True)
    name: str = attrs.field(
        default="reproducibility", validator=attrs.validators.instance_of(str), kw_only=True
    )
    rubric: int | None = attrs.field(default=1, validator=_rubric, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if (self.runs is None) == (self.train is None):
            got = "both" if self.runs is not None else "neither"
            raise InvalidInput(f"give either 'runs' or 'train' (got {got})")
        if self.train is not None and not callable(self.train):
            raise InvalidInput(f"'train' must be callable as train(seed) (got {self.train!r})")
        if self.runs is not None:
            _check_compatible(self.runs, _display_names(self.runs, None))

    def tolerance_for(self, metric: str) -> float:
        """The absolute tolerance for ``metric`` (0 in exact mode).

        >>> ReproducibilityCheck(train=print, metric_tolerance={"log_loss": 0.05}).tolerance_for(
        ...     "accuracy"
        ... )
        0.01
        """
        if self.exact:
            return 0.0
        if isinstance(self.metric_tolerance, Mapping):
            return self.metric_tolerance.get(metric, 0.01)
        return self.metric_tolerance

    def run(self, context: Context | None = None) -> Result:
        """Train (when given ``train``) and compare the runs; see the class docstring."""
        ctx = context if context is not None else Context()
        if self.runs is not None:
            runs = list(self.runs)
            names = _display_names(runs, None)
            seeds: tuple[int, ...] | None = None
        else:
            assert self.train is not None
            ctx.report(f"{self.name}: training {len(self.seeds)} runs (seeds {self.seeds})")
            futures = [ctx.submit(self.train, seed) for seed in self.seeds]
            runs = [future.result() for future in futures]
            for seed, run in zip(self.seeds, runs, strict=True):
                if not isinstance(run, TrainingRun):
                    raise TypeError(
                        f"'train' must return a TrainingRun (got {type(run).__name__} for "
                        f"seed {seed})"
                    )
            seeds = self.seeds
            names = _display_names(runs, seeds)
            _check_compatible(runs, names)
        return _Evaluation(self, runs, names, seeds).result()


# --------------------------------------------------------------------------- evaluation


@attrs.define
class _Prepared:
    """One run with what the evaluation derives from it once."""

    name: str
    run: TrainingRun
    classes: np.ndarray | None = None
    correct: np.ndarray | None = None
    values: dict[str, float] = attrs.Factory(dict)
    per_example: dict[str, np.ndarray] = attrs.Factory(dict)


class _Evaluation:
    """Builds the findings, metrics and details of one `ReproducibilityCheck` run."""

    def __init__(
        self,
        check: ReproducibilityCheck,
        runs: list[TrainingRun],
        names: list[str],
        seeds: tuple[int, ...] | None,
    ) -> None:
        self.check = check
        self.seeds = seeds
        self.exact = check.exact
        self.findings: list[Finding] = []
        self.metrics: dict[str, float] = {}
        self.details: dict[str, Any] = {"mode": "exact" if check.exact else "tolerance"}
        self.skipped: dict[str, str] = {}
        self.labels = next((r.labels for r in runs if r.labels is not None), None)
        self.slices = next((r.slices for r in runs if r.slices is not None), None)
        self.prepared = [_Prepared(name, run) for name, run in zip(names, runs, strict=True)]
        self.pairs = [
            (i, j) for i in range(len(self.prepared)) for j in range(i + 1, len(self.prepared))
        ]
        self.int_labels: np.ndarray | None = None
        if self.labels is not None:
            try:
                self.int_labels = as_labels(self.labels, "labels")
            except InvalidInput:
                self.int_labels = None

    # ---- orchestration

    def result(self) -> Result:
        self._check_same_examples()
        for p in self.prepared:
            self._prepare(p)
        self._record_run_metrics()
        self._compare_predictions()
        self._compare_metrics()
        self._compare_slices()
        self._compare_trajectories()
        self._spread()
        if self.skipped:
            self.details["skipped"] = dict(self.skipped)
        if not self.findings:
            self.findings.append(
                Finding(
                    "comparable_data",
                    Status.SKIP,
                    message="the runs share nothing to compare: give metrics, predictions, "
                    "losses or step hashes",
                )
            )
        return Result.from_findings(
            self.check.name,
            self.findings,
            summary=self._summary(),
            metrics=self.metrics,
            details=self.details,
            rubric=self.check.rubric,
        )

    def _summary(self) -> str:
        bad = [f for f in self.findings if f.status in (Status.FAIL, Status.ERROR)]
        if bad:
            others = [f.name for f in bad[1:]]
            tail = f" (also failed: {', '.join(others)})" if others else ""
            return f"{bad[0].message}{tail}"
        if all(f.status is Status.SKIP for f in self.findings):
            return self.findings[0].message
        names = ", ".join(repr(p.name) for p in self.prepared)
        how = "are identical" if self.exact else "agree within tolerance"
        warned = [f.name for f in self.findings if f.status is Status.WARN]
        tail = f" (warnings: {', '.join(warned)})" if warned else ""
        return f"runs {names} {how} in {len(self.findings)} checked conditions{tail}"

    def _pair_label(self, i: int, j: int) -> str:
        return f"run {self.prepared[i].name!r} and run {self.prepared[j].name!r}"

    # ---- inputs

    def _check_same_examples(self) -> None:
        """Runs that carry labels or slices must carry the same ones."""
        runs = self.prepared
        if self.labels is not None:
            for p in runs:
                other = p.run.labels
                if other is None or other is self.labels:
                    continue
                differ = np.flatnonzero(other != self.labels)
                if differ.size:
                    self.findings.append(
                        Finding(
                            "same_labels",
                            Status.FAIL,
                            float(differ.size),
                            "== 0",
                            f"run {p.name!r} was evaluated with different labels: "
                            f"{differ.size:,} of {len(other):,} differ (first at example "
                            f"{int(differ[0])}), so its predictions are not comparable",
                        )
                    )
                    break
        if self.slices is not None:
            for p in runs:
                other_slices = p.run.slices
                if other_slices is None or other_slices is self.slices:
                    continue
                same = set(other_slices) == set(self.slices) and all(
                    other_slices[k].names == self.slices[k].names
                    and np.array_equal(other_slices[k].codes, self.slices[k].codes)
                    for k in self.slices
                )
                if not same:
                    self.findings.append(
                        Finding(
                            "same_slices",
                            Status.FAIL,
                            None,
                            "identical",
                            f"run {p.name!r} assigns examples to different slices than run "
                            f"{runs[0].name!r}; slices are taken from the first run",
                        )
                    )
                    break

    def _prepare(self, p: _Prepared) -> None:
        predictions = p.run.predictions
        if predictions is not None:
            try:
                p.classes = predicted_labels(predictions, name="predictions")
            except InvalidInput:
                p.classes = None
            if p.classes is not None and self.int_labels is not None:
                p.correct = p.classes == self.int_labels
        for metric in self.check.metrics:
            reported = p.run.metrics.get(metric.name)
            if predictions is not None and self.labels is not None:
                try:
                    self._compute(p, metric, predictions, aggregate=reported is None)
                except InvalidInput as exc:
                    if reported is None:
                        self.skipped[metric.name] = str(exc)
        # A value the run reports itself wins over the computed one; the per-example
        # values computed above still serve the paired tests and the slices.
        p.values.update(p.run.metrics)

    def _compute(
        self, p: _Prepared, metric: Metric, predictions: np.ndarray, *, aggregate: bool
    ) -> None:
        """Per-example values (when the metric has them) and, if asked, the metric itself."""
        if _is_correctness(metric) and p.correct is not None:
            # Reuse the predicted classes instead of a second argmax over the rows.
            hits = p.correct if metric.name == "accuracy" else ~p.correct
            p.per_example[metric.name] = hits.astype(np.float64)
            p.values[metric.name] = float(np.count_nonzero(hits) / hits.size)
        elif metric.per_example is not None:
            terms = np.asarray(metric.per_example(self.labels, predictions), dtype=np.float64)
            p.per_example[metric.name] = terms
            p.values[metric.name] = float(terms.mean())
        elif aggregate:
            p.values[metric.name] = metric(self.labels, predictions)

    def _record_run_metrics(self) -> None:
        rows = []
        for index, p in enumerate(self.prepared):
            for key, value in p.values.items():
                self.metrics[f"{p.name}.{key}"] = value
            row: dict[str, Any] = {"name": p.name, "metrics": dict(p.values)}
            if self.seeds is not None:
                row["seed"] = self.seeds[index]
            row["n_examples"] = p.run.n_examples
            rows.append(row)
        self.details["runs"] = rows
        self.details["pairs"] = [
            {"a": self.prepared[i].name, "b": self.prepared[j].name} for i, j in self.pairs
        ]

    # ---- example by example

    def _compare_predictions(self) -> None:
        pairs = [
            (k, i, j)
            for k, (i, j) in enumerate(self.pairs)
            if self.prepared[i].run.predictions is not None
            and self.prepared[j].run.predictions is not None
        ]
        if not pairs:
            return
        atol = 0.0 if self.exact else self.check.prediction_atol
        rtol = 0.0 if self.exact else self.check.prediction_rtol
        results: dict[int, PredictionComparison] = {}
        for k, i, j in pairs:
            a, b = self.prepared[i], self.prepared[j]
            comparison = compare_predictions(
                a.run.predictions,
                b.run.predictions,
                labels=self.int_labels if a.classes is not None else None,
                atol=atol,
                rtol=rtol,
                top_k=self.check.top_k,
            )
            results[k] = comparison
            entry = self.details["pairs"][k]
            entry["predictions"] = comparison.to_dict()
            entry["predictions"]["top_examples"] = self._top_examples(a, b, comparison)
        self._judge_predictions(results)
        if len(self.prepared) > 2:
            matrix = np.zeros((len(self.prepared), len(self.prepared)))
            for k, comparison in results.items():
                i, j = self.pairs[k]
                matrix[i, j] = matrix[j, i] = comparison.churn
            self.details["churn_matrix"] = matrix.tolist()

    def _top_examples(
        self, a: _Prepared, b: _Prepared, comparison: PredictionComparison
    ) -> list[dict[str, Any]]:
        rows = []
        for index, diff in zip(comparison.top_indices, comparison.top_diffs, strict=True):
            row: dict[str, Any] = {"index": index, "abs_diff": diff}
            if a.classes is not None and b.classes is not None:
                row["class_a"] = int(a.classes[index])
                row["class_b"] = int(b.classes[index])
            if self.labels is not None:
                row["label"] = self.labels[index].item()
            rows.append(row)
        return rows

    def _judge_predictions(self, results: dict[int, PredictionComparison]) -> None:
        check = self.check

        def worst(key: Callable[[PredictionComparison], float]) -> tuple[int, PredictionComparison]:
            k = max(results, key=lambda k: (key(results[k]), -k))
            return k, results[k]

        classified = all(
            self.prepared[i].classes is not None for k in results for i in self.pairs[k]
        )
        if classified:
            k, c = worst(lambda c: c.churn)
            limit = 0.0 if self.exact else check.max_churn
            context = (
                f": {c.churn_count:,} of {c.n:,} predictions changed class between "
                f"{self._pair_label(*self.pairs[k])}"
            )
            self.findings.append(AtMost(limit).judge("churn", c.churn, context=context))
            self.metrics["churn"] = c.churn
            if all(r.correctness_churn is not None for r in results.values()):
                k, c = worst(lambda c: c.correctness_churn or 0.0)
                if self.exact:
                    limit = 0.0
                elif check.max_correctness_churn is not None:
                    limit = check.max_correctness_churn
                else:
                    limit = check.max_churn
                context = (
                    f": {c.correctness_churn_count:,} of {c.n:,} examples are right in one run "
                    f"and wrong in the other ({self._pair_label(*self.pairs[k])})"
                )
                assert c.correctness_churn is not None
                self.findings.append(
                    AtMost(limit).judge("correctness_churn", c.correctness_churn, context=context)
                )
                self.metrics["correctness_churn"] = c.correctness_churn
        else:
            self.skipped["churn"] = (
                "predictions are neither class probabilities nor labels (1-D values outside "
                "[0, 1]), so no predicted class is defined"
            )

        k, c = worst(lambda c: c.max_abs_diff)
        self.metrics["max_abs_diff"] = c.max_abs_diff
        self.metrics["mean_abs_diff"] = max(r.mean_abs_diff for r in results.values())
        if self.exact:
            self.findings.append(self._identical_predictions_finding(k, c))
        k, c = worst(lambda c: c.fraction_beyond_tolerance)
        self.metrics["fraction_beyond_tolerance"] = c.fraction_beyond_tolerance
        if check.max_fraction_beyond_tolerance is not None and not self.exact:
            context = (
                f": {c.count_beyond_tolerance:,} of {c.n:,} examples differ by more than "
                f"{check.prediction_atol:g} + {check.prediction_rtol:g} x |p| between "
                f"{self._pair_label(*self.pairs[k])}"
            )
            self.findings.append(
                AtMost(check.max_fraction_beyond_tolerance).judge(
                    "fraction_beyond_tolerance", c.fraction_beyond_tolerance, context=context
                )
            )
        correlations = [
            r.rank_correlation for r in results.values() if r.rank_correlation is not None
        ]
        if correlations:
            self.metrics["rank_correlation"] = min(correlations)

    def _identical_predictions_finding(self, k: int, c: PredictionComparison) -> Finding:
        if c.identical:
            return Finding(
                "max_abs_diff",
                Status.PASS,
                0.0,
                "== 0",
                f"predictions are bit-identical in every run ({c.n:,} examples)",
            )
        top = f" at example {c.top_indices[0]}" if c.top_indices else ""
        return Finding(
            "max_abs_diff",
            Status.FAIL,
            c.max_abs_diff,
            "== 0",
            f"predictions differ on {c.differing_count:,} of {c.n:,} examples between "
            f"{self._pair_label(*self.pairs[k])}, first at example {c.first_diff_index}; "
            f"the largest difference is {_fmt(c.max_abs_diff)}{top}",
        )

    # ---- aggregate metrics

    def _compare_metrics(self) -> None:
        names = [m.name for m in self.check.metrics if m.name in self.skipped]
        for p in self.prepared:
            names.extend(k for k in p.values if k not in names)
        for name in names:
            present = [p for p in self.prepared if name in p.values]
            if len(present) < len(self.prepared):
                missing = [p.name for p in self.prepared if name not in p.values]
                reason = self.skipped.get(name, "")
                self.findings.append(
                    Finding(
                        f"metric.{name}",
                        Status.WARN,
                        None,
                        "",
                        f"{name} is missing from run(s) {', '.join(map(repr, missing))}, so it "
                        f"is not compared" + (f": {reason}" if reason else ""),
                    )
                )
                continue
            self._compare_metric(name)

    def _compare_metric(self, name: str) -> None:
        tolerance = self.check.tolerance_for(name)
        judged: list[tuple[int, Finding, dict[str, Any]]] = []
        for k, (i, j) in enumerate(self.pairs):
            finding, row = self._metric_pair(name, i, j, tolerance)
            self.details["pairs"][k].setdefault("metrics", {})[name] = row
            judged.append((k, finding, row))
        k, finding, row = max(judged, key=lambda t: (t[1].status, abs(t[2]["difference"]), -t[0]))
        self.findings.append(finding)
        self.metrics[f"{name}.difference"] = row["difference"]

    def _metric_pair(
        self, name: str, i: int, j: int, tolerance: float
    ) -> tuple[Finding, dict[str, Any]]:
        a, b = self.prepared[i], self.prepared[j]
        va, vb = a.values[name], b.values[name]
        difference = va - vb
        row: dict[str, Any] = {"a": va, "b": vb, "difference": difference}
        pair = self._pair_label(i, j)
        key = f"metric.{name}"
        values = f"{name} of {pair} ({_fmt(va)} vs {_fmt(vb)})"
        if self.exact or tolerance == 0.0:
            same = va == vb or (math.isnan(va) and math.isnan(vb))
            row["test"] = "exact"
            if same:
                return Finding(key, Status.PASS, 0.0, "== 0", f"{values} is identical"), row
            message = f"{values} differs by {_signed(difference)}; exact equality is required"
            return Finding(key, Status.FAIL, difference, "== 0", message), row
        level = f"{round(100 * (1 - 2 * self.check.alpha))}%"
        test = self._metric_test(name, a, b, tolerance)
        limit = f"|difference| < {_fmt(tolerance)}"
        if test is None:
            row["test"] = "none"
            ok = abs(difference) <= tolerance
            verdict = "within" if ok else "beyond"
            message = (
                f"{values} differs by {_signed(difference)}, {verdict} the tolerance "
                f"{_fmt(tolerance)} (no per-example values for a test)"
            )
            status = Status.PASS if ok else Status.FAIL
            return Finding(key, status, difference, f"<= {_fmt(tolerance)}", message), row
        row.update(test)
        difference = test["difference"]
        row["difference"] = difference
        ci = test["ci"]
        extra = (
            f", exact McNemar p {_pfmt(test['mcnemar_pvalue'])}" if "mcnemar_pvalue" in test else ""
        )
        stats = (
            f"{_fmt(va)} vs {_fmt(vb)}; difference {_signed(difference)}, {level} CI "
            f"[{_fmt(ci[0])}, {_fmt(ci[1])}]{extra}; TOST p {_pfmt(test['pvalue'])}"
        )
        if test["equivalent"]:
            message = f"{name} of {pair} is equivalent within ±{_fmt(tolerance)} ({stats})"
            return Finding(key, Status.PASS, difference, limit, message), row
        message = (
            f"{name} of {pair} is not shown equivalent within ±{_fmt(tolerance)} at alpha "
            f"{self.check.alpha:g} ({stats})"
        )
        return Finding(key, Status.FAIL, difference, limit, message), row

    def _metric_test(
        self, name: str, a: _Prepared, b: _Prepared, tolerance: float
    ) -> dict[str, Any] | None:
        alpha = self.check.alpha
        metric = next((m for m in self.check.metrics if m.name == name), None)
        if (
            metric is not None
            and _is_correctness(metric)
            and a.correct is not None
            and b.correct is not None
        ):
            only_a = int(np.count_nonzero(a.correct & ~b.correct))
            only_b = int(np.count_nonzero(~a.correct & b.correct))
            n = a.correct.size
            if name == "error_rate":
                only_a, only_b = only_b, only_a
            tost = tost_paired_accuracy_counts(only_a, only_b, n, margin=tolerance, alpha=alpha)
            mcnemar = mcnemar_exact_counts(only_a, only_b, n)
            return {
                "test": "tost_paired_accuracy",
                "difference": tost.difference,
                "ci": [tost.ci.low, tost.ci.high],
                "pvalue": tost.pvalue,
                "equivalent": tost.equivalent,
                "mcnemar_pvalue": mcnemar.pvalue,
                "discordant": [only_a, only_b],
            }
        if name in a.per_example and name in b.per_example:
            mean, ci, pvalue, equivalent = _paired_mean_tost(
                a.per_example[name] - b.per_example[name], tolerance, alpha
            )
            return {
                "test": "tost_paired_mean",
                "difference": mean,
                "ci": list(ci),
                "pvalue": pvalue,
                "equivalent": equivalent,
            }
        return None

    # ---- slices

    def _slice_metrics(self) -> list[Metric]:
        """The metrics computable per slice in every run (all runs have predictions)."""
        if any(p.run.predictions is None for p in self.prepared):
            return []
        return [
            m
            for m in self.check.metrics
            if m.name not in self.skipped
            and (m.per_example is None or all(m.name in p.per_example for p in self.prepared))
        ]

    def _compare_slices(self) -> None:
        if self.slices is None or self.labels is None:
            return
        metrics = self._slice_metrics()
        if not metrics:
            return
        tests: list[dict[str, Any]] = []
        tables: dict[str, Any] = {}
        for slicing, codes in self.slices.items():
            counts = sliced_sum(codes.codes, codes.n_slices)
            table: dict[str, Any] = {"names": list(codes.names), "counts": counts.tolist()}
            values: dict[str, dict[str, list[float]]] = {}
            for metric in metrics:
                per_run = [self._slice_values(p, metric, codes, counts) for p in self.prepared]
                values[metric.name] = {
                    p.name: v.tolist() for p, v in zip(self.prepared, per_run, strict=True)
                }
                for i, j in self.pairs:
                    tests.extend(self._slice_tests(slicing, codes, counts, metric, i, j, per_run))
            table["metrics"] = values
            tables[slicing] = table
        self._judge_slices(tests)
        self.details["slices"] = tables
        self.details["slice_tolerance"] = 0.0 if self.exact else self.check.slice_tolerance

    def _slice_values(
        self, p: _Prepared, metric: Metric, codes: SliceCodes, counts: np.ndarray
    ) -> np.ndarray:
        if metric.name in p.per_example:
            sums = sliced_sum(codes.codes, codes.n_slices, p.per_example[metric.name])
            out = np.full(codes.n_slices, np.nan)
            np.divide(sums, counts, out=out, where=counts > 0)
            return out
        return sliced_metric(metric, codes.codes, codes.n_slices, self.labels, p.run.predictions)

    def _slice_tests(
        self,
        slicing: str,
        codes: SliceCodes,
        counts: np.ndarray,
        metric: Metric,
        i: int,
        j: int,
        per_run: list[np.ndarray],
    ) -> list[dict[str, Any]]:
        """One row per non-empty slice: both values, the difference and its p-values.

        ``pvalue`` tests H0 ``|difference| <= slice_tolerance`` against "beyond" (a z-test
        on each side at alpha / 2, via `normal_pvalue`); None where no paired standard
        error exists (metrics that are not per-example means, slices of one example).
        """
        a, b = self.prepared[i], self.prepared[j]
        tolerance = self.check.slice_tolerance
        standard_errors = None
        mcnemar: list[float] | None = None
        if not self.exact:
            discordant = self._slice_discordant(metric, a, b, codes)
            if discordant is not None:
                only_a, only_b = discordant
                standard_errors = np.full(codes.n_slices, np.inf)
                mcnemar = []
                for s in range(codes.n_slices):
                    x, y, n = int(only_a[s]), int(only_b[s]), int(counts[s])
                    mcnemar.append(mcnemar_exact_counts(x, y, n).pvalue)
                    if n > 1:
                        paired = paired_accuracy_difference_counts(x, y, n)
                        standard_errors[s] = paired.standard_error
            elif metric.name in a.per_example and metric.name in b.per_example:
                d = a.per_example[metric.name] - b.per_example[metric.name]
                standard_errors = _sliced_standard_errors(codes, counts, d)
        rows = []
        for s in map(int, np.flatnonzero(counts)):
            va, vb = float(per_run[i][s]), float(per_run[j][s])
            difference = va - vb
            row: dict[str, Any] = {
                "slicing": slicing,
                "slice": codes.names[s],
                "metric": metric.name,
                "a": a.name,
                "b": b.name,
                "value_a": va,
                "value_b": vb,
                "difference": difference,
                "n": int(counts[s]),
                "pvalue": None,
            }
            if self.exact:
                row["flagged"] = not (va == vb or (math.isnan(va) and math.isnan(vb)))
            elif standard_errors is not None and math.isfinite(standard_errors[s] + difference):
                se = float(standard_errors[s])
                beyond = normal_pvalue(abs(difference), se, tolerance, alternative="greater")
                row["pvalue"] = min(1.0, 2.0 * beyond)
            if mcnemar is not None:
                row["mcnemar_pvalue"] = mcnemar[s]
            rows.append(row)
        return rows

    def _slice_discordant(
        self, metric: Metric, a: _Prepared, b: _Prepared, codes: SliceCodes
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Per slice, the examples only run a got right and those only run b got right."""
        if not _is_correctness(metric) or a.correct is None or b.correct is None:
            return None
        only_a = sliced_sum(codes.codes[a.correct & ~b.correct], codes.n_slices)
        only_b = sliced_sum(codes.codes[~a.correct & b.correct], codes.n_slices)
        return (only_b, only_a) if metric.name == "error_rate" else (only_a, only_b)

    def _judge_slices(self, tests: list[dict[str, Any]]) -> None:
        tolerance = self.check.slice_tolerance
        alpha = self.check.alpha
        tested = [r for r in tests if r["pvalue"] is not None]
        if tested:
            adjusted = holm([r["pvalue"] for r in tested])
            for row, value in zip(tested, adjusted, strict=True):
                row["adjusted_pvalue"] = float(value)
                row["flagged"] = bool(value <= alpha and abs(row["difference"]) > tolerance)
        for row in tests:
            row.setdefault("flagged", False)
            row.setdefault("adjusted_pvalue", None)
        self.details["slice_tests"] = tests
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in tests:
            groups.setdefault((row["slicing"], row["metric"]), []).append(row)
        for (slicing, metric), rows in groups.items():
            judged = self.exact or any(r["pvalue"] is not None for r in rows)
            if not judged:
                continue
            flagged = [r for r in rows if r["flagged"]]
            slices = {r["slice"] for r in rows}
            bad_slices = sorted({r["slice"] for r in flagged}, key=list(slices).index)
            rule = (
                "any difference (exact mode)"
                if self.exact
                else (
                    f"{_fmt(tolerance)} (Holm-adjusted across {len(tested)} slice tests, "
                    f"alpha {alpha:g})"
                )
            )
            if not flagged:
                message = (
                    f"no {slicing} slice differs in {metric} beyond {rule}; "
                    f"{len(slices)} slices compared"
                )
                self.findings.append(
                    Finding(f"slices.{slicing}.{metric}", Status.PASS, 0.0, "== 0", message)
                )
                continue
            message = (
                f"{len(bad_slices)} of {len(slices)} {slicing} slices differ in {metric} beyond "
                f"{rule}: {', '.join(bad_slices)}"
            )
            self.findings.append(
                Finding(
                    f"slices.{slicing}.{metric}",
                    Status.FAIL,
                    float(len(bad_slices)),
                    "== 0",
                    message,
                )
            )
            seen: set[str] = set()
            for row in sorted(flagged, key=lambda r: -abs(r["difference"])):
                if row["slice"] in seen:
                    continue
                seen.add(row["slice"])
                self.findings.append(self._slice_finding(row))

    def _slice_finding(self, row: dict[str, Any]) -> Finding:
        where = f"{row['metric']} in {row['slicing']} slice {row['slice']!r}"
        values = (
            f"{_fmt(row['value_a'])} in run {row['a']!r} vs {_fmt(row['value_b'])} in run "
            f"{row['b']!r} (difference {_signed(row['difference'])}, n = {row['n']:,})"
        )
        if self.exact:
            reason = "exact equality required"
            limit = "== 0"
        else:
            reason = (
                f"beyond the slice tolerance {_fmt(self.check.slice_tolerance)} "
                f"(Holm-adjusted p {_pfmt(row['adjusted_pvalue'])})"
            )
            limit = f"|difference| <= {_fmt(self.check.slice_tolerance)}"
        return Finding(
            f"slice.{row['slicing']}.{row['slice']}.{row['metric']}",
            Status.FAIL,
            row["difference"],
            limit,
            f"{where} is {values}: {reason}",
        )

    # ---- training trajectories

    def _compare_trajectories(self) -> None:
        tolerance = 0.0 if self.exact else self.check.loss_tolerance
        found: list[tuple[tuple[float, float, int], int, LossDivergence | None, int | None]] = []
        for k, (i, j) in enumerate(self.pairs):
            a, b = self.prepared[i].run, self.prepared[j].run
            entry: dict[str, Any] = {}
            divergence = None
            hash_step = None
            if a.losses is not None and b.losses is not None:
                divergence = loss_divergence(a.losses, b.losses, tolerance=tolerance)
                entry["losses"] = attrs.asdict(divergence)
            if a.step_hashes is not None and b.step_hashes is not None:
                hash_step = first_mismatch(a.step_hashes, b.step_hashes)
                entry["first_hash_difference"] = hash_step
            if not entry:
                continue
            self.details["pairs"][k]["divergence"] = entry
            beyond = divergence.first_step_beyond if divergence else None
            first = _earliest(divergence.first_step if divergence else None, hash_step)
            order = (
                math.inf if beyond is None else beyond,
                math.inf if first is None else first,
                k,
            )
            found.append((order, k, divergence, hash_step))
        self._loss_curves(found)
        if not found:
            return
        _, k, divergence, hash_step = min(found, key=lambda row: row[0])
        self.findings.append(self._divergence_finding(*self.pairs[k], divergence, hash_step))
        if divergence is not None and divergence.first_step is not None:
            self.metrics["first_loss_difference_step"] = float(divergence.first_step)
        if divergence is not None and divergence.first_step_beyond is not None:
            self.metrics["first_divergence_step"] = float(divergence.first_step_beyond)
        if hash_step is not None:
            self.metrics["first_hash_difference_step"] = float(hash_step)

    def _loss_curves(
        self, found: Sequence[tuple[Any, int, LossDivergence | None, int | None]]
    ) -> None:
        """Every run's losses at up to `MAX_POINTS` shared steps, for report figures.

        The steps where a pair first differs are always among them.
        """
        curves = {p.name: p.run.losses for p in self.prepared if p.run.losses is not None}
        if not curves:
            return
        marked: list[int] = []
        for _, _, divergence, hash_step in found:
            if divergence is not None:
                steps = (divergence.first_step, divergence.first_step_beyond)
                marked += [s for s in steps if s is not None]
            if hash_step is not None:
                marked.append(hash_step)
        kept = even_indices(max(len(v) for v in curves.values()), keep=marked)
        self.details["losses"] = {
            "steps": kept.tolist(),
            "runs": {
                name: [float(v[s]) if s < len(v) else math.nan for s in kept]
                for name, v in curves.items()
            },
        }

    def _divergence_finding(
        self, i: int, j: int, divergence: LossDivergence | None, hash_step: int | None
    ) -> Finding:
        a, b = self.prepared[i], self.prepared[j]
        runs = f"runs {a.name!r} and {b.name!r}"
        tolerance = 0.0 if self.exact else self.check.loss_tolerance
        limit = "no difference" if self.exact else f"losses within {tolerance:g}"
        beyond = divergence.first_step_beyond if divergence else None
        loss_step = divergence.first_step if divergence else None
        values = ""
        if beyond is not None and divergence is not None:
            if divergence.loss_a is not None and divergence.loss_b is not None:
                left, right = _distinct(divergence.loss_a, divergence.loss_b)
                values = f"loss {left} vs {right}"
            else:
                values = f"one run stops after {divergence.steps:,} steps"
        facts: list[tuple[int, str]] = []
        if loss_step is not None:
            if self.exact:
                facts.append((loss_step, f"losses first differ at step {loss_step} ({values})"))
            elif loss_step != beyond:
                facts.append((loss_step, f"losses differ within tolerance from step {loss_step}"))
        if hash_step is not None:
            hash_a, hash_b = _hash_at(a.run, hash_step), _hash_at(b.run, hash_step)
            facts.append(
                (hash_step, f"parameter hashes differ from step {hash_step} ({hash_a} vs {hash_b})")
            )
        facts.sort(key=lambda fact: fact[0])
        rest = "; ".join(text for _, text in facts)
        steps = _trajectory_length(a.run, b.run)
        if self.exact and facts:
            message = f"{runs} first differ at step {facts[0][0]}: {rest}"
            return Finding("first_divergence", Status.FAIL, facts[0][0], limit, message)
        if beyond is not None:
            message = f"{runs} diverge at step {beyond} ({values}, beyond {tolerance:g})"
            message += f"; {rest}" if rest else ""
            return Finding("first_divergence", Status.WARN, beyond, limit, message)
        if facts:
            message = f"losses of {runs} stay within {tolerance:g} over {steps:,} steps, but {rest}"
            if divergence is None:
                message = f"{runs}: {rest}"
            return Finding("first_divergence", Status.PASS, None, limit, message)
        what = " and ".join(
            word
            for word, present in (
                ("losses", divergence is not None),
                (
                    "parameter hashes",
                    a.run.step_hashes is not None and b.run.step_hashes is not None,
                ),
            )
            if present
        )
        message = f"{what} of {runs} are identical over all {steps:,} steps"
        return Finding("first_divergence", Status.PASS, None, limit, message)

    # ---- spread

    def _spread(self) -> None:
        if len(self.prepared) < 3:
            return
        spread: dict[str, dict[str, float]] = {}
        names = [k for k in self.prepared[0].values if all(k in p.values for p in self.prepared)]
        for name in names:
            values = np.array([p.values[name] for p in self.prepared])
            std = float(values.std(ddof=1))
            spread[name] = {"std": std, "min": float(values.min()), "max": float(values.max())}
            self.metrics[f"{name}.std"] = std
        self.details["spread"] = spread
