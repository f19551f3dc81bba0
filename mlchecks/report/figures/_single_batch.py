"""Figure of `SingleBatchCheck`: the update ratio of every trainable tensor after one step.

The figure reads the result through one accessor (`tensor_updates`), the only code here
that knows the result's keys.
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

__all__ = ["TensorUpdate", "single_batch_figures", "tensor_updates"]


# ------------------------------------------------------------------------------ data


class TensorUpdate(NamedTuple):
    """How one training step moved one tensor."""

    name: str
    ratio: float
    """``||delta|| / ||w||`` (nan when it could not be measured)."""
    finite: object
    """False when the tensor is not finite after the step."""
    changed: object
    """False when the step did not change the tensor."""
    max_abs_delta: float


def tensor_updates(result: Result) -> tuple[list[TensorUpdate], tuple[float, float]]:
    """The trainable tensors (``details["tensors"]``; every tensor with a ratio when none is
    marked trainable), at most 30, and the allowed band
    (``details["update_ratio_band"]``, nan when absent)."""
    tensors = [
        r for r in plot.records(result.details.get("tensors")) if isinstance(r.get("name"), str)
    ]
    rows = [r for r in tensors if r.get("role") == "trainable"]
    if not rows:
        rows = [r for r in tensors if math.isfinite(plot.num(r.get("update_ratio")))]
    updates = [
        TensorUpdate(
            name=str(r["name"]),
            ratio=plot.num(r.get("update_ratio")),
            finite=r.get("finite"),
            changed=r.get("changed"),
            max_abs_delta=plot.num(r.get("max_abs_delta")),
        )
        for r in rows[: plot.MAX_ROWS]
    ]
    band = plot.nums(result.details.get("update_ratio_band"))
    low, high = (float(band[0]), float(band[1])) if band.size == 2 else (math.nan, math.nan)
    return updates, (low, high)


# ----------------------------------------------------------------------------- figure


def _note(update: TensorUpdate, low: float, high: float) -> tuple[str, str]:
    """(text, colour) of a tensor: text for one without a ratio, empty for a bar."""
    ratio = update.ratio
    if update.finite is False:
        return "non-finite after the step", plot.VERMILLION
    if update.changed is False:
        return "unchanged: no update", plot.VERMILLION
    if not (math.isfinite(ratio) and ratio > 0):
        return f"no ratio (zero norm before); max |\u0394| {fmt(update.max_abs_delta)}", plot.GREY
    inside = not math.isfinite(low) or low <= ratio <= high
    return "", plot.BLUE if inside else plot.ORANGE


def single_batch_figures(result: Result) -> list[str]:
    """The update ratio ``||delta|| / ||w||`` of every trainable tensor after one step.

    Args:
        result: a `SingleBatchCheck` result.

    Returns:
        One ``<figure>``; none without a per-tensor table, and `PLOT_NOTE` when matplotlib
        is missing.

    >>> from mlchecks import Status
    >>> single_batch_figures(Result("single_batch", Status.PASS))
    []
    """
    updates, (low, high) = tensor_updates(result)
    if not updates:
        return []
    names = [u.name for u in updates]
    ratios = np.array([u.ratio for u in updates])
    notes = [_note(u, low, high) for u in updates]
    drawn = ratios[np.isfinite(ratios) & (ratios > 0)]

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        if math.isfinite(low) and math.isfinite(high):
            ax.axvspan(low, high, color=plot.GREY, alpha=0.15, linewidth=0, label="allowed band")
        left = min([*drawn.tolist(), low if math.isfinite(low) else 1e-7, 1e-7])
        right = max([*drawn.tolist(), high if math.isfinite(high) else 1.0, 1.0])
        base = left / 3
        for i, (ratio, (text, color)) in enumerate(zip(ratios, notes, strict=True)):
            if text:
                ax.text(base * 1.3, i, text, va="center", ha="left", color=color, fontsize=8)
            else:
                ax.barh(i, ratio - base, left=base, color=color, height=0.6)
        ax.set_xlim(base, right * 3)
        plot.log_x(ax)
        plot.ylabels(ax, names)
        ax.set_xlabel("update ratio ||\u0394w|| / ||w|| (log scale)")
        ax.set_title("Update ratio of each trainable tensor after one step")

    bad = [n for n, (_, color) in zip(names, notes, strict=True) if color == plot.VERMILLION]
    outside = [n for n, (_, color) in zip(names, notes, strict=True) if color == plot.ORANGE]
    verdict = []
    if bad:
        verdict.append(f"Not updated or non-finite (vermillion): {', '.join(bad[:5])}")
    if outside:
        verdict.append(f"{'o' if bad else 'O'}utside the band (orange): {', '.join(outside[:5])}")
    caption = (
        "How much one training step on the batch moved each trainable tensor, relative to its "
        f"size. The grey band is the allowed range [{fmt(low)}, {fmt(high)}]: far below it the "
        "update is lost, far above it the step overwhelms the weights; a tensor that did not "
        "change at all is a dead parameter. "
        + ("; ".join(verdict) + "." if verdict else "Every measurable ratio is inside the band.")
    )
    return plot.draw([(fill, caption, (plot.WIDTH_IN, plot.rows_height(len(updates), 1.3)))])
