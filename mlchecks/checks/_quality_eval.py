"""What `QualityCheck` measures, computed once per check from one pass over the rows.

`Evaluation` answers the check's three questions, one metric at a time: the candidate's
estimate with its interval (`Evaluation.estimate`), the paired comparison with the
baseline overall (`Evaluation.overall`) and in one slice (`Evaluation.in_slice`).

For class predictions it first reads the rows once (`mlchecks.stats._joint`): per slice
of every slicing the joint (true, candidate, baseline) counts, from which accuracy, the
error rate, precision, recall and F1 and their paired tests follow without the rows
(bootstraps resample the counts); and, for log loss and the Brier score, per-slice sums
of each model's terms and the moments of their differences. Those results equal the
per-example computation bit for bit for the count-based metrics (the same integer counts
and random draws) and to the rounding of the sums for the means. Any other metric, and
any input the pass does not take, goes through `mlchecks.stats.paired` on the rows, as
before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlchecks._validate import as_labels
from mlchecks.stats._auc_tables import RankTable, rank_tables
from mlchecks.stats._joint import joint_counts, mean_terms
from mlchecks.stats.auc import table_auc, table_delong, table_delong_ci
from mlchecks.stats.intervals import normal_interval
from mlchecks.stats.metrics import CORRECTNESS_METRICS, predicted_labels
from mlchecks.stats.paired import (
    CONFUSION_METRICS,
    MetricEstimate,
    PairedResult,
    confusion_estimate,
    correctness_estimate,
    metric_estimate,
    paired_confusion,
    paired_correctness,
    paired_difference,
)
from mlchecks.stats.sliced import SliceCodes, slice_groups, sliced_confusion, sliced_sum

__all__ = ["Evaluation"]

#: Means of per-example terms that the pass computes from (n, C) or (n,) probabilities.
MEAN_METRICS = ("log_loss", "brier")
#: Rows may sum to 1 within this much (`_metric_inputs`) ; the pass is stricter by a hair
#: so that a row at the boundary takes the general path, which decides it exactly.
_SUM_TOLERANCE = 1e-3 * (1.0 - 1e-9)
_MEAN_METHOD = "paired mean with its exact bootstrap se"
#: What one pass gives: joint counts per slicing, and per mean metric its moments.
Summaries = tuple[dict[str | None, np.ndarray] | None, dict[str, dict[str | None, Any] | None]]


def _n_classes(labels: np.ndarray, *predictions: np.ndarray | None) -> int | None:
    """The class count of the joint table, or None when the pass does not apply."""
    widths: list[int] = []
    for values in predictions:
        if values is None:
            continue
        if values.ndim == 2:
            if values.dtype.kind != "f":
                return None
            widths.append(int(values.shape[1]))
        elif values.dtype.kind == "f":
            widths.append(2)
        elif values.dtype.kind in "biu":
            widths.append(2 if values.dtype.kind == "b" else int(values.max()) + 1)
        else:
            return None
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or not widths:
        return None
    return max(widths)


class Evaluation:
    """The check's estimates and paired tests, from one pass over the rows where it can.

    Args:
        labels: (n,) coded class labels (or regression targets, multi-label indicators).
        candidate: the candidate's predictions (finite).
        baseline: the baseline's predictions, or None.
        slicings: the check's encoded slicings.
        task: the resolved task.
        metrics: the names of the metrics the check will ask about.
        n_resamples: bootstrap resamples.
        rng: the check's generator; draws happen in the order of the calls.
        n_classes: the class count of the joint table when the rows are a part of the
            evaluation set (a chunk of Dask arrays); None: from the rows.
    """

    def __init__(
        self,
        labels: np.ndarray,
        candidate: np.ndarray,
        baseline: np.ndarray | None,
        slicings: dict[str, SliceCodes],
        task: str,
        metrics: list[str],
        n_resamples: int,
        rng: np.random.Generator,
        n_classes: int | None = None,
    ) -> None:
        self.labels, self.candidate, self.baseline = labels, candidate, baseline
        self.slicings = slicings
        self.n_resamples, self.rng = n_resamples, rng
        self.n = len(labels)
        if n_classes is None and task == "classification":
            n_classes = _n_classes(labels, candidate, baseline)
        self._classes = n_classes if task == "classification" else None
        self._need_joint = any(name in CONFUSION_METRICS for name in metrics)
        self._joint: dict[str | None, np.ndarray] | None = None
        self._moments: dict[str, dict[str | None, Any] | None] = {}
        self._groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._correct: dict[str | None, np.ndarray] = {}
        self._right: tuple[np.ndarray, np.ndarray] = (labels, labels)
        self._ranks: dict[bool, dict[str | None, RankTable] | None] = {}

    # ------------------------------------------------------------------ one pass

    def _tables(self) -> dict[str | None, np.ndarray] | None:
        """Joint counts per slicing (key None: all examples), or None off the fast path."""
        if self._joint is None and self._classes is not None:
            names = list(self.slicings)
            base = self.baseline if self.baseline is not None else self.candidate
            tables = joint_counts(
                [self.slicings[s].codes for s in names] or [None],
                [self.slicings[s].n_slices for s in names] or [1],
                self.labels,
                self.candidate,
                base,
                self._classes,
                joint=self._need_joint,
            )
            if tables is not None:
                keys: list[str | None] = [*names] or [None]
                self._joint = dict(zip(keys, tables, strict=True))
                self._joint[None] = tables[0].sum(axis=0)
        return self._joint

    def _mean_moments(self, name: str) -> dict[str | None, Any] | None:
        """Per-slicing moments of a mean metric's terms, or None off the fast path."""
        if name not in self._moments:
            self._moments[name] = self._read_terms(name)
        return self._moments[name]

    def _read_terms(self, name: str) -> dict[str | None, Any] | None:
        if name not in MEAN_METRICS or self._classes is None:
            return None
        models = [self.candidate, self.baseline if self.baseline is not None else self.candidate]
        for values in models:
            if values.dtype.kind != "f" or not _probabilities_ok(values, self._classes):
                return None
        if int(self.labels.max()) >= (models[0].shape[1] if models[0].ndim == 2 else 2):
            return None
        terms = _log_loss_terms if name == "log_loss" else _brier_terms
        y = self.labels

        def both(rows: slice) -> tuple[np.ndarray, np.ndarray]:
            return terms(y[rows], models[0][rows]), terms(y[rows], models[1][rows])

        names = list(self.slicings)
        codes = [self.slicings[s].codes for s in names]
        sizes = [self.slicings[s].n_slices for s in names]
        found = mean_terms(both, self.n, codes, sizes)
        out: dict[str | None, Any] = dict(zip(names, found[1:], strict=True))
        out[None] = found[0]
        return out

    def summaries(self, mean_metrics: list[str]) -> Summaries:
        """The joint counts and the moments of ``mean_metrics``' terms (None off the pass)."""
        return self._tables(), {name: self._mean_moments(name) for name in mean_metrics}

    def use(self, summaries: Summaries) -> None:
        """Answer from ``summaries`` (of every row, merged from parts) instead of the rows."""
        self._joint, self._moments = summaries[0], dict(summaries[1])

    def slice_counts(self, slicing: str) -> np.ndarray:
        """The number of examples in each slice of ``slicing``."""
        if self._joint is not None:  # already counted (always, on Dask arrays)
            table = self._joint[slicing]
            counts: np.ndarray = table.reshape(len(table), -1).sum(axis=1)
            return counts
        codes = self.slicings[slicing]
        return sliced_sum(codes.codes, codes.n_slices)

    def _rank_tables(self, *, paired: bool) -> dict[str | None, RankTable] | None:
        """ROC AUC's midrank tables per slicing (key None: all examples), of the candidate
        and the baseline (``paired``) or of the candidate alone (all examples only); None
        when the labels or the scores are not what `roc_auc` takes (the general path then
        raises its error)."""
        if paired not in self._ranks:
            cand = _binary_scores(self.candidate)
            base = _binary_scores(self.baseline) if paired else None
            names = [*self.slicings] if paired else []
            slicings: list[tuple[np.ndarray | None, int]] = [(None, 1)]
            slicings += [(self.slicings[s].codes, self.slicings[s].n_slices) for s in names]
            labels_ok = self.labels.ndim == 1 and self.labels.dtype.kind in "biu" and self.n > 0
            found = None
            if labels_ok and cand is not None and (base is not None or not paired):
                found = rank_tables(self.labels, cand, base, slicings)
            keys: list[str | None] = [None, *names]
            self._ranks[paired] = None if found is None else dict(zip(keys, found, strict=True))
        return self._ranks[paired]

    # ------------------------------------------------------------------ questions

    def estimate(self, name: str, confidence: float) -> MetricEstimate:
        """The candidate's metric with its interval (`metric_estimate`)."""
        tables = self._tables()
        if tables is not None and name in CORRECTNESS_METRICS:
            right = _correctness(tables[None]) if self._need_joint else tables[None]
            return correctness_estimate(
                name, int(right[1].sum()), self.n, confidence_level=confidence
            )
        if tables is not None and name in CONFUSION_METRICS:
            return confusion_estimate(
                name,
                tables[None].sum(axis=2),
                confidence_level=confidence,
                n_resamples=self.n_resamples,
                rng=self.rng,
            )
        ranks = self._rank_tables(paired=False) if name == "roc_auc" else None
        if ranks is not None and min(_class_counts(ranks[None], 0)) >= 2:
            table = ranks[None]
            ci = table_delong_ci(table, 0, confidence)
            return MetricEstimate(table_auc(table)[0], ci, self.n, "delong")
        moments = self._mean_moments(name)
        if moments is not None:
            count, sum_c, _, _, m2_c, _, _ = (float(v[0]) for v in moments[None])
            mean = sum_c / count
            se = math.sqrt(m2_c / count) / math.sqrt(count)
            ci = normal_interval(mean, se, confidence)
            return MetricEstimate(mean, ci, self.n, "mean with its exact bootstrap se")
        return metric_estimate(
            name,
            self.labels,
            self.candidate,
            confidence_level=confidence,
            n_resamples=self.n_resamples,
            rng=self.rng,
        )

    def overall(self, name: str) -> PairedResult:
        """Candidate versus baseline on all examples (`paired_difference`)."""
        return self._paired(name, None, 0, None)

    def in_slice(self, name: str, slicing: str, code: int) -> PairedResult:
        """Candidate versus baseline in one slice (exact intervals for accuracy)."""
        return self._paired(name, slicing, code, self._rows(slicing, code))

    def _rows(self, slicing: str, code: int) -> Any:
        def rows() -> np.ndarray:
            if slicing not in self._groups:
                codes = self.slicings[slicing]
                self._groups[slicing] = slice_groups(codes.codes, codes.n_slices)
            order, offsets = self._groups[slicing]
            return order[offsets[code] : offsets[code + 1]]

        return rows

    def _paired(self, name: str, slicing: str | None, code: int, rows: Any) -> PairedResult:
        assert self.baseline is not None
        tables = self._tables()
        if tables is not None and name in CORRECTNESS_METRICS + CONFUSION_METRICS:
            joint = tables[slicing] if slicing is None else tables[slicing][code]
            if name in CONFUSION_METRICS:
                return paired_confusion(name, joint, n_resamples=self.n_resamples, rng=self.rng)
            right = _correctness(joint) if self._need_joint else joint
            return paired_correctness(right, metric=name, exact=slicing is not None)
        ranks = self._rank_tables(paired=True) if name == "roc_auc" else None
        if ranks is not None:
            n = sum(_class_counts(ranks[slicing], code))
            return PairedResult.of_delong(table_delong(ranks[slicing], code), n)
        moments = self._mean_moments(name)
        if moments is not None:
            count, sum_c, sum_b, _, _, _, m2_d = (float(v[code]) for v in moments[slicing])
            se = math.sqrt(m2_d / count) / math.sqrt(count)
            return _mean_result(sum_c / count, sum_b / count, se, int(count))
        if name in CORRECTNESS_METRICS:
            return paired_correctness(
                self._correct_tables(slicing)[code], metric=name, exact=slicing is not None
            )
        if rows is None:
            y, cand, base = self.labels, self.candidate, self.baseline
        else:
            index = rows()
            y, cand, base = self.labels[index], self.candidate, self.baseline
            if name == "roc_auc" and cand.ndim == base.ndim == 2 and cand.shape[1] == 2:
                cand, base = cand[:, 1], base[:, 1]  # what ROC AUC reads of (n, 2) scores
            cand, base = cand[index], base[index]
        return paired_difference(name, y, cand, base, n_resamples=self.n_resamples, rng=self.rng)

    def _correct_tables(self, slicing: str | None) -> np.ndarray:
        """Per-slice 2x2 correctness counts from the predicted labels (the general path)."""
        if slicing not in self._correct:
            if not self._correct:
                assert self.baseline is not None
                truth = as_labels(self.labels, "labels")
                self._right = (
                    predicted_labels(self.candidate) == truth,
                    predicted_labels(self.baseline) == truth,
                )
            if slicing is None:
                codes, k = np.zeros(self.n, dtype=np.intp), 1
            else:
                codes, k = self.slicings[slicing].codes, self.slicings[slicing].n_slices
            self._correct[slicing] = sliced_confusion(codes, k, *self._right, 2)
        return self._correct[slicing]


def _binary_scores(values: np.ndarray | None) -> np.ndarray | None:
    """What ROC AUC ranks: (n,) float scores, or column 1 of (n, 2) ones (a view)."""
    if values is None or values.dtype not in (np.float32, np.float64):
        return None
    if values.ndim == 2 and values.shape[1] == 2:
        return values[:, 1]
    return values if values.ndim == 1 else None


def _class_counts(table: RankTable, code: int) -> tuple[int, int]:
    """The positives and negatives of one slice of a midrank table."""
    return int(table.positive[0][code]), int(table.negative[0][code])


def _correctness(joint: np.ndarray) -> np.ndarray:
    """The 2x2 [candidate right, baseline right] counts of a (C, C, C) joint table."""
    c = joint.shape[0]
    eye = np.eye(c, dtype=np.bool_)
    right_c = np.broadcast_to(eye[:, :, None], joint.shape)
    right_b = np.broadcast_to(eye[:, None, :], joint.shape)
    table = np.zeros((2, 2), dtype=np.int64)
    for i in (0, 1):
        for j in (0, 1):
            table[i, j] = joint[(right_c == bool(i)) & (right_b == bool(j))].sum()
    return table


def _mean_result(cand: float, base: float, se: float, n: int) -> PairedResult:
    from mlchecks.stats.inference import normal_pvalue

    difference = cand - base
    pvalue = normal_pvalue(difference, se, 0.0, alternative="two-sided")
    return PairedResult(difference, pvalue, se, cand, base, n, _MEAN_METHOD)


def _probabilities_ok(values: np.ndarray, n_classes: int) -> bool:
    """Probabilities in [0, 1], and rows of (n, C) ones summing to 1 (block by block)."""
    step = 1 << 16
    for start in range(0, len(values), step):
        block = values[start : start + step]
        if not (float(block.min()) >= 0.0 and float(block.max()) <= 1.0):
            return False
        if block.ndim == 2:
            sums = block[:, 0].astype(np.float64)
            for c in range(1, block.shape[1]):
                sums += block[:, c]
            sums -= 1.0
            if float(np.abs(sums).max()) > _SUM_TOLERANCE:
                return False
    return True


def _true_class(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    if probs.ndim == 1:
        return np.where(labels == 1, probs, 1.0 - probs.astype(np.float64))
    return np.take_along_axis(probs, labels[:, None], axis=1)[:, 0].astype(np.float64)


def _log_loss_terms(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """`mlchecks.stats.metrics` log-loss terms of a block (the same operations)."""
    eps = float(np.finfo(probs.dtype).eps)
    terms: np.ndarray = -np.log(np.clip(_true_class(labels, probs), eps, 1.0))
    return terms


def _brier_terms(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """`mlchecks.stats.metrics` Brier terms of a block (the same operations)."""
    if probs.ndim == 1:
        terms: np.ndarray = (probs.astype(np.float64) - labels) ** 2
        return terms
    squares = np.einsum("ij,ij->i", probs, probs, dtype=np.float64)
    terms = squares - 2.0 * _true_class(labels, probs) + 1.0
    return terms
