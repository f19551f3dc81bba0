"""The compiled path of `ReproducibilityCheck`'s pass (`mlchecks.checks._repro_pass`).

`FusedBlocks` does for a block what `Summary._block` does with numpy, with the optional
kernels of `mlchecks.stats._fused`: one loop per run gives each row's correctness, checks
the class probabilities and picks the label's probability (log loss; numpy's ``np.log``
then takes its logarithm, in place; other metrics' terms come from their ``per_example``);
one loop over the block adds the
counts per slice, the sums of every run's terms and the sums of squares and moments of
the pairs' differences to accumulators, which go into the `Table` at the end of each
chunk (`flush`). Everything equals the numpy path's bit for bit: counts, the terms (the
same float64 operations), their sums per slice (added in bincount's order) and in total,
and the moments (summed as numpy's pairwise ``np.add.reduce``, `mlchecks.stats._fused.pairwise`).

A block it cannot take (a run's probabilities fail a check, a metric raises, a dtype it
does not know) is handed back to the numpy path (`block` returns False), after the
accumulators are flushed, so that errors and left-out metrics are exactly the numpy
path's.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks.exceptions import InvalidInput
from mlchecks.stats._metric_inputs import _log_loss_terms

if TYPE_CHECKING:
    from mlchecks.checks._repro_pass import Chunk, Plan, Summary, Table
    from mlchecks.stats.metrics import Metric

__all__ = ["FusedBlocks"]

#: Row sums may differ from 1 by this much (`mlchecks.stats._metric_inputs`).
_SUM_TOLERANCE = 1e-3
_EMPTY_INT = np.empty(0, dtype=np.int64)
_EMPTY_FLOAT = np.empty(0, dtype=np.float64)
_EMPTY_BYTES = np.empty(0, dtype=np.uint8)
_NO_PAIRS = np.empty((0, 2), dtype=np.int64)
#: At most this many scored runs (the counts have a cell per combination of right and wrong).
MAX_RUNS = 6


def _limit(width: int) -> float:
    """The kernel's bound on a float64 row sum: the tolerance less twice the rounding by
    which two float64 sums of ``width`` values in [0, 1] (summing to about 1) may differ,
    so that a row it accepts is accepted by numpy's test, whatever its order."""
    return _SUM_TOLERANCE - 4.0 * width * float(np.finfo(np.float64).eps)


def _known(metric: Metric) -> str | None:
    """``"log_loss"`` for the built-in log-loss terms, else None.

    The Brier terms go through ``per_example`` (numpy's ``einsum`` adds the squares in an
    order of its own, which a loop matches only to rounding).
    """
    return "log_loss" if metric.per_example is _log_loss_terms else None


class FusedBlocks:
    """Buffers and accumulators of the compiled path for one `Summary`."""

    def __init__(self, plan: Plan, kernels: types.SimpleNamespace) -> None:
        self.plan, self.k = plan, kernels
        self.termed: list[tuple[int, Metric]] = []
        self.pending = 0
        self.configure(list(plan.termed))

    def configure(self, termed: list[tuple[int, Metric]]) -> None:
        """Lay out the buffers and accumulators for these (run, metric) terms."""
        plan = self.plan
        self.termed = list(termed)
        self.scored = list(plan.scored)
        row = {r: b for b, r in enumerate(self.scored)}
        self.pairs = [(i, j) for i, j in plan.pairs if i in row and j in row]
        self.term_row = {(r, m.name): t for t, (r, m) in enumerate(self.termed)}
        self.signs = np.array([-1.0 if _known(m) == "log_loss" else 1.0 for _, m in self.termed])
        diffs = [
            (i, j, name)
            for i, j in plan.pairs
            for r, name in self.term_row
            if r == i and (j, name) in self.term_row
        ]
        self.diffs = diffs
        rows = [(self.term_row[i, name], self.term_row[j, name]) for i, j, name in diffs]
        self.diff_rows = np.array(rows, dtype=np.int64).reshape(-1, 2)
        m = plan.block_rows
        self.correct = np.empty(len(self.scored) * m, dtype=np.uint8)
        self.terms = np.empty(len(self.termed) * m, dtype=np.float64)
        cells = 1 << len(self.scored)
        sizes = [k for _, k in plan.slicings] or [1]
        self.counts = [np.zeros((k, cells), dtype=np.int64) for k in sizes]
        index = np.arange(cells)
        #: Per scored run, the cells (bit b: whether the b-th scored run is right) it is right in.
        self.bits = [(index >> b) & 1 == 1 for b in range(len(self.scored))]
        self.totals = [np.zeros((len(self.termed), k + 1)) for k in sizes]
        self.squares = [np.zeros((len(diffs), k)) for k in sizes]
        self.moments = np.zeros((len(diffs), 3))
        self.pending = 0

    # ------------------------------------------------------------------ blocks

    def block(self, summary: Summary, chunk: Chunk) -> bool:
        """Add a block's counts and sums; False when the numpy path must take it."""
        if summary.termed != self.termed:
            self.flush(summary.table)
            self.configure(summary.termed)
        m = chunk.size
        if self.scored and chunk.truth is None:
            return False
        correct = self.correct[: len(self.scored) * m].reshape(len(self.scored), m)
        terms = self.terms[: len(self.termed) * m].reshape(len(self.termed), m)
        if not self._scan(chunk, correct, terms):
            self.flush(summary.table)
            return False
        for t, (_, metric) in enumerate(self.termed):
            if _known(metric) == "log_loss":
                np.log(terms[t], out=terms[t])
        self.pending += m
        k = self.k
        if not self.plan.slicings:
            args = (correct, _NO_PAIRS, terms, self.signs, self.diff_rows)
            k.tally(_EMPTY_INT, *args, self.counts[0], self.totals[0], self.moments,
                    self.squares[0], True)  # fmt: skip
            return True
        for s, codes in enumerate(chunk.slices):
            args = (correct, _NO_PAIRS, terms, self.signs, self.diff_rows)
            k.tally(codes, *args, self.counts[s], self.totals[s], self.moments,
                    self.squares[s], s == 0)  # fmt: skip
        return True

    def _scan(self, chunk: Chunk, correct: np.ndarray, terms: np.ndarray) -> bool:
        """Each run's correctness and terms into the block buffers; False if a run's
        block needs the numpy path."""
        truth = chunk.truth if self.scored else None
        labels = chunk.labels
        int_labels = (
            isinstance(labels, np.ndarray)
            and labels.ndim == 1
            and labels.dtype.kind in "iu"
            and labels.dtype.itemsize <= 8
            and labels.dtype != np.uint64
        )
        runs = sorted({*self.scored, *(r for r, _ in self.termed)})
        for r in runs:
            predictions = chunk.predictions[r]
            out = correct[self.scored.index(r)] if r in self.scored else _EMPTY_BYTES
            wanted = {}
            for t, (run, metric) in enumerate(self.termed):
                if run != r:
                    continue
                name = _known(metric)
                kind = predictions.dtype if predictions is not None else None
                if name is not None and int_labels and kind in (np.float32, np.float64):
                    wanted[name] = terms[t]
                elif not self._other(chunk, run, metric, terms[t]):
                    return False
            if (out.size or wanted) and not self._run(predictions, labels, truth, out, wanted):
                return False
        return True

    def _other(self, chunk: Chunk, r: int, metric: Metric, out: np.ndarray) -> bool:
        """A metric's terms from its ``per_example`` into ``out``; False when it raises."""
        assert metric.per_example is not None
        try:
            values = metric.per_example(chunk.labels, chunk.predictions[r])
            out[:] = np.asarray(values, dtype=np.float64)
        except (InvalidInput, ValueError):
            return False
        return True

    def _run(
        self,
        p: np.ndarray | None,
        labels: Any,
        truth: np.ndarray | None,
        out: np.ndarray,
        wanted: dict[str, np.ndarray],
    ) -> bool:
        """One run's block: correctness into ``out`` and the terms ``wanted``."""
        if p is None or p.dtype.kind not in "fiub" or p.dtype == np.uint64 or p.size == 0:
            return False
        if p.dtype.kind == "f" and p.dtype not in (np.float32, np.float64):
            return False
        truth_arg = _EMPTY_INT if truth is None or not out.size else truth
        picked = wanted.get("log_loss", _EMPTY_FLOAT)
        squares = wanted.get("brier", _EMPTY_FLOAT)
        labels_arg = labels if wanted else _EMPTY_INT
        eps = float(np.finfo(p.dtype).eps) if p.dtype.kind == "f" else 0.0
        k = self.k
        if p.ndim == 2:
            if p.dtype.kind == "b" or p.shape[1] == 0:
                return False
            limit = _limit(p.shape[1])
            return bool(k.scan_2d(p, labels_arg, truth_arg, out, picked, squares, eps, limit) == 0)
        if p.dtype.kind == "f":
            return bool(k.scan_1d(p, labels_arg, truth_arg, out, picked, squares, eps, False) == 0)
        if wanted:
            return False
        values = p.view(np.uint8) if p.dtype.kind == "b" else p
        return bool(k.scan_labels(values, truth_arg, out, 0) == 0)

    # ------------------------------------------------------------------ table

    def flush(self, table: Table) -> None:
        """Add the accumulated sums to ``table`` and reset them."""
        if not self.pending:
            return
        plan, first = self.plan, self.counts[0]
        for b, r in enumerate(self.scored):
            table.add(("correct", r), first[:, self.bits[b]].sum())
        for i, j in self.pairs:
            table.add(
                ("only", i, j), [self._only(first, i, j).sum(), self._only(first, j, i).sum()]
            )
        for t, (r, metric) in enumerate(self.termed):
            table.add(("terms", r, metric.name), self.totals[0][t, -1])
        for s, (name, _) in enumerate(plan.slicings):
            counts = self.counts[s]
            table.add(("count", name), counts.sum(axis=1))
            for b, r in enumerate(self.scored):
                table.add(("correct", r, name), counts[:, self.bits[b]].sum(axis=1))
            for i, j in self.pairs:
                only = np.stack([self._only(counts, i, j), self._only(counts, j, i)])
                table.add(("only", i, j, name), only)
            for t, (r, metric) in enumerate(self.termed):
                table.add(("terms", r, metric.name, name), self.totals[s][t, :-1])
            for q, (i, j, metric_name) in enumerate(self.diffs):
                table.add(("squares", i, j, metric_name, name), self.squares[s][q])
        for q, (i, j, metric_name) in enumerate(self.diffs):
            count, mean, m2 = self.moments[q]
            if count:
                table.add_part((metric_name, i, j), (int(count), float(mean), float(m2)))
        for array in (*self.counts, *self.totals, *self.squares, self.moments):
            array.fill(0)
        self.pending = 0

    def _only(self, counts: np.ndarray, i: int, j: int) -> np.ndarray:
        """Per slice, the examples run ``i`` gets right and run ``j`` wrong."""
        right, wrong = self.bits[self.scored.index(i)], self.bits[self.scored.index(j)]
        only: np.ndarray = counts[:, right & ~wrong].sum(axis=1)
        return only
