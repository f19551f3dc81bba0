"""The plain sentence that opens each failing or warning canary finding.

A newcomer reads what happened in the system's terms (versions, requests, milliseconds)
first; the finding's own message, with its tests and e-values, follows.

>>> from mlchecks.checks._result import ResultBuilder
>>> from mlchecks.result import Status
>>> b = ResultBuilder("canary")
>>> _ = b.note("load", Status.FAIL, "load('2') raised KeyError")
>>> lead(b, "2")
>>> b.findings[0].message
"Version '2' did not load on the server: load('2') raised KeyError"
"""

from __future__ import annotations

from mlchecks._text import fmt
from mlchecks.checks._result import ResultBuilder

__all__ = ["lead"]


def _count(b: ResultBuilder, key: str) -> int | None:
    value = b.metrics.get(key)
    return None if value is None else int(value)


def _errors(b: ResultBuilder, c: str, arm: str, what: str) -> str:
    """``"Version 'c' failed 10 of 100 test requests, ..."`` from the metrics when present."""
    n_errors, n = _count(b, f"{arm}.n_errors"), _count(b, f"{arm}.n_requests")
    if n_errors is None or n is None:
        return f"Version {c!r} failed more {what} than the current version"
    base = "probe.baseline.n_errors" if arm == "probe" else "trickle.baseline.n_errors"
    base_n = n if arm == "probe" else _count(b, "trickle.baseline.n_requests")
    theirs = ""
    if _count(b, base) is not None and base_n is not None:
        theirs = f", the current version {_count(b, base)} of {base_n:,}"
    return f"Version {c!r} failed {n_errors:,} of {n:,} {what}{theirs}"


def _latency(b: ResultBuilder, c: str) -> str:
    mine = b.metrics.get("trickle.candidate.latency.p50_s")
    theirs = b.metrics.get("trickle.baseline.latency.p50_s")
    if mine is None or theirs is None:
        return f"Version {c!r} answered live requests more slowly than allowed"
    return (
        f"Version {c!r} answered live requests more slowly, a median of "
        f"{fmt(mine * 1e3, 3)} ms against {fmt(theirs * 1e3, 3)} ms for the current version"
    )


def _trickle(b: ResultBuilder, c: str) -> str:
    decision = b.details.get("trickle", {}).get("decision")
    if decision == "fail":
        return f"The live trial of version {c!r} was stopped because it did worse"
    if decision == "insufficient":
        return f"None of version {c!r}'s live requests succeeded, so it could not be judged"
    return f"The live trial of version {c!r} ended before it could tell whether it is worse"


def lead(b: ResultBuilder, c: str) -> None:
    """Open each WARN or FAIL finding of the canary ``b`` holds with its plain sentence."""
    leads = {
        "load": f"Version {c!r} did not load on the server",
        "record": "Some lines of the traffic record could not be read",
        "probe.errors": _errors(b, c, "probe", "test requests"),
        "probe.outputs": f"Version {c!r} returned malformed answers",
        "probe.version": f"Requests for version {c!r} were answered by another version",
        "probe.agreement": (
            f"The server's answers for version {c!r} do not match the model's own offline "
            "predictions"
        ),
        "metadata": "The server's component versions could not be read",
        "metadata.skew": (
            "The server runs other component versions than the model was trained with"
        ),
        "metadata.missing": "The server does not say which component versions it runs",
        "trickle": _trickle(b, c),
        "trickle.errors": _errors(b, c, "trickle.candidate", "live requests"),
        "trickle.latency": _latency(b, c),
        "trickle.tail": f"Version {c!r}'s slowest live requests are slower than allowed",
        "trickle.shift": f"Version {c!r} predicts a different mix of classes on live traffic",
        "trickle.accuracy": f"Version {c!r} is less accurate on live traffic",
        "trickle.disagreement": (
            f"Version {c!r} disagrees with the current version on too many live requests"
        ),
    }
    for name, sentence in leads.items():
        b.lead(name, sentence)
