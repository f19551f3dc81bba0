"""What `mlchecks.serving.JudgeService` answers: the verdict JSON, Flagger's hooks, metrics.

Pure functions of one `Snapshot` of the judge's live state, so each controller's contract
is testable without a socket:

- `Snapshot.document` is the ``/verdict`` JSON for Argo Rollouts' Web metric provider;
- `flagger_answer` is the status and body answering one of Flagger's webhooks;
- `prometheus_text` is the ``/metrics`` page (Prometheus text format 0.0.4).

>>> snap = Snapshot(baseline="v1", candidate="v2", verdict="fail", reasons=("errors",))
>>> snap.document()["fail"], flagger_answer("rollback", snap.verdict)[0]
(True, 200)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput

__all__ = [
    "HOLD",
    "HOOKS",
    "VERDICTS",
    "Snapshot",
    "Watch",
    "check_flagger_payload",
    "error_rates",
    "json_safe",
    "flagger_answer",
    "prometheus_text",
    "judged_tests",
]

#: The verdicts, in the order ``/metrics`` lists them.
VERDICTS = ("pass", "fail", "inconclusive", "insufficient data")
#: Flagger's webhook types (``analysis.webhooks[].type``).
HOOKS = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)
#: The status that holds a Flagger gate: Flagger treats any status above 202 as "no".
HOLD = 412
# The tests and the evidence keys of their figures: e-value, estimate, interval, limit.
_TESTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("errors", "errors_evalue", "error_rate_difference", "", ""),
    ("latency", "latency_evalue", "latency_ratio", "latency_ratio_interval", "max_latency_ratio"),
    ("tail", "tail_evalue", "tail_ratio", "", "max_tail_ratio"),
    ("shift", "shift_evalue", "psi", "", "max_psi"),
    ("disagreement", "disagreement_evalue", "disagreement_rate", "disagreement_interval", ""),
    ("accuracy", "accuracy_evalue", "accuracy_drop", "accuracy_drop_interval", ""),
)
_TEST_LIMITS = {"disagreement": "max_disagreement", "accuracy": "max_accuracy_drop"}
#: The limits ``/metrics`` exposes (those the judge has).
LIMITS = (
    "max_latency_ratio",
    "max_tail_ratio",
    "max_psi",
    "max_js",
    "max_disagreement",
    "max_accuracy_drop",
)


class Watch(Protocol):
    """What the service needs of a ``CanaryWatch`` (the judge's live state)."""

    @property
    def decision(self) -> str: ...

    @property
    def verdict(self) -> str: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...

    @property
    def n_records(self) -> int: ...

    def observe(self, item: Any) -> str: ...

    def evidence(self) -> dict[str, Any]: ...


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _finite(value: Any) -> float | None:
    """A finite number as a float; None for anything else (JSON has no NaN)."""
    number = _number(value)
    return None if number is None or not math.isfinite(number) else number


def _pair(value: Any) -> list[float | None] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return [_finite(value[0]), _finite(value[1])]
    return None


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, in nested dicts and lists too.

    Strict JSON readers (Go's ``encoding/json``, which Argo Rollouts uses) refuse ``NaN``.

    >>> json_safe({"ratio": float("nan"), "interval": [0.5, float("inf")], "n": 3})
    {'ratio': None, 'interval': [0.5, None], 'n': 3}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def error_rates(evidence: Mapping[str, Any]) -> dict[str, float]:
    """The error rate of ``"candidate"`` and ``"baseline"``, from the evidence's counts.

    >>> error_rates({"requests": 100, "candidate_requests": 10, "candidate_errors": 1,
    ...              "baseline_errors": 9})
    {'candidate': 0.1, 'baseline': 0.1}
    """
    candidate = evidence.get("candidate_requests") or 0
    baseline = evidence.get("baseline_requests")
    if baseline is None:
        total = evidence.get("requests") or 0
        baseline = candidate if evidence.get("mode") == "shadow" else total - candidate
    rates: dict[str, float] = {}
    for role, n in (("candidate", candidate), ("baseline", baseline)):
        errors = _number(evidence.get(f"{role}_errors"))
        if errors is not None and isinstance(n, int) and n > 0:
            rates[role] = errors / n
    return rates


def judged_tests(evidence: Mapping[str, Any], reasons: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each test that ran: e-value, threshold, rejected, estimate, interval, limit.

    >>> judged_tests({"latency_evalue": 2.0, "evalue_threshold": 80.0, "latency_ratio": 1.1,
    ...             "latency_ratio_interval": [0.9, 1.3], "max_latency_ratio": 1.2}, ())
    ... # doctest: +NORMALIZE_WHITESPACE
    {'latency': {'evalue': 2.0, 'threshold': 80.0, 'rejected': False, 'estimate': 1.1,
                 'interval': [0.9, 1.3], 'limit': 1.2}}
    """
    failed = set(reasons)
    threshold = _finite(evidence.get("evalue_threshold"))
    given = evidence.get("tests")
    table: dict[str, dict[str, Any]] = {}
    for name, evalue_key, estimate_key, interval_key, limit_key in _TESTS:
        if _number(evidence.get(evalue_key)) is None:
            continue
        estimate = _finite(evidence.get(estimate_key))
        if name == "errors" and estimate is None:
            rates = error_rates(evidence)
            if len(rates) == 2:
                estimate = rates["candidate"] - rates["baseline"]
        limit = limit_key or _TEST_LIMITS.get(name, "")
        table[name] = {
            "evalue": _finite(evidence.get(evalue_key)),
            "threshold": threshold,
            "rejected": name in failed,
            "estimate": estimate,
            "interval": _pair(evidence.get(interval_key)) if interval_key else None,
            "limit": _finite(evidence.get(limit)) if limit else None,
        }
        if isinstance(given, Mapping) and isinstance(given.get(name), Mapping):
            table[name].update(given[name])
    return table


@attrs.frozen(kw_only=True)
class Snapshot:
    """One consistent reading of the judge's live state (taken under the service's lock)."""

    baseline: str
    candidate: str
    verdict: str = "inconclusive"
    decision: str = "continue"
    reasons: tuple[str, ...] = ()
    n_records: int = 0
    bad_lines: int = 0
    n_candidate_requests: int | None = None
    evidence: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def of(cls, watch: Watch, *, baseline: str, candidate: str, **counts: Any) -> Snapshot:
        """Read ``watch`` (call it with the watch's lock held)."""
        return cls(
            baseline=baseline,
            candidate=candidate,
            verdict=watch.verdict,
            decision=watch.decision,
            reasons=tuple(watch.reasons),
            n_records=int(watch.n_records),
            evidence=dict(watch.evidence()),
            **counts,
        )

    @property
    def candidate_requests(self) -> int:
        """How many requests the candidate served."""
        return int(self.evidence.get("candidate_requests") or 0)

    def message(self) -> str:
        """One line saying the verdict and why.

        >>> Snapshot(baseline="v1", candidate="v2", verdict="fail",
        ...          reasons=("errors",), n_records=812).message()
        "candidate 'v2' failed errors after 812 records"
        """
        who = f"candidate {self.candidate!r}"
        if self.verdict == "fail":
            return f"{who} failed {', '.join(self.reasons)} after {self.n_records} records"
        if self.verdict == "pass":
            return f"{who} passed after {self.candidate_requests} candidate requests"
        if self.verdict == "insufficient data":
            return (
                f"insufficient data: none of {who}'s {self.candidate_requests} requests succeeded"
            )
        target = self.n_candidate_requests
        of = "" if target is None else f" of {target}"
        return f"{self.verdict}: {self.candidate_requests}{of} candidate requests so far"

    def document(self) -> dict[str, Any]:
        """The ``/verdict`` JSON (see `mlchecks.serving.judge_service`)."""
        return {
            "verdict": self.verdict,
            "decision": self.decision,
            "pass": self.verdict == "pass",
            "fail": self.verdict == "fail",
            "reasons": list(self.reasons),
            "message": self.message(),
            "baseline": self.baseline,
            "candidate": self.candidate,
            "records": self.n_records,
            "candidate_requests": self.candidate_requests,
            "bad_lines": self.bad_lines,
            "tests": judged_tests(self.evidence, self.reasons),
        }


# --------------------------------------------------------------------------- Flagger


def flagger_answer(hook: str, verdict: str, message: str = "") -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body answering Flagger's ``hook`` given the ``verdict``.

    Flagger goes on at 200-202 and holds on anything else: gates and ``rollout`` pass
    while the verdict is ``"pass"`` or ``"inconclusive"`` (still watching), and hold on
    ``"fail"`` and on ``"insufficient data"`` (none of the candidate's requests succeeded:
    more traffic should not go to it); ``confirm-promotion`` only on ``"pass"``;
    ``rollback`` answers 200, "roll back now", only on ``"fail"``.

    >>> flagger_answer("rollout", "inconclusive")[0], flagger_answer("rollout", "fail")[0]
    (200, 412)
    >>> flagger_answer("rollout", "insufficient data")[0]
    412
    >>> flagger_answer("rollback", "fail")[0], flagger_answer("rollback", "pass")[0]
    (200, 412)
    """
    if hook in ("post-rollout", "event"):
        go, why = True, "acknowledged"
    elif hook == "confirm-promotion":
        go = verdict == "pass"
        why = "promote" if go else "hold the promotion"
    elif hook == "rollback":
        go = verdict == "fail"
        why = "roll back" if go else "no rollback"
    elif hook in HOOKS:
        go = verdict in ("pass", "inconclusive")
        why = "proceed" if go else "halt"
    else:
        raise InvalidInput(f"'hook' must be one of {', '.join(HOOKS)} (got {hook!r})")
    reason = f"{why}: {message}" if message else why
    return (200 if go else HOLD), {"hook": hook, "verdict": verdict, "reason": reason}


def check_flagger_payload(payload: Any) -> Mapping[str, Any]:
    """``payload`` when it has the shape of Flagger's webhook payload; else `InvalidInput`.

    >>> check_flagger_payload({"name": "podinfo", "namespace": "test"})
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'phase' is missing (Flagger sends the canary's phase)
    """
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"a Flagger payload must be a JSON object (got {describe(payload)})")
    for key in ("name", "namespace"):
        if not isinstance(payload.get(key), str) or not payload[key]:
            raise InvalidInput(f"'{key}' must be a non-empty string (got {payload.get(key)!r})")
    if "phase" not in payload:
        raise InvalidInput("'phase' is missing (Flagger sends the canary's phase)")
    for key in ("phase", "checksum"):
        if key in payload and not isinstance(payload[key], str):
            raise InvalidInput(f"'{key}' must be a string (got {describe(payload[key])})")
    metadata = payload.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, Mapping) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise InvalidInput(f"'metadata' must map names to strings (got {describe(metadata)})")
    return payload


# --------------------------------------------------------------------------- Prometheus

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
PREFIX = "mlchecks_canary_"


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class _Page:
    """Prometheus text format 0.0.4: per gauge one HELP and one TYPE line, its samples."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = dict(labels)
        self.lines: list[str] = []

    def gauge(self, name: str, help: str, samples: Iterable[tuple[dict[str, str], Any]]) -> None:
        """Add gauge ``PREFIX + name``; samples whose value is not a number are left out."""
        rows = [(extra, _number(int(v) if isinstance(v, bool) else v)) for extra, v in samples]
        kept = [(extra, value) for extra, value in rows if value is not None]
        if not kept:
            return
        full = PREFIX + name
        if not _NAME.match(full):  # pragma: no cover - the names below are constants
            raise ValueError(f"not a Prometheus metric name: {full!r}")
        help_text = help.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge"]
        for extra, value in kept:
            pairs = ",".join(f'{k}="{_label(v)}"' for k, v in {**self.labels, **extra}.items())
            self.lines.append(f"{full}{{{pairs}}} {_value(value)}")


def prometheus_text(snap: Snapshot) -> str:
    """The ``/metrics`` page of ``snap``: gauges labelled ``baseline`` and ``candidate``.

    >>> page = prometheus_text(Snapshot(baseline="v1", candidate="v2", verdict="pass"))
    >>> print(page.splitlines()[2])
    mlchecks_canary_verdict{baseline="v1",candidate="v2",verdict="pass"} 1
    """
    ev = snap.evidence
    page = _Page({"baseline": snap.baseline, "candidate": snap.candidate})
    page.gauge(
        "verdict",
        "The judge's verdict: 1 for the current one, 0 for the others.",
        [({"verdict": v}, int(v == snap.verdict)) for v in VERDICTS],
    )
    page.gauge("records", "Records the judge observed.", [({}, snap.n_records)])
    page.gauge(
        "candidate_requests", "Requests the candidate served.", [({}, snap.candidate_requests)]
    )
    page.gauge(
        "bad_lines", "Records that could not be read or were refused.", [({}, snap.bad_lines)]
    )
    tests = judged_tests(ev, snap.reasons)
    for key, help in (
        ("evalue", "The test's e-value: its evidence of a regression."),
        ("threshold", "The e-value at which the test rejects."),
        ("rejected", "1 when the test detected a regression."),
    ):
        page.gauge(key, help, [({"test": t}, row[key]) for t, row in tests.items()])
    low, high = _pair(ev.get("latency_ratio_interval")) or [None, None]
    for name, value, help in (
        ("latency_ratio", ev.get("latency_ratio"), "Candidate over baseline typical latency."),
        ("latency_ratio_low", low, "The latency ratio's lower confidence bound."),
        ("latency_ratio_high", high, "The latency ratio's upper confidence bound."),
        ("tail_ratio", ev.get("tail_ratio"), "How many times as often the candidate is slow."),
        ("psi", ev.get("psi"), "Population stability index of the predicted classes."),
        ("js", ev.get("js"), "Jensen-Shannon divergence of the predicted classes."),
        ("disagreement_rate", ev.get("disagreement_rate"), "Mirrored requests answered apart."),
    ):
        page.gauge(name, help, [({}, value)])
    version = {"candidate": snap.candidate, "baseline": snap.baseline}
    page.gauge(
        "error_rate",
        "Failed requests over requests, per version.",
        [({"version": version[role]}, rate) for role, rate in error_rates(ev).items()],
    )
    accuracy = ev.get("accuracy")  # [candidate, baseline], as the monitor's evidence has it
    if isinstance(accuracy, list | tuple) and len(accuracy) == 2:
        page.gauge(
            "accuracy",
            "Accuracy on labelled requests, per version.",
            [({"version": snap.candidate}, accuracy[0]), ({"version": snap.baseline}, accuracy[1])],
        )
    page.gauge("limit", "The judge's limits.", [({"limit": k}, ev.get(k)) for k in LIMITS])
    return "\n".join(page.lines) + "\n"
