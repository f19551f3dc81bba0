"""The canary's report: stage 1's findings, metrics and details, and the one-line summary.

`report_trickle` reads a finished `CanaryMonitor` and the trickle's bookkeeping
(`Trickle`) into a `ResultBuilder`. Each test's finding takes its limit's severity
(``max_latency_ratio``, ``max_psi``/``max_js``, ``max_disagreement``): a regression against
a WARN limit warns. ``details["trickle"]`` keeps the monitor's evidence, the per-arm
latency samples and the e-value trajectory the report's figures draw.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks._fields import held, held_or_none
from mlchecks._text import fmt, plural
from mlchecks.checks._canary_policy import TESTS, CanaryMonitor, shift_interval
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._series import even_indices, quantile_sample, significant
from mlchecks.checks._traffic import error_class, latency_quantiles
from mlchecks.conditions import AtMost
from mlchecks.protocols import Response
from mlchecks.result import Finding, Status

if TYPE_CHECKING:
    from mlchecks.checks._canary_fields import TrickleSettings

__all__ = ["SPLIT_NOTE", "Trickle", "report_trickle", "summary"]

#: Why split mode cannot catch a candidate that predicts differently request by request.
SPLIT_NOTE = (
    "split mode compares the two versions' class proportions, not individual predictions "
    "(each request goes to one version only), so a candidate that predicts another class for "
    "most requests with the same overall mix, e.g. one trained on inverted labels, passes it; "
    "use mode='shadow' to test how often the candidate disagrees with the baseline"
)


#: The most e-value points `Trickle.track` keeps before it thins them.
MAX_TRACKED = 20_000


def _arm() -> dict[str, Any]:
    return {"requests": 0, "errors": {}, "latencies": array("d"), "retries": 0}


@attrs.define
class Trickle:
    """What the trickle loop records besides the monitor: per-arm tallies and the path."""

    baseline: str
    arms: dict[str, dict[str, Any]] = attrs.Factory(
        lambda: {"candidate": _arm(), "baseline": _arm()}
    )
    consumed: int = 0
    elapsed_s: float = 0.0
    stop_reason: str = "the traffic ran out"
    trajectory: list[tuple[float, ...]] = attrs.Factory(list)  # log e-values, see `track`
    trajectory_requests: list[int] = attrs.Factory(list)  # the request of each entry
    stride: int = 1
    examples: list[dict[str, Any]] = attrs.Factory(list)  # mirrored requests that disagree

    def track(self, log_evalues: tuple[float, ...] | Callable[[], tuple[float, ...]]) -> None:
        """Keep the tests' log e-values after request ``consumed``: every request, then
        every other one (and so on) once `MAX_TRACKED` are kept, so memory stays bounded
        on a long record.

        ``log_evalues`` may be the monitor's `CanaryMonitor.log_evalues` itself, called only
        for a request that is kept (the e-values of the betting tests are computed when
        read)."""
        if self.consumed % self.stride:
            return
        self.trajectory.append(log_evalues() if callable(log_evalues) else log_evalues)
        self.trajectory_requests.append(self.consumed)
        if len(self.trajectory) >= MAX_TRACKED:
            self.trajectory[:] = self.trajectory[1::2]
            self.trajectory_requests[:] = self.trajectory_requests[1::2]
            self.stride *= 2

    def decided(self, decision: str, n_candidate_requests: int) -> bool:
        """Say why the stream stopped when the monitor decided; True when it did."""
        if decision == "fail":
            self.stop_reason = "a regression was detected"
        elif decision != "continue":
            self.stop_reason = f"the candidate served n_candidate_requests={n_candidate_requests}"
        return decision != "continue"

    def tally(self, arm: str, response: Response, version: str) -> bool:
        """Count one answer on ``arm``; True when it succeeded from ``version``, the one asked."""
        ok = response.ok and response.version in (None, version)
        self.count(
            arm,
            ok=ok,
            latency_s=response.latency_s,
            kind=None if ok else error_class(response) if not response.ok else "wrong_version",
            message=response.error or f"served by {response.version!r}",
            retries=response.n_retries,
        )
        return ok

    def count(
        self,
        arm: str,
        *,
        ok: bool,
        latency_s: float | None,
        kind: str | None,
        message: str | None,
        retries: int = 0,
    ) -> None:
        """Count one request on ``arm``: its latency when it succeeded, else its error."""
        tally = self.arms[arm]
        tally["requests"] += 1
        tally["retries"] += retries
        if not ok:
            kind = kind or "error"
            tally["errors"][kind] = tally["errors"].get(kind, 0) + 1
            tally.setdefault("first_error", message)
        elif latency_s is not None:
            tally["latencies"].append(latency_s)


def _trajectory(
    log_evalues: Sequence[tuple[float, ...]], requests: Sequence[int]
) -> dict[str, list[float]]:
    """Each test's e-value after up to `MAX_POINTS` requests; its peak and the end kept.

    A test that did not run (NaN throughout: disagreement outside shadow mode) is left out.
    """
    values = np.asarray(log_evalues, dtype=np.float64).reshape(-1, len(TESTS))
    ran = [k for k in range(len(TESTS)) if len(values) and not np.isnan(values[:, k]).all()]
    peaks = [int(np.nanargmax(values[:, k])) for k in ran]
    kept = even_indices(len(values), keep=[*peaks, len(values) - 1])
    evalues = np.exp(np.minimum(values[kept], 709.0))  # capped below float overflow
    out: dict[str, list[float]] = {"request": np.asarray(requests)[kept].tolist()}
    for k in ran:
        out[f"{TESTS[k]}_evalue"] = significant(evalues[:, k])
    return out


def _evidence(check: TrickleSettings, monitor: CanaryMonitor, trickle: Trickle) -> dict[str, Any]:
    evidence = monitor.evidence()
    evidence["stop_reason"] = trickle.stop_reason
    evidence["seconds"] = trickle.elapsed_s
    evidence["baseline"] = trickle.baseline
    evidence["arms"] = {
        name: {
            "requests": arm["requests"],
            "retries": arm["retries"],
            "errors": dict(arm["errors"]),
            "first_error": arm.get("first_error"),
            **latency_quantiles(arm["latencies"]),
            "latency_sample_s": quantile_sample(arm["latencies"], limit=200),
        }
        for name, arm in trickle.arms.items()
    }
    if check.mode == "split" and not monitor.accuracy_differences:
        evidence["note"] = SPLIT_NOTE  # nothing compared the predictions themselves
    # last: the longest entry
    evidence["trajectory"] = _trajectory(trickle.trajectory, trickle.trajectory_requests)
    return evidence


def _metrics(
    monitor: CanaryMonitor, trickle: Trickle, evidence: Mapping[str, Any]
) -> dict[str, float]:
    metrics = {
        "trickle.n_requests": float(trickle.consumed),
        "trickle.duration_s": trickle.elapsed_s,
        "trickle.errors.evalue": monitor.errors.evalue,
        "trickle.latency.ratio": monitor.latency_ratio,
        "trickle.latency.evalue": monitor.latency.evalue,
        "trickle.shift.evalue": monitor.shift.evalue,
        "trickle.shift.psi": monitor.psi,
        "trickle.shift.js": monitor.js,
    }
    errors = {"candidate": monitor.candidate_errors, "baseline": monitor.baseline_errors}
    for role, arm in evidence["arms"].items():
        n = arm["requests"]
        metrics[f"trickle.{role}.n_requests"] = float(n)
        metrics[f"trickle.{role}.n_errors"] = float(errors[role])
        metrics[f"trickle.{role}.n_retries"] = float(arm["retries"])
        if n:
            metrics[f"trickle.{role}.error_rate"] = errors[role] / n
        for q in ("p50_s", "p99_s"):
            if math.isfinite(arm[q]):
                metrics[f"trickle.{role}.latency.{q}"] = arm[q]
    return metrics


def _severity(*conditions: AtMost | None) -> Status:
    """The worst severity of the limits a regression crossed (FAIL when none is set)."""
    severities = [c.severity for c in conditions if c is not None]
    return Status.worst(severities) if severities else Status.FAIL


def report_trickle(
    check: TrickleSettings, monitor: CanaryMonitor, trickle: Trickle, b: ResultBuilder
) -> None:
    """Stage 1's findings (one per test, then the verdict ``trickle``), metrics and details."""
    cfg = monitor.config
    evidence = _evidence(check, monitor, trickle)
    b.detail("trickle", evidence)
    b.detail("baseline", trickle.baseline)
    b.update_metrics(_metrics(monitor, trickle, evidence))
    threshold = cfg.evalue_threshold
    reasons = set(monitor.reasons)
    severities: dict[str, Status] = {"errors": Status.FAIL}
    arms = evidence["arms"]
    n_c, n_b = (max(1, arms[arm]["requests"]) for arm in ("candidate", "baseline"))
    limit = f"e-value < {fmt(threshold)}"

    c_err, b_err = monitor.candidate_errors, monitor.baseline_errors
    rates = (
        f"candidate {c_err}/{arms['candidate']['requests']} = {c_err / n_c:.3%}, "
        f"baseline {b_err}/{arms['baseline']['requests']} = {b_err / n_b:.3%}"
    )
    errors_e = monitor.errors.evalue
    if "errors" in reasons:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(arms["candidate"]["errors"].items()))
        message = (
            f"the candidate fails more often than the baseline ({rates}; candidate errors: "
            f"{kinds}; e-value {fmt(errors_e)} >= {fmt(threshold)}); e.g. "
            f"{arms['candidate'].get('first_error')}"
        )
        b.note("trickle.errors", Status.FAIL, message, observed=errors_e, limit=limit)
    else:
        message = (
            f"no evidence that the candidate fails more often ({rates}; e-value "
            f"{fmt(errors_e)} < {fmt(threshold)})"
        )
        b.note("trickle.errors", Status.PASS, message, observed=errors_e, limit=limit)

    ratio, max_ratio = monitor.latency_ratio, held(check.max_latency_ratio)
    low, high = evidence["latency_ratio_interval"]
    lat_text = (
        f"latency ratio {fmt(ratio, 3)} (geometric mean of {len(monitor.differences)} pairs, "
        f"{1.0 - cfg.alpha_per_test:.1%} confidence sequence [{fmt(low, 3)}, {fmt(high, 3)}])"
        if monitor.differences
        else "no latency pairs yet"
    )
    medians = [arms[arm]["p50_s"] for arm in ("candidate", "baseline")]
    if all(math.isfinite(m) for m in medians):
        lat_text += (
            f"; median latency {fmt(medians[0] * 1e3, 3)} ms on the candidate, "
            f"{fmt(medians[1] * 1e3, 3)} ms on the baseline"
        )
    severities["latency"] = max_ratio.severity
    if "latency" in reasons:
        message = (
            f"the candidate is slower than max_latency_ratio {fmt(max_ratio.value)} allows: "
            f"{lat_text}, e-value {fmt(monitor.latency.evalue)} >= {fmt(threshold)}"
        )
        status = max_ratio.severity
    else:
        message = (
            f"no evidence that the candidate is slower than max_latency_ratio "
            f"{fmt(max_ratio.value)}: {lat_text}"
        )
        status = Status.PASS
    b.note("trickle.latency", status, message, observed=ratio, limit=max_ratio.describe())
    if monitor.tail is not None:
        severities["tail"] = _report_tail(check, monitor, b)

    psi_value, js_value = monitor.psi, monitor.js
    effect = f"PSI {fmt(psi_value, 3)}, JS {fmt(js_value, 3)}"
    shift_limit = _shift_limit(check)
    crossed = monitor.shift_crossed
    severities["shift"] = _severity(*(getattr(check, name) for name in crossed if name != "any"))
    sizes = _shift_sizes(monitor)
    if sizes:
        b.update_metrics(
            {
                f"trickle.shift.{measure}_{part}": value
                for measure, (est, low, high) in sizes.items()
                for part, value in (("corrected", est), ("low", low), ("high", high))
            }
        )
        level = 1.0 - 2.0 * cfg.shift_gate_alpha
        effect += "; " + ", ".join(
            f"{measure.upper()} bias-corrected {fmt(est, 3)}, {level:.1%} interval "
            f"[{fmt(low, 3)}, {fmt(high, 3)}]"
            for measure, (est, low, high) in sizes.items()
        )
    if "shift" in reasons:
        classes = ", ".join(f"{k}: {c}/{b_}" for k, (c, b_) in evidence["classes"].items())
        shown = f"; shown larger than {' and '.join(crossed)}" if crossed != ("any",) else ""
        message = (
            f"the candidate's predicted-class distribution differs from the baseline's "
            f"({effect}; e-value {fmt(monitor.shift.evalue)} >= {fmt(threshold)}; "
            f"classes candidate/baseline: {classes}{shown})"
        )
        status = severities["shift"]
    else:
        status = Status.PASS
        note = ""
        if monitor.shift_tolerated:
            above = [
                name
                for name in ("max_psi", "max_js")
                if getattr(cfg, name) is not None
                and name[4:] in sizes
                and sizes[name[4:]][2] > getattr(cfg, name)
            ]
            if above:
                status = Status.WARN
                note = (
                    " (inconclusive: a statistically detectable shift whose size is within "
                    f"noise of {' and '.join(above)}: the interval holds the limit)"
                )
            else:
                note = " (a statistically detectable shift smaller than the effect-size limit)"
        message = (
            f"no prediction shift shown beyond the limit ({effect}; e-value "
            f"{fmt(monitor.shift.evalue)}){note}"
        )
    b.note("trickle.shift", status, message, observed=psi_value, limit=shift_limit)

    clause = ""
    if check.mode == "shadow":
        severities["disagreement"] = _severity(held_or_none(check.max_disagreement))
        clause = _report_disagreement(check, monitor, b)
    accuracy = check._accuracy_limit()
    if monitor.accuracy is not None and accuracy is not None:
        severities["accuracy"] = accuracy.severity
        clause += _report_accuracy(monitor, accuracy, b)

    consumed = trickle.consumed
    served = f"the candidate served {monitor.n_candidate} of {consumed} requests"
    quota = f"n_candidate_requests={check.n_candidate_requests}"
    if monitor.decision == "fail":
        status = Status.worst(severities[r] for r in reasons)
        message = (
            f"{check._stage} stopped after {consumed} requests on a regression in "
            f"{', '.join(sorted(reasons))} ({served})"
        )
    elif monitor.decision == "insufficient":  # Argo Rollouts PASSes this (#4479)
        status = Status.WARN
        message = (
            f"insufficient data after {consumed} requests: none of the candidate's "
            f"{monitor.n_candidate} requests succeeded ({rates}), so nothing it served "
            "could be judged; the live traffic fails on both versions"
        )
    elif monitor.decision == "pass":
        status = Status.PASS
        message = f"no regression detected after {consumed} requests; {served} ({quota})"
    else:
        status = Status.WARN
        message = (
            f"inconclusive after {consumed} requests: {trickle.stop_reason} before the "
            f"candidate served {quota} ({served}; no regression detected so far: errors "
            f"e-value {fmt(errors_e, 3)}, {lat_text}, {effect}{clause})"
        )
    b.note("trickle", status, message, observed=float(consumed))


def _report_tail(check: TrickleSettings, monitor: CanaryMonitor, b: ResultBuilder) -> Status:
    """The tail-latency finding; returns the severity of its limit."""
    tail, cfg = monitor.tail, monitor.config
    condition = held_or_none(check.max_tail_ratio)
    assert tail is not None  # the tail test runs with a limit
    assert condition is not None
    b.update_metrics({"trickle.tail.ratio": tail.ratio, "trickle.tail.evalue": tail.evalue})
    (c, b_), (n_c, n_b) = tail.n_slow, tail.n_judged
    quantile = f"p{fmt(100 * cfg.latency_quantile)}"
    if not n_c or not n_b:
        message = (
            f"not judged yet: a request is slow beyond the {quantile} of all earlier "
            f"latencies, which needs {tail.warmup} latencies first"
        )
        b.note("trickle.tail", Status.PASS, message, limit=condition.describe())
        return condition.severity
    counts = (
        f"slower than the running {quantile} of both versions' latencies: candidate "
        f"{c}/{n_c} = {c / n_c:.2%}, baseline {b_}/{n_b} = {b_ / n_b:.2%}, "
        f"ratio {fmt(tail.ratio, 3)}; e-value {fmt(tail.evalue)}"
    )
    threshold = fmt(cfg.evalue_threshold)
    if "tail" in monitor.reasons:
        status = condition.severity
        message = (
            f"the candidate is slow more than max_tail_ratio {fmt(condition.value)} times as "
            f"often as the baseline ({counts} >= {threshold}): its slowest requests are "
            "slower even where its typical latency is not"
        )
    else:
        status = Status.PASS
        message = (
            f"no evidence that the candidate is slow more than max_tail_ratio "
            f"{fmt(condition.value)} times as often as the baseline ({counts} < {threshold})"
        )
    b.note("trickle.tail", status, message, observed=tail.ratio, limit=condition.describe())
    return condition.severity


def _report_disagreement(check: TrickleSettings, monitor: CanaryMonitor, b: ResultBuilder) -> str:
    """The shadow-mode disagreement finding; returns a clause for the inconclusive verdict."""
    cfg = monitor.config
    n, k = monitor.n_compared, monitor.n_disagreed
    rate = monitor.disagreement_rate
    low, high = monitor.disagreement_interval()
    test = monitor.disagreement
    b.update_metrics(
        {
            "trickle.disagreement.n_pairs": n,
            "trickle.disagreement.rate": rate,
            "trickle.disagreement.rate_low": low,
            "trickle.disagreement.rate_high": high,
            "trickle.disagreement.evalue": None if test is None else test.evalue,
        }
    )
    condition = held_or_none(check.max_disagreement)
    limit = "reported only" if condition is None else condition.describe()
    observed = None if n == 0 else rate
    name = "trickle.disagreement"
    if n == 0:
        pairs = len(monitor.differences)
        why = (
            f"none of the {pairs} mirrored requests both versions answered gave outputs "
            "with a class or a score to compare (pass classify=...)"
            if pairs
            else "no mirrored request was answered by both versions yet"
        )
        message = f"the disagreement rate could not be measured: {why}"
        b.note(name, Status.WARN if pairs else Status.PASS, message, limit=limit)
        return ""
    level = 1.0 - 2.0 * cfg.alpha_per_test
    counts = (
        f"{fmt(k)} of {n} paired requests (disagreement rate {fmt(rate, 3)}, {level:.1%} "
        f"confidence sequence [{fmt(low, 3)}, {fmt(high, 3)}])"
    )
    clause = f", disagreement rate {fmt(rate, 3)} on {n} pairs"
    threshold = fmt(cfg.evalue_threshold)
    if test is None or condition is None:
        why = "max_disagreement=None" if condition is None else "no rate exceeds 1"
        message = (
            f"the candidate's prediction differs from the baseline's on {counts}; not judged "
            f"({why})"
        )
        b.note(name, Status.PASS, message, observed=observed, limit=limit)
    elif "disagreement" in monitor.reasons:
        message = (
            f"the candidate's prediction differs from the baseline's on {counts}, more often "
            f"than max_disagreement {fmt(condition.value)} allows (e-value {fmt(test.evalue)} "
            f">= {threshold}): request by request it predicts differently from the live "
            "model, as a model trained on wrong or inverted labels does"
        )
        b.note(name, condition.severity, message, observed=observed, limit=limit)
    else:
        message = (
            f"no evidence that the candidate disagrees with the baseline more often than "
            f"max_disagreement {fmt(condition.value)}: its prediction differs on {counts}, "
            f"e-value {fmt(test.evalue)} < {threshold}"
        )
        b.note(name, Status.PASS, message, observed=observed, limit=limit)
    return clause


def _report_accuracy(monitor: CanaryMonitor, condition: AtMost, b: ResultBuilder) -> str:
    """The accuracy finding on labelled requests; returns a clause for the inconclusive
    verdict."""
    test, cfg = monitor.accuracy, monitor.config
    assert test is not None
    evidence = monitor.accuracy_evidence()
    (n_c, n_b), (acc_c, acc_b) = evidence["labelled"], evidence["accuracy"]
    low, high = evidence["accuracy_drop_interval"]
    pairs, drop = evidence["accuracy_pairs"], evidence["accuracy_drop"]
    b.update_metrics(
        {
            "trickle.accuracy.n_pairs": float(pairs),
            "trickle.accuracy.candidate": acc_c,
            "trickle.accuracy.baseline": acc_b,
            "trickle.accuracy.drop": drop,
            "trickle.accuracy.drop_low": low,
            "trickle.accuracy.drop_high": high,
            "trickle.accuracy.evalue": test.evalue,
        }
    )
    name, limit = "trickle.accuracy", condition.describe()
    if not pairs:
        message = (
            f"not judged yet: no labelled candidate request paired with a labelled baseline "
            f"request ({n_c} labelled candidate requests, {n_b} baseline)"
        )
        b.note(name, Status.PASS, message, limit=limit)
        return ""
    level = 1.0 - 2.0 * cfg.alpha_per_test
    counts = (
        f"accuracy {fmt(acc_c, 3)} on {n_c} labelled candidate requests, {fmt(acc_b, 3)} on "
        f"{n_b} baseline; drop {fmt(drop, 3)} on {pairs} pairs, {level:.1%} confidence "
        f"sequence [{fmt(low, 3)}, {fmt(high, 3)}]"
    )
    threshold = fmt(cfg.evalue_threshold)
    if "accuracy" in monitor.reasons:
        message = (
            f"the candidate is less accurate than max_accuracy_drop {fmt(condition.value)} "
            f"allows on labelled requests ({counts}; e-value {fmt(test.evalue)} >= {threshold})"
        )
        b.note(name, condition.severity, message, observed=drop, limit=limit)
    else:
        message = (
            f"no evidence that the candidate's accuracy is more than max_accuracy_drop "
            f"{fmt(condition.value)} below the baseline's ({counts}; e-value "
            f"{fmt(test.evalue)} < {threshold})"
        )
        b.note(name, Status.PASS, message, observed=drop, limit=limit)
    return f", accuracy drop {fmt(drop, 3)} on {pairs} labelled pairs"


def _shift_sizes(monitor: CanaryMonitor) -> dict[str, tuple[float, float, float]]:
    """Each limited effect size's (bias-corrected estimate, low, high) at the gate's level.

    Each end at ``shift_gate_alpha``: the lower end is above a limit exactly when the gate
    opens for it, so the interval shown and the decision agree.
    """
    cfg = monitor.config
    _, cand, base = monitor.label_counts()
    if not cand.size or cand.sum() == 0 or base.sum() == 0:
        return {}
    return {
        measure: shift_interval(cand, base, cfg.shift_gate_alpha, measure=measure)
        for measure, limit in (("psi", cfg.max_psi), ("js", cfg.max_js))
        if limit is not None
    }


def _shift_limit(check: TrickleSettings) -> str:
    parts = []
    psi, js = held_or_none(check.max_psi), held_or_none(check.max_js)
    if psi is not None:
        parts.append(f"PSI {psi.describe()}")
    if js is not None:
        parts.append(f"JS {js.describe()}")
    return " and ".join(parts) or "no significant shift"


def summary(
    findings: Sequence[Finding],
    candidate: str,
    note: str | None,
    *,
    passed: str = "stage 0 and the live trickle",
) -> str:
    """The result's one line: the first failure, else the first warning, else what passed
    (``passed`` names what the candidate went through)."""
    bad = [f for f in findings if f.status >= Status.FAIL]
    if bad:
        head = bad[0]
        if head.name == "trickle":  # the verdict line; the test's own message says more
            head = next((f for f in bad if f.name.startswith("trickle.")), head)
        more = f" (and {plural(len(bad) - 1, 'more failed condition')})" if len(bad) > 1 else ""
        return head.message + more
    caveat = (
        " (split mode compares class mixes; mode='shadow' compares predictions)" if note else ""
    )
    warn = [f for f in findings if f.status is Status.WARN]
    if warn:
        return warn[0].message + caveat
    trickle = next((f for f in findings if f.name == "trickle" and f.status is Status.PASS), None)
    if trickle is not None:
        live = f" over {int(trickle.observed):,} live requests" if trickle.observed else ""
        return (
            f"Version {candidate!r} did no worse than the current version{live}. It passed "
            f"{passed}: {trickle.message}{caveat}."
        )
    return (
        f"Version {candidate!r} loads, serves production inputs and matches its offline "
        "predictions."
    )
