"""The built-in figures of the HTML report, drawn with matplotlib (the ``plot`` extra).

One figure function per check reads the check's ``details`` and returns HTML fragments:
a ``<figure>`` holding an inline SVG and a ``<figcaption>`` that says what to look at.

- ``reproducibility``: the runs' loss curves with the first diverging step marked, and
  the per-slice metric differences against the slice tolerance;
- ``quality``: each slice's metric for the candidate and the baseline, and the difference
  with its confidence interval against the allowed drop;
- ``canary``: the latency distributions of both versions, and the sequential tests'
  e-values over the requests with their threshold;
- ``rollback``: which version answered each live request around the switch;
- ``single_batch``: the update ratio ``||delta|| / ||w||`` of every tensor.

The HTML report (`mlchecks.report.html`) uses `BUILTIN_FIGURES` for checks with these
names; a figure registered with `mlchecks.report.html.register_figure` under the same name
replaces the built-in one. Importing this module does not import matplotlib: each function
imports it when it draws, renders with `matplotlib.figure.Figure` (never pyplot, so the
user's backend and open figures are untouched) inside `matplotlib.rc_context`, and returns
a note asking to install ``mlchecks[plot]`` when matplotlib is missing. A result without the
data a figure needs gets no figure. Every string from a check is escaped: matplotlib
escapes text inside the SVG, captions go through `html.escape`, and a ``$`` in a name is
escaped so it never starts math text.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks.result import Result

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BUILTIN_FIGURES",
    "PLOT_NOTE",
    "canary_figures",
    "quality_figures",
    "reproducibility_figures",
    "rollback_figures",
    "single_batch_figures",
]

#: What the report shows in place of figures when matplotlib is not installed.
PLOT_NOTE = (
    '<p class="mlc-muted">Figures need matplotlib: install <code>mlchecks[plot]</code> '
    "for figures.</p>"
)

# Okabe & Ito's palette, distinguishable with every common colour-vision deficiency.
BLUE = "#0072B2"
VERMILLION = "#D55E00"
GREEN = "#009E73"
ORANGE = "#E69F00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
YELLOW = "#F0E442"
BLACK = "#000000"
GREY = "#8c8c8c"
_CYCLE = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BLACK)

_WIDTH_IN = 6.4  # 614 px at the SVG's 96 px per inch: readable at ~640 px
_MAX_ROWS = 30  # slices drawn in one panel
_MAX_PANELS = 3  # metrics (or slicings) drawn per check

_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text as <text>: small, selectable, escaped by matplotlib
    "svg.hashsalt": "mlchecks",  # stable ids, so the same result gives the same SVG
    "text.usetex": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "lines.linewidth": 1.5,
}

#: A figure to draw: a function filling a new `Figure`, and its caption (plain text).
_Plan = tuple[Callable[["Figure"], None], str, tuple[float, float]]


# ----------------------------------------------------------------------------- plumbing


def _num(value: Any) -> float:
    """A number from ``details`` (``"NaN"``/``"Infinity"`` strings, None) as a float."""
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, math.nan)
    return math.nan


def _nums(values: Any) -> np.ndarray:
    if not isinstance(values, Sequence) or isinstance(values, str):
        return np.array([], dtype=np.float64)
    return np.array([_num(v) for v in values], dtype=np.float64)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _records(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [r for r in value if isinstance(r, Mapping)]


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if math.isfinite(seconds) else "never"


@contextlib.contextmanager
def _style() -> Iterator[type[Figure]]:
    """matplotlib's `Figure` class with the report's style; ImportError when it is missing."""
    import matplotlib
    from cycler import cycler
    from matplotlib.figure import Figure

    rc: dict[Any, Any] = {**_RC, "axes.prop_cycle": cycler(color=list(_CYCLE))}
    with matplotlib.rc_context(rc):
        yield Figure


_ID = re.compile(r'\sid="([^"]*)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def _svg_text(fig: Figure, title: str) -> str:
    """``fig`` as an inline ``<svg>``: no XML prolog or metadata, ids unique to this figure."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    # Inline SVGs share the page's id namespace: keep only the ids that are referenced
    # (clip paths, markers), prefixed with a hash of this figure.
    referenced = {m.group(2) for m in _REF.finditer(text)}
    prefix = "mlc" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8] + "-"
    text = _ID.sub(
        lambda m: f' id="{prefix}{m.group(1)}"' if m.group(1) in referenced else "", text
    )
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text)
    label = html.escape(title, quote=True)
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1).strip()


def _figure_html(svg: str, caption: str) -> str:
    return f'<figure class="mlc-fig">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _draw(plans: Sequence[_Plan]) -> list[str]:
    """Draw each plan as an SVG figure with its caption; the note when matplotlib is missing."""
    if not plans:
        return []
    stack = contextlib.ExitStack()
    try:
        figure_class = stack.enter_context(_style())
    except ImportError:
        return [PLOT_NOTE]
    fragments = []
    with stack:
        for fill, caption, (width, height) in plans:
            fig = figure_class(figsize=(width, height), layout="constrained")
            fill(fig)
            title = caption.split(". ")[0]
            fragments.append(_figure_html(_svg_text(fig, title), caption))
    return fragments


def _ylabels(ax: Axes, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)), [_short(t) for t in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.grid(False, axis="y")


def _log_x(ax: Axes) -> None:
    """A log x axis labelled with plain numbers (1, 2, 5 per decade when few), not 10^k.

    Call it after the x limits are set.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    low, high = ax.get_xlim()
    decades = math.log10(high / low) if low > 0 and high > low else 1.0
    subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)
    axis = ax.xaxis
    axis.set_major_locator(LogLocator(subs=subs, numticks=8))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _short(text: str, limit: int = 28) -> str:
    """Text from a check for a figure: shortened, and a ``$`` escaped so it is not math."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("$", r"\$")


def _rows_height(n: int, base: float = 1.3) -> float:
    return base + 0.24 * max(n, 2)


# ------------------------------------------------------------------- reproducibility


def _diverging_pair(details: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pair the check reports a divergence for (earliest step beyond tolerance)."""
    pairs = [p for p in _records(details.get("pairs")) if "divergence" in p]
    if not pairs:
        return None

    def order(pair: Mapping[str, Any]) -> tuple[float, float]:
        losses = _mapping(_mapping(pair.get("divergence")).get("losses"))
        beyond, first = _num(losses.get("first_step_beyond")), _num(losses.get("first_step"))
        return (
            beyond if math.isfinite(beyond) else math.inf,
            first if math.isfinite(first) else math.inf,
        )

    return min(pairs, key=order)


def _loss_plan(details: Mapping[str, Any]) -> _Plan | None:
    losses = _mapping(details.get("losses"))
    steps = _nums(losses.get("steps"))
    runs = {
        str(name): _nums(values)
        for name, values in _mapping(losses.get("runs")).items()
        if len(_nums(values)) == steps.size
    }
    if steps.size == 0 or not runs:
        return None
    pair = _diverging_pair(details)
    names = list(runs)
    if pair is not None and pair.get("a") in runs and pair.get("b") in runs:
        names = [str(pair["a"]), str(pair["b"])]
    divergence = _mapping(pair.get("divergence")) if pair is not None else {}
    info = _mapping(divergence.get("losses"))
    beyond = _num(info.get("first_step_beyond"))
    first = _num(info.get("first_step"))
    hashes = _num(divergence.get("first_hash_difference"))
    tolerance = _num(info.get("tolerance"))
    two = len(names) == 2
    gap = np.abs(runs[names[0]] - runs[names[1]]) if two else np.array([])
    largest = float(np.nanmax(gap)) if gap.size and np.isfinite(gap).any() else math.nan
    shown = [n for n in runs if n in names] + [n for n in runs if n not in names][:4]

    def fill(fig: Figure) -> None:
        axes = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2)) if two else [fig.subplots()]
        top = axes[0]
        for k, name in enumerate(shown):
            top.plot(
                steps,
                runs[name],
                color=_CYCLE[k % len(_CYCLE)],
                linestyle=("-", "--", ":", "-.")[k % 4],
                label=_short(name),
            )
        top.set_title("Training loss by step")
        top.set_ylabel("loss")
        markers = [
            (beyond, BLACK, "--", f"first divergence (step {_fmt(beyond)})"),
            (first, GREY, ":", f"first difference (step {_fmt(first)})"),
            (hashes, PURPLE, "-.", f"parameter hashes differ (step {_fmt(hashes)})"),
        ]
        drawn: set[float] = set()
        for step, color, style, label in markers:
            if math.isfinite(step) and step not in drawn:
                drawn.add(step)
                for ax in axes:
                    ax.axvline(step, color=color, linestyle=style, linewidth=1.2, label=label)
        top.legend(loc="upper right")
        if two:
            low = axes[1]
            positive = np.isfinite(gap) & (gap > 0)
            if positive.any():
                shown_gap = gap[positive]
                bounds = [float(shown_gap.min()), float(shown_gap.max())]
                if math.isfinite(tolerance) and tolerance > 0:
                    low.axhline(tolerance, color=GREY, linestyle=":", linewidth=1.2)
                    bounds.append(tolerance)
                low.set_yscale("log")
                low.plot(steps, np.where(positive, gap, np.nan), color=BLACK, linewidth=1.0)
                low.set_ylim(min(bounds) / 3, max(bounds) * 3)
            else:
                low.plot(steps, gap, color=BLACK, linewidth=1.0)
            low.set_ylabel("|loss difference|")
            low.set_title(f"|{_short(names[0], 20)} \u2212 {_short(names[1], 20)}|")
        axes[-1].set_xlabel("training step")

    if not two:
        caption = (
            f"Training loss by step of {len(shown)} run(s). Curves that part show where the "
            "runs stop being reproducible."
        )
    elif math.isfinite(beyond):
        caption = (
            f"Training loss of runs {names[0]!r} and {names[1]!r} by step (top) and their "
            f"absolute difference (bottom, log scale). The dashed line marks step {_fmt(beyond)}, "
            f"the first step where the losses differ by more than the tolerance "
            f"{_fmt(tolerance)} (dotted line below). Divergence from the first steps points to "
            "an unseeded source of randomness (data order, initialisation, dropout)."
        )
    elif math.isfinite(largest) and largest > 0:
        caption = (
            f"Training loss of runs {names[0]!r} and {names[1]!r} by step (top) and their "
            f"absolute difference (bottom). The losses differ by at most {_fmt(largest)}, "
            f"within the tolerance {_fmt(tolerance)}."
        )
    else:
        caption = (
            f"Training loss of runs {names[0]!r} and {names[1]!r} by step: the curves coincide "
            "at every recorded step (difference 0 below)."
        )
    height = 4.0 if two else 2.8
    return fill, caption, (_WIDTH_IN, height)


def _slice_difference_plans(details: Mapping[str, Any]) -> list[_Plan]:
    tests = [
        r
        for r in _records(details.get("slice_tests"))
        if isinstance(r.get("slice"), str) and math.isfinite(_num(r.get("difference")))
    ]
    if not tests:
        return []
    flagged_pairs = [(r.get("a"), r.get("b")) for r in tests if r.get("flagged")]
    pair = flagged_pairs[0] if flagged_pairs else (tests[0].get("a"), tests[0].get("b"))
    tests = [r for r in tests if (r.get("a"), r.get("b")) == pair]
    tolerance = _num(details.get("slice_tolerance"))
    slicings = list(dict.fromkeys(str(r.get("slicing")) for r in tests))[:_MAX_PANELS]
    plans = []
    for slicing in slicings:
        rows = [r for r in tests if str(r.get("slicing")) == slicing]
        metrics = list(dict.fromkeys(str(r.get("metric")) for r in rows))[:_MAX_PANELS]
        plans.append(_slice_difference_plan(slicing, rows, metrics, pair, tolerance))
    return plans


def _slice_difference_plan(
    slicing: str,
    rows: list[Mapping[str, Any]],
    metrics: list[str],
    pair: tuple[Any, Any],
    tolerance: float,
) -> _Plan:
    slices = list(dict.fromkeys(str(r["slice"]) for r in rows))
    if len(slices) > _MAX_ROWS:
        size = {s: max(abs(_num(r["difference"])) for r in rows if r["slice"] == s) for s in slices}
        kept = set(sorted(slices, key=lambda s: -size[s])[:_MAX_ROWS])
        slices = [s for s in slices if s in kept]
    table = {(str(r.get("metric")), str(r["slice"])): r for r in rows}
    flagged = list(
        dict.fromkeys(str(r["slice"]) for r in rows if r.get("flagged") and r["slice"] in slices)
    )

    def fill(fig: Figure) -> None:
        axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            values, colors = [], []
            for s in slices:
                row = table.get((metric, s))
                values.append(_num(row["difference"]) if row else math.nan)
                colors.append(VERMILLION if row and row.get("flagged") else BLUE)
            if math.isfinite(tolerance) and tolerance > 0:
                ax.axvspan(-tolerance, tolerance, color=GREY, alpha=0.18, linewidth=0)
            ax.axvline(0.0, color=BLACK, linewidth=0.8)
            ax.barh(range(len(slices)), values, color=colors, height=0.6)
            ax.set_title(_short(metric, 24))
            ax.set_xlabel("difference")
            _ylabels(ax, slices)
            lim = max(np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0, tolerance)
            if math.isfinite(lim) and lim > 0:
                ax.set_xlim(-1.15 * lim, 1.15 * lim)
        fig.suptitle(f"Per-slice differences by {_short(slicing)}", fontweight="bold")

    a, b = str(pair[0]), str(pair[1])
    band = (
        f"The grey band is \u00b1 the slice tolerance {_fmt(tolerance)}; "
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
    return fill, caption, (_WIDTH_IN, _rows_height(len(slices), 1.4))


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
    plan = _loss_plan(result.details)
    plans = [plan] if plan else []
    return _draw(plans + _slice_difference_plans(result.details))


# ---------------------------------------------------------------------------- quality


def _quality_plan(metric: str, rows: list[Mapping[str, Any]], confidence: float) -> _Plan:
    rows = rows[: _MAX_ROWS + 1]
    labels = [str(r.get("slice")) for r in rows]
    candidate = np.array([_num(r.get("candidate")) for r in rows])
    baseline = np.array([_num(r.get("baseline")) for r in rows])
    difference = np.array([_num(r.get("difference")) for r in rows])
    low = np.array([_num(r.get("ci_low")) for r in rows])
    high = np.array([_num(r.get("ci_high")) for r in rows])
    limits = np.array([_num(r.get("difference_limit")) for r in rows])
    verdicts = [str(r.get("verdict")) for r in rows]
    colors = [{"fail": VERMILLION, "warn": ORANGE, "error": PURPLE}.get(v, BLUE) for v in verdicts]
    finite_limits = limits[np.isfinite(limits)]
    shared_limit = (
        float(finite_limits[0])
        if finite_limits.size and np.allclose(finite_limits, finite_limits[0])
        else math.nan
    )

    def fill(fig: Figure) -> None:
        left, right = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.3))
        y = np.arange(len(rows))
        left.hlines(y, np.fmin(candidate, baseline), np.fmax(candidate, baseline), color=GREY)
        left.plot(baseline, y, "o", color=BLUE, label="baseline", markersize=5)
        left.plot(candidate, y, "D", color=VERMILLION, label="candidate", markersize=4.5)
        left.set_title(_short(metric, 24))
        left.set_xlabel(_short(metric, 24))
        fig.legend(loc="outside lower center", ncols=2)
        _ylabels(left, [f"{t} (n={r.get('n')})" for t, r in zip(labels, rows, strict=True)])
        right.axvline(0.0, color=BLACK, linewidth=0.8)
        if math.isfinite(shared_limit):
            right.axvline(shared_limit, color=BLACK, linestyle="--", linewidth=1.2)
        elif finite_limits.size:
            right.plot(limits, y, "|", color=BLACK, markersize=12, markeredgewidth=1.5)
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

    failing = [t for t, v in zip(labels, verdicts, strict=True) if v == "fail"]
    word = "drop" if math.isfinite(shared_limit) and shared_limit <= 0 else "change"
    limit_text = (
        f"The dashed line is the allowed {word} ({_fmt(shared_limit)}); "
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
    return fill, caption, (_WIDTH_IN, _rows_height(len(rows), 1.5))


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
    rows = [
        r
        for r in _records(result.details.get("table"))
        if r.get("kind") == "regression" and math.isfinite(_num(r.get("difference")))
    ]
    confidence = _num(result.details.get("confidence"))
    if not math.isfinite(confidence):
        confidence = 0.95
    metrics = list(dict.fromkeys(str(r.get("metric")) for r in rows))[:_MAX_PANELS]
    return _draw(
        [
            _quality_plan(m, [r for r in rows if str(r.get("metric")) == m], confidence)
            for m in metrics
        ]
    )


# ----------------------------------------------------------------------------- canary


def _latency_plan(trickle: Mapping[str, Any]) -> _Plan | None:
    arms = _mapping(trickle.get("arms"))
    samples = {
        arm: np.sort(_nums(_mapping(arms.get(arm)).get("latency_sample_s")))
        for arm in ("candidate", "baseline")
    }
    samples = {k: v[np.isfinite(v) & (v > 0)] for k, v in samples.items()}
    if not any(v.size for v in samples.values()):
        return None
    requests = {arm: _mapping(arms.get(arm)).get("requests") for arm in samples}
    ratio = _num(trickle.get("max_latency_ratio"))
    base = samples["baseline"]
    limit = float(np.median(base)) * ratio if base.size and math.isfinite(ratio) else math.nan
    colors = {"candidate": VERMILLION, "baseline": BLUE}

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
                label=f"{arm} ({_short(str(requests[arm]), 12)} requests)",
            )
        every = np.concatenate([v for v in samples.values() if v.size]) * 1e3
        if math.isfinite(limit):
            every = np.append(every, limit * 1e3)
            ax.axvline(
                limit * 1e3,
                color=BLACK,
                linestyle=":",
                linewidth=1.2,
                label=f"baseline median \u00d7 {_fmt(ratio)}",
            )
        low, high = float(every.min()), float(every.max())
        pad = 1.25 if high > low else 2.0
        ax.set_xlim(low / pad, high * pad)
        _log_x(ax)
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of requests \u2264 latency")
        ax.set_ylim(0, 1.02)
        ax.set_title("Latency distribution of the trickle")
        fig.legend(loc="outside lower center", ncols=3)

    caption = (
        "Empirical distribution of request latencies in the trickle for the candidate and the "
        "baseline (up to 200 quantiles each). A curve further right is slower; the dotted line "
        f"is the baseline's median \u00d7 max_latency_ratio {_fmt(ratio)}, the slowdown the "
        "latency test tolerates (it judges the geometric mean of paired ratios)."
    )
    return fill, caption, (_WIDTH_IN, 3.0)


#: Each sequential test of the canary: colour and line style.
_TESTS = {
    "errors": (VERMILLION, "-"),
    "latency": (BLUE, "--"),
    "shift": (GREEN, "-."),
    "disagreement": (PURPLE, ":"),
}


def _evalue_plan(trickle: Mapping[str, Any]) -> _Plan | None:
    path = _mapping(trickle.get("trajectory"))
    requests = _nums(path.get("request"))
    series = {
        name: _nums(path.get(f"{name}_evalue"))
        for name in _TESTS
        if len(_nums(path.get(f"{name}_evalue"))) == requests.size
    }
    if requests.size == 0 or not series:
        return None
    threshold = _num(trickle.get("evalue_threshold"))
    alpha = _num(trickle.get("alpha"))
    decision = str(trickle.get("decision", ""))
    reasons = [str(r) for r in trickle.get("reasons") or []]

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
                label=name + (" (failed)" if name in reasons else ""),
            )
        if math.isfinite(threshold):
            ax.axhline(
                threshold,
                color=BLACK,
                linestyle=":",
                linewidth=1.2,
                label=f"threshold {_fmt(threshold)}",
            )
        ax.axhline(1.0, color=GREY, linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, top * 5)
        ax.set_xlabel("request")
        ax.set_ylabel("e-value (log scale)")
        ax.set_title(f"Sequential tests over the trickle: {_short(decision) or 'no decision'}")
        fig.legend(loc="outside lower center", ncols=len(series) + 1)

    stop = int(requests[-1])
    if decision == "fail":
        end = f"the canary failed on {', '.join(reasons)} after {stop} requests."
    elif decision == "pass":
        end = f"the candidate served its quota with no test reaching it ({stop} requests)."
    else:
        end = f"the trickle stopped after {stop} requests with no decision."
    n_tests = len(series)
    caption = (
        f"Evidence against the candidate after each request: one e-value per test "
        f"({', '.join(series)}), each at level \u03b1/{n_tests} = {_fmt(alpha / n_tests)}. A test "
        f"fails when its curve reaches the threshold {_fmt(threshold)} = {n_tests}/\u03b1; "
        f"values below 1 are evidence for the candidate. Here {end}"
    )
    return fill, caption, (_WIDTH_IN, 3.0)


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
    trickle = _mapping(result.details.get("trickle"))
    plans = [p for p in (_latency_plan(trickle), _evalue_plan(trickle)) if p is not None]
    return _draw(plans)


# --------------------------------------------------------------------------- rollback

_LANES = ("candidate", "known_good", "failed", "other")


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
    details = result.details
    timeline = _mapping(details.get("timeline"))
    times = _nums(timeline.get("t_s"))
    outcomes = [str(o) for o in timeline.get("outcome") or []]
    if times.size == 0 or len(outcomes) != times.size:
        return []
    repeats = _records(details.get("repeats"))
    number = int(_num(timeline.get("repeat"))) if math.isfinite(_num(timeline.get("repeat"))) else 1
    info = repeats[number - 1] if 0 < number <= len(repeats) else {}
    first, settled = _num(info.get("first_s")), _num(info.get("all_s"))
    failed = int(_num(info.get("failed"))) if math.isfinite(_num(info.get("failed"))) else 0
    stale = _num(info.get("candidate_after"))
    candidate = str(details.get("candidate", "candidate"))
    known_good = str(details.get("known_good", "known good"))
    names = {
        "candidate": f"candidate {_short(repr(candidate), 14)}",
        "known_good": f"known-good {_short(repr(known_good), 14)}",
        "failed": "failed",
        "other": "other outputs",
    }
    lanes = [lane for lane in _LANES if lane in outcomes or lane in ("candidate", "known_good")]
    colors = {"candidate": VERMILLION, "known_good": BLUE, "failed": BLACK, "other": ORANGE}
    ms = times * 1e3

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
                    color=colors[lane],
                    markersize=7 if lane == "failed" else 14,
                    markeredgewidth=1.2,
                    linestyle="none",
                )
        ax.axvline(0.0, color=BLACK, linewidth=1.2, label="rollback command")
        if math.isfinite(first):
            ax.axvline(
                first * 1e3, color=GREEN, linestyle="--", label=f"first known-good ({_ms(first)})"
            )
        if math.isfinite(settled) and settled != first:
            ax.axvline(
                settled * 1e3, color=PURPLE, linestyle=":", label=f"settled ({_ms(settled)})"
            )
        ax.set_yticks(range(len(lanes)), [names[lane] for lane in lanes])
        ax.set_ylim(len(lanes) - 0.5, -0.5)
        ax.grid(False, axis="y")
        ax.set_xlabel("time since the rollback command (ms)")
        ax.set_title(f"Responses by version around the rollback (repeat {number})")
        fig.legend(loc="outside lower center", ncols=3)

    if math.isfinite(settled):
        end = f"every response came from {known_good!r} after {_ms(settled)}"
    else:
        end = f"responses never settled on {known_good!r}"
    if math.isfinite(stale) and stale > 0:
        end += f"; {int(stale)} responses after the command still came from the candidate"
    caption = (
        f"Which version answered each live request around the rollback in repeat {number}, "
        "by arrival time relative to the set_live command (0 ms). A safe rollback shows the "
        "candidate's responses ending and the known-good version's starting at the switch, "
        f"with no failed requests in between. Here {failed} request(s) failed and {end}."
    )
    return _draw([(fill, caption, (_WIDTH_IN, 1.9 + 0.3 * len(lanes)))])


# ------------------------------------------------------------------------- single batch


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
    tensors = [r for r in _records(result.details.get("tensors")) if isinstance(r.get("name"), str)]
    rows = [r for r in tensors if r.get("role") == "trainable"]
    if not rows:
        rows = [r for r in tensors if math.isfinite(_num(r.get("update_ratio")))]
    if not rows:
        return []
    rows = rows[:_MAX_ROWS]
    band = _nums(result.details.get("update_ratio_band"))
    low, high = (float(band[0]), float(band[1])) if band.size == 2 else (math.nan, math.nan)
    names = [str(r["name"]) for r in rows]
    ratios = np.array([_num(r.get("update_ratio")) for r in rows])
    notes: list[tuple[str, str]] = []  # (text, colour) for tensors without a ratio
    for r, ratio in zip(rows, ratios, strict=True):
        if r.get("finite") is False:
            notes.append(("non-finite after the step", VERMILLION))
        elif r.get("changed") is False:
            notes.append(("unchanged: no update", VERMILLION))
        elif not (math.isfinite(ratio) and ratio > 0):
            delta = _num(r.get("max_abs_delta"))
            notes.append((f"no ratio (zero norm before); max |\u0394| {_fmt(delta)}", GREY))
        else:
            inside = not math.isfinite(low) or low <= ratio <= high
            notes.append(("", BLUE if inside else ORANGE))
    drawn = ratios[np.isfinite(ratios) & (ratios > 0)]

    def fill(fig: Figure) -> None:
        ax = fig.subplots()
        if math.isfinite(low) and math.isfinite(high):
            ax.axvspan(low, high, color=GREY, alpha=0.15, linewidth=0, label="allowed band")
        left = min([*drawn.tolist(), low if math.isfinite(low) else 1e-7, 1e-7])
        right = max([*drawn.tolist(), high if math.isfinite(high) else 1.0, 1.0])
        base = left / 3
        for i, (ratio, (text, color)) in enumerate(zip(ratios, notes, strict=True)):
            if text:
                ax.text(base * 1.3, i, text, va="center", ha="left", color=color, fontsize=8)
            else:
                ax.barh(i, ratio - base, left=base, color=color, height=0.6)
        ax.set_xlim(base, right * 3)
        _log_x(ax)
        _ylabels(ax, names)
        ax.set_xlabel("update ratio ||\u0394w|| / ||w|| (log scale)")
        ax.set_title("Update ratio of each trainable tensor after one step")

    bad = [n for n, (text, color) in zip(names, notes, strict=True) if color == VERMILLION]
    outside = [n for n, (text, color) in zip(names, notes, strict=True) if color == ORANGE]
    verdict = []
    if bad:
        verdict.append(f"Not updated or non-finite (vermillion): {', '.join(bad[:5])}")
    if outside:
        verdict.append(f"{'o' if bad else 'O'}utside the band (orange): {', '.join(outside[:5])}")
    caption = (
        "How much one training step on the batch moved each trainable tensor, relative to its "
        f"size. The grey band is the allowed range [{_fmt(low)}, {_fmt(high)}]: far below it the "
        "update is lost, far above it the step overwhelms the weights; a tensor that did not "
        "change at all is a dead parameter. "
        + ("; ".join(verdict) + "." if verdict else "Every measurable ratio is inside the band.")
    )
    return _draw([(fill, caption, (_WIDTH_IN, _rows_height(len(rows), 1.3)))])


#: The built-in figure function for each check name (a prefix, as in `register_figure`).
BUILTIN_FIGURES: Mapping[str, Callable[[Result], list[str]]] = {
    "reproducibility": reproducibility_figures,
    "quality": quality_figures,
    "canary": canary_figures,
    "rollback": rollback_figures,
    "single_batch": single_batch_figures,
}
