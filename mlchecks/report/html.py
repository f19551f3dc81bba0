"""Static, self-contained HTML reports for notebooks and for publishing as a page.

The HTML has an inline ``<style>``, no JavaScript and no external resources. Drill-down
uses ``<details>`` so a notebook cell stays compact: a check that failed opens by itself.
Every string that comes from a check (names, summaries, messages, details, tracebacks) is
escaped, after escape sequences and control characters are removed and URL passwords
hidden (`scrubbed_result`, once per report).

Figures: a check type gets plots through `register_figure`. A figure function takes the
`Result` and returns HTML fragments (inline ``<svg>`` or an ``<img>`` with a data URI);
they are shown in the section of every result of that type. Figures follow the result's
``kind`` (the class that produced it, set by `mlchecks.run_check`), never the check's
name, which the user chooses. The built-in checks have figures of their own
(`mlchecks.report.figures`, drawn when matplotlib is installed); a function registered for
the same class replaces the built-in one. `FIGURES` holds only registered functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlchecks.exceptions import InvalidInput
from mlchecks.report._format import (
    counts_phrase,
    fmt_duration,
    is_scalar,
    rubric_label,
    scrubbed_result,
    scrubbed_suite,
)
from mlchecks.report._html_tables import (
    esc,
    key_value_table,
    observed_cell,
    render,
    size_label,
    table,
)
from mlchecks.result import Finding, Result, Status
from mlchecks.score import score_rows

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = [
    "FIGURES",
    "FigureFunction",
    "kind_key",
    "register_figure",
    "result_to_html",
    "suite_to_html",
]

#: A figure function: takes a check's result, returns HTML fragments (``<svg>``, ``<img>``).
FigureFunction = Callable[[Result], list[str]]

#: Figure functions by check type (`kind_key` of the class); use `register_figure` to add one.
FIGURES: dict[str, FigureFunction] = {}

# A kind from a module of this package is known by its class name alone: the built-in
# checks may move between private modules (and results saved before a move keep the old
# module in their kind), while a user's class keeps its full qualified name.
_PACKAGE = "mlchecks"

_STYLE = """
.mlc{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
font-size:14px;line-height:1.45;max-width:72em}
.mlc h2{font-size:1.3em;margin:.3em 0}
.mlc h3{font-size:1.1em;margin:1em 0 .3em}
.mlc h4{font-size:1em;margin:.8em 0 .3em}
.mlc p{margin:.3em 0}
.mlc-muted{opacity:.7}
.mlc-badge{display:inline-block;min-width:3.8em;padding:0 .4em;border-radius:.3em;color:#fff;
font:600 .8em/1.6 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;text-align:center}
.mlc-pass{background:#1a7f37}.mlc-skip{background:#6e7781}.mlc-warn{background:#9a6700}
.mlc-fail{background:#cf222e}.mlc-error{background:#8250df}
.mlc table{border-collapse:collapse;margin:.3em 0}
.mlc th,.mlc td{border:1px solid rgba(127,127,127,.35);padding:.15em .5em;text-align:left;
vertical-align:top}
.mlc th{background:rgba(127,127,127,.12)}
.mlc td.mlc-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.mlc td code{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.9em}
.mlc td>.mlc-scroll{margin:0}
.mlc-scroll{max-width:100%;overflow-x:auto;margin:.3em 0}
.mlc details.mlc-sub .mlc-scroll{max-height:32em;overflow-y:auto}
.mlc-scroll>table{margin:0}
.mlc-values{font:.9em/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
overflow-wrap:anywhere;max-height:10em;overflow:auto;background:rgba(127,127,127,.1);
padding:.3em .5em;border-radius:4px;margin:.3em 0}
.mlc details.mlc-check{border:1px solid rgba(127,127,127,.35);border-left:4px solid #6e7781;
border-radius:4px;margin:.4em 0;padding:.3em .6em;min-width:0;overflow-x:auto}
.mlc details.mlc-check.mlc-s-pass{border-left-color:#1a7f37}
.mlc details.mlc-check.mlc-s-warn{border-left-color:#9a6700}
.mlc details.mlc-check.mlc-s-fail{border-left-color:#cf222e}
.mlc details.mlc-check.mlc-s-error{border-left-color:#8250df}
.mlc details.mlc-sub{margin:.3em 0}
.mlc summary{cursor:pointer}
.mlc pre{white-space:pre-wrap;overflow-wrap:anywhere;background:rgba(127,127,127,.1);
padding:.5em;border-radius:4px;font-size:.9em;max-height:30em;overflow:auto;margin:.3em 0}
.mlc-figure img,.mlc-figure svg{max-width:100%;height:auto}
.mlc figure.mlc-fig{margin:.5em 0 1em;max-width:640px}
.mlc figure.mlc-fig svg{display:block;background:#fff;border-radius:4px}
.mlc figcaption{font-size:.9em;opacity:.85;margin-top:.3em}
"""


def kind_key(kind: str | None) -> str | None:
    """The registry key of a result's ``kind`` (the qualified name of its check class).

    A class defined in a module of mlchecks (the module starts with ``mlchecks.``) is known
    by its class name alone, so a built-in check keeps its figures wherever its class is
    defined; any other class by its full qualified name, so a user's ``QualityCheck`` is
    not mistaken for the built-in one. None (a result built outside `run_check`) has no key.

    >>> kind_key("mlchecks.checks.quality.QualityCheck"), kind_key("myproject.QualityCheck")
    ('QualityCheck', 'myproject.QualityCheck')
    """
    if not kind:
        return None
    module, _, name = kind.rpartition(".")
    return name if module.startswith(f"{_PACKAGE}.") else kind


def _builtin_check_names() -> frozenset[str]:
    from mlchecks import checks

    return frozenset(name for name in checks.__all__ if name.endswith("Check"))


def _registry_key(kind: type | str) -> str:
    if isinstance(kind, type):
        key = kind_key(f"{kind.__module__}.{kind.__qualname__}")
        assert key is not None
        return key
    if isinstance(kind, str) and "." in kind.strip(".") and " " not in kind:
        key = kind_key(kind)
        assert key is not None
        return key
    if isinstance(kind, str) and kind in _builtin_check_names():
        return kind
    raise InvalidInput(
        "'kind' must be a check class or its qualified name such as 'myproject.MyCheck' or "
        f"'QualityCheck' (got {kind!r}); figures follow the type of check that produced a "
        "result, never the check's name"
    )


def register_figure(kind: type | str, fn: FigureFunction) -> FigureFunction:
    """Draw ``fn(result)`` in the HTML section of every result produced by the check class ``kind``.

    ``fn`` returns a list of HTML fragments (inline ``<svg>`` or ``<img src="data:...">``);
    they are inserted as they are, so they must not embed untrusted text unescaped. A figure
    function that raises does not break the report: a note takes the figure's place.
    Registering the same class again replaces the function; registering a built-in check
    class replaces its built-in figures.

    Args:
        kind: the check class (``QualityCheck``, ``MyCheck``), its qualified name
            (``"myproject.checks.MyCheck"``), or the class name of a built-in check
            (``"QualityCheck"``). A result's ``kind`` is set by `mlchecks.run_check`.
        fn: the figure function.

    Returns:
        ``fn`` itself.

    Raises:
        InvalidInput: ``kind`` is not a class or a qualified class name, or ``fn`` is not
            callable.

    >>> class DemoCheck:
    ...     name, rubric = "any name", None
    ...     def run(self, context=None):
    ...         return Result(self.name, Status.PASS, "all good")
    >>> def note(result):
    ...     return [f"<p>{result.summary.upper()}</p>"]
    >>> _ = register_figure(DemoCheck, note)
    >>> from mlchecks import run_check
    >>> "<p>ALL GOOD</p>" in result_to_html(run_check(DemoCheck()))
    True
    >>> FIGURES.clear()
    """
    key = _registry_key(kind)
    if not callable(fn):
        raise InvalidInput(f"'fn' must be callable (got {fn!r} that is a {type(fn).__name__})")
    FIGURES[key] = fn
    return fn


def _esc(value: object) -> str:
    # The results are scrubbed already; a figure function's error text is not.
    return esc(value)


def _badge(status: Status) -> str:
    return f'<span class="mlc-badge mlc-{status.value}">{status.label}</span>'


def _details(details: Mapping[str, Any]) -> list[str]:
    if not details:
        return []
    scalars = {k: v for k, v in details.items() if is_scalar(v)}
    parts = ["<h4>Details</h4>"]
    if scalars:
        parts.append(key_value_table(scalars, ("key", "value")))
    for key, value in details.items():
        if key in scalars:
            continue
        parts.append(
            f'<details class="mlc-sub"><summary>{_esc(key)}'
            f'<span class="mlc-muted">{_esc(size_label(value))}</span></summary>'
            f"{render(value, key)}</details>"
        )
    return parts


def _findings(findings: Sequence[Finding]) -> list[str]:
    if not findings:
        return []
    rows = (
        [
            f"<td>{_badge(f.status)}</td>",
            f"<td>{_esc(f.name)}</td>",
            observed_cell(f.observed, f.limit),
            f"<td>{_esc(f.limit)}</td>",
            f"<td>{_esc(f.message)}</td>",
        ]
        # Findings that need attention first, in their original order otherwise.
        for f in sorted(findings, key=lambda f: f.status is Status.PASS)
    )
    header = ("status", "name", "observed", "limit", "message")
    return ["<h4>Findings</h4>", table(header, rows, len(findings))]


def _metrics(metrics: Mapping[str, float]) -> list[str]:
    if not metrics:
        return []
    return ["<h4>Metrics</h4>", key_value_table(metrics, ("metric", "value"))]


def _figure_function(result: Result) -> FigureFunction | None:
    """The figure function of the result's kind: a registered one, else the built-in one."""
    key = kind_key(result.kind)
    if key is None:
        return None
    if key in FIGURES:
        return FIGURES[key]
    from mlchecks.report.figures import BUILTIN_FIGURES

    return BUILTIN_FIGURES.get(key)


def _figures(result: Result) -> list[str]:
    fn = _figure_function(result)
    if fn is None:
        return []
    try:
        fragments = fn(result)
        if not isinstance(fragments, list) or not all(isinstance(f, str) for f in fragments):
            raise TypeError(f"expected a list of HTML strings, got {type(fragments).__name__}")
    except Exception as exc:
        fragments = [
            f'<p class="mlc-muted">The figure for {_esc(kind_key(result.kind))} could not be '
            f"drawn: {_esc(type(exc).__name__)}: {_esc(exc)}</p>"
        ]
    if not fragments:
        return []
    return ["<h4>Figures</h4>", *(f'<div class="mlc-figure">{f}</div>' for f in fragments)]


def _error(result: Result) -> list[str]:
    if result.error is None:
        return []
    info = result.error
    return [
        f'<details class="mlc-sub" open><summary>Traceback: {_esc(info.type)}: '
        f"{_esc(info.message)}</summary><pre>{_esc(info.traceback or info.message)}</pre>"
        "</details>"
    ]


def _section(result: Result, *, open_: bool) -> str:
    facts = [rubric_label(result), fmt_duration(result.duration_s)]
    head = (
        f"{_badge(result.status)} <strong>{_esc(result.check)}</strong> "
        f'<span class="mlc-muted">{_esc(" · ".join(f for f in facts if f))}</span>'
    )
    if result.summary:
        head += f" &mdash; {_esc(result.summary)}"
    body = [
        *_error(result),
        *_findings(result.findings),
        *_figures(result),
        *_metrics(result.metrics),
        *_details(result.details),
    ]
    status = result.status.value
    opened = " open" if open_ else ""
    return (
        f'<details class="mlc-check mlc-s-{status}"{opened}><summary>{head}</summary>'
        + "".join(body)
        + "</details>"
    )


def _score(sr: SuiteResult) -> str:
    score = sr.score
    rows = [
        [
            f'<td class="mlc-num">{test}</td>',
            f"<td>{_esc(title)}</td>",
            f'<td class="mlc-num">{points:g}</td>',
            f"<td>{_esc(note)}</td>",
        ]
        for test, title, points, note in score_rows(sr.results, score)
    ]
    return (
        f"<h3>ML Test Score (infrastructure): {score.total:g} / {score.maximum:g}</h3>"
        f"<p>{_esc(score.reading)}</p>"
        '<details class="mlc-sub"><summary>Points per rubric test</summary>'
        + table(("test", "description", "points", "how"), rows, len(rows))
        + "</details>"
    )


def result_to_html(result: Result) -> str:
    """One check's result as an HTML fragment (what a notebook shows for a `Result`).

    Args:
        result: the check's result.

    Returns:
        A ``<div>`` with its own ``<style>``; the section is open.

    >>> html = result_to_html(Result("<b>x</b>", Status.FAIL, "bad"))
    >>> "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    True
    """
    section = _section(scrubbed_result(result, terminal=True), open_=True)
    return f'<div class="mlc"><style>{_STYLE}</style>{section}</div>'


def _suite_body(sr: SuiteResult) -> str:
    counts = counts_phrase(r.status for r in sr.results)
    parts = [
        f"<h2>{_badge(sr.status)} mlchecks suite &lsquo;{_esc(sr.name)}&rsquo;</h2>",
        f'<p class="mlc-muted">{_esc(counts)} in {_esc(fmt_duration(sr.duration_s))}</p>',
        _score(sr),
    ]
    if sr.results:
        parts.append("<h3>Checks</h3>")
        parts.extend(_section(r, open_=r.status >= Status.WARN) for r in sr.results)
    return "\n".join(parts)


def suite_to_html(sr: SuiteResult, *, full_page: bool = True) -> str:
    """A suite run as static HTML: status, score, and one section per check.

    Args:
        sr: the suite's result.
        full_page: a complete document (``<!doctype html>`` ... ``</html>``) to save and open
            in a browser; False gives a ``<div>`` fragment for a notebook.

    Returns:
        The HTML text.

    >>> from mlchecks import Suite
    >>> from mlchecks.testing import StaticCheck
    >>> sr = Suite([StaticCheck("quality", Status.FAIL)], name="demo").run(progress=False)
    >>> suite_to_html(sr).startswith("<!doctype html>")
    True
    >>> suite_to_html(sr, full_page=False).startswith('<div class="mlc">')
    True
    """
    sr = scrubbed_suite(sr, terminal=True)
    body = _suite_body(sr)
    if not full_page:
        return f'<div class="mlc"><style>{_STYLE}</style>{body}</div>'
    title = _esc(f"mlchecks: {sr.name} - {sr.status.label}")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body>\n<div class="mlc">{body}</div>\n</body>\n</html>\n'
    )
