"""Figure of `QualityCheck`: each slice's metric for the candidate and the baseline.

The figure reads the result through one accessor (`quality_comparison`), the only code
here that knows the result's keys.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mlchecks._text import fmt
from mlchecks.report.figures import _plot as plot
from mlchecks.result import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ComparisonRow", "quality_comparison", "quality_figures"]

#: The colour of a comparison row by its verdict (blue otherwise).
_VERDICT_COLORS = {"fail": plot.VERMILLION, "warn": plot.ORANGE, "error": plot.PURPLE}


# ------------------------------------------------------------------------------ data


class ComparisonRow(NamedTuple):
    """One metric, overall or in one slice, of the candidate against the baseline."""

    metric: str
    slice: str
    n: object
    candidate: float
    baseline: float
    difference: float
    ci_low: float
    ci_high: float
    limit: float
    """The allowed difference (nan when the row has none)."""
    verdict: str
    """``"pass"``, ``"warn"``, ``"fail"`` or ``"error"``."""


def quality_comparison(result: Result) -> tuple[list[ComparisonRow], float]:
    """The comparison rows (``details["table"]`` rows of kind ``"regression"``) and the
    confidence level of their intervals (``details["confidence"]``, 0.95 when absent)."""
    rows = [
        ComparisonRow(
            metric=str(r.get("metric")),
            slice=str(r.get("slice")),
            n=r.get("n"),
            candidate=plot.num(r.get("candidate")),
            baseline=plot.num(r.get("baseline")),
            difference=plot.num(r.get("difference")),
            ci_low=plot.num(r.get("ci_low")),
            ci_high=plot.num(r.get("ci_high")),
            limit=plot.num(r.get("difference_limit")),
            verdict=str(r.get("verdict")),
        )
        for r in plot.records(result.details.get("table"))
        if r.get("kind") == "regression" and math.isfinite(plot.num(r.get("difference")))
    ]
    confidence = plot.num(result.details.get("confidence"))
    return rows, confidence if math.isfinite(confidence) else 0.95


# ----------------------------------------------------------------------------- figure


def _quality_plan(metric: str, rows: list[ComparisonRow], confidence: float) -> plot.Plan:
    rows = rows[: plot.MAX_ROWS + 1]
    labels = [r.slice for r in rows]
    candidate = np.array([r.candidate for r in rows])
    baseline = np.array([r.baseline for r in rows])
    difference = np.array([r.difference for r in rows])
    low = np.array([r.ci_low for r in rows])
    high = np.array([r.ci_high for r in rows])
    limits = np.array([r.limit for r in rows])
    colors = [_VERDICT_COLORS.get(r.verdict, plot.BLUE) for r in rows]
    finite_limits = limits[np.isfinite(limits)]
    shared_limit = (
        float(finite_limits[0])
        if finite_limits.size and np.allclose(finite_limits, finite_limits[0])
        else math.nan
    )

    def fill(fig: Figure) -> None:
        left, right = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.3))
        y = np.arange(len(rows))
        left.hlines(y, np.fmin(candidate, baseline), np.fmax(candidate, baseline), color=plot.GREY)
        left.plot(baseline, y, "o", color=plot.BLUE, label="baseline", markersize=5)
        left.plot(candidate, y, "D", color=plot.VERMILLION, label="candidate", markersize=4.5)
        left.set_title(plot.short(metric, 24))
        left.set_xlabel(plot.short(metric, 24))
        fig.legend(loc="outside lower center", ncols=2)
        plot.ylabels(left, [f"{r.slice} (n={r.n})" for r in rows])
        right.axvline(0.0, color=plot.BLACK, linewidth=0.8)
        if math.isfinite(shared_limit):
            right.axvline(shared_limit, color=plot.BLACK, linestyle="--", linewidth=1.2)
        elif finite_limits.size:
            right.plot(limits, y, "|", color=plot.BLACK, markersize=12, markeredgewidth=1.5)
        ok = np.isfinite(difference) & np.isfinite(low) & np.isfinite(high)
        for i in np.flatnonzero(ok):
            right.errorbar(
                difference[i],
                i,
                xerr=[[difference[i] - low[i]], [high[i] - difference[i]]],
                fmt="o",
                color=colors[i],
                markersize=4.5,
                capsize=3,
                linewidth=1.5,
            )
        right.set_title(f"difference with {confidence:.0%} CI")
        right.set_xlabel("candidate \u2212 baseline")
        right.grid(False, axis="y")

    failing = [t for t, r in zip(labels, rows, strict=True) if r.verdict == "fail"]
    word = "drop" if math.isfinite(shared_limit) and shared_limit <= 0 else "change"
    limit_text = (
        f"The dashed line is the allowed {word} ({fmt(shared_limit)}); "
        if math.isfinite(shared_limit)
        else "Black ticks mark each row's allowed change; "
    )
    outcome = (
        f"vermillion rows fail: {', '.join(failing[:5])}{', ...' if len(failing) > 5 else ''}."
        if failing
        else "no row fails."
    )
    caption = (
        f"Metric {metric!r} of the candidate and the baseline, overall and per slice (left), "
        f"and the difference with its {confidence:.0%} confidence interval (right). "
        f"{limit_text}a row fails when its interval shows the candidate beyond that line; "
        f"{outcome}"
    )
    return fill, caption, (plot.WIDTH_IN, plot.rows_height(len(rows), 1.5))


def quality_figures(result: Result) -> list[str]:
    """Per-slice metric of the candidate and the baseline, and the difference with its CI.

    Args:
        result: a `QualityCheck` result compared with a baseline.

    Returns:
        One ``<figure>`` per compared metric (at most 3); none without a baseline, and
        `PLOT_NOTE` when matplotlib is missing.

    >>> from mlchecks import Status
    >>> quality_figures(Result("quality", Status.PASS, details={"table": []}))
    []
    """
    rows, confidence = quality_comparison(result)
    metrics = list(dict.fromkeys(r.metric for r in rows))[: plot.MAX_PANELS]
    return plot.draw(
        [_quality_plan(m, [r for r in rows if r.metric == m], confidence) for m in metrics]
    )
