"""Figure of `PipelineCheck`: a timeline of the pipeline's stages and the serving steps.

The figure reads the result through one accessor (`stage_timeline`), the only code here
that knows the result's keys.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

from mlchecks.report._units import fmt_seconds
from mlchecks.report.figures import _plot as plot
from mlchecks.result import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Step", "pipeline_figures", "stage_timeline"]

_COLORS = {
    "ok": plot.BLUE,
    "violated": plot.VERMILLION,
    "failed": plot.BLACK,
    "skipped": plot.GREY,
    "serving": plot.GREEN,
}
_WORDS = {
    "ok": "ran, contract met",
    "violated": "ran, contract broken",
    "failed": "raised",
    "skipped": "skipped",
    "serving": "serving path",
}
_MAX_STEPS = 40


class Step(NamedTuple):
    """One bar of the timeline: a pipeline stage or a step of the serving path."""

    name: str
    status: str
    """``"ok"``, ``"violated"``, ``"failed"``, ``"skipped"`` or ``"serving"``."""
    start_s: float
    duration_s: float


def stage_timeline(result: Result) -> list[Step]:
    """The stages (``details["stages"]``) then the serving steps (``details["serving_steps"]``),
    one after the other, each starting when the one before ended."""
    steps: list[Step] = []
    clock = 0.0
    rows = [(r, str(r.get("status", "ok"))) for r in plot.records(result.details.get("stages"))]
    rows += [(r, "serving") for r in plot.records(result.details.get("serving_steps"))]
    for row, status in rows[:_MAX_STEPS]:
        name = row.get("stage", row.get("step"))
        if not isinstance(name, str):
            continue
        duration = plot.num(row.get("duration_s"))
        duration = duration if math.isfinite(duration) and duration >= 0 else 0.0
        steps.append(Step(name, status if status in _COLORS else "ok", clock, duration))
        clock += duration
    return steps


def pipeline_figures(result: Result) -> list[str]:
    """A timeline of the stages and the serving steps, coloured by what happened.

    Args:
        result: a `PipelineCheck` result.

    Returns:
        One ``<figure>``; none without stages, and `PLOT_NOTE` when matplotlib is missing.

    >>> from mlchecks import Status
    >>> pipeline_figures(Result("pipeline", Status.PASS))
    []
    """
    steps = stage_timeline(result)
    if not steps:
        return []
    total = steps[-1].start_s + steps[-1].duration_s
    scale = 1e3  # milliseconds on the axis

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        for k, step in enumerate(steps):
            width = step.duration_s * scale
            color = _COLORS[step.status]
            hatch = "//" if step.status == "skipped" else None
            ax.barh(k, width, left=step.start_s * scale, height=0.6, color=color, hatch=hatch)
            label = f" {fmt_seconds(step.duration_s)}"
            if step.status not in ("ok", "serving"):
                label += f" ({step.status})"
            ax.annotate(
                label,
                ((step.start_s + step.duration_s) * scale, k),
                va="center",
                fontsize=8,
                annotation_clip=False,
            )
        plot.ylabels(ax, [s.name for s in steps])
        ax.set_xlim(0, total * scale * 1.25 if total > 0 else 1.0)
        ax.set_xlabel("time since the pipeline started (ms)")
        ax.set_title("Pipeline stages and serving steps")
        used = list(dict.fromkeys(s.status for s in steps))
        handles = [_patch(_COLORS[status], _WORDS[status], status == "skipped") for status in used]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(used), 3))

    slowest = max(steps, key=lambda s: s.duration_s)
    problems = [s for s in steps if s.status in ("violated", "failed", "skipped")]
    if problems:
        verdict = "; ".join(f"{s.name!r} {_WORDS[s.status]}" for s in problems[:5])
    else:
        verdict = "every stage ran and met its contract"
    caption = (
        "Each stage of the pipeline, then each step of the serving path, as a bar from when "
        f"it started to when it ended ({fmt_seconds(total)} in all; the slowest, "
        f"{slowest.name!r}, took {fmt_seconds(slowest.duration_s)}). Here {verdict}."
    )
    return plot.draw([(fill, caption, (plot.WIDTH_IN, plot.rows_height(len(steps), 1.6)))])


def _patch(color: str, label: str, hatched: bool) -> object:
    """A legend entry: a coloured box (hatched for skipped stages)."""
    from matplotlib.patches import Patch

    return Patch(facecolor=color, label=label, hatch="//" if hatched else None)
