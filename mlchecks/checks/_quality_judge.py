"""How `QualityCheck` turns its paired tests into findings, report rows and a summary."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from mlchecks._text import fmt, listing, pct, plural
from mlchecks.checks._quality_inputs import Floor
from mlchecks.conditions import AtLeast, AtMost, NoWorseThan
from mlchecks.result import Finding, Status
from mlchecks.stats.intervals import ConfidenceInterval
from mlchecks.stats.metrics import get_metric
from mlchecks.stats.paired import MarginTest, PairedResult

if TYPE_CHECKING:
    from mlchecks.checks.quality import QualityCheck

__all__ = [
    "LEADS",
    "PairedTest",
    "ci_text",
    "higher_is_better",
    "improvement",
    "judge_test",
    "limit_finding",
    "margin",
    "plain_change",
    "plain_where",
    "regression_message",
    "row",
    "slice_finding",
    "summary",
    "unreachable_floor",
]

_NAN_CI = ConfidenceInterval(math.nan, math.nan)

# Plain sentences for the findings whose messages do not open with one of their own.
LEADS = {
    "golden": "The candidate gives other answers than expected on golden examples",
    "predictions": "The candidate's predictions cannot be scored",
    "baseline_predictions": "The current model's predictions cannot be scored",
}


def ci_text(ci: ConfidenceInterval) -> str:
    """``[low, high]`` with 4 significant digits."""
    return f"[{fmt(ci.low)}, {fmt(ci.high)}]"


def higher_is_better(name: str) -> bool:
    """True when a larger value of the built-in metric ``name`` is better."""
    return get_metric(name).higher_is_better


def margin(condition: NoWorseThan, baseline: float) -> float:
    """The allowed worsening in the metric's units: the tighter of ``abs`` and ``rel``."""
    limits = []
    if condition.abs is not None:
        limits.append(condition.abs)
    if condition.rel is not None:
        limits.append(condition.rel * abs(baseline))
    return min(limits)


@attrs.define
class PairedTest:
    """One regression test: overall (``label == ""``) or in one slice."""

    metric: str
    condition: NoWorseThan
    label: str
    n: int
    kind: MarginTest
    paired: PairedResult | None = None
    ci: ConfidenceInterval = _NAN_CI
    margin: float = math.nan
    pvalue: float = math.nan
    adjusted: float = math.nan
    reason: str = ""
    status: Status = Status.SKIP
    message: str = ""


def row(
    kind: str,
    metric: str,
    slice_label: str,
    n: int,
    test: str,
    verdict: Status | str,
    paired: PairedResult | None = None,
    *,
    candidate: float | None = None,
    ci: ConfidenceInterval | None = None,
    pvalue: float | None = None,
    adjusted: float | None = None,
    limit: float | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """One row of the report table; a comparison fills its columns from ``paired``.

    ``limit`` is the difference (candidate - baseline) beyond which a regression test
    judges the candidate worse: ``-margin`` for a metric where higher is better.
    """
    if paired is not None:
        candidate = paired.candidate
    row: dict[str, Any] = {
        "kind": kind,
        "metric": metric,
        "slice": slice_label,
        "n": n,
        "candidate": candidate,
        "baseline": None if paired is None else paired.baseline,
        "difference": None if paired is None else paired.statistic,
        "ci_low": None if ci is None else ci.low,
        "ci_high": None if ci is None else ci.high,
        "difference_limit": limit,
        "pvalue": pvalue,
        "adjusted_pvalue": adjusted,
        "test": test,
        "verdict": verdict.value if isinstance(verdict, Status) else verdict,
    }
    if reason:
        row["reason"] = reason
    return row


def limit_finding(
    check: QualityCheck,
    name: str,
    condition: Floor,
    value: float,
    ci: ConfidenceInterval,
    n: int,
    method: str,
) -> Finding:
    """The ``limit.<metric>`` finding, three-valued on the confidence interval.

    PASS when the whole interval satisfies the limit (the data show it holds), the limit's
    severity when the whole interval violates it (the data show it is crossed), and WARN
    (inconclusive) when the interval straddles the limit: never a point estimate against it.
    """
    level = pct(1.0 - check.alpha)
    context = f" (point estimate {fmt(value)}, {level} CI {ci_text(ci)} by {method}, n = {n:,})"
    if isinstance(condition, AtLeast):
        context += unreachable_floor(check.alpha, condition.value, n, method)
        shown_ok, shown_bad = ci.low >= condition.value, ci.high < condition.value
        bound = f"lower {level} confidence bound"
        observed = ci.low
    elif isinstance(condition, AtMost):
        shown_ok, shown_bad = ci.high <= condition.value, ci.low > condition.value
        bound = f"upper {level} confidence bound"
        observed = ci.high
    else:
        shown_ok = condition.low <= ci.low and ci.high <= condition.high
        shown_bad = ci.high < condition.low or ci.low > condition.high
        bound, observed = f"{level} CI", value
    if isinstance(condition, AtLeast | AtMost):
        if shown_ok or shown_bad:
            judged = condition.judge(f"{name} {bound}", observed, context=context)
    elif shown_ok or shown_bad:
        where = "inside" if shown_ok else "outside"
        judged = Finding(
            name,
            Status.PASS if shown_ok else condition.severity,
            value,
            condition.describe(),
            f"{name} {level} CI {ci_text(ci)} is {where} the range "
            f"[{fmt(condition.low)}, {fmt(condition.high)}]{context}",
        )
    if not (shown_ok or shown_bad):
        judged = Finding(
            name,
            Status.WARN,
            observed,
            condition.describe(),
            f"{name} is inconclusive against the limit {condition.describe()}: its confidence "
            f"interval includes the limit{context}; more examples narrow the interval",
        )
    if judged.status is not Status.PASS:
        lead = _plain_limit(name, condition, value, shown_bad)
        message = judged.message
        judged = attrs.evolve(judged, message=f"{lead} {message[:1].upper()}{message[1:]}")
    return attrs.evolve(judged, name=f"limit.{name}")


def _plain_limit(name: str, condition: Floor, value: float, shown_bad: bool) -> str:
    """The plain sentence that opens a failing or inconclusive metric limit."""
    if isinstance(condition, AtLeast):
        what, limit = "too low", f"the minimum {fmt(condition.value)}"
    elif isinstance(condition, AtMost):
        what, limit = "too high", f"the maximum {fmt(condition.value)}"
    else:
        what = "outside its range"
        limit = f"the range [{fmt(condition.low)}, {fmt(condition.high)}]"
    if shown_bad:
        return f"The candidate's {name} is {what}: {fmt(value)}, against {limit}."
    return f"It is not clear yet whether the candidate's {name}, {fmt(value)}, meets {limit}."


def unreachable_floor(alpha: float, floor: float, n: int, method: str) -> str:
    """A note when no model can pass ``floor`` on ``n`` examples, else ``""``.

    With every example right the exact lower bound is ``(alpha / 2) ** (1 / n)``; a floor
    at or above it is never passed, so the note says how many examples it needs.

    >>> unreachable_floor(0.05, 0.9, 30, "clopper-pearson").split(": ")[-1]
    'it needs at least 36'
    >>> unreachable_floor(0.05, 0.9, 36, "clopper-pearson")
    ''
    """
    if method != "clopper-pearson" or not 0.0 < floor < 1.0:
        return ""
    best = (alpha / 2.0) ** (1.0 / n)
    if floor < best:
        return ""
    needed = math.floor(math.log(alpha / 2.0) / math.log(floor)) + 1
    return (
        f"; no model can pass this floor on {n:,} examples (all of them right gives a lower "
        f"bound of {fmt(best)}): it needs at least {needed:,}"
    )


def judge_test(check: QualityCheck, test: PairedTest, rows: list[dict[str, Any]]) -> None:
    """Set the status and message of one overall or per-slice test; add its report row."""
    where = (test.metric, test.label or "all", test.n, test.kind)
    paired = test.paired
    if paired is None:
        rows.append(row("regression", *where, "skipped", reason=test.reason))
        return
    level = check.alpha / 2.0
    if test.kind == "regression":
        ok = test.adjusted > level
        shown_worse = not ok
    else:
        ok = test.adjusted <= level
        regression_p = paired.margin_pvalue(
            test.margin, higher_is_better=test.condition.higher_is_better, test="regression"
        )
        shown_worse = regression_p <= level
    if ok:
        test.status = Status.PASS
    elif shown_worse:
        test.status = test.condition.severity
    else:  # non-inferiority not shown, regression not shown: inconclusive
        test.status = Status.WARN
    sign = -1.0 if test.condition.higher_is_better else 1.0
    rows.append(
        row(
            "regression",
            *where,
            test.status,
            paired,
            ci=test.ci,
            pvalue=test.pvalue,
            adjusted=test.adjusted,
            limit=sign * test.margin,
        )
    )
    test.message = regression_message(check, test, ok, shown_worse)


def slice_finding(
    check: QualityCheck, name: str, condition: NoWorseThan, tests: list[PairedTest]
) -> Finding | None:
    """One finding per metric for all its slice tests; the slices are in the table."""
    tested = [t for t in tests if t.paired is not None]
    if not tested:
        return None
    sign = 1.0 if condition.higher_is_better else -1.0
    bad = [t for t in tested if t.status is not Status.PASS]
    pool = bad or tested
    worst = min(pool, key=lambda t: sign * t.paired.statistic if t.paired else math.inf)
    assert worst.paired is not None
    skipped = len(tests) - len(tested)
    tail = f"; {plural(skipped, 'slice')} skipped" if skipped else ""
    if bad:
        labels = listing([t.label for t in bad])
        message = (
            f"{worst.message}; failing in {len(bad)} of {plural(len(tested), 'slice')}: "
            f"{labels}{tail}"
        )
    else:
        word = "drop" if condition.higher_is_better else "rise"
        allowed = f"the allowed {condition.describe()}"
        if check.slice_test == "noninferiority":
            shown = f"{name} is shown to be within {allowed} in every one of"
        else:
            shown = f"no {word} of {name} beyond {allowed} is shown in any of"
        message = (
            f"{shown} {plural(len(tested), 'slice')} (worst change {worst.paired.statistic:+.4g} "
            f"in slice {worst.label}{tail})"
        )
    return Finding(
        f"slice.regression.{name}",
        worst.status,
        worst.paired.statistic,
        condition.describe(),
        message,
    )


def regression_message(check: QualityCheck, test: PairedTest, ok: bool, shown_worse: bool) -> str:
    """One sentence: the change, its interval, the test's p-value and what it shows."""
    paired = test.paired
    assert paired is not None
    where = f" in slice {test.label}" if test.label else ""
    word = "drop" if test.condition.higher_is_better else "rise"
    head = (
        f"{test.metric}{where} changed from {fmt(paired.baseline)} (baseline) to "
        f"{fmt(paired.candidate)} ({paired.statistic:+.4g}, {pct(1.0 - check.alpha)} CI "
        f"{ci_text(test.ci)}, n = {paired.n:,}, {paired.method})"
    )
    kind = "non-inferiority" if test.kind == "noninferiority" else "regression"
    if test.label and test.kind == "regression" and check.correction != "none":
        method = "BH" if check.correction == "bh" else "Holm"
        p_text = f"{method}-adjusted {kind} p = {test.adjusted:.3g}"
    else:
        p_text = f"{kind} p = {test.pvalue:.3g}"
    allowed = f"the allowed {word} of {fmt(test.margin)}"
    if not ok:
        head = f"{plain_change(test, shown_worse)} {head[:1].upper()}{head[1:]}"
    if shown_worse:
        return f"{head}: a {word} beyond {allowed} is statistically shown ({p_text})"
    if ok and test.kind == "noninferiority":
        return f"{head}: the {word} is shown to be within {allowed} ({p_text})"
    if ok:
        return f"{head}: no {word} beyond {allowed} is shown ({p_text})"
    return (
        f"{head}: a {word} beyond {allowed} cannot be ruled out ({p_text}); the comparison "
        "is inconclusive, so more evaluation examples or a wider margin are needed"
    )


def plain_where(label: str) -> str:
    """``" in region east"`` for the slice ``"region=east"``; ``""`` overall."""
    if not label:
        return ""
    if label.count("=") == 1 and ", " not in label:
        name, value = label.split("=")
        return f" in {name} {value}"
    return f" in slice {label}"


def plain_change(test: PairedTest, shown_worse: bool) -> str:
    """The plain sentence that opens a failing or inconclusive comparison.

    It says what changed in the system's terms, without the statistics that follow it:
    ``"The candidate is less accurate in region east: 58% of examples right, against 84%
    for the current model."``
    """
    paired = test.paired
    assert paired is not None
    where = plain_where(test.label)
    the = "The" if shown_worse else "It is not clear yet whether the"
    if test.metric == "accuracy":
        what = f"{the} candidate is less accurate{where}"
        values = f"{paired.candidate:.0%} of examples right, against {paired.baseline:.0%}"
    else:
        what = f"{the} candidate's {test.metric} is worse{where}"
        values = f"{fmt(paired.candidate)}, against {fmt(paired.baseline)}"
    return f"{what}: {values} for the current model."


def improvement(
    check: QualityCheck, name: str, bound: AtMost, paired: PairedResult, rows: list[dict[str, Any]]
) -> Finding:
    """The ``improvement.<metric>`` finding, judged on the point estimate; adds its row."""
    gain = paired.statistic if higher_is_better(name) else -paired.statistic
    judged = bound.judge(f"improvement.{name}", gain)
    change = (
        f"{name} changed by {paired.statistic:+.4g} from the baseline "
        f"({fmt(paired.baseline)} to {fmt(paired.candidate)})"
    )
    if judged.status is Status.PASS:
        message = f"{change}, no improvement beyond max_improvement {fmt(bound.value)}"
    else:
        message = (
            f"The candidate is suspiciously better than the current model. {change[:1].upper()}"
            f"{change[1:]}, an improvement beyond max_improvement {fmt(bound.value)}: "
            "a jump this large is more often label leakage or an evaluation bug than a "
            "better model"
        )
    ci = paired.confidence_interval(1.0 - check.alpha)
    rows.append(
        row("improvement", name, "all", paired.n, "point estimate", judged.status, paired, ci=ci)
    )
    return attrs.evolve(judged, message=message)


def _plain_pass(kinds: list[str], rows: list[dict[str, Any]], slices: int) -> str:
    """The plain sentence that opens a passing summary: what the candidate was shown to be."""
    if "regression" in kinds:
        metrics = sorted({r["metric"] for r in rows if r["kind"] == "regression"})
        names = " and ".join([", ".join(metrics[:-1]), metrics[-1]] if metrics[1:] else metrics)
        where = f", overall and in {plural(slices, 'slice')}" if slices else ""
        return f"The candidate is no worse than the current model in {names}{where}."
    if "limit" in kinds:
        return "The candidate meets every metric limit."
    if "golden" in kinds:
        return "The candidate gives the expected answer on every golden example."
    return "The candidate shows no suspicious improvement."


def summary(findings: list[Finding], rows: list[dict[str, Any]]) -> str | None:
    """The worst problem's message (naming the others), or what held when nothing failed."""
    bad = [f for f in findings if f.status.severity >= Status.WARN.severity]
    if not bad:
        kinds = sorted({f.name.split(".", 1)[0] for f in findings})
        slices = sum(
            r["kind"] == "regression" and r["slice"] != "all" and r["verdict"] != "skipped"
            for r in rows
        )
        held = {
            "golden": "golden examples match",
            "limit": "metric limits hold on their confidence bounds",
            "regression": "no regression beyond the allowed margin versus the baseline"
            + (f" (overall and in {slices} slice tests)" if slices else ""),
            "improvement": "no suspicious improvement",
        }
        parts = [held[k] for k in kinds if k in held]
        if not parts:
            return None
        text = "; ".join(parts)
        return f"{_plain_pass(kinds, rows, slices)} {text[:1].upper()}{text[1:]}."
    worst = max(bad, key=lambda f: f.status)
    others = [f.name for f in bad if f is not worst]
    if not others:
        return worst.message
    shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
    return f"{worst.message} (and {len(others)} more: {shown})"
