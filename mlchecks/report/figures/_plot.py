"""What every built-in figure shares: palette, style, reading ``details`` values, SVG output.

Nothing here knows a check: the figure modules (`_reproducibility`, `_quality`, `_canary`,
`_rollback`, `_single_batch`) read their check's result and hand `draw` a list of `Plan`.
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

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BLACK",
    "BLUE",
    "CYCLE",
    "GREEN",
    "GREY",
    "MAX_PANELS",
    "MAX_ROWS",
    "ORANGE",
    "PLOT_NOTE",
    "PURPLE",
    "SKY",
    "VERMILLION",
    "WIDTH_IN",
    "Plan",
    "draw",
    "log_x",
    "fmt_ms",
    "mapping",
    "num",
    "numbers",
    "nums",
    "records",
    "rows_height",
    "short",
    "ylabels",
]

#: What the report shows in place of figures when matplotlib is not installed.
PLOT_NOTE = (
    '<p class="mlc-muted">Figures need matplotlib: install <code>mlchecks-infra[plot]</code> '
    "for figures.</p>"
)

# Okabe & Ito's palette, distinguishable with every common colour-vision deficiency.
BLUE = "#0072B2"
VERMILLION = "#D55E00"
GREEN = "#009E73"
ORANGE = "#E69F00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
BLACK = "#000000"
GREY = "#8c8c8c"
CYCLE = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BLACK)

WIDTH_IN = 6.4  # 614 px at the SVG's 96 px per inch: readable at ~640 px
MAX_ROWS = 30  # slices drawn in one panel
MAX_PANELS = 3  # metrics (or slicings) drawn per check

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
Plan = tuple[Callable[["Figure"], None], str, tuple[float, float]]


# ----------------------------------------------------------------------------- plumbing


def num(value: Any) -> float:
    """A number from ``details`` (``"NaN"``/``"Infinity"`` strings, None) as a float."""
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, math.nan)
    return math.nan


def nums(values: Any) -> np.ndarray:
    """A list of numbers from ``details`` as a float array (empty for anything else)."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        return np.array([], dtype=np.float64)
    return np.array([num(v) for v in values], dtype=np.float64)


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def numbers(values: Mapping[str, Any], *keys: str) -> list[float]:
    """The numbers under ``keys`` in ``values`` (nan where missing)."""
    return [num(values.get(key)) for key in keys]


def records(value: Any) -> list[Mapping[str, Any]]:
    """The mappings (table rows) in a list from ``details``."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [r for r in value if isinstance(r, Mapping)]


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds for a caption; ``"never"`` when not finite."""
    return f"{seconds * 1e3:.3g} ms" if math.isfinite(seconds) else "never"


@contextlib.contextmanager
def _style() -> Iterator[type[Figure]]:
    """matplotlib's `Figure` class with the report's style; ImportError when it is missing."""
    import matplotlib
    from cycler import cycler
    from matplotlib.figure import Figure

    rc: dict[Any, Any] = {**_RC, "axes.prop_cycle": cycler(color=list(CYCLE))}
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


def draw(plans: Sequence[Plan]) -> list[str]:
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


def ylabels(ax: Axes, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)), [short(t) for t in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.grid(False, axis="y")


def log_x(ax: Axes) -> None:
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


def short(text: str, limit: int = 28) -> str:
    """Text from a check for a figure: shortened, and a ``$`` escaped so it is not math."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("$", r"\$")


def rows_height(n: int, base: float = 1.3) -> float:
    return base + 0.24 * max(n, 2)
