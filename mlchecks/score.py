"""The ML Test Score: the rubric's seven infrastructure tests, the points and their reading.

This module holds the rubric table (`RUBRIC_TESTS`), the paper's readings of a total,
`MLTestScore` and `score_rows`, the one table of points every report and the CLI print.
It imports only `mlchecks.result`, so the reports can score a run without importing
`mlchecks.suite`.

>>> results = [Result("repro", Status.PASS, rubric=1)]
>>> score_rows(results, MLTestScore.from_results(results))[0]
ScoreRow(test=1, title='Training is reproducible', points=1.0, how='automated: repro (PASS)')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import attrs

from mlchecks.exceptions import InvalidInput
from mlchecks.result import Result, Status

__all__ = ["RUBRIC_TESTS", "MLTestScore", "ScoreRow", "score_rows"]

#: The seven infrastructure tests of the ML Test Score rubric (Breck et al., 2017).
RUBRIC_TESTS: Mapping[int, str] = {
    1: "Training is reproducible",
    2: "Model specification code is unit tested",
    3: "The full ML pipeline is integration tested",
    4: "Model quality is validated before attempting to serve it",
    5: "The model allows debugging by observing a single example or batch",
    6: "Models are tested via a canary process before entering production serving",
    7: "Models can be rolled back to a previous serving version",
}

# The paper's interpretation of a section's total (Breck et al., 2017, Table V).
# Each entry is (upper bound of the total, reading); above 5 the reading is exceptional.
_READINGS: tuple[tuple[float, str], ...] = (
    (0.0, "More of a research project than a productionized system."),
    (
        1.0,
        "Not totally untested, but it is worth considering the possibility of serious "
        "holes in reliability.",
    ),
    (
        2.0,
        "There's been a first pass at basic productionization, but additional investment "
        "may be needed.",
    ),
    (
        3.0,
        "Reasonably tested, but it's possible that more of those tests and procedures may "
        "be automated.",
    ),
    (
        5.0,
        "Strong levels of automated testing and monitoring, appropriate for "
        "mission-critical systems.",
    ),
)
_EXCEPTIONAL = "Exceptional levels of automated testing and monitoring."


def manual_tests(value: Mapping[int, str] | None) -> dict[int, str]:
    """Validate the rubric tests declared done by hand: keys 1..7, each with a note.

    >>> manual_tests({"3": "runbook"})
    {3: 'runbook'}
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "'manual' must be a mapping of rubric test (1..7) to a note "
            f"(got {_shown(value)} that is a {type(value).__name__})"
        )
    out: dict[int, str] = {}
    for key, note in value.items():
        number = _test_number(key, "manual")
        if not isinstance(note, str) or not note.strip():
            raise InvalidInput(
                f"'manual[{number}]' must say how the test is done by hand, such as a "
                f"runbook link (got {_shown(note)})"
            )
        out[number] = note
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _test_number(key: Any, field: str) -> int:
    """A rubric test number 1..7 from an int or a string of digits (JSON keys)."""
    number = None
    if isinstance(key, int) and not isinstance(key, bool):
        number = key
    elif isinstance(key, str) and key.strip().isdigit():
        number = int(key)
    if number is None or not 1 <= number <= 7:
        raise InvalidInput(f"'{field}' keys must be rubric tests 1..7 (got {_shown(key)})")
    return number


def _points(value: Any) -> dict[int, float]:
    """``MLTestScore.points``: rubric test 1..7 -> points in [0, 1]."""
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "'points' must be a mapping of rubric test (1..7) to points in [0, 1] "
            f"(got {_shown(value)} that is a {type(value).__name__})"
        )
    out: dict[int, float] = {}
    for key, points in value.items():
        number = _test_number(key, "points")
        if (
            isinstance(points, bool)
            or not isinstance(points, int | float)
            or not 0.0 <= points <= 1.0
        ):
            raise InvalidInput(f"'points[{number}]' must be in [0, 1] (got {_shown(points)})")
        out[number] = float(points)
    return out


def _failing(value: Any) -> tuple[int, ...]:
    """``MLTestScore.failing``: rubric tests 1..7 whose automated checks did not pass."""
    try:
        if isinstance(value, str | bytes | Mapping):
            raise TypeError
        items = list(value)
    except TypeError:
        raise InvalidInput(
            f"'failing' must be a list of rubric tests 1..7 (got {_shown(value)})"
        ) from None
    return tuple(sorted({_test_number(v, "failing") for v in items}))


@attrs.frozen
class MLTestScore:
    """The infrastructure section of the ML Test Score.

    Each rubric test earns 1.0 when an automated check for it ran and passed, 0.5 when it
    is declared done by hand (``Suite(..., manual={3: "runbook link"})``), and 0 otherwise.
    The paper's reading of the total applies to a system whose checks pass: while a check
    fails (``failing``), the reading says so instead of praising the total.

    >>> score = MLTestScore.from_results(
    ...     [Result("repro", Status.PASS, rubric=1), Result("quality", Status.PASS, rubric=4)],
    ...     manual={7: "rollback runbook"},
    ... )
    >>> score.points[1], score.points[6], score.points[7], score.total
    (1.0, 0.0, 0.5, 2.5)
    >>> print(score.reading)
    Reasonably tested, but it's possible that more of those tests and procedures may be automated.
    >>> print(MLTestScore.from_results([Result("canary", Status.FAIL, rubric=6)]).reading)
    Rubric test 6 failed: fix it first; the total counts only tests whose checks pass.
    """

    points: Mapping[int, float] = attrs.field(converter=_points)
    manual: Mapping[int, str] = attrs.field(factory=dict, converter=manual_tests)
    failing: tuple[int, ...] = attrs.field(default=(), converter=_failing)

    @classmethod
    def from_results(
        cls, results: Iterable[Result], manual: Mapping[int, str] | None = None
    ) -> MLTestScore:
        """Score a set of results (and the tests declared manual)."""
        ran: dict[int, list[Result]] = {}
        for r in results:
            if r.rubric is not None and r.status is not Status.SKIP:
                ran.setdefault(r.rubric, []).append(r)
        manual = manual_tests(manual)
        points: dict[int, float] = {}
        for test in RUBRIC_TESTS:
            if test in ran and all(r.passed for r in ran[test]):
                points[test] = 1.0
            elif test in manual:
                points[test] = 0.5
            else:
                points[test] = 0.0
        failing = tuple(t for t in RUBRIC_TESTS if t in ran and not all(r.passed for r in ran[t]))
        return cls(points=points, manual=manual, failing=failing)

    @property
    def total(self) -> float:
        """The sum of the points, out of 7."""
        return float(sum(self.points.values()))

    @property
    def maximum(self) -> float:
        """The highest possible total (7)."""
        return float(len(RUBRIC_TESTS))

    @property
    def reading(self) -> str:
        """The paper's reading of the total, or what failed while a check fails."""
        if self.failing:
            tests = ", ".join(str(t) for t in self.failing)
            failed = f"Rubric test{'s' if len(self.failing) > 1 else ''} {tests} failed"
            them = "them" if len(self.failing) > 1 else "it"
            return f"{failed}: fix {them} first; the total counts only tests whose checks pass."
        total = self.total
        for upper, words in _READINGS:
            if total <= upper:
                return words
        return _EXCEPTIONAL

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "points": {str(k): v for k, v in sorted(self.points.items())},
            "manual": {str(k): v for k, v in sorted(self.manual.items())},
            "total": self.total,
            "maximum": self.maximum,
            "reading": self.reading,
            "failing": list(self.failing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MLTestScore:
        """Rebuild from `MLTestScore.to_dict` output."""
        points = {int(k): float(v) for k, v in data["points"].items()}
        manual = {int(k): v for k, v in data.get("manual", {}).items()}
        return cls(points=points, manual=manual, failing=tuple(data.get("failing", ())))

    def __str__(self) -> str:
        total = f"{self.total:g} / {self.maximum:g} rubric tests"
        return f"ML Test Score (infrastructure): {total}. {self.reading}"


class ScoreRow(NamedTuple):
    """One rubric test in the score table."""

    test: int
    """The rubric's infrastructure test number, 1..7."""
    title: str
    """What the test asks, in the paper's words."""
    points: float
    """1.0, 0.5 or 0."""
    how: str
    """How the points were earned: the automated checks and their statuses, the manual note."""


def score_rows(results: Iterable[Result], score: MLTestScore) -> list[ScoreRow]:
    """The score table: one row per rubric test, the same words in every report and the CLI.

    ``how`` names the automated checks of that test with their statuses
    (``"automated: repro (PASS)"``), the note of a test done by hand
    (``"done by hand: runbook"``), both, or ``"not covered"``.

    Args:
        results: the checks' results.
        score: their score (`MLTestScore.from_results`), which holds the manual notes.

    Returns:
        Seven `ScoreRow` tuples, in rubric order.
    """
    by_test: dict[int, list[Result]] = {}
    for r in results:
        if r.rubric is not None:
            by_test.setdefault(r.rubric, []).append(r)
    rows = []
    for test, title in RUBRIC_TESTS.items():
        ran = ", ".join(f"{r.check} ({r.status.label})" for r in by_test.get(test, ()))
        notes = []
        if ran:
            notes.append(f"automated: {ran}")
        if test in score.manual:
            notes.append(f"done by hand: {score.manual[test]}")
        how = "; ".join(notes) or "not covered"
        rows.append(ScoreRow(test, title, score.points.get(test, 0.0), how))
    return rows
