"""Figures of `ReproducibilityCheck`: the runs' loss curves and the per-slice differences.

Each figure reads the result through one accessor (`loss_curves`, `slice_differences`),
the only code here that knows the result's keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mlchecks._text import fmt
from mlchecks.report.figures import _plot as plot
from mlchecks.result import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LossCurves", "SliceDifference", "loss_curves", "reproducibility_figures"]


# ------------------------------------------------------------------------------ data


class LossCurves(NamedTuple):
    """What the loss figure draws."""

    steps: np.ndarray
    runs: dict[str, np.ndarray]
    """Run name -> loss at each of ``steps``."""
    pair: tuple[str, str] | None
    """The two runs the check reports a divergence for, when both have curves."""
    first_step_beyond: float
    """The first step where the pair's losses differ by more than ``tolerance`` (or nan)."""
    first_step: float
    """The first step where they differ at all (or nan)."""
    first_hash_difference: float
    """The first step whose parameter fingerprints differ (or nan)."""
    tolerance: float


def _diverging_pair(pairs: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The pair the check reports a divergence for (earliest step beyond tolerance)."""
    pairs = [p for p in pairs if "divergence" in p]
    if not pairs:
        return None

    def order(pair: Mapping[str, Any]) -> tuple[float, float]:
        losses = plot.mapping(plot.mapping(pair.get("divergence")).get("losses"))
        beyond, first = (
            plot.num(losses.get("first_step_beyond")),
            plot.num(losses.get("first_step")),
        )
        return (
            beyond if math.isfinite(beyond) else math.inf,
            first if math.isfinite(first) else math.inf,
        )

    return min(pairs, key=order)


def loss_curves(result: Result) -> LossCurves | None:
    """The losses by step and the divergence markers, from ``details["losses"]`` and
    ``details["pairs"][*]["divergence"]``; None without curves."""
    details = result.details
    losses = plot.mapping(details.get("losses"))
    steps = plot.nums(losses.get("steps"))
    runs = {
        str(name): plot.nums(values)
        for name, values in plot.mapping(losses.get("runs")).items()
        if len(plot.nums(values)) == steps.size
    }
    if steps.size == 0 or not runs:
        return None
    found = _diverging_pair(plot.records(details.get("pairs")))
    divergence = plot.mapping(found.get("divergence")) if found is not None else {}
    info = plot.mapping(divergence.get("losses"))
    pair = None
    if found is not None and found.get("a") in runs and found.get("b") in runs:
        pair = (str(found["a"]), str(found["b"]))
    beyond, first, tolerance = plot.numbers(info, "first_step_beyond", "first_step", "tolerance")
    hashes = plot.num(divergence.get("first_hash_difference"))
    return LossCurves(steps, runs, pair, beyond, first, hashes, tolerance)


class SliceDifference(NamedTuple):
    """One metric's difference between two runs in one slice."""

    slicing: str
    slice: str
    metric: str
    difference: float
    flagged: bool
    pair: tuple[str, str]


def slice_differences(result: Result) -> tuple[list[SliceDifference], float]:
    """The per-slice differences (``details["slice_tests"]``) and the slice tolerance."""
    rows = [
        SliceDifference(
            slicing=str(r.get("slicing")),
            slice=r["slice"],
            metric=str(r.get("metric")),
            difference=plot.num(r.get("difference")),
            flagged=bool(r.get("flagged")),
            pair=(str(r.get("a")), str(r.get("b"))),
        )
        for r in plot.records(result.details.get("slice_tests"))
        if isinstance(r.get("slice"), str) and math.isfinite(plot.num(r.get("difference")))
    ]
    return rows, plot.num(result.details.get("slice_metric_atol"))


# ----------------------------------------------------------------------------- figures


def _loss_caption(curves: LossCurves, names: list[str], shown: list[str], largest: float) -> str:
    beyond, tolerance = curves.first_step_beyond, curves.tolerance
    if len(names) != 2:
        return (
            f"Training loss by step of {len(shown)} run(s). Curves that part show where the "
            "runs stop being reproducible."
        )
    a, b = names
    if math.isfinite(beyond):
        return (
            f"Training loss of runs {a!r} and {b!r} by step (top) and their "
            f"absolute difference (bottom, log scale). The dashed line marks step {fmt(beyond)}, "
            f"the first step where the losses differ by more than the tolerance "
            f"{fmt(tolerance)} (dotted line below). Divergence from the first steps points to "
            "an unseeded source of randomness (data order, initialisation, dropout)."
        )
    if math.isfinite(largest) and largest > 0:
        return (
            f"Training loss of runs {a!r} and {b!r} by step (top) and their "
            f"absolute difference (bottom). The losses differ by at most {fmt(largest)}, "
            f"within the tolerance {fmt(tolerance)}."
        )
    return (
        f"Training loss of runs {a!r} and {b!r} by step: the curves coincide "
        "at every recorded step (difference 0 below)."
    )


def _loss_plan(curves: LossCurves) -> plot.Plan:
    steps, runs = curves.steps, curves.runs
    names = list(curves.pair) if curves.pair is not None else list(runs)
    two = len(names) == 2
    gap = np.abs(runs[names[0]] - runs[names[1]]) if two else np.array([])
    largest = float(np.nanmax(gap)) if gap.size and np.isfinite(gap).any() else math.nan
    shown = [n for n in runs if n in names] + [n for n in runs if n not in names][:4]
    tolerance = curves.tolerance

    def fill(fig: Figure) -> None:
        axes = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2)) if two else [fig.subplots()]
        top = axes[0]
        for k, name in enumerate(shown):
            top.plot(
                steps,
                runs[name],
                color=plot.CYCLE[k % len(plot.CYCLE)],
                linestyle=("-", "--", ":", "-.")[k % 4],
                label=plot.short(name),
            )
        top.set_title("Training loss by step")
        top.set_ylabel("loss")
        markers = [
            (curves.first_step_beyond, plot.BLACK, "--", "first divergence (step {})"),
            (curves.first_step, plot.GREY, ":", "first difference (step {})"),
            (curves.first_hash_difference, plot.PURPLE, "-.", "parameter hashes differ (step {})"),
        ]
        drawn: set[float] = set()
        for step, color, style, label in markers:
            if math.isfinite(step) and step not in drawn:
                drawn.add(step)
                for ax in axes:
                    ax.axvline(
                        step,
                        color=color,
                        linestyle=style,
                        linewidth=1.2,
                        label=label.format(fmt(step)),
                    )
        top.legend(loc="upper right")
        if two:
            low = axes[1]
            positive = np.isfinite(gap) & (gap > 0)
            if positive.any():
                shown_gap = gap[positive]
                bounds = [float(shown_gap.min()), float(shown_gap.max())]
                if math.isfinite(tolerance) and tolerance > 0:
                    low.axhline(tolerance, color=plot.GREY, linestyle=":", linewidth=1.2)
                    bounds.append(tolerance)
                low.set_yscale("log")
                low.plot(steps, np.where(positive, gap, np.nan), color=plot.BLACK, linewidth=1.0)
                low.set_ylim(min(bounds) / 3, max(bounds) * 3)
            else:
                # No positive difference to put on a log scale: a linear axis from 0 (an
                # absolute difference is never negative), up to the tolerance when there is one.
                low.plot(steps, gap, color=plot.BLACK, linewidth=1.0)
                if math.isfinite(tolerance) and tolerance > 0:
                    low.axhline(tolerance, color=plot.GREY, linestyle=":", linewidth=1.2)
                    low.set_ylim(0.0, tolerance * 1.5)
                else:
                    low.set_ylim(0.0, 1.0)
            low.set_ylabel("|loss difference|")
            low.set_title(f"|{plot.short(names[0], 20)} \u2212 {plot.short(names[1], 20)}|")
        axes[-1].set_xlabel("training step")

    height = 4.0 if two else 2.8
    return fill, _loss_caption(curves, names, shown, largest), (plot.WIDTH_IN, height)


def _slice_difference_plans(rows: list[SliceDifference], tolerance: float) -> list[plot.Plan]:
    if not rows:
        return []
    flagged_pairs = [r.pair for r in rows if r.flagged]
    pair = flagged_pairs[0] if flagged_pairs else rows[0].pair
    rows = [r for r in rows if r.pair == pair]
    slicings = list(dict.fromkeys(r.slicing for r in rows))[: plot.MAX_PANELS]
    plans = []
    for slicing in slicings:
        chosen = [r for r in rows if r.slicing == slicing]
        metrics = list(dict.fromkeys(r.metric for r in chosen))[: plot.MAX_PANELS]
        plans.append(_slice_difference_plan(slicing, chosen, metrics, pair, tolerance))
    return plans


def _slice_difference_plan(
    slicing: str,
    rows: list[SliceDifference],
    metrics: list[str],
    pair: tuple[str, str],
    tolerance: float,
) -> plot.Plan:
    slices = list(dict.fromkeys(r.slice for r in rows))
    if len(slices) > plot.MAX_ROWS:
        size = {s: max(abs(r.difference) for r in rows if r.slice == s) for s in slices}
        kept = set(sorted(slices, key=lambda s: -size[s])[: plot.MAX_ROWS])
        slices = [s for s in slices if s in kept]
    table = {(r.metric, r.slice): r for r in rows}
    flagged = list(dict.fromkeys(r.slice for r in rows if r.flagged and r.slice in slices))

    def fill(fig: Figure) -> None:
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            values, colors = [], []
            for s in slices:
                row = table.get((metric, s))
                values.append(row.difference if row else math.nan)
                colors.append(plot.VERMILLION if row and row.flagged else plot.BLUE)
            if math.isfinite(tolerance) and tolerance > 0:
                ax.axvspan(-tolerance, tolerance, color=plot.GREY, alpha=0.18, linewidth=0)
            ax.axvline(0.0, color=plot.BLACK, linewidth=0.8)
            ax.barh(range(len(slices)), values, color=colors, height=0.6)
            ax.set_title(plot.short(metric, 24))
            ax.set_xlabel("difference")
            plot.ylabels(ax, slices)
            lim = max(np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0, tolerance)
            if math.isfinite(lim) and lim > 0:
                ax.set_xlim(-1.15 * lim, 1.15 * lim)
        fig.suptitle(f"Per-slice differences by {plot.short(slicing)}", fontweight="bold")

    a, b = pair
    band = (
        f"The grey band is \u00b1 the slice tolerance {fmt(tolerance)}; "
        if math.isfinite(tolerance) and tolerance > 0
        else "Exact mode: any difference counts; "
    )
    verdict = (
        "vermillion bars mark the slices flagged as differing (Holm-adjusted): "
        f"{', '.join(flagged[:5])}{', ...' if len(flagged) > 5 else ''}."
        if flagged
        else "no slice is flagged as differing."
    )
    caption = (
        f"Per-slice difference of each metric between runs {a!r} and {b!r} ({a} \u2212 {b}) "
        f"over the {slicing!r} slices. {band}{verdict} A bar outside the band that is not "
        "flagged is within the noise of its slice's size."
    )
    return fill, caption, (plot.WIDTH_IN, plot.rows_height(len(slices), 1.4))


def reproducibility_figures(result: Result) -> list[str]:
    """The loss curves (first diverging step marked) and the per-slice metric differences.

    Args:
        result: a `ReproducibilityCheck` result.

    Returns:
        ``<figure>`` fragments; none when the result has no losses or slices, and
        `PLOT_NOTE` when matplotlib is missing.

    >>> from mlchecks import Status
    >>> reproducibility_figures(Result("reproducibility", Status.PASS))
    []
    """
    curves = loss_curves(result)
    plans = [_loss_plan(curves)] if curves is not None else []
    return plot.draw(plans + _slice_difference_plans(*slice_differences(result)))
