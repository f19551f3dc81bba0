"""One blocked pass over the runs' per-example data, for `ReproducibilityCheck`.

`read_runs` reads every run's predictions, the labels and every slicing once, in blocks of
rows that stay in a core's cache, and fills a `Table` of small sums: per run the number of
correct predictions and the sums of each per-example metric's terms, per pair of runs the
discordant counts and the moments of the paired differences, and the same per slice of
every slicing (DESIGN §9, "one pass, mergeable tables"). The pairs' example-by-example
comparisons (`mlchecks.stats.compare.Comparer`) read the same blocks. Every test of the
check then runs on the table; no per-example array outlives its block, so the extra
memory is bounded by the block size, whatever the number of examples.

Tables merge (`Table.merge`): sums add, and the moments of the paired differences combine
exactly as for one long block (Chan et al.'s update), so a table built from blocks equals
the table of the whole array up to the rounding of the sums.

>>> import numpy as np
>>> t = Table()
>>> t.add(("correct", 0), 3)
>>> t.add_moments(("log_loss", 0, 1), np.array([0.5, 1.5]))
>>> u = Table()
>>> u.add(("correct", 0), 2)
>>> u.add_moments(("log_loss", 0, 1), np.array([1.0]))
>>> m = t.merge(u)
>>> int(m.get("correct", 0)), m.moments[("log_loss", 0, 1)]
(5, (3, 1.0, 0.5))
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.compare import Comparer

if TYPE_CHECKING:
    from mlchecks.checks._repro_eval import Evaluation
    from mlchecks.stats.metrics import Metric

__all__ = ["Table", "block_classes", "read_runs"]

#: Values (rows x classes) of one run per block: every block's arrays stay in L2.
_BLOCK_VALUES = 1 << 18
#: At least this many rows per block, so that many classes do not make blocks tiny.
_MIN_BLOCK_ROWS = 4096
#: Fused (slice, correctness) counts need a bin per slice and cell: at most this many bins
#: per block row, beyond which each count is its own `np.bincount`.
_FUSED_BINS_PER_ROW = 1.0

Moments = tuple[int, float, float]


def _merge_moments(a: Moments, b: Moments) -> Moments:
    """Count, mean and sum of squared deviations of two parts, combined exactly."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    if n_a == 0 or n_b == 0:
        return a if n_b == 0 else b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    return n, mean, m2_a + m2_b + delta * delta * (n_a * n_b / n)


class Table:
    """Sums over examples, keyed by what they sum; tables of disjoint examples merge.

    ``sums`` maps a key (a tuple such as ``("correct", run)`` or ``("terms", run, metric,
    slicing)``) to a float or integer array (a 0-d array for a total, one entry per slice
    for a slicing); ``moments`` maps ``(metric, i, j)`` to the count, mean and sum of
    squared deviations of run i's minus run j's per-example terms.
    """

    def __init__(self) -> None:
        self.n = 0
        self.sums: dict[tuple[Hashable, ...], np.ndarray] = {}
        self.moments: dict[tuple[Hashable, ...], Moments] = {}

    def add(self, key: tuple[Hashable, ...], value: object) -> None:
        """Add ``value`` (a number or an array) to the sum under ``key``."""
        array = np.asarray(value)
        held = self.sums.get(key)
        self.sums[key] = array.copy() if held is None else held + array

    def drop(self, *parts: Hashable) -> None:
        """Forget every sum and moment whose key starts with ``parts``."""
        size = len(parts)
        for store in (self.sums, self.moments):
            for key in [k for k in store if k[:size] == parts]:
                del store[key]

    def get(self, *key: Hashable) -> np.ndarray:
        """The sum under ``key``."""
        return self.sums[key]

    def total(self, *key: Hashable) -> float:
        """The sum under ``key``, as a Python number."""
        return float(self.sums[key])

    def add_moments(self, key: tuple[Hashable, ...], values: np.ndarray) -> None:
        """Fold the moments of ``values`` (one block of paired differences) into ``key``."""
        if values.size == 0:
            return
        mean = float(values.mean())
        centered = values - mean
        np.square(centered, out=centered)  # not np.dot: BLAS threads cost more than this
        part = (int(values.size), mean, float(centered.sum()))
        held = self.moments.get(key)
        self.moments[key] = part if held is None else _merge_moments(held, part)

    def merge(self, other: Table) -> Table:
        """A new table of both tables' examples."""
        out = Table()
        out.n = self.n + other.n
        for key in self.sums.keys() | other.sums.keys():
            parts = [t.sums[key] for t in (self, other) if key in t.sums]
            out.sums[key] = parts[0] + parts[1] if len(parts) == 2 else parts[0].copy()
        for key in self.moments.keys() | other.moments.keys():
            held = [t.moments[key] for t in (self, other) if key in t.moments]
            out.moments[key] = _merge_moments(*held) if len(held) == 2 else held[0]
        return out


def block_classes(block: np.ndarray) -> np.ndarray:
    """The predicted class of each row of a block (as `predicted_labels`, unvalidated)."""
    if block.ndim == 2:
        classes: np.ndarray = block.argmax(axis=1)
        return classes
    if block.dtype.kind == "f":
        return block > 0.5
    return block


def _terms(
    metric: Metric, labels: np.ndarray, predictions: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Per-example terms of ``metric`` on rows ``start:stop``.

    A block's error would name a row of the block; the whole array is then checked once
    more so that the error names the row of the evaluation set.
    """
    assert metric.per_example is not None
    try:
        return np.asarray(
            metric.per_example(labels[start:stop], predictions[start:stop]), dtype=np.float64
        )
    except InvalidInput:
        metric.per_example(labels, predictions)
        raise


class _Reader:
    """The state of one pass: which runs and metrics are read, and the table they fill."""

    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev
        self.table = Table()
        runs = ev.prepared
        self.labels = ev.labels
        self.truth = ev.int_labels
        #: Runs whose correctness is counted: classified predictions and integer labels.
        self.scored = [r for r, p in enumerate(runs) if p.classified and self.truth is not None]
        #: (run, metric) whose per-example terms are summed.
        self.termed: list[tuple[int, Metric]] = [
            (r, m) for r, p in enumerate(runs) for m in p.term_metrics
        ]
        #: (run, metric name) -> why its terms could not be computed.
        self.failed: dict[tuple[int, str], str] = {}
        self.slicings = list((ev.slices or {}).items()) if self.labels is not None else []
        cells = 1 << len(self.scored)
        self.block_rows = self._block_rows()
        self.fused = len(self.scored) <= 3 and all(
            codes.n_slices * cells <= _FUSED_BINS_PER_ROW * self.block_rows
            for _, codes in self.slicings
        )

    def _block_rows(self) -> int:
        widths = [
            p.predictions.shape[1] if p.predictions.ndim == 2 else 1
            for p in self.ev.prepared
            if p.predictions is not None
        ]
        return max(_MIN_BLOCK_ROWS, _BLOCK_VALUES // max(widths, default=1))

    def block(self, start: int, stop: int, comparers: dict[int, Comparer]) -> None:
        ev, table = self.ev, self.table
        table.n += stop - start
        for comparer in comparers.values():
            comparer.rows(start, stop)
        correct: dict[int, np.ndarray] = {}
        if self.truth is not None:
            y = self.truth[start:stop]
            for r in self.scored:
                predictions = ev.prepared[r].predictions
                assert predictions is not None
                correct[r] = np.equal(block_classes(predictions[start:stop]), y)
        self._counts(correct, start, stop)
        terms: dict[tuple[int, str], np.ndarray] = {}
        for r, metric in list(self.termed):
            predictions = ev.prepared[r].predictions
            assert predictions is not None
            assert self.labels is not None
            try:
                values = _terms(metric, self.labels, predictions, start, stop)
            except InvalidInput as exc:
                # This run's metric is left out (as when it is computed whole); the
                # others go on.
                self.termed.remove((r, metric))
                self.failed[r, metric.name] = str(exc)
                table.drop("terms", r, metric.name)
                continue
            terms[r, metric.name] = values
            table.add(("terms", r, metric.name), values.sum())
            for name, codes in self.slicings:
                sums = np.bincount(codes.codes[start:stop], values, codes.n_slices)
                table.add(("terms", r, metric.name, name), sums)
        for i, j in ev.pairs:
            for r, name_ in terms:
                if r != i or (j, name_) not in terms:
                    continue
                d = terms[i, name_] - terms[j, name_]
                table.add_moments((name_, i, j), d)
                for name, codes in self.slicings:
                    squares = np.bincount(codes.codes[start:stop], d * d, codes.n_slices)
                    table.add(("squares", i, j, name_, name), squares)

    def _counts(self, correct: dict[int, np.ndarray], start: int, stop: int) -> None:
        """Counts of examples, correct predictions and discordant pairs, total and sliced."""
        table, scored = self.table, self.scored
        pairs = [(i, j) for i, j in self.ev.pairs if i in correct and j in correct]
        for r in scored:
            table.add(("correct", r), np.count_nonzero(correct[r]))
        for i, j in pairs:
            only_i = int(np.count_nonzero(correct[i] & ~correct[j]))
            only_j = int(np.count_nonzero(correct[j] & ~correct[i]))
            table.add(("only", i, j), [only_i, only_j])
        for name, codes in self.slicings:
            k, block_codes = codes.n_slices, codes.codes[start:stop]
            if not self.fused:
                table.add(("count", name), np.bincount(block_codes, minlength=k))
                for r in scored:
                    table.add(("correct", r, name), np.bincount(block_codes[correct[r]], None, k))
                for i, j in pairs:
                    first = np.bincount(block_codes[correct[i] & ~correct[j]], None, k)
                    second = np.bincount(block_codes[correct[j] & ~correct[i]], None, k)
                    table.add(("only", i, j, name), np.stack([first, second]))
                continue
            # One bincount over a fused (slice, cell) key: bit b of the cell is whether
            # the b-th scored run is right.
            cells = 1 << len(scored)
            key = block_codes.astype(np.intp) * cells
            for bit, r in enumerate(scored):
                key += correct[r].astype(np.intp) << bit
            grid = np.bincount(key, minlength=k * cells).reshape(k, cells)
            table.add(("count", name), grid.sum(axis=1))
            index = np.arange(cells)
            bits = {r: (index >> b) & 1 == 1 for b, r in enumerate(scored)}
            for r in scored:
                table.add(("correct", r, name), grid[:, bits[r]].sum(axis=1))
            for i, j in pairs:
                only_i = grid[:, bits[i] & ~bits[j]].sum(axis=1)
                only_j = grid[:, bits[j] & ~bits[i]].sum(axis=1)
                table.add(("only", i, j, name), np.stack([only_i, only_j]))


def read_runs(
    ev: Evaluation, comparers: dict[int, Comparer]
) -> tuple[Table, dict[tuple[int, str], str]]:
    """Read every run's per-example data once, in blocks.

    ``comparers`` (pair index -> `Comparer`) are driven over the same blocks. Returns the
    filled table and, per (run, metric name) whose terms could not be computed, why.
    """
    n = next(
        (p.run.n_examples for p in ev.prepared if p.run.n_examples is not None),
        0,
    )
    reader = _Reader(ev)
    step = reader.block_rows
    for start in range(0, n, step):
        reader.block(start, min(start + step, n), comparers)
    return reader.table, reader.failed
