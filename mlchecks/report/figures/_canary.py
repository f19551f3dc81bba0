"""Figures of `CanaryCheck`: the trickle's latency distributions and its sequential tests.

Each figure reads the result through one accessor (`trickle_latencies`, `evidence_path`),
the only code here that knows the result's keys.
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

__all__ = ["EvidencePath", "TrickleLatencies", "canary_figures", "evidence_path"]

_ARMS = ("candidate", "baseline")

#: Each sequential test of the canary: colour and line style.
_TESTS = {
    "errors": (plot.VERMILLION, "-"),
    "latency": (plot.BLUE, "--"),
    "shift": (plot.GREEN, "-."),
    "disagreement": (plot.PURPLE, ":"),
}


# ------------------------------------------------------------------------------ data


class TrickleLatencies(NamedTuple):
    """What the latency figure draws."""

    samples: dict[str, np.ndarray]
    """``"candidate"`` and ``"baseline"`` -> sorted positive latencies in seconds."""
    requests: dict[str, object]
    """Each arm's number of requests, as the result gives it."""
    max_latency_ratio: float


def trickle_latencies(result: Result) -> TrickleLatencies | None:
    """Each arm's latency sample (``details["trickle"]["arms"][arm]["latency_sample_s"]``)
    and the tolerated slowdown (``details["trickle"]["max_latency_ratio"]``)."""
    trickle = plot.mapping(result.details.get("trickle"))
    arms = {arm: plot.mapping(plot.mapping(trickle.get("arms")).get(arm)) for arm in _ARMS}
    samples = {arm: np.sort(plot.nums(arms[arm].get("latency_sample_s"))) for arm in _ARMS}
    samples = {k: v[np.isfinite(v) & (v > 0)] for k, v in samples.items()}
    if not any(v.size for v in samples.values()):
        return None
    return TrickleLatencies(
        samples=samples,
        requests={arm: arms[arm].get("requests") for arm in _ARMS},
        max_latency_ratio=plot.num(trickle.get("max_latency_ratio")),
    )


class EvidencePath(NamedTuple):
    """What the e-value figure draws."""

    requests: np.ndarray
    series: dict[str, np.ndarray]
    """Test name (a key of `_TESTS`) -> its e-value after each of ``requests``."""
    threshold: float
    alpha: float
    decision: str
    reasons: list[str]
    """The tests that failed the canary."""


def evidence_path(result: Result) -> EvidencePath | None:
    """The e-values over the trickle (``details["trickle"]["trajectory"]``) and the
    decision, threshold and alpha beside it in ``details["trickle"]``."""
    trickle = plot.mapping(result.details.get("trickle"))
    path = plot.mapping(trickle.get("trajectory"))
    requests = plot.nums(path.get("request"))
    series = {name: plot.nums(path.get(f"{name}_evalue")) for name in _TESTS}
    series = {name: v for name, v in series.items() if len(v) == requests.size}
    if requests.size == 0 or not series:
        return None
    return EvidencePath(
        requests=requests,
        series=series,
        threshold=plot.num(trickle.get("evalue_threshold")),
        alpha=plot.num(trickle.get("alpha")),
        decision=str(trickle.get("decision", "")),
        reasons=[str(r) for r in trickle.get("reasons") or []],
    )


# ----------------------------------------------------------------------------- figures


def _latency_plan(data: TrickleLatencies) -> plot.Plan:
    samples, ratio = data.samples, data.max_latency_ratio
    base = samples["baseline"]
    limit = float(np.median(base)) * ratio if base.size and math.isfinite(ratio) else math.nan
    colors = {"candidate": plot.VERMILLION, "baseline": plot.BLUE}

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        for arm, values in samples.items():
            if not values.size:
                continue
            ms = values * 1e3
            ecdf = np.arange(1, ms.size + 1) / ms.size
            ax.step(
                np.r_[ms[0], ms],
                np.r_[0.0, ecdf],
                where="post",
                color=colors[arm],
                linestyle="-" if arm == "candidate" else "--",
                label=f"{arm} ({plot.short(str(data.requests[arm]), 12)} requests)",
            )
        every = np.concatenate([v for v in samples.values() if v.size]) * 1e3
        if math.isfinite(limit):
            every = np.append(every, limit * 1e3)
            ax.axvline(
                limit * 1e3,
                color=plot.BLACK,
                linestyle=":",
                linewidth=1.2,
                label=f"baseline median \u00d7 {fmt(ratio)}",
            )
        low, high = float(every.min()), float(every.max())
        pad = 1.25 if high > low else 2.0
        ax.set_xlim(low / pad, high * pad)
        plot.log_x(ax)
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of requests \u2264 latency")
        ax.set_ylim(0, 1.02)
        ax.set_title("Latency distribution of the trickle")
        fig.legend(loc="outside lower center", ncols=3)

    caption = (
        "Empirical distribution of request latencies in the trickle for the candidate and the "
        "baseline (up to 200 quantiles each). A curve further right is slower; the dotted line "
        f"is the baseline's median \u00d7 max_latency_ratio {fmt(ratio)}, the slowdown the "
        "latency test tolerates (it judges the geometric mean of paired ratios)."
    )
    return fill, caption, (plot.WIDTH_IN, 3.0)


def _evalue_plan(data: EvidencePath) -> plot.Plan:
    requests, series, threshold = data.requests, data.series, data.threshold

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        finite = [np.clip(v, 1e-300, 1e300) for v in series.values()]
        floor = max(min(float(np.nanmin(v)) for v in finite), 1e-6)
        top = max(max(float(np.nanmax(v)) for v in finite), threshold if threshold > 0 else 1)
        for name, values in series.items():
            ax.plot(
                requests,
                np.clip(values, floor, None),
                color=_TESTS[name][0],
                linestyle=_TESTS[name][1],
                label=name + (" (failed)" if name in data.reasons else ""),
            )
        if math.isfinite(threshold):
            ax.axhline(
                threshold,
                color=plot.BLACK,
                linestyle=":",
                linewidth=1.2,
                label=f"threshold {fmt(threshold)}",
            )
        ax.axhline(1.0, color=plot.GREY, linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, top * 5)
        ax.set_xlabel("request")
        ax.set_ylabel("e-value (log scale)")
        ax.set_title(
            f"Sequential tests over the trickle: {plot.short(data.decision) or 'no decision'}"
        )
        fig.legend(loc="outside lower center", ncols=len(series) + 1)

    stop = int(requests[-1])
    if data.decision == "fail":
        end = f"the canary failed on {', '.join(data.reasons)} after {stop} requests."
    elif data.decision == "pass":
        end = f"the candidate served its quota with no test reaching it ({stop} requests)."
    else:
        end = f"the trickle stopped after {stop} requests with no decision."
    n_tests = len(series)
    caption = (
        f"Evidence against the candidate after each request: one e-value per test "
        f"({', '.join(series)}), each at level \u03b1/{n_tests} = {fmt(data.alpha / n_tests)}. "
        f"A test fails when its curve reaches the threshold {fmt(threshold)} = {n_tests}/\u03b1; "
        f"values below 1 are evidence for the candidate. Here {end}"
    )
    return fill, caption, (plot.WIDTH_IN, 3.0)


def canary_figures(result: Result) -> list[str]:
    """The trickle's latency distributions and the sequential tests' e-values over requests.

    Args:
        result: a `CanaryCheck` result that ran stage 1 (the trickle).

    Returns:
        ``<figure>`` fragments; none without a trickle, and `PLOT_NOTE` when matplotlib is
        missing.

    >>> from mlchecks import Status
    >>> canary_figures(Result("canary", Status.PASS))
    []
    """
    latencies, path = trickle_latencies(result), evidence_path(result)
    plans = [] if latencies is None else [_latency_plan(latencies)]
    if path is not None:
        plans.append(_evalue_plan(path))
    return plot.draw(plans)
