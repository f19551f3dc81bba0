"""The evaluation behind `ReproducibilityCheck.run`: inputs, predictions and metrics.

`Evaluation` holds what one run of the check derives from its `TrainingRun` objects and
records everything in a `ResultBuilder`; slices and trajectories are compared in
`mlchecks.checks._repro_slices` and `mlchecks.checks._repro_trajectories`.

Metric keys and finding names follow the glossary (docs/concepts.md): run names, slice
names and the names of metrics that are not built in never appear in them; they are in
``details`` (the per-run values in ``details["runs"]``, per pair in ``details["pairs"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks._dask import is_dask, take_rows
from mlchecks._fields import held, held_or_none
from mlchecks._text import fmt, listing
from mlchecks._validate import as_labels
from mlchecks.checks._repro_lazy import NOT_LAZY, is_lazy, prepare_lazy, read_lazy, same_lazy
from mlchecks.checks._repro_metrics import compare_metrics
from mlchecks.checks._repro_pass import Chunk, Plan, Summary, Table
from mlchecks.checks._repro_slices import (
    compare_slices,
    is_correctness,
)
from mlchecks.checks._repro_tasks import (
    DEFAULT_METRICS,
    judge_label_churn,
    judge_rate,
    label_accuracies,
    prepare_task,
)
from mlchecks.checks._repro_trajectories import compare_trajectories, spread
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._runs import TrainingRun
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Finding, Result, Status
from mlchecks.stats._rows import block_classes
from mlchecks.stats.compare import PredictionComparison, as_predictions
from mlchecks.stats.metrics import Metric, predicted_labels

if TYPE_CHECKING:
    from mlchecks.checks.reproducibility import ReproducibilityCheck

__all__ = ["Evaluation", "Prepared"]

#: What one run records that every run must record when any does (judged by ``same_data``).
_RECORDED = ("predictions", "labels", "losses", "step_hashes")


def _differences(a: Any, b: Any) -> tuple[int, int]:
    """How many rows of two arrays differ (0 for another length), and the first (or -1)."""
    if len(a) != len(b):
        return max(len(a), len(b)), 0
    if is_dask(a) or is_dask(b):
        return same_lazy(a, b)
    mismatch = np.asarray(a != b)
    differ = np.flatnonzero(mismatch.any(axis=1) if mismatch.ndim == 2 else mismatch)
    return int(differ.size), int(differ[0]) if differ.size else -1


def _dtype(predictions: np.ndarray) -> np.dtype[Any]:
    """The dtype predictions are compared in (without reading a Dask array)."""
    if is_dask(predictions):
        return np.dtype(predictions.dtype)
    return as_predictions(predictions, "predictions").dtype


def _classifiable(predictions: np.ndarray) -> bool:
    """Whether predictions define a class per example (as `predicted_labels` accepts)."""
    if predictions.ndim == 2:
        return True
    try:
        predicted_labels(predictions, name="predictions")
    except InvalidInput:
        return False
    return True


@attrs.define
class Prepared:
    """One run with what the evaluation derives from it once.

    ``classified``: the predictions define a predicted class per example. ``counted``:
    the correctness metrics computed from counts of correct predictions, ``term_metrics``:
    the metrics computed from sums of per-example terms (both read in `read_runs`).
    """

    name: str
    run: TrainingRun
    predictions: np.ndarray | None = None
    classified: bool = False
    counted: list[Metric] = attrs.Factory(list)
    term_metrics: list[Metric] = attrs.Factory(list)
    values: dict[str, float] = attrs.Factory(dict)

    def tabled(self, name: str) -> bool:
        """Whether metric ``name`` was computed from the table (per example)."""
        return any(m.name == name for m in (*self.counted, *self.term_metrics))


class Evaluation:
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
        self.out = ResultBuilder.of(check)
        self.out.detail("mode", "exact" if check.exact else "tolerance")
        self.skipped: dict[str, str] = {}
        self.labels = next((r.labels for r in runs if r.labels is not None), None)
        #: The labels as given (class names), for reports; ``labels`` are coded by the task.
        self.raw_labels = self.labels
        self.task = "classification"
        self.metrics: tuple[Metric, ...] = ()
        self.slices = next((r.slices for r in runs if r.slices is not None), None)
        self.prepared = [Prepared(name, run) for name, run in zip(names, runs, strict=True)]
        self.pairs = [
            (i, j) for i in range(len(self.prepared)) for j in range(i + 1, len(self.prepared))
        ]
        self.int_labels: np.ndarray | None = None
        #: What the pass over the examples summed (`use`).
        self.table = Table()
        #: Some run holds Dask arrays: the pass runs on the workers (`read_lazy`).
        self.lazy = is_lazy(self)

    # ---- orchestration

    def result(self) -> Result:
        """Compare everything the runs share and return the check's `Result`."""
        self._check_same_data()
        self._check_same_examples()
        if self.lazy:
            prepare_lazy(self, DEFAULT_METRICS)
        else:
            prepare_task(self)
            if self.labels is not None and self.task == "classification":
                try:
                    self.int_labels = as_labels(self.labels, "labels")
                except InvalidInput:
                    self.int_labels = None
        for p in self.prepared:
            self._prepare(p)
        comparisons = self._read()
        self._record_runs()
        if self.task == "multilabel":
            label_accuracies(self)
        self._compare_predictions(comparisons)
        compare_metrics(self)
        compare_slices(self)
        compare_trajectories(self)
        spread(self)
        if self.skipped:
            self.out.detail("skipped", dict(self.skipped))
        if not self.out.findings:
            self.out.note(
                "comparable_data",
                Status.SKIP,
                "the runs share nothing to compare: give metrics, predictions, losses or "
                "step hashes",
            )
        return self.out.result(summary=self._summary())

    def _summary(self) -> str:
        runs = listing([p.name for p in self.prepared])
        _lead(self.out, runs)
        findings = self.out.findings
        bad = [f for f in findings if f.status in (Status.FAIL, Status.ERROR)]
        if bad:
            others = [f.name for f in bad[1:]]
            tail = f" (also failed: {', '.join(others)})" if others else ""
            return f"{bad[0].message}{tail}"
        if all(f.status is Status.SKIP for f in findings):
            return findings[0].message
        how = "are identical" if self.exact else "agree within tolerance"
        warned = [f.name for f in findings if f.status is Status.WARN]
        tail = f" (warnings: {', '.join(warned)})" if warned else ""
        same = "nearly the same results" if warned else "the same results"
        return f"Runs {runs} gave {same}: they {how} in {len(findings)} checked conditions{tail}."

    def pair_label(self, i: int, j: int) -> str:
        """``"run 'a' and run 'b'"`` for the pair of runs ``i`` and ``j``."""
        return f"run {self.prepared[i].name!r} and run {self.prepared[j].name!r}"

    # ---- inputs

    def _check_same_data(self) -> None:
        """``same_data``: a run lacking what another recorded fails, naming both.

        A run without the predictions, labels, losses or step hashes that another run
        has cannot be shown to reproduce them; skipping the comparison would pass it.
        """
        missing: list[str] = []
        for field in _RECORDED:
            have = [p.name for p in self.prepared if getattr(p.run, field) is not None]
            lack = [p.name for p in self.prepared if getattr(p.run, field) is None]
            if have and lack:
                word = "has" if len(lack) == 1 else "have"
                missing.append(
                    f"run {listing(lack)} {word} no {field.replace('_', ' ')} but run "
                    f"{listing(have)} {'has' if len(have) == 1 else 'have'} them"
                )
        if missing:
            self.out.note(
                "same_data",
                Status.FAIL,
                f"{'; '.join(missing)}: a run that did not record what another did cannot be "
                "shown to reproduce it",
                observed=float(len(missing)),
                limit="every run records the same data",
            )

    def _check_same_examples(self) -> None:
        """Runs that carry labels or slices must carry the same ones."""
        runs = self.prepared
        if self.labels is not None:
            for p in runs:
                other = p.run.labels
                if other is None or other is self.labels:
                    continue
                count, first = _differences(other, self.labels)
                if count:
                    self.out.note(
                        "same_labels",
                        Status.FAIL,
                        f"run {p.name!r} was evaluated with different labels: "
                        f"{count:,} of {len(other):,} differ (first at example "
                        f"{first}), so its predictions are not comparable",
                        observed=float(count),
                        limit="== 0",
                    )
                    break
        if self.slices is not None:
            for p in runs:
                other_slices = p.run.slices
                if other_slices is None or other_slices is self.slices:
                    continue
                same = set(other_slices) == set(self.slices) and all(
                    other_slices[k].names == self.slices[k].names
                    and _differences(other_slices[k].codes, self.slices[k].codes)[0] == 0
                    for k in self.slices
                )
                if not same:
                    self.out.note(
                        "same_slices",
                        Status.FAIL,
                        f"run {p.name!r} assigns examples to different slices than run "
                        f"{runs[0].name!r}; slices are taken from the first run",
                        limit="identical",
                    )
                    break

    def _prepare(self, p: Prepared) -> None:
        """Decide how each metric of run ``p`` is computed; compute those read whole."""
        predictions = p.predictions
        if predictions is not None and self.task == "classification" and not self.lazy:
            p.classified = _classifiable(predictions)
        if predictions is None or self.labels is None:
            return
        for metric in self.metrics:
            if is_correctness(metric) and p.classified and self.int_labels is not None:
                p.counted.append(metric)
            elif metric.per_example is not None:
                p.term_metrics.append(metric)
            elif self.lazy:
                if metric.name not in p.run.metrics:
                    self.skipped[metric.name] = f"{metric.name} is not computed: {NOT_LAZY}"
            elif metric.name not in p.run.metrics:
                try:
                    p.values[metric.name] = metric(self.labels, predictions)
                except InvalidInput as exc:
                    self.skipped[metric.name] = str(exc)

    def plan(self) -> Plan:
        """What the pass over the examples reads and sums."""
        prepared, truth = self.prepared, self.int_labels
        compared = []
        for k, (i, j) in enumerate(self.pairs):
            if prepared[i].predictions is not None and prepared[j].predictions is not None:
                compared.append((k, i, j, prepared[i].classified and truth is not None))
        shapes = [p.predictions.shape for p in prepared if p.predictions is not None]
        dtypes = [None if p.predictions is None else _dtype(p.predictions) for p in prepared]
        slicings = self.slices if self.slices is not None and self.labels is not None else {}
        return Plan(
            n=next((n for p in prepared if (n := p.run.n_examples) is not None), 0),
            pairs=tuple(self.pairs),
            scored=tuple(r for r, p in enumerate(prepared) if p.classified and truth is not None),
            termed=tuple((r, m) for r, p in enumerate(prepared) for m in p.term_metrics),
            slicings=tuple((name, codes.n_slices) for name, codes in slicings.items()),
            compared=tuple(compared),
            compare={
                "shape": shapes[0] if shapes else (0,),
                "dtypes": dtypes,
                "atol": 0.0 if self.exact else self.check.prediction_atol,
                "rtol": 0.0 if self.exact else self.check.prediction_rtol,
                "top_k": self.check.n_top,
            },
            block_rows=Plan.rows_for([s[1] if len(s) == 2 else 1 for s in shapes]),
        )

    def _read(self) -> dict[int, PredictionComparison]:
        """One pass over every run's examples: the table, the metrics from it, the
        pairs' comparisons."""
        plan = self.plan()

        def whole(r: int, metric: Metric) -> None:
            assert metric.per_example is not None
            metric.per_example(self.labels, self.prepared[r].predictions)

        summary = Summary(plan, None if self.lazy else whole)
        if plan.n and self.lazy:
            read_lazy(self, plan, summary)
        elif plan.n:
            slicings = self.slices if plan.slicings and self.slices is not None else {}
            summary.read(
                Chunk(
                    0,
                    tuple(p.predictions for p in self.prepared),
                    self.labels,
                    self.int_labels,
                    tuple(codes.codes for codes in slicings.values()),
                )
            )
        self.use(summary)
        return {k: comparer.result() for k, comparer in summary.comparers.items()}

    def use(self, summary: Summary) -> None:
        """Take the runs' metrics from a finished pass's table."""
        self.table = table = summary.table
        for p_index, p in enumerate(self.prepared):
            for metric in p.counted:
                right = int(table.total("correct", p_index))
                hits = right if metric.name == "accuracy" else table.n - right
                p.values[metric.name] = hits / table.n
            for metric in list(p.term_metrics):
                reason = summary.failed.get((p_index, metric.name))
                if reason is not None:
                    p.term_metrics.remove(metric)
                    if metric.name not in p.run.metrics:
                        self.skipped[metric.name] = reason
                    continue
                p.values[metric.name] = table.total("terms", p_index, metric.name) / table.n
            # A value the run reports itself wins over the computed one; the table still
            # serves the paired tests and the slices.
            p.values.update(p.run.metrics)

    def _record_runs(self) -> None:
        """Every run's metrics go to ``details["runs"]`` (run names are not metric keys)."""
        rows = []
        for index, p in enumerate(self.prepared):
            row: dict[str, Any] = {"name": p.name, "metrics": dict(p.values)}
            if self.seeds is not None:
                row["seed"] = self.seeds[index]
            row["n_examples"] = p.run.n_examples
            rows.append(row)
        self.out.detail("runs", rows)
        self.out.detail(
            "pairs",
            [{"a": self.prepared[i].name, "b": self.prepared[j].name} for i, j in self.pairs],
        )

    # ---- example by example

    def _compare_predictions(self, results: dict[int, PredictionComparison]) -> None:
        if not results:
            return
        for k, comparison in results.items():
            i, j = self.pairs[k]
            entry = self.out.details["pairs"][k]
            entry["predictions"] = comparison.to_dict()
            entry["predictions"]["top_examples"] = self._top_examples(
                self.prepared[i], self.prepared[j], comparison
            )
        self._judge_predictions(results)
        if len(self.prepared) > 2:
            matrix = np.zeros((len(self.prepared), len(self.prepared)))
            for k, comparison in results.items():
                i, j = self.pairs[k]
                matrix[i, j] = matrix[j, i] = comparison.churn
            self.out.detail("churn_matrix", matrix.tolist())

    def _top_examples(
        self, a: Prepared, b: Prepared, comparison: PredictionComparison
    ) -> list[dict[str, Any]]:
        rows = []
        where = np.asarray(comparison.top_indices, dtype=np.intp)
        both = a.classified and b.classified
        if both:
            assert a.predictions is not None
            assert b.predictions is not None
            classes_a = block_classes(take_rows(a.predictions, where))
            classes_b = block_classes(take_rows(b.predictions, where))
        labels = None if self.raw_labels is None else take_rows(self.raw_labels, where)
        for k, (index, diff) in enumerate(
            zip(comparison.top_indices, comparison.top_diffs, strict=True)
        ):
            row: dict[str, Any] = {"index": index, "abs_diff": diff}
            if both:
                row["class_a"] = int(classes_a[k])
                row["class_b"] = int(classes_b[k])
            if labels is not None:
                label = labels[k]
                row["label"] = label.tolist() if isinstance(label, np.ndarray) else label.item()
            rows.append(row)
        return rows

    def _judge_predictions(self, results: dict[int, PredictionComparison]) -> None:
        check, out = self.check, self.out

        def worst(key: Callable[[PredictionComparison], float]) -> tuple[int, PredictionComparison]:
            k = max(results, key=lambda k: (key(results[k]), -k))
            return k, results[k]

        classified = all(self.prepared[i].classified for k in results for i in self.pairs[k])
        m = len(results)  # pairs compared: the worst one's lower bound is Bonferroni-adjusted
        same = all(r.identical for r in results.values())
        if self.task == "multilabel":
            judge_label_churn(self)
        elif classified:
            k, c = worst(lambda c: c.churn)
            context = (
                f": {c.churn_count:,} of {c.n:,} predictions changed class between "
                f"{self.pair_label(*self.pairs[k])}"
            )
            churn_limit = AtMost(0.0) if self.exact else held(check.max_churn)
            judge_rate(
                self,
                "churn",
                churn_limit,
                c.churn_count,
                c.n,
                comparisons=m,
                identical=same,
                context=context,
            )
            out.metric("churn", c.churn)
            if all(r.correctness_churn is not None for r in results.values()):
                k, c = worst(lambda c: c.correctness_churn or 0.0)
                limit = held_or_none(check.max_correctness_churn)
                if limit is None:
                    limit = held(check.max_churn)
                context = (
                    f": {c.correctness_churn_count:,} of {c.n:,} examples are right in one run "
                    f"and wrong in the other ({self.pair_label(*self.pairs[k])})"
                )
                assert c.correctness_churn_count is not None
                judge_rate(
                    self,
                    "correctness_churn",
                    AtMost(0.0) if self.exact else limit,
                    c.correctness_churn_count,
                    c.n,
                    comparisons=m,
                    identical=same,
                    context=context,
                )
                out.metric("correctness_churn", c.correctness_churn)
        elif self.task == "regression":
            self.skipped["churn"] = (
                "a regression task has no predicted class: predicted values are compared "
                "(prediction.fraction_beyond_tol, judged against max_churn unless "
                "max_fraction_beyond_tol is given)"
            )
        else:
            self.skipped["churn"] = (
                "predictions are neither class probabilities nor labels (1-D values outside "
                "[0, 1]), so no predicted class is defined"
            )

        k, c = worst(lambda c: c.max_abs_diff)
        out.metric("prediction.max_abs_diff", c.max_abs_diff)
        out.metric("prediction.mean_abs_diff", max(r.mean_abs_diff for r in results.values()))
        if self.exact:
            out.add(self._identical_predictions_finding(k, c))
        k, c = worst(lambda c: c.fraction_beyond_tolerance)
        out.metric("prediction.fraction_beyond_tol", c.fraction_beyond_tolerance)
        if not self.exact:
            context = (
                f": {c.count_beyond_tolerance:,} of {c.n:,} examples differ by more than "
                f"{check.prediction_atol:g} + {check.prediction_rtol:g} x |p| between "
                f"{self.pair_label(*self.pairs[k])}"
            )
            limit = held_or_none(check.max_fraction_beyond_tol)
            if limit is None and self.task == "regression":
                limit = held(check.max_churn)
            judge_rate(
                self,
                "prediction.fraction_beyond_tol",
                limit,
                c.count_beyond_tolerance,
                c.n,
                comparisons=m,
                identical=same,
                context=context,
            )
        correlations = [
            r.rank_correlation for r in results.values() if r.rank_correlation is not None
        ]
        if correlations:
            out.metric("prediction.rank_correlation", min(correlations))

    def _identical_predictions_finding(self, k: int, c: PredictionComparison) -> Finding:
        name = "prediction.max_abs_diff"
        if c.identical:
            message = f"predictions are bit-identical in every run ({c.n:,} examples)"
            return Finding(name, Status.PASS, 0.0, "== 0", message)
        top = f" at example {c.top_indices[0]}" if c.top_indices else ""
        message = (
            f"predictions differ on {c.differing_count:,} of {c.n:,} examples between "
            f"{self.pair_label(*self.pairs[k])}, first at example {c.first_diff_index}; "
            f"the largest difference is {fmt(c.max_abs_diff)}{top}"
        )
        return Finding(name, Status.FAIL, c.max_abs_diff, "== 0", message)

    # ---- aggregate metrics


def _lead(out: ResultBuilder, runs: str) -> None:
    """Open each failing finding with a plain sentence: what differs between ``runs``."""
    churn, wrong = out.metrics.get("churn"), out.metrics.get("correctness_churn")
    leads = {
        "churn": f"Runs {runs} predict different classes"
        + ("" if churn is None else f" for {churn:.1%} of examples"),
        "correctness_churn": f"Runs {runs} get different examples right"
        + ("" if wrong is None else f" ({wrong:.1%} of examples right in one, wrong in another)"),
        "prediction.fraction_beyond_tol": f"Runs {runs} make different predictions",
        "prediction.max_abs_diff": f"Runs {runs} make different predictions",
        "first_divergence": f"Runs {runs} have different training losses",
        "same_data": f"Runs {runs} cannot be compared because they did not record the same data",
        "same_labels": f"Runs {runs} cannot be compared because they were scored on other labels",
        "same_slices": f"Runs {runs} cannot be compared because their slices differ",
    }
    # Only a failure's message opens the summary; warnings keep their own wording.
    names = {f.name for f in out.findings if f.status.severity >= Status.FAIL.severity}
    for name in names:
        if name.startswith("metric."):
            leads[name] = f"Runs {runs} report different metrics"
        elif name.startswith(("slice.", "slices.")):
            leads[name] = f"Runs {runs} give different results in some slices"
        if name in leads:
            out.lead(name, leads[name])
