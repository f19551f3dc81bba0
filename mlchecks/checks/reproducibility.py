"""Rubric test 1: training is reproducible.

"Train two models on the same data, and observe any differences in aggregate metrics,
sliced metrics, or example-by-example predictions" (Breck et al., ML Test Score).

`TrainingRun` is what one training run leaves behind; `ReproducibilityCheck` compares two
or more of them, or trains them itself from a ``make_run(seed)`` callable on the context's
executor. It measures

- every aggregate metric of every run and the pairwise differences, with a TOST
  equivalence test where labels allow;
- the same metrics per slice, flagging slices whose difference exceeds ``slice_metric_atol``
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

import concurrent.futures
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from mlchecks import _fields
from mlchecks._deadline import Deadline
from mlchecks._fields import KIND, MaxLimit, count, limit, renamed, resolve_seed, tolerance
from mlchecks._global_state import Exclusive, with_note
from mlchecks._validate import TASKS, check_number, describe
from mlchecks.check import Context
from mlchecks.checks._repro_eval import Evaluation
from mlchecks.checks._runs import (
    TrainingRun,
    check_compatible,
    classes_converter,
    display_names,
    runs_converter,
)
from mlchecks.exceptions import CheckTimeout, InvalidInput
from mlchecks.result import Result
from mlchecks.stats.metrics import Metric, get_metric

__all__ = ["ReproducibilityCheck", "TrainingRun"]

#: The margin of a metric that ``metric_atol`` does not name.
DEFAULT_METRIC_ATOL = 0.01

#: The relative margin of a metric that ``metric_rtol`` does not name: 1% for the metrics
#: in the units of the target (an MSE of 3,600 may move by 36), 0 for the others.
DEFAULT_METRIC_RTOL: Mapping[str, float] = {"mse": 0.01, "mae": 0.01, "rmse": 0.01}


# --------------------------------------------------------------------------- field converters


def _metric_tolerance(value: Any, field: str) -> float | Mapping[str, float]:
    """``metric_atol``/``metric_rtol``: one number >= 0, or a mapping metric name -> number."""
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for key, number in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"'{field}' keys must be metric names (got {key!r})")
            out[key] = check_number(number, f"{field}[{key!r}]", low=0.0)
        return out
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"'{field}' must be a number >= 0 or a mapping of metric name to number "
            f"(got {describe(value)})"
        )
    return check_number(value, field, low=0.0)


def _metric_atol(value: Any) -> float | Mapping[str, float]:
    return _metric_tolerance(value, "metric_atol")


def _metric_rtol(value: Any) -> float | Mapping[str, float]:
    return _metric_tolerance(value, "metric_rtol")


def _seeds(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidInput(f"'seeds' must be a sequence of int or None (got {describe(value)})")
    seeds = tuple(value)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise InvalidInput(f"'seeds' must contain ints >= 0 (got {seed!r})")
    if len(seeds) < 2:
        raise InvalidInput(f"'seeds' must hold at least 2 seeds (got {len(seeds)})")
    return tuple(int(s) for s in seeds)


def _metric_list(value: Any) -> tuple[Metric, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or callable(value):
        value = (value,)
    if isinstance(value, bytes) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"'metrics' must be a sequence of metric names or callables (got {describe(value)})"
        )
    try:
        found = tuple(get_metric(m) for m in value)
    except InvalidInput as exc:
        raise InvalidInput(f"'metrics': {exc}") from None

    names = [m.name for m in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"'metrics' must not repeat a name (got {duplicates} twice)")
    return found


# --------------------------------------------------------------------------- the check


@renamed(
    {
        "train": "make_run",
        "metric_tolerance": "metric_atol",
        "max_fraction_beyond_tolerance": "max_fraction_beyond_tol",
        "slice_tolerance": "slice_metric_atol",
        "loss_tolerance": "loss_atol",
        "top_k": "n_top",
    }
)
@attrs.frozen(eq=False)
class ReproducibilityCheck:
    """Compare two or more training runs: metrics, sliced metrics, predictions, trajectories.

    Give either ``runs`` (two or more `TrainingRun`) or ``make_run``, a callable
    ``make_run(seed) -> TrainingRun`` that the check calls once per entry of ``seeds``, in
    parallel on the context's executor (`Context.submit`). The default ``seeds=None``
    trains twice with the context's seed (`Context.seed`, ``mlchecks run --seed``): the
    runs should then be identical up to the tolerances.

    In the default *tolerance mode* the check fails when

    - churn (the fraction of examples whose predicted class changes) is shown to exceed
      ``max_churn``, or correctness churn ``max_correctness_churn``: the rates are judged
      with exact (Clopper-Pearson) confidence bounds at ``alpha``, FAIL when the lower
      bound is above the limit, PASS when the upper bound is at or below it, WARN
      (inconclusive, with the interval) in between; a limit of 0 fails any difference;
    - an aggregate metric is not shown equivalent within ``metric_atol + metric_rtol *
      |value|``: a TOST at ``alpha`` on paired per-example values when the runs have
      predictions and labels (accuracy, error rate, log loss, Brier, MSE, MAE, Hamming
      loss, subset accuracy), else ``|difference|`` beyond that margin;
    - a slice's metric differs by more than ``slice_metric_atol`` with a Holm-adjusted
      p-value at most ``alpha``;
    - more than ``max_fraction_beyond_tol`` of examples are shown to have a prediction
      value beyond ``prediction_atol + prediction_rtol * |p|``, with the same confidence
      bounds (judged against ``max_churn`` by default for regression, where no class can
      churn; not judged by default otherwise).

    The task (``task="auto"``: inferred) sets the defaults: classification compares
    accuracy and log loss and judges churn; regression compares MSE, MAE and R² (MSE and
    MAE with a 1% relative margin) and judges the fraction of predicted values that moved
    beyond the tolerance; multi-label compares Hamming loss and subset accuracy and judges
    churn label by label. Class labels of any dtype (strings too) are mapped through
    ``classes`` to the columns of the probabilities.

    The limits take a number or a condition: ``max_churn=AtMost(0.01, severity="warn")``
    makes too much churn a WARN instead of a FAIL. Losses that part beyond ``loss_atol``
    give a WARN: the trajectories differ, and the outcome findings above say whether that
    matters. With ``exact=True`` every tolerance is zero: any difference in metrics,
    predictions, losses or parameter hashes fails, and the findings say where it first
    appears.

    Args:
        runs: two or more `TrainingRun`, or None when ``make_run`` is given.
        make_run: ``make_run(seed) -> TrainingRun``, or None when ``runs`` is given.
        seeds: the seed of each training run (at least 2), used with ``make_run``; None
            (the default) trains twice with the context's seed.
        exact: demand bit-identical runs.
        metric_atol: the equivalence margin for aggregate metrics (absolute), one number or
            a mapping of metric name to margin (other metrics use 0.01).
        metric_rtol: the relative part of the margin, times the first run's value of the
            metric: one number or a mapping of metric name to number (by default 0.01 for
            MSE, MAE and RMSE, 0 for the others).
        max_churn: the largest allowed churn, in [0, 1], or an `AtMost`.
        max_correctness_churn: the largest allowed correctness churn, in [0, 1]
            (None: ``max_churn``).
        prediction_atol: absolute tolerance per prediction value.
        prediction_rtol: relative tolerance per prediction value (times ``max(|a|, |b|)``).
        max_fraction_beyond_tol: the largest allowed fraction of examples with a value
            beyond the prediction tolerance, in [0, 1]; None: ``max_churn`` for a
            regression task, otherwise reported without judging.
        slice_metric_atol: the largest allowed per-slice metric difference (absolute).
        loss_atol: the absolute loss difference that counts as divergence.
        alpha: the level of the TOST, of the Holm-corrected slice tests and of the
            confidence bounds of the rate limits, in (0, 0.5).
        metrics: metric names (see `mlchecks.stats.metrics.METRICS`), `Metric` objects or
            callables ``f(y_true, y_pred) -> float``, computed from predictions and labels
            when a run does not report them; None (the default): the task's metrics.
        task: ``"classification"``, ``"regression"``, ``"multilabel"`` or ``"auto"``
            (inferred: 2-D 0/1 labels are multi-label; 1-D float predictions with
            non-integer labels, or non-integer values outside [0, 1], are regression;
            anything else is classification).
        classes: the class list (any hashable values, e.g. the estimator's ``classes_``)
            that labels and predicted classes are coded by, in the order of the
            probability columns; None: a run's ``classes``, else the sorted unique labels
            (integer labels are class indices).
        n_top: how many of the most different examples to list per pair of runs.
        check_timeout_s: the longest training the runs (``make_run``) may take in all; past
            it the check ends in ERROR naming the run. None: no limit.
        name: the check's name in reports.
        rubric: the ML Test Score infrastructure test (1).

    Raises:
        InvalidInput: for a bad field (the message names it and the value).
        TypeError: for a keyword renamed in 0.2.0 (the message names the new one).

    >>> ReproducibilityCheck(make_run=lambda seed: TrainingRun(), max_churn=1.5)
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'max_churn' must be in [0, 1] (got 1.5)
    """

    runs: tuple[TrainingRun, ...] | None = attrs.field(default=None, converter=runs_converter)
    make_run: Callable[[int], TrainingRun] | None = _fields.function()
    seeds: tuple[int, ...] | None = attrs.field(default=None, converter=_seeds, kw_only=True)
    exact: bool = _fields.flag(False)
    metric_atol: float | Mapping[str, float] = attrs.field(
        default=DEFAULT_METRIC_ATOL,
        converter=_metric_atol,
        kw_only=True,
        metadata={KIND: "tolerance"},
    )
    max_churn: MaxLimit = limit("max", 0.01, high=1.0)
    max_correctness_churn: MaxLimit | None = limit("max", None, high=1.0, optional=True)
    prediction_atol: float = tolerance(1e-6)
    prediction_rtol: float = tolerance(1e-5)
    max_fraction_beyond_tol: MaxLimit | None = limit("max", None, high=1.0, optional=True)
    slice_metric_atol: float = tolerance(0.02)
    loss_atol: float = tolerance(1e-6)
    alpha: float = _fields.alpha(0.05)
    metric_rtol: float | Mapping[str, float] = attrs.field(
        factory=dict,
        converter=_metric_rtol,
        kw_only=True,
        metadata={KIND: "tolerance"},
    )
    metrics: tuple[Metric, ...] | None = attrs.field(
        default=None, converter=_metric_list, kw_only=True
    )
    task: str = _fields.choice("auto", *TASKS)
    classes: Any = attrs.field(default=None, converter=classes_converter, kw_only=True)
    n_top: int = count(10, minimum=0, maximum=100_000)
    check_timeout_s: float | None = _fields.seconds(3600.0, optional=True)
    name: str = _fields.name_field("reproducibility")
    rubric: int | None = _fields.rubric(1)

    def __attrs_post_init__(self) -> None:
        if (self.runs is None) == (self.make_run is None):
            got = "both" if self.runs is not None else "neither"
            raise InvalidInput(f"give either 'runs' or 'make_run' (got {got})")
        if self.make_run is not None and not callable(self.make_run):
            raise InvalidInput(
                f"'make_run' must be callable as make_run(seed) (got {self.make_run!r})"
            )
        if self.runs is not None:
            check_compatible(self.runs, display_names(self.runs, None))

    def metric_atol_for(self, metric: str) -> float:
        """The absolute equivalence margin for ``metric`` (0 in exact mode).

        >>> check = ReproducibilityCheck(make_run=print, metric_atol={"log_loss": 0.05})
        >>> check.metric_atol_for("log_loss"), check.metric_atol_for("accuracy")
        (0.05, 0.01)
        """
        if self.exact:
            return 0.0
        if isinstance(self.metric_atol, Mapping):
            return self.metric_atol.get(metric, DEFAULT_METRIC_ATOL)
        return self.metric_atol

    @property
    def global_state(self) -> tuple[str, ...]:
        """``("rng",)`` when the check trains with ``make_run`` (see `Check`), else ``()``."""
        return ("rng",) if self.make_run is not None else ()

    def metric_rtol_for(self, metric: str) -> float:
        """The relative equivalence margin for ``metric`` (0 in exact mode).

        >>> check = ReproducibilityCheck(make_run=print)
        >>> check.metric_rtol_for("mse"), check.metric_rtol_for("accuracy")
        (0.01, 0.0)
        """
        if self.exact:
            return 0.0
        if isinstance(self.metric_rtol, Mapping):
            return self.metric_rtol.get(metric, DEFAULT_METRIC_RTOL.get(metric, 0.0))
        return self.metric_rtol

    def metric_margin(self, metric: str, reference: float) -> float:
        """``metric_atol + metric_rtol * |reference|``: the margin at a metric's value.

        >>> ReproducibilityCheck(make_run=print).metric_margin("mse", 3600.0)
        36.01
        """
        atol = self.metric_atol_for(metric)
        rtol = self.metric_rtol_for(metric)
        if rtol == 0.0 or not math.isfinite(reference):
            return atol
        return atol + rtol * abs(reference)

    def resolved_seeds(self, context: Context | None = None) -> tuple[int, ...]:
        """The seeds ``make_run`` is called with: ``seeds``, or the context's seed twice.

        >>> ReproducibilityCheck(make_run=print).resolved_seeds(Context(seed=7))
        (7, 7)
        """
        if self.seeds is not None:
            return self.seeds
        seed = resolve_seed(None, context)
        return (seed, seed)

    def run(self, context: Context | None = None) -> Result:
        """Train (when given ``make_run``) and compare the runs; see the class docstring."""
        ctx = context if context is not None else Context()
        if self.runs is not None:
            runs = list(self.runs)
            names = display_names(runs, None)
            seeds: tuple[int, ...] | None = None
        else:
            assert self.make_run is not None
            seeds = self.resolved_seeds(ctx)
            ctx.report(f"{self.name}: training {len(seeds)} runs (seeds {seeds})")
            train = Exclusive(self.make_run, self.global_state)  # one at a time on threads
            with Deadline(self.check_timeout_s, self.name) as deadline:
                runs = _train_all(ctx, train, seeds, deadline)
            for seed, run in zip(seeds, runs, strict=True):
                if not isinstance(run, TrainingRun):
                    raise TypeError(
                        f"'make_run' must return a TrainingRun (got {type(run).__name__} for "
                        f"seed {seed})"
                    )
            names = display_names(runs, seeds)
            check_compatible(runs, names)
        result = Evaluation(self, runs, names, seeds).result()
        return with_note(result, ctx.executor, self.global_state)  # "ran one at a time: ..."


def _train_all(
    ctx: Context, train: Callable[[int], Any], seeds: Sequence[int], deadline: Deadline
) -> list[Any]:
    """``train(seed)`` for every seed, inline on the deadline's worker or on the context's
    executor, all within ``deadline``."""
    if ctx.executor is None:
        return [deadline.call(train, seed, doing=f"make_run({seed})") for seed in seeds]
    futures = [ctx.submit(train, seed) for seed in seeds]
    runs = []
    try:
        for seed, future in zip(seeds, futures, strict=True):
            try:
                runs.append(future.result(timeout=deadline.bound(None)))
            except concurrent.futures.TimeoutError:
                raise CheckTimeout(deadline.message(f"make_run({seed})")) from None
    finally:
        for future in futures:
            future.cancel()
    return runs
