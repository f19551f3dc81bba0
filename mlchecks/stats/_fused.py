"""Optional compiled kernels: one loop over a block's rows where numpy makes several passes.

Internal. With numba installed (``pip install "mlchecks-infra[fast]"``), `kernels` returns
these functions compiled (``numba.njit(cache=True, nogil=True)``); without it, or with the
environment variable ``MLCHECKS_COMPILED=0``, or for inputs too small for loading the
kernels to pay (`enabled`), it returns None and the callers take their numpy
path. Each kernel does in one loop what the numpy path does in several: the predicted
class of each row (`np.argmax`'s first maximum, its first NaN), the checks of class
probabilities (in [0, 1], rows summing to 1, labels in range) and the label's clipped
probability (`scan_2d`, `scan_1d`, `scan_labels`); then, over the block in the cache,
the per-slice counts, sums and sums of squares and the moments of paired differences
(`tally`).

Results equal the numpy path's bit for bit: counts; terms (the same float64 operations;
logarithms are left to numpy's ``np.log`` on the block); per-slice sums (added in the
order of ``np.bincount``); totals and moments (`pairwise` walks the tree of numpy's
pairwise ``np.add.reduce``). The Brier term of `scan_2d` is the exception: numpy's
``einsum`` adds the squares in its own order, so it agrees to rounding only (callers that
need numpy's bits compute it with numpy). A block that fails a check is reported (a
return code), never raised: the caller then runs its numpy path on it, which raises the
documented error. Nothing here raises on bad values.

The functions are plain Python until compiled, so they also run (slowly) without numba:

>>> import numpy as np
>>> p = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
>>> classes, no_ints, no_floats = np.empty(3, np.int64), np.empty(0, np.int64), np.empty(0)
>>> scan_2d(p, no_ints, no_ints, classes, no_floats, no_floats, 0.0, 1.0), classes.tolist()
(0, [1, 0, 0])
"""

from __future__ import annotations

import os
import threading
import types
from typing import Any

import numpy as np

__all__ = ["ENV", "LOADED_MIN_ROWS", "MIN_ROWS", "enabled", "kernels"]

#: The environment variable that chooses the path: "0" numpy only, "1" the compiled
#: kernels whatever the size (when numba imports), unset or "auto" by size (`enabled`).
ENV = "MLCHECKS_COMPILED"
#: Until the kernels are loaded in a process, inputs with fewer rows take the numpy path:
#: loading them (``import numba`` and numba's first call, about 0.7 s with its cache
#: warm; compiling them, once per installation, 10 to 15 s) costs more than they save
#: below about 3e7 rows (benchmarks/bench_compiled.py).
MIN_ROWS = 1 << 25
#: Once loaded, inputs of at least this many rows take them (a call costs microseconds).
LOADED_MIN_ROWS = 1 << 16


# --------------------------------------------------------------------------- row kernels


def argmax_row(p: Any, i: int) -> int:
    """``np.argmax(p[i])``: the first maximum, or the first NaN when the row holds one.

    Branch-free selects (which column wins is data: a branch on it is mispredicted half
    the time); a second look only for a row holding NaN. Compiled inline: a call that
    passes an array costs more than the row's work.
    """
    best = p[i, 0]
    k = 0
    nan = best != best
    for j in range(1, p.shape[1]):
        v = p[i, j]
        better = v > best
        k = j if better else k
        best = v if better else best
        nan = nan | (v != v)
    if nan:
        for j in range(p.shape[1]):
            if p[i, j] != p[i, j]:
                return j
    return k


def scan_2d(
    p: Any,
    labels: Any,
    truth: Any,
    classes: Any,
    picked: Any,
    squares: Any,
    eps: float,
    limit: float,
) -> int:
    """One pass over (m, C) rows: classes, and the checks and terms of probabilities.

    Args:
        p: (m, C) scores or probabilities (C >= 1).
        labels: (m,) class labels (read when ``picked`` or ``squares`` is wanted).
        truth: (m,) true classes, or empty.
        classes: (m,) integer output, the predicted class of each row, or with ``truth``
            whether it is the true class (1 or 0); empty: skipped.
        picked: (m,) float64 output, ``clip(p[i, labels[i]], eps, 1)`` (empty: skipped).
        squares: (m,) float64 output, the Brier term ``sum_c p_c**2 - 2 p_y + 1``.
        eps: the clip of ``picked``.
        limit: how far a row's float64 sum (left to right) may be from 1.

    Returns:
        0, or 1 when terms were wanted and a value is outside [0, 1] (or NaN), a label is
        outside [0, C) or a row sum is further than ``limit`` from 1 (the terms are then
        meaningless).
    """
    m, c = p.shape
    want_classes = classes.size > 0
    want_picked = picked.size > 0
    want_squares = squares.size > 0
    scoring = truth.size > 0
    if not (want_picked or want_squares):
        if want_classes:
            for i in range(m):
                k = argmax_row(p, i)
                classes[i] = (k == truth[i]) if scoring else k
        return 0
    if c == 2 and want_picked and not want_squares:
        return _scan_two(p, labels, truth, classes, picked, eps, limit)
    bad = 0
    for i in range(m):
        if want_classes:
            k = argmax_row(p, i)
            classes[i] = (k == truth[i]) if scoring else k
        total = 0.0
        square = 0.0
        for j in range(c):
            v = np.float64(p[i, j])
            if not (v >= 0.0 and v <= 1.0):
                bad = 1
            total += v
            square += v * v
        if abs(total - 1.0) > limit:
            bad = 1
        y = labels[i]
        if y < 0 or y >= c:
            bad = 1
            y = 0
        py = np.float64(p[i, y])
        if want_picked:
            picked[i] = min(max(py, eps), 1.0)
        if want_squares:
            squares[i] = square - 2.0 * py + 1.0
    return bad


def _scan_two(
    p: Any, labels: Any, truth: Any, classes: Any, picked: Any, eps: float, limit: float
) -> int:
    """`scan_2d` for two columns and the log loss: selects instead of branches."""
    bad = False
    want_classes = classes.size > 0
    scoring = truth.size > 0
    for i in range(p.shape[0]):
        a = np.float64(p[i, 0])
        b = np.float64(p[i, 1])
        if want_classes:
            # np.argmax: column 1 when it is larger, or NaN while column 0 is not.
            k = (b > a) | ((b != b) & (a == a))
            classes[i] = (k == truth[i]) if scoring else k
        y = labels[i]
        bad |= not (a >= 0.0 and a <= 1.0 and b >= 0.0 and b <= 1.0)
        bad |= abs((a + b) - 1.0) > limit
        bad |= (y < 0) | (y > 1)
        py = b if y == 1 else a
        picked[i] = min(max(py, eps), 1.0)
    return 1 if bad else 0


def scan_1d(
    p: Any,
    labels: Any,
    truth: Any,
    classes: Any,
    picked: Any,
    squares: Any,
    eps: float,
    unit: bool,
) -> int:
    """One pass over (m,) probabilities of class 1: classes ``p > 0.5``, checks and terms.

    As `scan_2d`; ``picked`` is ``p`` for label 1 and ``1 - p`` for label 0, clipped;
    ``squares`` is ``(p - y)**2``. With ``unit`` (or when terms are wanted), a value
    outside [0, 1] (or NaN), or a label outside {0, 1}, returns 1.
    """
    m = p.shape[0]
    want_classes = classes.size > 0
    want_picked = picked.size > 0
    want_squares = squares.size > 0
    check = unit or want_picked or want_squares
    scoring = truth.size > 0
    bad = 0
    for i in range(m):
        v = p[i]
        if want_classes:
            k = 1 if v > 0.5 else 0
            classes[i] = (k == truth[i]) if scoring else k
        if not check:
            continue
        x = np.float64(v)
        if not (x >= 0.0 and x <= 1.0):
            bad = 1
        if want_picked or want_squares:
            y = labels[i]
            if y != 0 and y != 1:
                bad = 1
                y = 0
            if want_picked:
                picked[i] = min(max(x if y == 1 else 1.0 - x, eps), 1.0)
            if want_squares:
                squares[i] = (x - y) * (x - y)
    return bad


def scan_labels(p: Any, truth: Any, classes: Any, high: int) -> int:
    """(m,) integer predictions as classes (with ``truth``: whether each is the true
    class); 1 when one is outside [0, ``high``) (``high`` 0: no bound)."""
    bad = 0
    scoring = truth.size > 0
    for i in range(p.shape[0]):
        v = p[i]
        if scoring:
            classes[i] = v == truth[i]
        elif v < 0 or v >= high:
            bad = 1
        else:
            classes[i] = v
    return bad


# --------------------------------------------------------------------------- tallies


def element(a: Any, sign_a: float, b: Any, sign_b: float, mean: float, mode: int, i: int) -> float:
    """Item ``i`` of what `pairwise` sums: ``a*sa`` (mode 0), ``a*sa - b*sb`` (1), the
    square of that less ``mean`` (2), the square of ``a*sa - mean`` (3)."""
    x: float = a[i] * sign_a
    if mode == 1 or mode == 2:
        x = x - b[i] * sign_b
    if mode >= 2:
        x = x - mean
        x = x * x
    return x


def leaf(
    a: Any, sign_a: float, b: Any, sign_b: float, mean: float, mode: int, low: int, n: int
) -> float:
    """numpy's sum of at most 128 items: in order below 8, else 8 accumulators."""
    if n < 8:
        res = 0.0
        for i in range(low, low + n):
            res += element(a, sign_a, b, sign_b, mean, mode, i)
        return res
    r0 = element(a, sign_a, b, sign_b, mean, mode, low)
    r1 = element(a, sign_a, b, sign_b, mean, mode, low + 1)
    r2 = element(a, sign_a, b, sign_b, mean, mode, low + 2)
    r3 = element(a, sign_a, b, sign_b, mean, mode, low + 3)
    r4 = element(a, sign_a, b, sign_b, mean, mode, low + 4)
    r5 = element(a, sign_a, b, sign_b, mean, mode, low + 5)
    r6 = element(a, sign_a, b, sign_b, mean, mode, low + 6)
    r7 = element(a, sign_a, b, sign_b, mean, mode, low + 7)
    i = 8
    while i < n - (n % 8):
        j = low + i
        r0 += element(a, sign_a, b, sign_b, mean, mode, j)
        r1 += element(a, sign_a, b, sign_b, mean, mode, j + 1)
        r2 += element(a, sign_a, b, sign_b, mean, mode, j + 2)
        r3 += element(a, sign_a, b, sign_b, mean, mode, j + 3)
        r4 += element(a, sign_a, b, sign_b, mean, mode, j + 4)
        r5 += element(a, sign_a, b, sign_b, mean, mode, j + 5)
        r6 += element(a, sign_a, b, sign_b, mean, mode, j + 6)
        r7 += element(a, sign_a, b, sign_b, mean, mode, j + 7)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += element(a, sign_a, b, sign_b, mean, mode, low + i)
        i += 1
    return res


def pairwise(
    a: Any, sign_a: float, b: Any, sign_b: float, mean: float, mode: int, low: int, n: int
) -> float:
    """The sum of ``n`` items (`element`) from ``low`` as numpy's ``np.add.reduce`` sums
    a contiguous float64 array: halves (cut at a multiple of 8) down to 128 items, each
    summed by `leaf`. Bit for bit the numpy path's ``values.sum()``, ``values.mean()``
    and sums of squared deviations. (numpy recurses; this walks the same tree with a
    stack: numba's cache does not hold recursive functions.)
    """
    lows = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    states = np.zeros(64, dtype=np.int64)
    lefts = np.zeros(64)
    depth = 0
    lows[0] = low
    sizes[0] = n
    result = 0.0
    while depth >= 0:
        start, count = lows[depth], sizes[depth]
        if count <= 128:
            result = leaf(a, sign_a, b, sign_b, mean, mode, start, count)
            depth -= 1
            continue
        half = count // 2
        half -= half % 8
        if states[depth] == 0:
            states[depth] = 1
            depth += 1
            lows[depth], sizes[depth], states[depth] = start, half, 0
        elif states[depth] == 1:
            lefts[depth] = result
            states[depth] = 2
            depth += 1
            lows[depth], sizes[depth], states[depth] = start + half, count - half, 0
        else:
            result = lefts[depth] + result
            depth -= 1
    return result


def merge_into(moments: Any, q: int, n: float, mean: float, m2: float) -> None:
    """Chan et al.'s update of ``moments[q] = (count, mean, m2)`` with another part
    (`mlchecks.stats._joint.merge_moments`, the same operations)."""
    n_a = moments[q, 0]
    total = n_a + n
    share = n / total if total > 0 else 0.0
    delta = mean - moments[q, 1]
    moments[q, 0] = total
    moments[q, 1] = moments[q, 1] + delta * share
    moments[q, 2] = moments[q, 2] + m2 + delta * delta * n_a * share


def tally(
    codes: Any,
    correct: Any,
    pairs: Any,
    terms: Any,
    signs: Any,
    term_pairs: Any,
    counts: Any,
    totals: Any,
    moments: Any,
    squares: Any,
    first: bool,
) -> None:
    """Add one block to the counts and sums of `mlchecks.checks._repro_pass.Table`.

    Args:
        codes: (m,) slice codes in [0, k) (checked by the caller), or empty: one slice.
        correct: (R, m) whether each scored run is right (1 or 0); R may be 0 (m is the
            block's size).
        pairs: unused (the discordant counts follow from ``counts``).
        terms: (T, m) per-example terms, each times ``signs[t]``.
        term_pairs: (Q, 2) rows of ``terms`` whose differences' moments are wanted.
        counts: (k, 2**R) int64: per slice the examples of each correctness cell (bit r
            of the cell: whether run r is right); added to.
        totals: (T, k + 1) float64 per term: its sum per slice, then its block sum
            (summed on its own first, as numpy sums a block); added to.
        moments: (Q, 3) float64 count, mean, sum of squared deviations of each pair's
            differences, merged with the block's.
        squares: (Q, k) float64 per-slice sums of the squared differences; added to.
        first: add the block sums and moments (the first slicing of a block only).

    Each sum is its own loop over the block (in the cache): short loops whose bodies the
    compiler keeps in registers, rather than one loop over a runtime number of sums.
    """
    m = correct.shape[1]
    sliced = codes.size > 0
    n_runs = correct.shape[0]
    n_terms, n_diff = terms.shape[0], term_pairs.shape[0]
    all_terms, all_diffs = n_terms, n_diff
    k = counts.shape[0]
    cells = counts.shape[1]
    flat = counts.reshape(k * cells)
    if n_runs == 2:
        for i in range(m):
            s = codes[i] if sliced else 0
            flat[s * cells + correct[0, i] + 2 * correct[1, i]] += 1
    else:
        for i in range(m):
            key = codes[i] * cells if sliced else 0
            for r in range(n_runs):
                key += correct[r, i] << r
            flat[key] += 1
    # Sums per slice start from 0 in each block, as numpy's bincount of a block does.
    if n_terms == 2 and n_diff == 1 and term_pairs[0, 0] == 0 and term_pairs[0, 1] == 1:
        # Two runs' terms of one metric (the usual case): one loop for the three sums.
        sum_a, sum_b, sum_d = np.zeros(k), np.zeros(k), np.zeros(k)
        sign_a, sign_b = signs[0], signs[1]
        row_a, row_b = terms[0], terms[1]
        for i in range(m):
            s = codes[i] if sliced else 0
            a = row_a[i] * sign_a
            b = row_b[i] * sign_b
            sum_a[s] += a
            sum_b[s] += b
            sum_d[s] += (a - b) * (a - b)
        for s in range(k):
            totals[0, s] += sum_a[s]
            totals[1, s] += sum_b[s]
            squares[0, s] += sum_d[s]
        n_terms = n_diff = 0  # done
    for t in range(n_terms):
        sums = np.zeros(k)
        sign = signs[t]
        row = terms[t]
        for i in range(m):
            s = codes[i] if sliced else 0
            sums[s] += row[i] * sign
        for s in range(k):
            totals[t, s] += sums[s]
    for q in range(n_diff):
        sums = np.zeros(k)
        a, b = term_pairs[q, 0], term_pairs[q, 1]
        sign_a, sign_b = signs[a], signs[b]
        row_a, row_b = terms[a], terms[b]
        for i in range(m):
            s = codes[i] if sliced else 0
            d = row_a[i] * sign_a - row_b[i] * sign_b
            sums[s] += d * d
        for s in range(k):
            squares[q, s] += sums[s]
    if not first:
        return
    # The block's sums as numpy sums the block's terms: bit for bit.
    for t in range(all_terms):
        totals[t, k] += pairwise(terms[t], signs[t], terms[t], 0.0, 0.0, 0, 0, m)
    for q in range(all_diffs):
        if m == 0:
            break
        a, b = term_pairs[q, 0], term_pairs[q, 1]
        row_a, row_b, sign_a, sign_b = terms[a], terms[b], signs[a], signs[b]
        mean = pairwise(row_a, sign_a, row_b, sign_b, 0.0, 1, 0, m) / m
        spread = pairwise(row_a, sign_a, row_b, sign_b, mean, 2, 0, m)
        merge_into(moments, q, float(m), mean, spread)


# --------------------------------------------------------------------------- loading

_KERNELS = (
    "scan_2d",
    "scan_1d",
    "scan_labels",
    "tally",
)
_lock = threading.Lock()
_loaded: list[types.SimpleNamespace | None] = []


def _compile() -> types.SimpleNamespace | None:
    try:
        import numba
    except ImportError:
        return None

    def jit(func: Any) -> Any:
        try:
            return numba.njit(cache=True, nogil=True)(func)
        except RuntimeError:  # no writable cache directory: compile in every process
            return numba.njit(nogil=True)(func)

    names = globals()
    names["argmax_row"] = numba.njit(inline="always")(argmax_row)
    names["element"] = numba.njit(inline="always")(element)
    names["merge_into"] = jit(merge_into)
    names["_scan_two"] = jit(_scan_two)
    names["leaf"] = jit(leaf)
    names["pairwise"] = jit(pairwise)
    return types.SimpleNamespace(**{name: jit(names[name]) for name in _KERNELS})


def enabled(rows: int) -> bool:
    """Whether inputs of ``rows`` rows take the compiled kernels: `ENV` "0" never, "1"
    always (with numba), else from `MIN_ROWS` rows, or `LOADED_MIN_ROWS` once loaded."""
    setting = os.environ.get(ENV, "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting not in ("1", "true", "yes", "on"):
        loaded = bool(_loaded) and _loaded[0] is not None
        if rows < (LOADED_MIN_ROWS if loaded else MIN_ROWS):
            return False
    return kernels_loaded() is not None


def kernels_loaded() -> types.SimpleNamespace | None:
    """The compiled kernels (loaded once per process), or None without numba."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(_compile())
    return _loaded[0]


def kernels(rows: int) -> types.SimpleNamespace | None:
    """The compiled kernels for inputs of ``rows`` rows, or None: take the numpy path.

    >>> import os
    >>> os.environ.get(ENV) == "0" and kernels(10**9) is None or True
    True
    """
    return kernels_loaded() if enabled(rows) else None
