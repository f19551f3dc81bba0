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

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from mlchecks import _fields
from mlchecks._fields import KIND, MaxLimit, count, limit, renamed, resolve_seed, tolerance
from mlchecks._validate import check_number, describe
from mlchecks.check import Context
from mlchecks.checks._repro_eval import Evaluation
from mlchecks.checks._runs import TrainingRun, check_compatible, display_names, runs_converter
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Result
from mlchecks.stats.metrics import Metric, get_metric

__all__ = ["ReproducibilityCheck", "TrainingRun"]

#: The margin of a metric that ``metric_atol`` does not name.
DEFAULT_METRIC_ATOL = 0.01


# --------------------------------------------------------------------------- field converters


def _rubric(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7
    ):
        raise InvalidInput(f"'rubric' must be an int in 1..7 or None (got {value!r})")


def _bool(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidInput(f"'{attribute.name}' must be True or False (got {value!r})")


def _metric_atol(value: Any) -> float | Mapping[str, float]:
    """``metric_atol``: one margin >= 0, or a mapping of metric name to margin."""
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for key, number in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"'metric_atol' keys must be metric names (got {key!r})")
            out[key] = check_number(number, f"metric_atol[{key!r}]", low=0.0)
        return out
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"'metric_atol' must be a number >= 0 or a mapping of metric name to number "
            f"(got {describe(value)})"
        )
    return check_number(value, "metric_atol", low=0.0)


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

    - churn (the fraction of examples whose predicted class changes) exceeds ``max_churn``,
      or correctness churn exceeds ``max_correctness_churn``;
    - an aggregate metric is not shown equivalent within ``metric_atol``: a TOST at
      ``alpha`` on paired per-example values when the runs have predictions and labels
      (accuracy, error rate, log loss, Brier, MSE, MAE), else ``|difference| >
      metric_atol``;
    - a slice's metric differs by more than ``slice_metric_atol`` with a Holm-adjusted
      p-value at most ``alpha``;
    - more than ``max_fraction_beyond_tol`` of examples have a prediction value beyond
      ``prediction_atol + prediction_rtol * |p|`` (not judged by default).

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
        max_churn: the largest allowed churn, in [0, 1], or an `AtMost`.
        max_correctness_churn: the largest allowed correctness churn, in [0, 1]
            (None: ``max_churn``).
        prediction_atol: absolute tolerance per prediction value.
        prediction_rtol: relative tolerance per prediction value (times ``max(|a|, |b|)``).
        max_fraction_beyond_tol: the largest allowed fraction of examples with a value
            beyond the prediction tolerance, in [0, 1]; None reports without judging.
        slice_metric_atol: the largest allowed per-slice metric difference (absolute).
        loss_atol: the absolute loss difference that counts as divergence.
        alpha: the level of the TOST and of the Holm-corrected slice tests, in (0, 0.5).
        metrics: metric names (see `mlchecks.stats.metrics.METRICS`), `Metric` objects or
            callables ``f(y_true, y_pred) -> float``, computed from predictions and labels
            when a run does not report them.
        n_top: how many of the most different examples to list per pair of runs.
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
    make_run: Callable[[int], TrainingRun] | None = attrs.field(default=None, kw_only=True)
    seeds: tuple[int, ...] | None = attrs.field(default=None, converter=_seeds, kw_only=True)
    exact: bool = attrs.field(default=False, validator=_bool, kw_only=True)
    metric_atol: float | Mapping[str, float] = attrs.field(
        default=DEFAULT_METRIC_ATOL,
        converter=_metric_atol,
        kw_only=True,
        metadata={KIND: "tolerance"},
    )
    max_churn: MaxLimit = limit("max", 0.01, high=1.0)
    max_correctness_churn: MaxLimit | None = limit("max", None, high=1.0, optional=True)
    prediction_atol: float = tolerance(1e-6)
    prediction_rtol: float = tolerance(0.0)
    max_fraction_beyond_tol: MaxLimit | None = limit("max", None, high=1.0, optional=True)
    slice_metric_atol: float = tolerance(0.02)
    loss_atol: float = tolerance(1e-6)
    alpha: float = _fields.alpha(0.05)
    metrics: tuple[Metric, ...] = attrs.field(
        default=("accuracy", "log_loss"), converter=_metric_list, kw_only=True
    )
    n_top: int = count(10, minimum=0)
    name: str = attrs.field(
        default="reproducibility", validator=attrs.validators.instance_of(str), kw_only=True
    )
    rubric: int | None = attrs.field(default=1, validator=_rubric, kw_only=True)

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
            futures = [ctx.submit(self.make_run, seed) for seed in seeds]
            runs = [future.result() for future in futures]
            for seed, run in zip(seeds, runs, strict=True):
                if not isinstance(run, TrainingRun):
                    raise TypeError(
                        f"'make_run' must return a TrainingRun (got {type(run).__name__} for "
                        f"seed {seed})"
                    )
            names = display_names(runs, seeds)
            check_compatible(runs, names)
        return Evaluation(self, runs, names, seeds).result()
