"""Rubric test 4: model quality is validated before the model is served.

`QualityCheck` judges a candidate model on evaluation data in three ways:

- **Golden examples** (`GoldenSet`): known inputs with known-correct outputs, run through
  the model's ``predict``; every mismatch is listed with its index, expected and actual
  output.
- **Metric limits**: ``metric_limits={"accuracy": 0.9}`` is judged on the confidence bound,
  not the point estimate: the lower end of the metric's confidence interval for a floor
  (`AtLeast`; a plain number for a higher-is-better metric), the upper end for a ceiling
  (`AtMost`; a plain number for a loss or an error), both for `Between`. A model at 0.91 on
  300 examples has not shown that it is above 0.9.
- **Versus the previous model** (``baseline_predictions`` on the same examples):
  ``max_regression={"accuracy": 0.005}`` (or ``NoWorseThan(abs=0.005)``) compares the two
  with a paired test, overall and in every slice, with multiple-testing control across
  slices; an improvement beyond ``max_improvement`` warns (a jump that large is more often
  a leak or an evaluation bug than a better model).

How the versus-baseline verdicts are decided
--------------------------------------------

Call the *worsening* ``w`` the amount by which the candidate is worse than the baseline
(``baseline - candidate`` for accuracy, ``candidate - baseline`` for a loss) and ``m`` the
allowed margin from `NoWorseThan`. Two one-sided tests are possible:

- ``"noninferiority"`` (strict; the default for the aggregate): PASS only when the data
  show ``w < m``, i.e. the upper confidence bound of ``w`` is within the margin; FAIL when
  they show ``w > m``. An inconclusive comparison (too few examples, or too much churn
  between the models, for the margin) WARNS, with the interval in the message. This is the
  right default for the one number that decides a release: "not shown to be worse" is not
  evidence of "no worse". A margin of 0 under this test could only pass a candidate shown
  to be strictly better, so it is refused at construction (`InvalidInput`).
- ``"regression"`` (lenient; the default for slices): FAIL only when the data show
  ``w > m``, i.e. the lower confidence bound of ``w`` is beyond the margin. Per-slice
  p-values of this test are adjusted across all slices of the run (Holm by default, or
  Benjamini-Hochberg), so a FAIL names exactly the slices where a regression beyond the
  margin is statistically shown. A strict test per slice would fail every small slice,
  whose confidence intervals are always wider than a margin chosen for the aggregate.

Both are configurable (``overall_test=``, ``slice_test=``). Floors of accuracy and the error
rate use the exact Clopper-Pearson interval, and slice comparisons of accuracy and the error
rate the exact conditional interval of the discordant pairs
(`mlchecks.stats.paired.discordant_interval`), which keeps its coverage when the models
disagree on a handful of examples. Intervals are two-sided at
``1 - alpha`` and one-sided tests run at level ``alpha / 2``, so an unadjusted verdict agrees
with the interval shown in the report. Per-slice non-inferiority needs no multiplicity
correction (every slice must pass: an intersection-union test), so ``correction`` applies to
regression tests only. The statistics (which test each metric gets) are
`mlchecks.stats.paired`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from mlchecks import _fields
from mlchecks._deadline import Deadline
from mlchecks._labels import estimator_classes
from mlchecks._validate import (
    TASKS,
    callable_field,
    check_same_length,
    optional,
)
from mlchecks.check import Context
from mlchecks.checks._quality_eval import Evaluation
from mlchecks.checks._quality_inputs import (
    Floor,
    GoldenSet,
    task_inputs,
    to_baseline,
    to_classes,
    to_labels,
    to_max_improvement,
    to_max_regression,
    to_metric_limits,
    to_predictions,
    to_slices,
)
from mlchecks.checks._quality_judge import (
    LEADS,
    PairedTest,
    improvement,
    judge_test,
    limit_finding,
    margin,
    row,
    slice_finding,
    summary,
)
from mlchecks.checks._quality_lazy import is_lazy, lazy_evaluation, lazy_facts, refuse_lazy
from mlchecks.checks._result import ResultBuilder
from mlchecks.conditions import AtMost, NoWorseThan
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Finding, Result, Status
from mlchecks.stats._rows import all_finite
from mlchecks.stats.multiple import CORRECTIONS, Correction, adjust
from mlchecks.stats.paired import (
    MARGIN_TESTS,
    MarginTest,
    PairedResult,
)
from mlchecks.stats.sliced import (
    SliceCodes,
    encode_slicings,
)

__all__ = ["GoldenSet", "QualityCheck"]


@_fields.renamed(
    {
        "confidence": "'alpha' (alpha = 1 - confidence)",
        "thresholds": "metric_limits",
        "suspicious_improvement": "max_improvement",
        "min_slice_size": "slice_min_size",
    }
)
@attrs.frozen(kw_only=True, eq=False)
class QualityCheck:
    """Validate model quality before serving: golden examples, metric limits, no regression.

    Labels, predictions, baseline predictions and slice ids may be larger than memory:
    memory-mapped arrays (``np.load(path, mmap_mode="r")``) are read in place, and
    iterators of chunks (batches from an inference loop) are written to an unlinked
    temporary file as they arrive and memory-mapped; the result is that of the same data
    in memory. Dask arrays stay on the workers that hold them: each chunk of rows is
    counted there and only the tables travel (classification with integer class labels,
    and the metrics of the one pass: accuracy, error rate, precision, recall, F1, log
    loss, Brier score).

    Args:
        labels: (n,) true labels of any dtype (strings too: see ``classes``) or regression
            targets, or (n, L) 0/1 multi-label indicators, of the evaluation examples.
        predictions: the candidate's (n, ...) predictions on them: (n, C) probabilities,
            (n,) scores or class labels (of the labels' dtype), regression values, or
            (n, L) multi-label indicators or probabilities, as the metrics need.
        predict: instead of ``predictions``, the candidate's predict function; it is called
            with ``inputs`` (and with the golden inputs).
        inputs: what ``predict`` takes for the evaluation examples.
        slices: (n,) slice ids or labels, or a mapping of slicing name to such arrays
            (``{"region": regions}``); regression is tested in every slice.
        baseline_predictions: the previous model version's predictions on the same examples.
        golden: a `GoldenSet` run through ``predict``.
        metric_limits: metric name -> a number, `AtLeast`, `AtMost` or `Between`, judged
            on the confidence bound. A number is a floor (`AtLeast`) for a higher-is-better
            metric and a ceiling (`AtMost`) for a loss or an error.
        max_regression: metric name -> the allowed worsening versus the baseline: a number
            (``NoWorseThan(abs=number)``) or `NoWorseThan` (its ``higher_is_better`` is set
            from the metric).
        max_improvement: metric name -> the improvement over the baseline beyond which the
            check warns (judged on the point estimate): a number (``AtMost(number,
            severity="warn")``) or `AtMost`.
        alpha: intervals are two-sided at ``1 - alpha``; one-sided tests run at
            ``alpha / 2``. In (0, 0.5).
        correction: ``"holm"`` (family-wise), ``"bh"`` (false discovery rate) or ``"none"``,
            across the slice regression tests of the run.
        slice_min_size: slices with fewer examples are listed but not tested.
        overall_test: ``"noninferiority"`` (strict: PASS needs proof the aggregate is within
            the margin, an inconclusive comparison warns) or ``"regression"`` (FAIL needs
            proof it is beyond). A zero margin needs ``"regression"``.
        slice_test: the same choice for slices (default ``"regression"``).
        n_resamples: bootstrap resamples where a bootstrap is used (>= 100).
        check_timeout_s: the longest ``predict`` may take over the whole check (it runs on
            a worker thread; past it the check ends in ERROR). None: no limit.
        task: ``"classification"``, ``"regression"``, ``"multilabel"`` or ``"auto"``
            (inferred from labels and predictions, as `ReproducibilityCheck` does).
        classes: the class list (any hashable values) in the order of the probability
            columns; labels and predicted class names are coded by it. None: the
            ``classes_`` of the fitted estimator whose bound method ``predict`` is, else
            the sorted unique labels (integer labels are class indices).
        name: the check's name in reports.
        rubric: the rubric test (4).

    Raises:
        InvalidInput: for inconsistent or invalid fields (the message names the field), and
            for a zero margin under a non-inferiority test, which can never pass a candidate
            of the same quality.

    A candidate that keeps accuracy overall but loses it in one region:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 20_000)
    >>> region = np.where(np.arange(20_000) < 1_000, "east", "rest")
    >>> base = np.where(rng.random(20_000) < 0.9, y, 1 - y)
    >>> cand = np.where((region == "east") & (rng.random(20_000) < 0.3), 1 - y, base)
    >>> check = QualityCheck(
    ...     labels=y, predictions=cand, baseline_predictions=base,
    ...     slices={"region": region}, max_regression={"accuracy": 0.02},
    ... )
    >>> result = check.run()
    >>> result.status.label, result.finding("regression.accuracy").status.label
    ('FAIL', 'PASS')
    >>> result.finding("slice.regression.accuracy").status.label
    'FAIL'
    """

    labels: np.ndarray | None = attrs.field(default=None, converter=to_labels)
    predictions: np.ndarray | None = attrs.field(default=None, converter=to_predictions)
    predict: Callable[[Any], Any] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    inputs: Any = None
    slices: Any = attrs.field(default=None, converter=to_slices)
    baseline_predictions: np.ndarray | None = attrs.field(default=None, converter=to_baseline)
    golden: GoldenSet | None = _fields.instance(GoldenSet, "a GoldenSet", optional=True)
    metric_limits: Mapping[str, Floor] = attrs.field(factory=dict, converter=to_metric_limits)
    max_regression: Mapping[str, NoWorseThan] = attrs.field(
        factory=dict, converter=to_max_regression
    )
    max_improvement: Mapping[str, AtMost] = attrs.field(factory=dict, converter=to_max_improvement)
    alpha: float = _fields.alpha(0.05)
    correction: Correction = _fields.choice("holm", *CORRECTIONS)
    slice_min_size: int = _fields.count(100, minimum=1)
    overall_test: MarginTest = _fields.choice("noninferiority", *MARGIN_TESTS)
    slice_test: MarginTest = _fields.choice("regression", *MARGIN_TESTS)
    n_resamples: int = _fields.count(1000, minimum=100, maximum=1_000_000)
    check_timeout_s: float | None = _fields.seconds(3600.0, optional=True)
    task: str = _fields.choice("auto", *TASKS)
    classes: Any = attrs.field(default=None, converter=to_classes)
    name: str = _fields.name_field("quality")
    rubric: int | None = _fields.rubric(4)
    _slicings: dict[str, SliceCodes] = attrs.field(init=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.inputs is not None and self.predict is None:
            raise InvalidInput("'inputs' need 'predict' (the candidate's predict function)")
        if self.predictions is not None and self.inputs is not None:
            raise InvalidInput("give either 'predictions' or 'predict' with 'inputs', not both")
        if self.golden is not None and self.predict is None:
            raise InvalidInput("'golden' needs 'predict' to run the golden inputs through")
        compared = {**self.max_regression, **self.max_improvement}
        if not (self.metric_limits or compared or self.golden is not None):
            raise InvalidInput(
                "nothing to check: give 'metric_limits', 'max_regression' (with "
                "'baseline_predictions') or 'golden'"
            )
        evaluating = self.labels is not None or self.metric_limits or compared
        if evaluating and self.predictions is None and self.inputs is None:
            raise InvalidInput(
                "'predictions' or both 'predict' and 'inputs' are required to evaluate the "
                "candidate on the labelled examples"
            )
        if (self.metric_limits or compared) and self.labels is None:
            raise InvalidInput(
                "'labels' are required to judge 'metric_limits' and 'max_regression'"
            )
        if compared and self.baseline_predictions is None:
            raise InvalidInput(
                "'max_regression' and 'max_improvement' need 'baseline_predictions' "
                "(the previous model's predictions on the same examples)"
            )
        if self.baseline_predictions is not None and not compared:
            raise InvalidInput(
                "'baseline_predictions' given but 'max_regression' is empty: say which "
                "metrics must not regress, e.g. {'accuracy': 0.005}"
            )
        self._check_margins()
        n = None if self.labels is None else len(self.labels)
        check_same_length(
            labels=self.labels,
            predictions=self.predictions,
            baseline_predictions=self.baseline_predictions,
        )
        if self.slices is not None:
            if n is None:
                raise InvalidInput("'slices' need 'labels' (slices are of the evaluation examples)")
            object.__setattr__(self, "_slicings", encode_slicings(self.slices, n))
        if is_lazy(self, self._slicings):
            refuse_lazy(self)

    def _check_margins(self) -> None:
        """Reject a zero margin under a non-inferiority test: it can never pass."""
        tests = [("overall_test", self.overall_test)]
        if self.slices is not None:
            tests.append(("slice_test", self.slice_test))
        for name, condition in self.max_regression.items():
            if not (condition.abs == 0.0 or condition.rel == 0.0):
                continue
            for field, test in tests:
                if test != "noninferiority":
                    continue
                raise InvalidInput(
                    f"'max_regression' {name!r}: {condition.describe()} with "
                    f"{field}='noninferiority' can never pass a candidate of the same "
                    "quality: a non-inferiority test with a margin of 0 needs proof that "
                    "the candidate is strictly better (a same-quality candidate fails it "
                    "97-99% of the time); allow a margin, e.g. "
                    f"{{{name!r}: NoWorseThan(abs=0.005)}}, or use {field}='regression' "
                    "(FAIL only when a worsening is statistically shown)"
                )

    # ----------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Judge the golden set, limits and regression tests; a bad model fails, never raises."""
        ctx = context if context is not None else Context()
        b = ResultBuilder.of(self)
        b.details.update(
            {
                "alpha": self.alpha,
                "confidence": self._confidence,
                "one_sided_alpha": self._one_sided,
                "correction": self.correction,
                "overall_test": self.overall_test,
                "slice_test": self.slice_test,
                "slice_min_size": self.slice_min_size,
            }
        )
        rows: list[dict[str, Any]] = []
        with Deadline(self.check_timeout_s, self.name) as deadline:
            if self.golden is not None:
                b.add(self._judge_golden(b, deadline))
            predictions = None if self.labels is None else self._candidate_predictions(deadline)
        if predictions is not None and self.labels is not None:
            models = {
                "predictions": predictions,
                "baseline_predictions": self.baseline_predictions,
            }
            lazy = is_lazy(self, self._slicings)
            facts = lazy_facts(self.labels, models) if lazy else {}
            problem = None
            for what, values in models.items():
                if problem is None and values is not None:
                    bad = facts.get((what, "bad"), 0) if lazy else None
                    problem = self._prediction_problem(values, what, bad)
            if problem is not None:
                b.add(problem)
            else:
                metrics = [*self.metric_limits, *self.max_regression, *self.max_improvement]
                rng = ctx.rng("quality")
                if lazy:
                    coded, evaluation = lazy_evaluation(self, facts, self._slicings, metrics, rng)
                else:
                    coded = task_inputs(
                        self.task,
                        self.class_list(),
                        self.labels,
                        predictions,
                        self.baseline_predictions,
                    )
                    evaluation = Evaluation(
                        coded.labels,
                        coded.predictions,
                        coded.baseline,
                        self._slicings,
                        coded.task,
                        metrics,
                        self.n_resamples,
                        rng,
                    )
                b.detail("task", coded.task)
                if coded.classes is not None:
                    b.detail("classes", coded.classes.tolist())
                self._judge_limits(evaluation, b, rows)
                if coded.baseline is not None:
                    self._judge_baseline(evaluation, b, rows)
        b.detail("table", rows)
        for name, sentence in LEADS.items():
            b.lead(name, sentence)
        return b.result(summary=summary(b.findings, rows))

    def class_list(self) -> np.ndarray | None:
        """``classes``, or the ``classes_`` of the estimator ``predict`` is a method of.

        >>> QualityCheck(labels=[0, 1], predictions=[0, 1], metric_limits={"accuracy": 0.5},
        ...              classes=["no", "yes"]).class_list().tolist()
        ['no', 'yes']
        """
        if self.classes is not None:
            classes: np.ndarray | None = self.classes
            return classes
        return None if self.predict is None else estimator_classes(self.predict)

    @property
    def _confidence(self) -> float:
        return 1.0 - self.alpha

    @property
    def _one_sided(self) -> float:
        return self.alpha / 2.0

    def _candidate_predictions(self, deadline: Deadline) -> np.ndarray:
        if self.predictions is not None:
            return self.predictions
        assert self.predict is not None  # guaranteed by __attrs_post_init__
        outputs = deadline.call(self.predict, self.inputs, doing="predict(inputs)")
        predictions = to_predictions(outputs)  # numbers or class names
        assert predictions is not None
        return predictions

    def _prediction_problem(
        self, predictions: np.ndarray, what: str, bad: int | None = None
    ) -> Finding | None:
        """A FAIL for predictions of the wrong shape or with NaN rows (``bad``: their
        number, when known), else None."""
        assert self.labels is not None
        n = len(self.labels)
        if predictions.ndim not in (1, 2) or len(predictions) != n:
            return Finding(
                what,
                Status.FAIL,
                None,
                f"{n} rows",
                f"{what} have shape {predictions.shape} but there are {n:,} labels: the "
                "model must return one prediction per evaluation example",
            )
        if bad is None and not all_finite(predictions):
            bad = int(np.count_nonzero(~np.isfinite(predictions).reshape(n, -1).all(axis=1)))
        if bad:  # NaN rows: the model's fault, judged not raised
            return Finding(
                what,
                Status.FAIL,
                float(bad),
                "0 non-finite rows",
                f"{bad:,} of {n:,} {what} rows contain NaN or infinity: the model "
                "produces invalid outputs, so no metric can be judged",
            )
        return None

    def _judge_golden(self, b: ResultBuilder, deadline: Deadline) -> Finding:
        golden = self.golden
        assert golden is not None
        assert self.predict is not None
        outputs = deadline.call(self.predict, golden.inputs, doing="predict on the golden set")
        n = len(golden)
        try:
            mismatches = golden.mismatches(outputs, self.class_list())
        except InvalidInput as exc:
            b.detail("golden_mismatches", [])
            return Finding(
                "golden",
                Status.FAIL,
                None,
                "0 mismatches",
                f"{exc}: the model's output format changed",
            )
        b.detail("golden_mismatches", mismatches)
        b.metric("golden.n_mismatches", len(mismatches))
        tolerance = (
            f"prediction_atol {golden.prediction_atol:g}, "
            f"prediction_rtol {golden.prediction_rtol:g}"
        )
        if not mismatches:
            message = f"all {n:,} golden examples match their expected outputs ({tolerance})"
            return Finding("golden", Status.PASS, 0.0, "0 mismatches", message)
        first = mismatches[0]
        message = (
            f"{len(mismatches):,} of {n:,} golden examples differ from their expected outputs "
            f"({tolerance}); first at index {first['index']}: expected {first['expected']}, "
            f"got {first['got']}"
        )
        return Finding("golden", Status.FAIL, float(len(mismatches)), "0 mismatches", message)

    # ----------------------------------------------------------------------- metric limits

    def _judge_limits(
        self, evaluation: Evaluation, b: ResultBuilder, rows: list[dict[str, Any]]
    ) -> None:
        n = evaluation.n
        for name, condition in self.metric_limits.items():
            est = evaluation.estimate(name, self._confidence)
            ci = est.confidence_interval
            b.metric(name, est.statistic)
            b.metric(f"{name}.ci_low", ci.low)
            b.metric(f"{name}.ci_high", ci.high)
            finding = b.add(limit_finding(self, name, condition, est.statistic, ci, n, est.method))
            rows.append(
                row(
                    "limit",
                    name,
                    "all",
                    n,
                    "confidence bound",
                    finding.status,
                    candidate=est.statistic,
                    ci=ci,
                )
            )

    # ----------------------------------------------------------------------- vs baseline

    def _judge_baseline(
        self, evaluation: Evaluation, b: ResultBuilder, rows: list[dict[str, Any]]
    ) -> None:
        names = list(dict.fromkeys([*self.max_regression, *self.max_improvement]))
        overall: dict[str, PairedResult] = {}
        for name in names:
            paired = evaluation.overall(name)
            overall[name] = paired
            low, high = paired.confidence_interval(self._confidence)
            if name not in b.metrics:
                b.metric(name, paired.candidate)
            b.metric(f"{name}.baseline", paired.baseline)
            b.metric(f"{name}.difference", paired.statistic)
            b.metric(f"{name}.difference_ci_low", low)
            b.metric(f"{name}.difference_ci_high", high)

        tests = [
            self._test(name, condition, "", overall[name], self.overall_test)
            for name, condition in self.max_regression.items()
        ]
        slice_tests = self._slice_tests(evaluation)
        tested = [t for t in slice_tests if t.paired is not None]
        raw = np.array([t.pvalue for t in tested], dtype=np.float64)
        # Every slice must pass a non-inferiority test (an intersection-union test), which
        # needs no multiplicity correction; regression tests are corrected across slices.
        method: Correction = self.correction if self.slice_test == "regression" else "none"
        for test, adjusted in zip(tested, adjust(raw, method).tolist(), strict=True):
            test.adjusted = adjusted
        for test in [*tests, *slice_tests]:
            judge_test(self, test, rows)
        for test in tests:
            assert test.paired is not None
            b.note(
                f"regression.{test.metric}",
                test.status,
                test.message,
                observed=test.paired.statistic,
                limit=test.condition.describe(),
            )
        for name, condition in self.max_regression.items():
            mine = [t for t in slice_tests if t.metric == name]
            found = slice_finding(self, name, condition, mine)
            if found is not None:
                b.add(found)
        for name, bound in self.max_improvement.items():
            b.add(improvement(self, name, bound, overall[name], rows))

    def _test(
        self, name: str, condition: NoWorseThan, label: str, paired: PairedResult, kind: MarginTest
    ) -> PairedTest:
        allowed = margin(condition, paired.baseline)
        pvalue = paired.margin_pvalue(
            allowed, higher_is_better=condition.higher_is_better, test=kind
        )
        ci = paired.confidence_interval(self._confidence)
        return PairedTest(
            name, condition, label, paired.n, kind, paired, ci, allowed, pvalue, pvalue
        )

    def _slice_tests(self, evaluation: Evaluation) -> list[PairedTest]:
        tests: list[PairedTest] = []
        for slicing, codes in self._slicings.items():
            counts = evaluation.slice_counts(slicing)
            for name, condition in self.max_regression.items():
                for code in np.flatnonzero(counts).tolist():
                    label = f"{slicing}={codes.names[code]}"
                    n_slice = int(counts[code])
                    if n_slice < self.slice_min_size:
                        reason = f"fewer than slice_min_size={self.slice_min_size} examples"
                        tests.append(
                            PairedTest(
                                name, condition, label, n_slice, self.slice_test, reason=reason
                            )
                        )
                        continue
                    try:
                        paired = evaluation.in_slice(name, slicing, code)
                        test = self._test(name, condition, label, paired, self.slice_test)
                    except InvalidInput as exc:  # the metric is undefined on this slice
                        test = PairedTest(
                            name, condition, label, n_slice, self.slice_test, reason=str(exc)
                        )
                    tests.append(test)
        return tests
