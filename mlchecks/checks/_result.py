"""The one way a built-in check builds its `Result`.

A check creates a `ResultBuilder`, records what it measured (`metric`), its drill-down
tables (`detail`) and every judged condition (`judge`, `add`), then calls `result()`. The
status is the worst finding's; the summary is the worst problem's message, or the
``pass_summary`` the check gives when everything held.

>>> from mlchecks.conditions import AtMost
>>> b = ResultBuilder("reproducibility", rubric=1)  # in a check: ResultBuilder.of(self)
>>> b.metric("churn", 0.157)
>>> _ = b.judge("churn", AtMost(0.01), 0.157, message="churn 0.157 exceeds max_churn 0.01")
>>> r = b.result(pass_summary="the runs agree")
>>> r.status, r.summary, dict(r.metrics)
(<Status.FAIL: 'fail'>, 'churn 0.157 exceeds max_churn 0.01', {'churn': 0.157})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mlchecks.conditions import AtLeast, AtMost, Between
from mlchecks.result import Finding, Result, Status

__all__ = ["ResultBuilder"]


@attrs.define
class ResultBuilder:
    """Collects findings, metrics and details; `result` turns them into a `Result`."""

    check: str
    rubric: int | None = None
    kind: str | None = None
    findings: list[Finding] = attrs.Factory(list)
    metrics: dict[str, float] = attrs.Factory(dict)
    details: dict[str, Any] = attrs.Factory(dict)

    @classmethod
    def of(cls, check: Any) -> ResultBuilder:
        """A builder for ``check``'s result: its name, rubric and kind (its class)."""
        kind = f"{type(check).__module__}.{type(check).__qualname__}"
        return cls(check.name, rubric=check.rubric, kind=kind)

    def metric(self, key: str, value: float | None) -> None:
        """Record a measured figure (None is skipped: nothing was measured)."""
        if value is not None:
            self.metrics[key] = float(value)

    def update_metrics(self, values: Mapping[str, float | None]) -> None:
        """Record several figures at once."""
        for key, value in values.items():
            self.metric(key, value)

    def detail(self, key: str, value: Any) -> None:
        """Record a drill-down table or value (JSON-safe after `Result` converts it)."""
        self.details[key] = value

    def add(self, finding: Finding) -> Finding:
        """Record an already judged finding."""
        self.findings.append(finding)
        return finding

    def extend(self, findings: Iterable[Finding]) -> None:
        """Record several judged findings."""
        self.findings.extend(findings)

    def judge(
        self,
        name: str,
        condition: AtMost | AtLeast | Between | None,
        observed: float,
        *,
        message: str | None = None,
        context: str = "",
        unit: str = "",
    ) -> Finding | None:
        """Judge ``observed`` against ``condition`` and record the finding.

        ``message`` replaces the condition's own sentence (the status and limit stay the
        condition's); ``unit`` (``"s"``) follows the numbers of the limit; a None condition
        (a limit switched off) records nothing.
        """
        if condition is None:
            return None
        finding = condition.judge(name, observed, context=context, unit=unit)
        if message is not None:
            finding = attrs.evolve(finding, message=message)
        return self.add(finding)

    def note(
        self,
        name: str,
        status: Status,
        message: str,
        *,
        observed: float | None = None,
        limit: str = "",
    ) -> Finding:
        """Record a finding judged by the check's own logic (not a single condition)."""
        return self.add(Finding(name, status, observed, limit, message))

    def lead(self, name: str, sentence: str) -> None:
        """Open the message of each WARN, FAIL or ERROR finding ``name`` with ``sentence``.

        ``sentence`` says what happened in plain words, without statistics (no final full
        stop); the finding's own message, with its figures and tests, follows after a
        colon. PASS and SKIP findings are left as they are.

        >>> b = ResultBuilder("loss")
        >>> _ = b.note("loss_finite", Status.FAIL, "the loss is nan at step 3")
        >>> b.lead("loss_finite", "Training diverged")
        >>> b.findings[0].message
        'Training diverged: the loss is nan at step 3'
        """
        for i, f in enumerate(self.findings):
            if f.name == name and f.status.severity >= Status.WARN.severity:
                self.findings[i] = attrs.evolve(f, message=f"{sentence}: {f.message}")

    @property
    def status(self) -> Status:
        """The worst status recorded so far (PASS with no findings)."""
        return Status.worst(f.status for f in self.findings)

    def result(self, *, summary: str | None = None, pass_summary: str | None = None) -> Result:
        """The `Result`: worst finding's status and summary unless ``summary`` is given."""
        return Result.from_findings(
            self.check,
            self.findings,
            summary=summary,
            pass_summary=pass_summary,
            metrics=self.metrics,
            details=self.details,
            rubric=self.rubric,
            kind=self.kind,
        )
