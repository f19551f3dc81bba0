"""One deploy-and-roll-back cycle of `RollbackCheck`, measured from its live responses.

`Attribution` says who answered a response (the known-good version, the candidate, or
neither), by version label *and* outputs; `measure` turns a repeat's load-generator records
into a `Repeat` (times to the first and to all known-good responses, failed requests, the
longest gap, a timeline for the report figure); `quantiles` summarises the repeats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks._validate import describe, is_collection
from mlchecks.checks._series import priority_indices
from mlchecks.checks._traffic import Record, error_class, outputs_equal
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response

__all__ = [
    "Attribution",
    "Repeat",
    "candidate_predictions",
    "known_good_predictions",
    "measure",
    "quantiles",
    "short",
    "timeline",
]


@attrs.frozen
class Attribution:
    """Which version a response came from, judged by its label and its outputs.

    ``good_refs`` and ``cand_refs`` are each version's outputs per probe input (None where
    the candidate could not answer, or could not be asked: `learn_candidate` fills them
    in from live traffic once the candidate serves); outputs match the known-good ones
    bitwise when ``exact``, else within ``atol`` and ``rtol``. A response without a
    version label to a probe on which both versions give the same outputs cannot be
    attributed (`tells_apart` is False).
    """

    known_good: str
    candidate: str
    good_refs: Sequence[Any]
    cand_refs: Sequence[Any]
    exact: bool = True
    atol: float = 0.0
    rtol: float = 0.0

    def _same(self, outputs: Any, ref: Any) -> bool:
        return outputs_equal(outputs, ref, exact=self.exact, atol=self.atol, rtol=self.rtol)

    def is_good(self, response: Response, index: int) -> bool:
        """The known-good version's answer: its label (if any) and its outputs for the probe."""
        return (
            response.ok
            and response.version in (None, self.known_good)
            and self._same(response.outputs, self.good_refs[index])
        )

    def tells_apart(self, response: Response, index: int) -> bool:
        """False for an unlabelled answer to a probe both versions answer alike."""
        if response.version is not None or not response.ok:
            return True
        ref = self.cand_refs[index]
        return ref is None or not self._same(ref, self.good_refs[index])

    def learn_candidate(self, responses: Sequence[Response]) -> None:
        """Take the candidate's missing references from its live answers, one per probe."""
        refs = self.cand_refs
        if not isinstance(refs, list):
            raise TypeError("cand_refs must be a list to be learnt")
        for i, response in enumerate(responses):
            if refs[i] is None and response.ok:
                refs[i] = response.outputs

    def carries_candidate_outputs(self, response: Response, index: int) -> bool:
        """A success with exactly the candidate's outputs for the probe."""
        return response.ok and outputs_equal(response.outputs, self.cand_refs[index], exact=True)

    def is_candidate(self, response: Response, index: int) -> bool:
        """A success labelled as the candidate's or carrying its outputs."""
        return response.ok and (
            response.version == self.candidate or self.carries_candidate_outputs(response, index)
        )

    def reached_candidate(self, response: Response, index: int) -> bool:
        """Live traffic reached the candidate (by label; by outputs without one)."""
        ref = self.cand_refs[index]
        if response.version is not None and (response.ok or ref is None):
            return response.version == self.candidate
        return response.ok and self._same(response.outputs, ref)

    def serves_candidate(self, responses: Sequence[Response]) -> bool:
        """Live answers to every probe came from the candidate: each by `reached_candidate`,
        except unlabelled answers to probes whose candidate outputs are not known: those
        must all succeed and at least one must differ from the known-good outputs."""
        unknown = [
            i for i, r in enumerate(responses) if r.version is None and self.cand_refs[i] is None
        ]
        skipped = set(unknown)
        known = [i for i in range(len(responses)) if i not in skipped]
        if not all(self.reached_candidate(responses[i], i) for i in known):
            return False
        if not unknown:
            return True
        return all(responses[i].ok for i in unknown) and any(
            not self._same(responses[i].outputs, self.good_refs[i]) for i in unknown
        )

    def outcome(self, response: Response, index: int) -> str:
        """``"known_good"``, ``"failed"``, ``"candidate"`` or ``"other"`` (the figure's lanes)."""
        if self.is_good(response, index):
            return "known_good"
        if not response.ok:
            return "failed"
        return "candidate" if self.is_candidate(response, index) else "other"


@attrs.frozen
class Repeat:
    """The measurements of one deploy-and-roll-back cycle."""

    command_s: float  # how long set_live(known_good) took to return
    first_s: float  # command start -> first response from the known-good version
    all_s: float  # command start -> from here on every response is known-good (inf: never)
    failed: int  # failed requests answered from the rollback command on, not by the candidate
    gap_s: float  # longest stretch without a successful response
    requests: int
    candidate_after: int  # responses sent after the command that still came from the candidate
    errors: Mapping[str, int]
    first_error: str | None
    settled: bool
    # Responses around the switch, for report figures: "t_s" (arrival, s after the command)
    # and "outcome" ("candidate", "known_good", "failed" or "other"), at most MAX_POINTS.
    timeline: Mapping[str, list[Any]] = attrs.field(factory=dict)

    def row(self, index: int) -> dict[str, Any]:
        """The repeat as a row of ``details["repeats"]`` (numbered from 1), without the timeline."""
        return {
            "repeat": index,
            **attrs.asdict(self, filter=lambda attribute, _: attribute.name != "timeline"),
        }


def measure(
    records: list[Record], t0: float, command_s: float, who: Attribution, settled: bool
) -> Repeat:
    """One repeat's measurements from its records; ``t0`` is when the rollback command started."""
    errors: dict[str, int] = {}
    first_error: str | None = None
    first_s = math.inf
    last_other = -math.inf
    candidate_after = 0
    successes = []
    for record in records:
        response = record.response
        if response.ok:
            successes.append(record.done)
        elif record.done >= t0 and response.version != who.candidate:
            # A failure of the switch: answered after the rollback command, and not the
            # candidate's own error (a buggy candidate is the canary's business; the
            # rollback is judged on what happens from the command on).
            kind = error_class(response)
            errors[kind] = errors.get(kind, 0) + 1
            first_error = first_error or response.error
        if record.sent < t0 or not who.tells_apart(response, record.index):
            continue
        if who.is_good(response, record.index):
            first_s = min(first_s, record.done - t0)
        else:
            last_other = max(last_other, record.done - t0)
            candidate_after += who.is_candidate(response, record.index)
    if not settled or not math.isfinite(first_s):
        all_s = math.inf
    else:
        all_s = max(first_s, last_other)
    start = records[0].sent if records else t0
    end = records[-1].done if records else t0
    marks = np.array([start, *successes, end])
    gap = float(np.max(np.diff(np.sort(marks)))) if marks.size > 1 else 0.0
    return Repeat(
        command_s=command_s,
        first_s=first_s,
        all_s=all_s,
        failed=sum(errors.values()),
        gap_s=gap,
        requests=len(records),
        candidate_after=candidate_after,
        errors=errors,
        first_error=first_error,
        settled=settled,
        timeline=timeline(records, t0, who),
    )


def timeline(records: list[Record], t0: float, who: Attribution) -> dict[str, list[Any]]:
    """Which version answered each request, by arrival time; changes and failures kept."""
    outcomes = [who.outcome(record.response, record.index) for record in records]
    labels = np.array(outcomes, dtype=object)
    changed = np.zeros(labels.size, dtype=bool)
    changed[1:] = labels[1:] != labels[:-1]
    changed[:-1] |= changed[1:]  # both sides of a change
    important = changed | (labels == "failed") | (labels == "other")
    kept = priority_indices(important)
    return {
        "t_s": [round(records[i].done - t0, 6) for i in kept],
        "outcome": [outcomes[i] for i in kept],
    }


def quantiles(values: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 of per-repeat times; inf where too many repeats never got there."""
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        finite = array[np.isfinite(array)]
        p50 = float(np.quantile(array, 0.5)) if finite.size * 2 > array.size else math.inf
        return p50, math.inf
    p50, p99 = np.quantile(array, [0.5, 0.99])
    return float(p50), float(p99)


def _predictions(value: Any, name: str) -> Any:
    """None, a callable, or one reference per probe input (held as a tuple)."""
    if value is None or callable(value):
        return value
    if not is_collection(value):
        raise InvalidInput(
            f"'{name}' must be outputs one per probe input (a sequence or an array) or a "
            f"callable f(probe) -> outputs (got {describe(value)})"
        )
    return tuple(value)


def known_good_predictions(value: Any) -> Any:
    """attrs converter of ``known_good_predictions`` (see `_predictions`)."""
    return _predictions(value, "known_good_predictions")


def candidate_predictions(value: Any) -> Any:
    """attrs converter of ``candidate_predictions`` (see `_predictions`)."""
    return _predictions(value, "candidate_predictions")


def short(outputs: Any, limit: int = 80) -> str:
    """``outputs`` as short text for a message."""
    try:
        text = np.array2string(np.asarray(outputs), threshold=8, edgeitems=2)
    except Exception:
        text = repr(outputs)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
