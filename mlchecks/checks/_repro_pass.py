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

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks.checks._repro_fused import MAX_RUNS, FusedBlocks
from mlchecks.exceptions import InvalidInput
from mlchecks.stats import _fused
from mlchecks.stats._joint import merge_moments
from mlchecks.stats._rows import block_classes
from mlchecks.stats.compare import Comparer

if TYPE_CHECKING:
    from mlchecks.stats.metrics import Metric

__all__ = ["Chunk", "Plan", "Summary", "Table"]

#: Values (rows x classes) of one run per block: every block's arrays stay in L2.
_BLOCK_VALUES = 1 << 18
#: At least this many rows per block, so that many classes do not make blocks tiny.
_MIN_BLOCK_ROWS = 4096
#: Fused (slice, correctness) counts need a bin per slice and cell: at most this many bins
#: per block row, beyond which each count is its own `np.bincount`.
_FUSED_BINS_PER_ROW = 1.0

Moments = tuple[int, float, float]


def _merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two disjoint parts (`merge_moments`), as Python numbers."""
    n, mean, m2 = merge_moments(a, b)
    return int(n), float(mean), float(m2)


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

    def forget(self, run: int, metric: str) -> None:
        """Forget the sums of ``metric``'s terms of ``run`` and of its pairs' differences."""
        for key in list(self.sums):
            terms = key[0] == "terms" and key[1:3] == (run, metric)
            if terms or (key[0] == "squares" and key[3] == metric and run in key[1:3]):
                del self.sums[key]
        for key in list(self.moments):
            if key[0] == metric and run in key[1:3]:
                del self.moments[key]

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
        self.add_part(key, (int(values.size), mean, float(centered.sum())))

    def add_part(self, key: tuple[Hashable, ...], part: Moments) -> None:
        """Fold the moments (count, mean, sum of squared deviations) of a part into ``key``."""
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


@attrs.frozen
class Plan:
    """What a pass reads and sums, decided before it starts (it pickles, for workers).

    Runs and pairs are numbered as in the check. ``scored``: runs whose correct
    predictions are counted; ``termed``: (run, metric) whose per-example terms are
    summed; ``slicings``: (name, number of slices); ``compared``: (pair index, run i, run
    j, labelled) of the pairs whose predictions are compared example by example, with
    ``compare`` the `Comparer` settings (shape, dtypes by run, tolerances).
    """

    n: int
    pairs: tuple[tuple[int, int], ...]
    scored: tuple[int, ...]
    termed: tuple[tuple[int, Metric], ...]
    slicings: tuple[tuple[str, int], ...]
    compared: tuple[tuple[int, int, int, bool], ...]
    compare: dict[str, Any]
    block_rows: int

    @property
    def fused(self) -> bool:
        """Whether the counts of a block come from one bincount over (slice, cell) keys."""
        cells = 1 << len(self.scored)
        return len(self.scored) <= 3 and all(
            k * cells <= _FUSED_BINS_PER_ROW * self.block_rows for _, k in self.slicings
        )

    @staticmethod
    def rows_for(widths: list[int]) -> int:
        """Rows per block for predictions of these widths (classes)."""
        return max(_MIN_BLOCK_ROWS, _BLOCK_VALUES // max(widths, default=1))


@attrs.define
class Chunk:
    """Consecutive rows of every array a pass reads, from row ``start`` on.

    ``predictions`` by run (None for a run without), ``labels`` as the metrics take them,
    ``truth`` the integer class of each row (None without labels or classes), and the
    slice codes of each slicing of the plan.
    """

    start: int
    predictions: tuple[np.ndarray | None, ...]
    labels: np.ndarray | None
    truth: np.ndarray | None
    slices: tuple[np.ndarray, ...]

    @property
    def size(self) -> int:
        """The number of rows."""
        return len(next(a for a in (self.labels, *self.predictions) if a is not None))

    def rows(self, low: int, high: int) -> Chunk:
        """Rows ``low:high`` of this chunk (positions within it)."""
        return Chunk(
            self.start + low,
            tuple(None if p is None else p[low:high] for p in self.predictions),
            None if self.labels is None else self.labels[low:high],
            None if self.truth is None else self.truth[low:high],
            tuple(codes[low:high] for codes in self.slices),
        )


class Summary:
    """The table and the pairs' comparisons of the rows read so far.

    `read` chunks in row order; `partial` gives what a worker sends back, and `merge`
    adds a partial of later rows. ``whole`` (in memory only) recomputes a run's metric on
    every row, so that an error names the row of the evaluation set rather than of a block.
    """

    def __init__(self, plan: Plan, whole: Callable[[int, Metric], None] | None = None) -> None:
        self.plan = plan
        self.whole = whole
        self.table = Table()
        self.termed = list(plan.termed)
        #: (run, metric name) -> why its terms could not be computed.
        self.failed: dict[tuple[int, str], str] = {}
        settings = plan.compare
        #: The compiled path (`FusedBlocks`), when the kernels are installed and pay.
        self.fused: FusedBlocks | None = None
        kernels = _fused.kernels(plan.n) if len(plan.scored) <= MAX_RUNS else None
        if kernels is not None:
            self.fused = FusedBlocks(plan, kernels)
        self.comparers = {
            k: Comparer(
                plan.n,
                settings["shape"],
                settings["dtypes"][i],
                settings["dtypes"][j],
                labelled=labelled,
                atol=settings["atol"],
                rtol=settings["rtol"],
                top_k=settings["top_k"],
            )
            for k, i, j, labelled in plan.compared
        }

    def read(self, chunk: Chunk) -> None:
        """Add the rows of ``chunk`` (which follow every row read so far)."""
        size, step = chunk.size, self.plan.block_rows
        for low in range(0, size, step):
            self._block(chunk.rows(low, min(low + step, size)) if size > step else chunk)
        if self.fused is not None:
            self.fused.flush(self.table)

    def partial(self) -> dict[str, Any]:
        """What was read, as small plain values (the table, failures, comparison totals)."""
        return {
            "table": self.table,
            "failed": dict(self.failed),
            "comparisons": {k: c.totals() for k, c in self.comparers.items()},
        }

    def merge(self, partial: dict[str, Any]) -> None:
        """Add the `partial` of a summary of later rows."""
        self.table = self.table.merge(partial["table"])
        for key, reason in partial["failed"].items():
            self.failed.setdefault(key, reason)
        for run, metric in self.failed:
            self.table.forget(run, metric)
        self.termed = [(r, m) for r, m in self.termed if (r, m.name) not in self.failed]
        for k, totals in partial["comparisons"].items():
            self.comparers[k].merge(totals)

    def _block(self, chunk: Chunk) -> None:
        plan, table = self.plan, self.table
        if self.whole is None:  # codes not validated up front (Dask): check each block's
            for (name, k), codes in zip(plan.slicings, chunk.slices, strict=True):
                if codes.size and (codes.min() < 0 or codes.max() >= k):
                    raise InvalidInput(
                        f"slicing {name!r} has slice ids outside 0..{k - 1} in the rows from "
                        f"example {chunk.start:,}"
                    )
        table.n += chunk.size
        for k, i, j, labelled in plan.compared:
            a, b = chunk.predictions[i], chunk.predictions[j]
            assert a is not None
            assert b is not None
            self.comparers[k].block(a, b, chunk.truth if labelled else None, chunk.start)
        if self.fused is not None and self.fused.block(self, chunk):
            return
        correct: dict[int, np.ndarray] = {}
        if chunk.truth is not None:
            for r in plan.scored:
                predictions = chunk.predictions[r]
                assert predictions is not None
                classes = block_classes(predictions, finite=self.whole is not None)
                correct[r] = np.equal(classes, chunk.truth)
        self._counts(correct, chunk)
        terms: dict[tuple[int, str], np.ndarray] = {}
        for r, metric in list(self.termed):
            values = self._terms(r, metric, chunk)
            if values is None:
                continue
            terms[r, metric.name] = values
            table.add(("terms", r, metric.name), values.sum())
            for (name, k), codes in zip(plan.slicings, chunk.slices, strict=True):
                table.add(("terms", r, metric.name, name), np.bincount(codes, values, k))
        for i, j in plan.pairs:
            for r, metric_name in terms:
                if r != i or (j, metric_name) not in terms:
                    continue
                d = terms[i, metric_name] - terms[j, metric_name]
                table.add_moments((metric_name, i, j), d)
                for (name, k), codes in zip(plan.slicings, chunk.slices, strict=True):
                    table.add(("squares", i, j, metric_name, name), np.bincount(codes, d * d, k))

    def _terms(self, r: int, metric: Metric, chunk: Chunk) -> np.ndarray | None:
        """Run ``r``'s per-example terms of ``metric`` on a block, or None once they fail.

        A run whose metric fails is left out of it (as when computed whole); the others go
        on. A block's error names a row of the block: in memory, the whole array is checked
        again so that it names the row of the evaluation set; otherwise the message says
        where the block starts.
        """
        assert metric.per_example is not None
        predictions = chunk.predictions[r]
        assert predictions is not None
        try:
            return np.asarray(metric.per_example(chunk.labels, predictions), dtype=np.float64)
        except InvalidInput as exc:
            reason = str(exc)
            if self.whole is not None:
                try:
                    self.whole(r, metric)
                except InvalidInput as whole_exc:
                    reason = str(whole_exc)
            elif chunk.start:
                reason = f"{reason} (rows counted from example {chunk.start:,})"
        self.termed.remove((r, metric))
        self.failed[r, metric.name] = reason
        self.table.forget(r, metric.name)
        return None

    def _counts(self, correct: dict[int, np.ndarray], chunk: Chunk) -> None:
        """Counts of examples, correct predictions and discordant pairs, total and sliced."""
        plan, table = self.plan, self.table
        scored = [r for r in plan.scored if r in correct]
        pairs = [(i, j) for i, j in plan.pairs if i in correct and j in correct]
        for r in scored:
            table.add(("correct", r), np.count_nonzero(correct[r]))
        for i, j in pairs:
            only_i = int(np.count_nonzero(correct[i] & ~correct[j]))
            only_j = int(np.count_nonzero(correct[j] & ~correct[i]))
            table.add(("only", i, j), [only_i, only_j])
        for (name, k), codes in zip(plan.slicings, chunk.slices, strict=True):
            if not plan.fused:
                table.add(("count", name), np.bincount(codes, minlength=k))
                for r in scored:
                    table.add(("correct", r, name), np.bincount(codes[correct[r]], None, k))
                for i, j in pairs:
                    first = np.bincount(codes[correct[i] & ~correct[j]], None, k)
                    second = np.bincount(codes[correct[j] & ~correct[i]], None, k)
                    table.add(("only", i, j, name), np.stack([first, second]))
                continue
            # One bincount over a fused (slice, cell) key: bit b of the cell is whether
            # the b-th scored run is right.
            cells = 1 << len(scored)
            key = codes.astype(np.intp) * cells
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
