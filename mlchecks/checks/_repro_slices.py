"""Per-slice comparison of training runs, for `ReproducibilityCheck`.

For each slicing, metric and pair of runs, the difference of the metric in every slice is
tested against ``slice_metric_atol`` (a z-test on the paired standard error, Holm-adjusted
over every slice test of the check). Findings are ``slices.<metric>`` (how many slices of a
slicing differ) and ``slice.<metric>`` (one flagged slice); the slicing and slice names are
in their messages and in ``details["slice_tests"]``, never in the names.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._text import fmt, signed
from mlchecks.result import Finding, Status
from mlchecks.stats.inference import (
    mcnemar_exact_counts,
    normal_pvalue,
    paired_accuracy_difference_counts,
)
from mlchecks.stats.metrics import CORRECTNESS_METRICS, METRICS, Metric
from mlchecks.stats.multiple import holm
from mlchecks.stats.sliced import SliceCodes, sliced_metric, sliced_sum

if TYPE_CHECKING:
    from mlchecks.checks._repro_eval import Evaluation

__all__ = ["compare_slices", "is_builtin", "is_correctness", "metric_part", "pvalue_text"]

_PART = re.compile(r"[a-z][a-z0-9_]*")


def is_correctness(metric: Metric) -> bool:
    """True for the built-in accuracy and error rate (means of per-example correctness)."""
    return metric.name in CORRECTNESS_METRICS and METRICS.get(metric.name) is metric


def is_builtin(name: str) -> bool:
    """True for a built-in metric's name, which may be a part of a metric key."""
    return name in METRICS and _PART.fullmatch(name) is not None


def metric_part(name: str) -> str:
    """The key part for metric ``name``: the name if built in, else ``"custom"``.

    >>> metric_part("log_loss"), metric_part("val_loss")
    ('log_loss', 'custom')
    """
    return name if is_builtin(name) else "custom"


def pvalue_text(value: float) -> str:
    """``"< 0.0001"`` or ``"= 0.033"``: a p-value after ``p``."""
    return "< 0.0001" if value < 1e-4 else f"= {value:.2g}"


def _sliced_standard_errors(
    counts: np.ndarray, total: np.ndarray, squares: np.ndarray
) -> np.ndarray:
    """Standard error of the mean of paired differences in each slice, from their per-slice
    sums and sums of squares (inf for slices of < 2 examples)."""
    k = counts.size
    many = counts > 1
    mean = np.divide(total, counts, out=np.zeros(k), where=counts > 0)
    variance = np.divide(squares - counts * mean**2, counts - 1, out=np.zeros(k), where=many)
    out = np.full(k, np.inf)
    np.sqrt(np.maximum(variance, 0.0) / np.maximum(counts, 1), out=out, where=many)
    return out


def _slice_metrics(ev: Evaluation) -> list[Metric]:
    """The metrics computable per slice in every run (all runs have predictions)."""
    if any(p.predictions is None for p in ev.prepared):
        return []
    return [
        m
        for m in ev.metrics
        if m.name not in ev.skipped
        and (m.per_example is None or all(p.tabled(m.name) for p in ev.prepared))
    ]


def compare_slices(ev: Evaluation) -> None:
    """Every metric in every slice of every run, tested pair by pair."""
    if ev.slices is None or ev.labels is None:
        return
    metrics = _slice_metrics(ev)
    if not metrics:
        return
    tests: list[dict[str, Any]] = []
    tables: dict[str, Any] = {}
    for slicing, codes in ev.slices.items():
        counts = _counts(ev, slicing, codes)
        table: dict[str, Any] = {"names": list(codes.names), "counts": counts.tolist()}
        values: dict[str, dict[str, list[float]]] = {}
        for metric in metrics:
            per_run = [
                _slice_values(ev, r, metric, slicing, codes, counts)
                for r in range(len(ev.prepared))
            ]
            values[metric.name] = {
                p.name: v.tolist() for p, v in zip(ev.prepared, per_run, strict=True)
            }
            for i, j in ev.pairs:
                tests.extend(_slice_tests(ev, slicing, codes, counts, metric, i, j, per_run))
        table["metrics"] = values
        tables[slicing] = table
    _judge_slices(ev, tests)
    ev.out.detail("slices", tables)
    ev.out.detail("slice_metric_atol", 0.0 if ev.exact else ev.check.slice_metric_atol)


def _counts(ev: Evaluation, slicing: str, codes: SliceCodes) -> np.ndarray:
    """The number of examples in each slice (from the table when it counted them)."""
    key = ("count", slicing)
    return ev.table.get(*key) if key in ev.table.sums else sliced_sum(codes.codes, codes.n_slices)


def _slice_values(
    ev: Evaluation, r: int, metric: Metric, slicing: str, codes: SliceCodes, counts: np.ndarray
) -> np.ndarray:
    p = ev.prepared[r]
    if p.tabled(metric.name):
        if metric in p.counted:
            right = ev.table.get("correct", r, slicing)
            sums = right if metric.name == "accuracy" else counts - right
        else:
            sums = ev.table.get("terms", r, metric.name, slicing)
        out = np.full(codes.n_slices, np.nan)
        np.divide(sums, counts, out=out, where=counts > 0)
        return out
    return sliced_metric(metric, codes.codes, codes.n_slices, ev.labels, p.predictions)


def _slice_tests(
    ev: Evaluation,
    slicing: str,
    codes: SliceCodes,
    counts: np.ndarray,
    metric: Metric,
    i: int,
    j: int,
    per_run: list[np.ndarray],
) -> list[dict[str, Any]]:
    """One row per non-empty slice: both values, the difference and its p-values.

    ``pvalue`` tests H0 ``|difference| <= slice_metric_atol`` against "beyond" (a z-test
    on each side at alpha / 2, via `normal_pvalue`); None where no paired standard
    error exists (metrics that are not per-example means, slices of one example).
    """
    a, b = ev.prepared[i], ev.prepared[j]
    atol = ev.check.slice_metric_atol
    standard_errors = None
    mcnemar: list[float] | None = None
    if not ev.exact:
        discordant = _slice_discordant(ev, metric, i, j, slicing)
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
        elif metric in a.term_metrics and metric in b.term_metrics:
            table = ev.table
            total = table.get("terms", i, metric.name, slicing) - table.get(
                "terms", j, metric.name, slicing
            )
            squares = table.get("squares", i, j, metric.name, slicing)
            standard_errors = _sliced_standard_errors(counts, total, squares)
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
        if ev.exact:
            row["flagged"] = not (va == vb or (math.isnan(va) and math.isnan(vb)))
        elif standard_errors is not None and math.isfinite(standard_errors[s] + difference):
            se = float(standard_errors[s])
            beyond = normal_pvalue(abs(difference), se, atol, alternative="greater")
            row["pvalue"] = min(1.0, 2.0 * beyond)
        if mcnemar is not None:
            row["mcnemar_pvalue"] = mcnemar[s]
        rows.append(row)
    return rows


def _slice_discordant(
    ev: Evaluation, metric: Metric, i: int, j: int, slicing: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per slice, the examples only run i got right and those only run j got right."""
    a, b = ev.prepared[i], ev.prepared[j]
    if metric not in a.counted or metric not in b.counted:
        return None
    only_a, only_b = ev.table.get("only", i, j, slicing)
    return (only_b, only_a) if metric.name == "error_rate" else (only_a, only_b)


def _judge_slices(ev: Evaluation, tests: list[dict[str, Any]]) -> None:
    atol = ev.check.slice_metric_atol
    alpha = ev.check.alpha
    tested = [r for r in tests if r["pvalue"] is not None]
    if tested:
        adjusted = holm([r["pvalue"] for r in tested])
        for row, value in zip(tested, adjusted, strict=True):
            row["adjusted_pvalue"] = float(value)
            row["flagged"] = bool(value <= alpha and abs(row["difference"]) > atol)
    for row in tests:
        row.setdefault("flagged", False)
        row.setdefault("adjusted_pvalue", None)
    ev.out.detail("slice_tests", tests)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in tests:
        groups.setdefault((row["slicing"], row["metric"]), []).append(row)
    for (slicing, metric), rows in groups.items():
        judged = ev.exact or any(r["pvalue"] is not None for r in rows)
        if not judged:
            continue
        name = f"slices.{metric_part(metric)}"
        flagged = [r for r in rows if r["flagged"]]
        slices = {r["slice"] for r in rows}
        bad_slices = sorted({r["slice"] for r in flagged}, key=list(slices).index)
        rule = (
            "any difference (exact mode)"
            if ev.exact
            else (f"{fmt(atol)} (Holm-adjusted across {len(tested)} slice tests, alpha {alpha:g})")
        )
        if not flagged:
            message = (
                f"no {slicing} slice differs in {metric} beyond {rule}; "
                f"{len(slices)} slices compared"
            )
            ev.out.note(name, Status.PASS, message, observed=0.0, limit="== 0")
            continue
        message = (
            f"{len(bad_slices)} of {len(slices)} {slicing} slices differ in {metric} beyond "
            f"{rule}: {', '.join(bad_slices)}"
        )
        ev.out.note(name, Status.FAIL, message, observed=float(len(bad_slices)), limit="== 0")
        seen: set[str] = set()
        for row in sorted(flagged, key=lambda r: -abs(r["difference"])):
            if row["slice"] in seen:
                continue
            seen.add(row["slice"])
            ev.out.add(_slice_finding(ev, row))


def _slice_finding(ev: Evaluation, row: dict[str, Any]) -> Finding:
    where = f"{row['metric']} in {row['slicing']} slice {row['slice']!r}"
    values = (
        f"{fmt(row['value_a'])} in run {row['a']!r} vs {fmt(row['value_b'])} in run "
        f"{row['b']!r} (difference {signed(row['difference'])}, n = {row['n']:,})"
    )
    atol = ev.check.slice_metric_atol
    if ev.exact:
        reason = "exact equality required"
        limit = "== 0"
    else:
        reason = (
            f"beyond the slice tolerance {fmt(atol)} "
            f"(Holm-adjusted p {pvalue_text(row['adjusted_pvalue'])})"
        )
        limit = f"|difference| <= {fmt(atol)}"
    return Finding(
        f"slice.{metric_part(row['metric'])}",
        Status.FAIL,
        row["difference"],
        limit,
        f"{where} is {values}: {reason}",
    )
