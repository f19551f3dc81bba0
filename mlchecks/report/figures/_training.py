"""Figures of the training checks: the loss curve of `LossDecreasesCheck`, and the reference
and restored runs' losses of `CheckpointRestoreCheck` with the crash and restore marked.

Each figure reads the result through one accessor (`loss_curve`, `restore_curves`), the
only code here that knows the result's keys.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mlchecks._text import fmt
from mlchecks.report.figures import _plot as plot
from mlchecks.result import Result

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LossCurve",
    "RestoreCurves",
    "checkpoint_figures",
    "loss_curve",
    "loss_figures",
    "restore_curves",
]

_MAX_POINTS = 1000  # steps drawn per curve; longer runs are thinned evenly


def _count(value: float) -> str:
    """A step number or a count of steps as a whole number: ``"50000"``, never ``"5e+04"``."""
    return str(int(value)) if math.isfinite(value) else str(value)


def _thin(values: np.ndarray, keep: float = math.nan) -> np.ndarray:
    """The step indices to draw: every step up to `_MAX_POINTS`, else an even subset with
    the first, the last and ``keep``."""
    n = values.size
    if n <= _MAX_POINTS:
        return np.arange(n)
    chosen = set(np.linspace(0, n - 1, _MAX_POINTS).round().astype(int).tolist())
    if math.isfinite(keep) and 0 <= keep < n:
        chosen.add(int(keep))
    return np.array(sorted(chosen))


def _nonfinite_marks(ax: Axes, steps: np.ndarray, losses: np.ndarray) -> None:
    bad = ~np.isfinite(losses)
    if bad.any():
        ax.plot(
            steps[bad],
            np.full(int(bad.sum()), np.nanmax(losses) if np.isfinite(losses).any() else 0.0),
            "x",
            color=plot.VERMILLION,
            markersize=7,
            linestyle="none",
            label="non-finite loss",
        )


def _mark(ax: Axes, step: float, text: str) -> None:
    """A label at the top of the vertical line drawn before ``step``."""
    ax.annotate(
        f" {text}",
        (step - 0.5, 1.0),
        xycoords=("data", "axes fraction"),
        va="top",
        fontsize=8,
    )


# ------------------------------------------------------------------------------ data


class LossCurve(NamedTuple):
    """What the loss-curve figure draws."""

    losses: np.ndarray
    """The loss at each step (step k at index k)."""
    block_means: np.ndarray
    """The mean loss of each block of consecutive steps (empty when not judged)."""
    first_nonfinite_step: float
    """The first step whose loss is not finite (or nan)."""


def loss_curve(result: Result) -> LossCurve | None:
    """The losses (``details["losses"]``), their block means (``details["block_means"]``)
    and the first non-finite step (``metrics["loss.first_nonfinite_step"]``)."""
    losses = plot.nums(result.details.get("losses"))
    if losses.size == 0:
        return None
    means = plot.nums(result.details.get("block_means"))
    if means.size > losses.size:
        means = np.array([], dtype=np.float64)
    bad = plot.num(result.metrics.get("loss.first_nonfinite_step"))
    return LossCurve(losses, means, bad)


class RestoreCurves(NamedTuple):
    """What the checkpoint-restore figure draws."""

    reference: np.ndarray
    """The uninterrupted run's loss at each step."""
    restored: np.ndarray
    """The restored run's loss at each step from ``restore_step`` on."""
    crash_at: float
    """How many steps the interrupted run trained before it crashed."""
    restore_step: float
    """The step the restored run continued from (the last checkpoint)."""
    first_difference: float
    """The first step where the restored run's loss differs (or nan)."""
    crash_mode: str


def restore_curves(result: Result) -> RestoreCurves | None:
    """Both runs' losses (``details["reference_losses"]``, ``details["restored_losses"]``),
    the crash and restore steps and the first differing step."""
    details, metrics = result.details, result.metrics
    reference = plot.nums(details.get("reference_losses"))
    if reference.size == 0:
        return None
    restore = plot.num(details.get("restore_step", metrics.get("restore_step")))
    restored = plot.nums(details.get("restored_losses"))
    if not math.isfinite(restore) or not 0 <= restore <= reference.size:
        restore, restored = math.nan, np.array([], dtype=np.float64)
    elif restored.size > reference.size - restore:
        restored = restored[: int(reference.size - restore)]
    return RestoreCurves(
        reference,
        restored,
        plot.num(metrics.get("crash_at")),
        restore,
        plot.num(metrics.get("first_loss_difference_step")),
        str(details.get("crash_mode", "")),
    )


# ----------------------------------------------------------------------------- figures


def _loss_caption(curve: LossCurve, block_size: float) -> str:
    losses, means = curve.losses, curve.block_means
    n = losses.size
    if math.isfinite(curve.first_nonfinite_step):
        return (
            f"Training loss at each of {n} steps. The loss stops being a number at step "
            f"{_count(curve.first_nonfinite_step)} (marked): training diverged there, often from "
            "a learning rate that is too high or a division by zero."
        )
    if means.size < 2:
        return f"Training loss at each of {n} steps."
    size = f"{_count(block_size)} " if math.isfinite(block_size) else ""
    first, last = float(means[0]), float(means[-1])
    trend = "fell" if last < first else "did not fall"
    return (
        f"Training loss at each of {n} steps (thin line) and its mean over each block of "
        f"{size}consecutive steps (thick steps). The check judges the block means, which "
        f"smooth out step-to-step noise: here the mean loss {trend} from {fmt(first)} in the "
        f"first block to {fmt(last)} in the last."
    )


def loss_figures(result: Result) -> list[str]:
    """The loss at each step with the mean of each block of steps the check judges.

    Args:
        result: a `LossDecreasesCheck` result.

    Returns:
        One ``<figure>``; none without losses, and `PLOT_NOTE` when matplotlib is missing.

    >>> from mlchecks import Status
    >>> loss_figures(Result("loss_decreases", Status.PASS))
    []
    """
    curve = loss_curve(result)
    if curve is None:
        return []
    losses, means = curve.losses, curve.block_means
    shown = _thin(losses, curve.first_nonfinite_step)
    bounds = np.array([len(b) for b in np.array_split(np.arange(losses.size), means.size or 1)])
    block_size = plot.num(result.metrics.get("trend.block_size"))

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        ax.plot(shown, losses[shown], color=plot.SKY, linewidth=0.9, label="loss per step")
        _nonfinite_marks(ax, shown, losses[shown])
        if means.size:
            edges = np.concatenate([[0], np.cumsum(bounds)]) - 0.5
            ax.stairs(
                means, edges, baseline=None, color=plot.BLUE, linewidth=2.2, label="block mean"
            )
        if math.isfinite(curve.first_nonfinite_step):
            ax.axvline(
                curve.first_nonfinite_step,
                color=plot.VERMILLION,
                linestyle="--",
                linewidth=1.2,
                label=f"first non-finite loss (step {_count(curve.first_nonfinite_step)})",
            )
        ax.set_title("Training loss by step")
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.legend(loc="upper right")

    return plot.draw([(fill, _loss_caption(curve, block_size), (plot.WIDTH_IN, 2.9))])


def _restore_caption(curves: RestoreCurves) -> str:
    n, c = curves.reference.size, curves.restore_step
    if not math.isfinite(c):
        return f"Training loss of the uninterrupted reference run at each of {n} steps."
    how = "killed (SIGKILL)" if curves.crash_mode == "process" else "interrupted"
    crash = curves.crash_at if math.isfinite(curves.crash_at) else c
    head = (
        f"Training loss of the uninterrupted reference run and of the run {how} after "
        f"{_count(crash)} steps, then restored from the checkpoint at step {_count(c)} "
        "(dashed line)."
    )
    if curves.restored.size == 0:
        return f"{head} The restored run recorded no loss: see the findings."
    if math.isfinite(curves.first_difference):
        return (
            f"{head} The restored run's loss first differs from the reference's at step "
            f"{_count(curves.first_difference)} (bottom: the absolute difference): some state "
            "(optimizer, learning-rate schedule, data position, random generator) is not in "
            "the checkpoint."
        )
    return (
        f"{head} The restored run's {curves.restored.size} losses lie on the reference's: "
        "restoring continued training exactly where it stopped."
    )


def checkpoint_figures(result: Result) -> list[str]:
    """The reference and restored runs' losses by step, the crash and the restore marked.

    Args:
        result: a `CheckpointRestoreCheck` result.

    Returns:
        One ``<figure>`` (with the losses' absolute difference below when they differ);
        none without losses, and `PLOT_NOTE` when matplotlib is missing.

    >>> from mlchecks import Status
    >>> checkpoint_figures(Result("checkpoint_restore", Status.PASS))
    []
    """
    curves = restore_curves(result)
    if curves is None:
        return []
    reference, restored = curves.reference, curves.restored
    c = int(curves.restore_step) if math.isfinite(curves.restore_step) else 0
    steps = np.arange(reference.size)
    after = steps[c : c + restored.size]
    gap = np.abs(restored - reference[after]) if restored.size else np.array([])
    differs = bool(np.nan_to_num(gap, nan=1.0).any()) if gap.size else False

    def fill(fig: Figure) -> None:
        if differs:
            top, low = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        else:
            top, low = fig.subplots(), None
        shown = _thin(reference)
        top.plot(shown, reference[shown], color=plot.BLUE, label="reference (uninterrupted)")
        _nonfinite_marks(top, shown, reference[shown])
        if restored.size:
            k = _thin(restored)
            top.plot(
                after[k],
                restored[k],
                color=plot.VERMILLION,
                linestyle=(0, (4, 3)),
                linewidth=1.8,
                label="restored from the checkpoint",
            )
        axes = (top, low) if low is not None else (top,)
        crash = curves.crash_at
        if math.isfinite(crash) and crash != c:
            for ax in axes:
                ax.axvline(crash - 0.5, color=plot.GREY, linestyle=":", linewidth=1.2)
            _mark(top, crash, f"crash after {_count(crash)} steps")
        if math.isfinite(curves.restore_step):
            for ax in axes:
                ax.axvline(c - 0.5, color=plot.BLACK, linestyle="--", linewidth=1.2)
            what = "crash and restore" if crash == c else "restore"
            _mark(top, c, f"{what} at step {c}")
        if math.isfinite(curves.first_difference):
            for ax in axes:
                ax.axvline(
                    curves.first_difference,
                    color=plot.PURPLE,
                    linestyle=":",
                    linewidth=1.2,
                    # One legend entry for the line drawn on both panels.
                    label=f"first difference (step {_count(curves.first_difference)})"
                    if ax is top
                    else None,
                )
        top.set_title("Training loss: reference and restored runs")
        top.set_ylabel("loss")
        fig.legend(loc="outside lower center", ncols=3)
        if low is not None:
            finite = np.isfinite(gap)
            k = _thin(gap)
            low.plot(after[k], np.where(finite, gap, np.nan)[k], color=plot.BLACK, linewidth=1.0)
            top_value = float(gap[finite].max()) if finite.any() else 0.0
            low.set_ylim(0.0, top_value * 1.15 if top_value > 0 else 1.0)
            low.set_ylabel("|loss difference|")
        (low if low is not None else top).set_xlabel("training step")

    height = 4.3 if differs else 3.2
    return plot.draw([(fill, _restore_caption(curves), (plot.WIDTH_IN, height))])
