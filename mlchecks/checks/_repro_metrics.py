"""Aggregate metrics of training runs compared pair by pair, for `ReproducibilityCheck`.

Each metric every run has (computed from the pass's table or reported by the run) is
compared for every pair of runs: exactly in exact mode, else with an equivalence test
against the metric's margin: TOST on the paired accuracy difference (with exact McNemar)
for accuracy and the error rate, TOST on the mean paired per-example difference for the
other per-example metrics, and the difference against the margin for the rest. The worst
pair gives the finding ``metric.<name>``; every pair's row is in ``details["pairs"]``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlchecks._text import fmt, signed
from mlchecks.checks._repro_slices import is_builtin, metric_part, pvalue_text
from mlchecks.result import Finding, Status
from mlchecks.stats.inference import mcnemar_exact_counts, tost_paired_accuracy_counts

if TYPE_CHECKING:
    from mlchecks.checks._repro_eval import Evaluation, Prepared

__all__ = ["compare_metrics"]


def _paired_mean_tost(
    moments: tuple[int, float, float], margin: float, alpha: float
) -> tuple[float, tuple[float, float], float, bool]:
    """TOST on the mean of paired per-example differences (t distribution, n - 1 df).

    ``moments``: their count, mean and sum of squared deviations from the mean. Returns
    (mean difference, (1 - 2 alpha) CI, TOST p-value, equivalent).
    """
    from scipy.stats import t as student

    n, mean, squares = moments
    sd = math.sqrt(squares / (n - 1)) if n > 1 else 0.0
    se = sd / math.sqrt(n)
    if se == 0.0:
        inside = abs(mean) < margin
        return mean, (mean, mean), 0.0 if inside else 1.0, inside
    df = n - 1
    half = float(student.ppf(1.0 - alpha, df)) * se
    low, high = mean - half, mean + half
    p_low = float(student.sf((mean + margin) / se, df))
    p_high = float(student.cdf((mean - margin) / se, df))
    return mean, (low, high), max(p_low, p_high), -margin < low and high < margin


def compare_metrics(ev: Evaluation) -> None:
    """Every aggregate metric of every pair of runs, tested against its margin."""
    names = [m.name for m in ev.metrics if m.name in ev.skipped]
    for p in ev.prepared:
        names.extend(k for k in p.values if k not in names)
    for name in names:
        present = [p for p in ev.prepared if name in p.values]
        if len(present) < len(ev.prepared):
            missing = [p.name for p in ev.prepared if name not in p.values]
            reason = ev.skipped.get(name, "")
            ev.out.note(
                f"metric.{metric_part(name)}",
                Status.WARN,
                f"{name} is missing from run(s) {', '.join(map(repr, missing))}, so it "
                f"is not compared" + (f": {reason}" if reason else ""),
            )
            continue
        _compare_metric(ev, name)


def _compare_metric(ev: Evaluation, name: str) -> None:
    judged: list[tuple[int, Finding, dict[str, Any]]] = []
    for k, (i, j) in enumerate(ev.pairs):
        atol = ev.check.metric_margin(name, ev.prepared[i].values[name])
        finding, row = _metric_pair(ev, name, i, j, atol)
        ev.out.details["pairs"][k].setdefault("metrics", {})[name] = row
        judged.append((k, finding, row))
    k, finding, row = max(judged, key=lambda t: (t[1].status, abs(t[2]["difference"]), -t[0]))
    ev.out.add(finding)
    if is_builtin(name):
        ev.out.metric(f"metric.{name}.difference", row["difference"])


def _metric_pair(
    ev: Evaluation, name: str, i: int, j: int, atol: float
) -> tuple[Finding, dict[str, Any]]:
    a, b = ev.prepared[i], ev.prepared[j]
    va, vb = a.values[name], b.values[name]
    difference = va - vb
    row: dict[str, Any] = {"a": va, "b": vb, "difference": difference}
    pair = ev.pair_label(i, j)
    key = f"metric.{metric_part(name)}"
    values = f"{name} of {pair} ({fmt(va)} vs {fmt(vb)})"
    if ev.exact or atol == 0.0:
        same = va == vb or (math.isnan(va) and math.isnan(vb))
        row["test"] = "exact"
        if same:
            return Finding(key, Status.PASS, 0.0, "== 0", f"{values} is identical"), row
        message = f"{values} differs by {signed(difference)}; exact equality is required"
        return Finding(key, Status.FAIL, difference, "== 0", message), row
    level = f"{round(100 * (1 - 2 * ev.check.alpha))}%"
    test = _metric_test(ev, name, a, b, atol)
    limit = f"|difference| < {fmt(atol)}"
    if test is None:
        row["test"] = "none"
        ok = abs(difference) <= atol
        verdict = "within" if ok else "beyond"
        message = (
            f"{values} differs by {signed(difference)}, {verdict} the tolerance "
            f"{fmt(atol)} (no per-example values for a test)"
        )
        status = Status.PASS if ok else Status.FAIL
        return Finding(key, status, difference, f"<= {fmt(atol)}", message), row
    row.update(test)
    difference = test["difference"]
    row["difference"] = difference
    ci = test["ci"]
    extra = (
        f", exact McNemar p {pvalue_text(test['mcnemar_pvalue'])}"
        if "mcnemar_pvalue" in test
        else ""
    )
    stats = (
        f"{fmt(va)} vs {fmt(vb)}; difference {signed(difference)}, {level} CI "
        f"[{fmt(ci[0])}, {fmt(ci[1])}]{extra}; TOST p {pvalue_text(test['pvalue'])}"
    )
    if test["equivalent"]:
        message = f"{name} of {pair} is equivalent within ±{fmt(atol)} ({stats})"
        return Finding(key, Status.PASS, difference, limit, message), row
    message = (
        f"{name} of {pair} is not shown equivalent within ±{fmt(atol)} at alpha "
        f"{ev.check.alpha:g} ({stats})"
    )
    return Finding(key, Status.FAIL, difference, limit, message), row


def _metric_test(
    ev: Evaluation, name: str, a: Prepared, b: Prepared, atol: float
) -> dict[str, Any] | None:
    alpha = ev.check.alpha
    metric = next((m for m in ev.metrics if m.name == name), None)
    i, j = ev.prepared.index(a), ev.prepared.index(b)
    if metric is not None and metric in a.counted and metric in b.counted:
        only_a, only_b = (int(v) for v in ev.table.get("only", i, j))
        n = ev.table.n
        if name == "error_rate":
            only_a, only_b = only_b, only_a
        tost = tost_paired_accuracy_counts(only_a, only_b, n, margin=atol, alpha=alpha)
        mcnemar = mcnemar_exact_counts(only_a, only_b, n)
        return {
            "test": "tost_paired_accuracy",
            "difference": tost.difference,
            "ci": [tost.ci.low, tost.ci.high],
            "pvalue": tost.pvalue,
            "equivalent": tost.equivalent,
            "mcnemar_pvalue": mcnemar.pvalue,
            "discordant": [only_a, only_b],
        }
    moments = ev.table.moments.get((name, i, j))
    if moments is not None:
        mean, ci, pvalue, equivalent = _paired_mean_tost(moments, atol, alpha)
        return {
            "test": "tost_paired_mean",
            "difference": mean,
            "ci": list(ci),
            "pvalue": pvalue,
            "equivalent": equivalent,
        }
    return None
