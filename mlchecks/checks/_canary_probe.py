"""Stage 0 of the canary, judged: the probes' errors, versions, latency, outputs, agreement.

`judge_probes` turns the candidate's answers to the probe inputs into findings, metrics and
details on a `ResultBuilder`; `judge_metadata` compares the library versions the model was
trained with and those the server runs.

The probe-error finding is a test with a stated error rate, not a count against a limit
(`probe_error_decision`): with a baseline the same probes go to both versions and an exact
one-sided test on the discordant pairs (McNemar's conditional binomial test) asks whether
the candidate fails more often; without one, ``max_probe_errors`` is judged on a
Clopper-Pearson bound of the candidate's error count. A candidate failing most probes
fails whatever the baseline does.

>>> int(probe_error_decision(100, 8, 8, 0, max_errors=0, alpha=0.0125, paired=True))
2
>>> int(probe_error_decision(100, 1, 1, 1, max_errors=0, alpha=0.0125, paired=True))
0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import binom

from mlchecks._fields import held, held_or_none
from mlchecks._text import fmt, plural
from mlchecks.checks._canary_agreement import judge_outputs
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._traffic import (
    error_class,
    latency_quantiles,
)
from mlchecks.protocols import Response
from mlchecks.result import Status
from mlchecks.stats.intervals import clopper_pearson

if TYPE_CHECKING:
    from mlchecks.checks.canary import CanaryCheck

__all__ = [
    "PASS_CODE",
    "WARN_CODE",
    "FAIL_CODE",
    "error_count_bounds",
    "judge_metadata",
    "judge_probes",
    "paired_excess_pvalue",
    "probe_error_decision",
]

_OUTPUTS_LIMIT = "numeric, one shape, finite"
#: `probe_error_decision`'s verdicts.
PASS_CODE, WARN_CODE, FAIL_CODE = 0, 1, 2


def paired_excess_pvalue(candidate_only: Any, baseline_only: Any) -> Any:
    """One-sided exact p-value that the candidate fails more often than the baseline.

    McNemar's conditional test: of the probes exactly one version failed, each is the
    candidate's with probability 1/2 when both fail equally often, whatever their common
    error rate; the p-value is ``P(X >= candidate_only)`` for ``X ~ Bin(discordant, 1/2)``
    (1 with no discordant probe). Vectorized.

    >>> round(float(paired_excess_pvalue(7, 0)), 5)
    0.00781
    """
    b = np.asarray(candidate_only, dtype=np.float64)
    c = np.asarray(baseline_only, dtype=np.float64)
    return binom.sf(b - 1.0, b + c, 0.5)


def error_count_bounds(errors: Any, n: Any, alpha: float) -> tuple[Any, Any]:
    """Clopper-Pearson bounds ``(low, high)`` of the expected error count in ``n`` requests.

    Each is one-sided at ``alpha`` (the rate's exact bound times ``n``). Vectorized.

    >>> low, high = error_count_bounds(0, 100, 0.05)
    >>> float(low), round(float(high), 2)
    (0.0, 2.95)
    """
    size = np.asarray(n, dtype=np.float64)
    low, high = clopper_pearson(errors, size, 1.0 - alpha, upper_tail=alpha)
    return low * size, high * size


def probe_error_decision(
    n: Any,
    candidate_errors: Any,
    candidate_only: Any,
    baseline_only: Any,
    *,
    max_errors: float,
    alpha: float,
    paired: bool,
) -> Any:
    """Stage 0's probe-error verdict: `PASS_CODE`, `WARN_CODE` or `FAIL_CODE` (vectorized).

    - The candidate failed more than half of the ``n`` probes: FAIL (it cannot serve).
    - ``paired`` (the same probes also went to a baseline): FAIL when the candidate failed
      more than ``max_errors`` probes the baseline answered beyond those the baseline
      alone failed, and `paired_excess_pvalue` is at most ``alpha``; else PASS. Errors both
      versions make (a flaky network, a bad input) are no evidence against the candidate.
    - Unpaired: FAIL when the lower Clopper-Pearson bound of the candidate's expected
      error count is above ``max_errors`` (at ``max_errors=0``, any error), PASS when the
      count is at most ``max_errors``, WARN in between.

    Args:
        n: probes sent.
        candidate_errors: probes the candidate failed.
        candidate_only, baseline_only: probes only the candidate (only the baseline) failed.
        max_errors: the ``max_probe_errors`` limit.
        alpha: the test's level.
        paired: whether a baseline answered the same probes.
    """
    n_a = np.asarray(n, dtype=np.float64)
    k = np.asarray(candidate_errors, dtype=np.float64)
    if paired:
        b = np.asarray(candidate_only, dtype=np.float64)
        c = np.asarray(baseline_only, dtype=np.float64)
        fail = (b - c > max_errors) & (paired_excess_pvalue(b, c) <= alpha)
        verdict = np.where(fail, FAIL_CODE, PASS_CODE)
    else:
        low, _ = error_count_bounds(k, n_a, alpha)
        verdict = np.where(
            low > max_errors, FAIL_CODE, np.where(k <= max_errors, PASS_CODE, WARN_CODE)
        )
    return np.where(2.0 * k > n_a, FAIL_CODE, verdict)


def judge_probes(
    check: CanaryCheck,
    probes: list[Any],
    responses: list[Response],
    b: ResultBuilder,
    *,
    baseline: tuple[str, list[Response]] | None = None,
    alpha: float = 0.05,
) -> None:
    """Errors by class, which version answered, latency, output shape and offline agreement.

    ``baseline`` is the baseline version and its answers to the same probes (None: no
    baseline); ``alpha`` the level of the probe-error test.
    """
    n = len(probes)
    errors: dict[str, list[int]] = {}
    for i, r in enumerate(responses):
        if not r.ok:
            errors.setdefault(error_class(r), []).append(i)
    n_errors = sum(len(v) for v in errors.values())
    b.update_metrics(
        {"probe.n_requests": n, "probe.n_errors": n_errors, "probe.error_rate": n_errors / n}
    )
    b.detail(
        "probe_errors",
        {
            kind: {"count": len(rows), "first_row": rows[0], "first": responses[rows[0]].error}
            for kind, rows in errors.items()
        },
    )
    _judge_errors(check, responses, errors, b, baseline=baseline, alpha=alpha)
    ok = [i for i, r in enumerate(responses) if r.ok]
    wrong = [
        responses[i].version for i in ok if responses[i].version not in (None, check.candidate)
    ]
    if wrong:
        b.note(
            "probe.version",
            Status.FAIL,
            f"{len(wrong)} of {len(ok)} probe responses came from version {wrong[0]!r}, "
            f"not the candidate {check.candidate!r}",
            observed=float(len(wrong)),
            limit="== 0",
        )
    latencies = [responses[i].latency_s for i in ok]
    quantiles = latency_quantiles(latencies)
    b.update_metrics({f"probe.latency.{k}": v for k, v in quantiles.items()})
    if latencies:
        b.judge(
            "probe.latency.p99_s",
            held_or_none(check.max_probe_latency_s),
            quantiles["p99_s"],
            context=f" (p99 latency of the candidate's {len(ok)} probe responses, s)",
        )
    if ok:
        judge_outputs(check, probes, responses, ok, b)


def _baseline_usable(
    baseline: tuple[str, list[Response]] | None,
) -> tuple[str | None, list[bool] | None, str]:
    """The baseline's name and per-probe success, or why it is not used."""
    if baseline is None:
        return None, None, "no baseline to compare with"
    version, answers = baseline
    ok = [r.ok and r.version in (None, version) for r in answers]
    if 2 * (len(ok) - sum(ok)) > len(ok):
        why = (
            f"the baseline {version!r} failed {len(ok) - sum(ok)} of the {len(ok)} probes "
            "itself, so it is no yardstick"
        )
        return None, None, why
    return version, ok, ""


def _judge_errors(
    check: CanaryCheck,
    responses: list[Response],
    errors: Mapping[str, list[int]],
    b: ResultBuilder,
    *,
    baseline: tuple[str, list[Response]] | None,
    alpha: float,
) -> None:
    """The probe-error finding (`probe_error_decision`), its metrics and its message."""
    n = len(responses)
    n_errors = sum(len(v) for v in errors.values())
    limit = held(check.max_probe_errors)
    base_version, base_ok, why = _baseline_usable(baseline)
    cand_ok = [r.ok for r in responses]
    cand_only = base_only = 0
    if base_ok is not None:
        cand_only = sum(1 for c, o in zip(cand_ok, base_ok, strict=True) if o and not c)
        base_only = sum(1 for c, o in zip(cand_ok, base_ok, strict=True) if c and not o)
    code = int(
        probe_error_decision(
            n,
            n_errors,
            cand_only,
            base_only,
            max_errors=limit.value,
            alpha=alpha,
            paired=base_ok is not None,
        )
    )
    failed = f"{n_errors} of {n} probe requests to version {check.candidate!r} failed"
    if errors:
        by_class = ", ".join(f"{len(v)} {k}" for k, v in sorted(errors.items()))
        first = responses[errors[max(errors, key=lambda k: len(errors[k]))][0]].error
        failed += f" ({by_class} errors; e.g. {first})"
    level = f"{1.0 - alpha:.4g}"
    if base_ok is not None:
        p_value = float(paired_excess_pvalue(cand_only, base_only))
        base_errors = len(base_ok) - sum(base_ok)
        b.update_metrics(
            {
                "probe.baseline.n_errors": base_errors,
                "probe.errors.candidate_only": cand_only,
                "probe.errors.baseline_only": base_only,
                "probe.errors.p_value": p_value,
            }
        )
        compared = (
            f"the baseline {base_version!r} failed {base_errors} of the same probes; "
            f"{cand_only} failed on the candidate only, {base_only} on the baseline only "
            f"(one-sided exact test p = {fmt(p_value, 3)}"
        )
        limit_text = f"excess <= {fmt(limit.value)} or p > {fmt(alpha, 3)}"
        if code == FAIL_CODE and 2 * n_errors <= n:
            message = (
                f"{failed}; {compared} <= {fmt(alpha, 3)}): the candidate fails more often "
                f"than the baseline, by more than max_probe_errors {fmt(limit.value)}"
            )
        elif code == FAIL_CODE:
            message = f"{failed}: the candidate fails most probes ({compared}))"
        else:
            why_not = (
                f" > {fmt(alpha, 3)})"
                if p_value > alpha
                else f"; an excess of {cand_only - base_only} is within max_probe_errors "
                f"{fmt(limit.value)})"
            )
            message = (
                f"{n - n_errors} of {n} probe requests to version {check.candidate!r} "
                f"succeeded; {compared}{why_not}: no evidence that the candidate fails more "
                "often than the baseline"
            )
    else:
        low, high = (float(v) for v in error_count_bounds(n_errors, n, alpha))
        b.update_metrics({"probe.errors.low": low, "probe.errors.high": high})
        bound = f"{level} confidence bounds of the expected count [{fmt(low, 3)}, {fmt(high, 3)}]"
        limit_text = f"<= {fmt(limit.value)} (count; FAIL when the lower bound is above)"
        if code == FAIL_CODE and 2 * n_errors > n:
            message = f"{failed}: the candidate fails most probes ({why})"
        elif code == FAIL_CODE:
            message = f"{failed}, more than max_probe_errors {fmt(limit.value)} ({bound}; {why})"
        elif code == WARN_CODE:
            message = (
                f"inconclusive: {failed}, more than max_probe_errors {fmt(limit.value)} but "
                f"within noise of it ({bound}; {why})"
            )
        else:
            message = (
                f"{n - n_errors} of {n} probe requests to version {check.candidate!r} "
                f"succeeded ({bound}; {why})"
            )
    if code == FAIL_CODE:
        status = Status.FAIL if 2 * n_errors > n else limit.severity
    else:
        status = Status.WARN if code == WARN_CODE else Status.PASS
    b.note("probe.errors", status, message, observed=float(n_errors), limit=limit_text)


def judge_metadata(check: CanaryCheck, b: ResultBuilder) -> None:
    """Every component in both ``trained_with`` and ``serving_with`` must match exactly.

    Component names are the user's, so they go in the messages and ``details["metadata"]``,
    never in finding names: ``metadata.skew`` (FAIL), ``metadata.missing`` (WARN: the
    server does not report a component) or ``metadata`` (PASS, or FAIL when reading
    ``serving_with`` raised).
    """
    trained_with = check.trained_with
    if trained_with is None or check.serving_with is None:
        return
    try:
        source = check.serving_with
        serving = dict(source() if callable(source) else source)
    except Exception as exc:
        message = f"reading serving_with raised {type(exc).__name__}: {exc}"
        b.note("metadata", Status.FAIL, message)
        return
    missing = [key for key in trained_with if key not in serving]
    skewed = [
        key
        for key in trained_with
        if key in serving and str(serving[key]) != str(trained_with[key])
    ]
    b.detail(
        "metadata",
        {
            "trained_with": {str(k): str(v) for k, v in trained_with.items()},
            "serving_with": {str(k): str(v) for k, v in serving.items()},
            "skewed": skewed,
            "missing": missing,
        },
    )
    if skewed:
        pairs = "; ".join(
            f"{key} {trained_with[key]!r} in training but {serving[key]!r} on the server"
            for key in skewed
        )
        message = f"version skew in {plural(len(skewed), 'component')}: {pairs}"
        b.note("metadata.skew", Status.FAIL, message, observed=float(len(skewed)), limit="== 0")
    if missing:
        names = ", ".join(f"{key!r} (trained with {trained_with[key]!r})" for key in missing)
        message = f"the server does not report its version of {names}"
        b.note("metadata.missing", Status.WARN, message, observed=float(len(missing)), limit="== 0")
    if not skewed and not missing:
        versions = ", ".join(f"{k} {v}" for k, v in trained_with.items())
        message = f"the server runs the versions the model was trained with ({versions})"
        b.note("metadata", Status.PASS, message, limit="all equal")
