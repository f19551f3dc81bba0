"""Figure of `RollbackCheck`: which version answered each live request around the switch.

The figure reads the result through one accessor (`rollback_timeline`), the only code
here that knows the result's keys.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mlchecks.report.figures import _plot as plot
from mlchecks.result import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RollbackTimeline", "rollback_figures", "rollback_timeline"]

_LANES = ("candidate", "known_good", "failed", "other")
_COLORS = {
    "candidate": plot.VERMILLION,
    "known_good": plot.BLUE,
    "failed": plot.BLACK,
    "other": plot.ORANGE,
}


# ------------------------------------------------------------------------------ data


class RollbackTimeline(NamedTuple):
    """What the rollback figure draws: one repeat's responses and its timings."""

    times_s: np.ndarray
    """Arrival time of each response relative to the rollback command."""
    outcomes: list[str]
    """Who answered each: ``"candidate"``, ``"known_good"``, ``"failed"`` or ``"other"``."""
    repeat: int
    """Which repeat (1-based) the timeline shows."""
    first_s: float
    all_s: float
    failed: int
    candidate_after: float
    candidate: str
    known_good: str


def _whole(value: object, default: int) -> int:
    number = plot.num(value)
    return int(number) if math.isfinite(number) else default


def rollback_timeline(result: Result) -> RollbackTimeline | None:
    """One repeat's responses (``details["timeline"]``) with that repeat's row of
    ``details["repeats"]`` and the two versions' names."""
    details = result.details
    timeline = plot.mapping(details.get("timeline"))
    times = plot.nums(timeline.get("t_s"))
    outcomes = [str(o) for o in timeline.get("outcome") or []]
    if times.size == 0 or len(outcomes) != times.size:
        return None
    repeats = plot.records(details.get("repeats"))
    number = _whole(timeline.get("repeat"), 1)
    info = repeats[number - 1] if 0 < number <= len(repeats) else {}
    first_s, all_s, stale = plot.numbers(info, "first_s", "all_s", "candidate_after")
    candidate = str(details.get("candidate", "candidate"))
    known_good = str(details.get("known_good", "known good"))
    failed = _whole(info.get("failed"), 0)
    return RollbackTimeline(
        times, outcomes, number, first_s, all_s, failed, stale, candidate, known_good
    )


# ----------------------------------------------------------------------------- figure


def rollback_figures(result: Result) -> list[str]:
    """A timeline of live responses by version around the rollback command.

    Args:
        result: a `RollbackCheck` result.

    Returns:
        One ``<figure>`` for the repeat with the most failed (or stale) responses; none
        without a timeline, and `PLOT_NOTE` when matplotlib is missing.

    >>> from mlchecks import Status
    >>> rollback_figures(Result("rollback", Status.PASS))
    []
    """
    data = rollback_timeline(result)
    if data is None:
        return []
    first, settled, outcomes = data.first_s, data.all_s, data.outcomes
    names = {
        "candidate": f"candidate {plot.short(repr(data.candidate), 14)}",
        "known_good": f"known-good {plot.short(repr(data.known_good), 14)}",
        "failed": "failed",
        "other": "other outputs",
    }
    lanes = [lane for lane in _LANES if lane in outcomes or lane in ("candidate", "known_good")]
    ms = data.times_s * 1e3

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        codes = np.array([lanes.index(o) if o in lanes else -1 for o in outcomes])
        for k, lane in enumerate(lanes):
            chosen = codes == k
            if chosen.any():
                ax.plot(
                    ms[chosen],
                    codes[chosen],
                    "x" if lane == "failed" else "|",
                    color=_COLORS[lane],
                    markersize=7 if lane == "failed" else 14,
                    markeredgewidth=1.2,
                    linestyle="none",
                )
        ax.axvline(0.0, color=plot.BLACK, linewidth=1.2, label="rollback command")
        if math.isfinite(first):
            ax.axvline(
                first * 1e3,
                color=plot.GREEN,
                linestyle="--",
                label=f"first known-good ({plot.fmt_ms(first)})",
            )
        if math.isfinite(settled) and settled != first:
            ax.axvline(
                settled * 1e3,
                color=plot.PURPLE,
                linestyle=":",
                label=f"settled ({plot.fmt_ms(settled)})",
            )
        ax.set_yticks(range(len(lanes)), [names[lane] for lane in lanes])
        ax.set_ylim(len(lanes) - 0.5, -0.5)
        ax.grid(False, axis="y")
        ax.set_xlabel("time since the rollback command (ms)")
        ax.set_title(f"Responses by version around the rollback (repeat {data.repeat})")
        fig.legend(loc="outside lower center", ncols=3)

    known_good = data.known_good
    if math.isfinite(settled):
        end = f"every response came from {known_good!r} after {plot.fmt_ms(settled)}"
    else:
        end = f"responses never settled on {known_good!r}"
    if math.isfinite(data.candidate_after) and data.candidate_after > 0:
        end += (
            f"; {int(data.candidate_after)} responses after the command still came from the "
            "candidate"
        )
    caption = (
        f"Which version answered each live request around the rollback in repeat "
        f"{data.repeat}, by arrival time relative to the set_live command (0 ms). A safe "
        "rollback shows the candidate's responses ending and the known-good version's "
        "starting at the switch, with no failed requests in between. Here "
        f"{data.failed} request(s) failed and {end}."
    )
    return plot.draw([(fill, caption, (plot.WIDTH_IN, 1.9 + 0.3 * len(lanes)))])
