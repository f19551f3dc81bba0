"""Rubric test 7, verified from the record: a real rollback, timed from the request log.

`RollbackCheck` rolls a deployment back itself, under load it sends. A rollback the platform
runs (``kubectl rollout undo``, KServe's ``canaryTrafficPercent`` set back to 0, an Argo
Rollouts abort, a Flagger rollback, a registry alias moved back) leaves its trace in the
platform's record instead: which version answered each request, and when.
`RollbackRecordCheck` reads that record (`mlchecks.serving.records.Record`, in any order:
payload loggers deliver late) and verifies the rollback from it:

- ``record.switch``: the time from the rollback command (``rolled_back_at``) until the log
  shows only the known-good version, against ``max_rollback_s``;
- ``record.other_requests``: the requests other versions answered after the command, by
  version and by outcome, with the first and the last time (judged by
  ``max_other_requests`` when given);
- ``record.errors``: the known-good version's error rate after the switch against its
  rate before the command.

The rules:

1. Records answered before ``rolled_back_at`` are the "before" context; the others are
   sorted by time. Every version other than ``known_good`` (a third one too) is "other".
2. The switch time is the time of the last request another version answered after the
   command, minus ``rolled_back_at`` (0 when none did).
3. "Only the known-good version" must be seen, not assumed: after that last request (or
   after the command, when there is none) the log must hold at least ``n_settle_requests``
   known-good requests, and its last record must lie at least ``settle_s`` later.
4. PASS when rule 3 holds and the switch time is within ``max_rollback_s``; FAIL when another
   version answered later than ``max_rollback_s`` after the command (measured, or "still
   answering at the end of the log"); otherwise WARN "insufficient data" (no record after
   the command, or a log that ends before rule 3 can hold).
5. The known-good version's errors WARN when its error rate after the switch is more than
   twice its rate before the command and a one-sided exact test on the two error counts
   (the conditional binomial test of two rates) gives p < 0.01.

Rule 3 is what the log can show: no request from another version among ``n`` known-good
ones rules out a leak of more than about ``3 / n`` of the traffic (the rule of three, 95%).
At realistic rates the ``settle_s`` window holds far more than ``n_settle_requests``
requests; on a quiet service, raise ``n_settle_requests``.
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import numpy as np

from mlchecks._deadline import Deadline, stopping
from mlchecks._fields import (
    MaxLimit,
    count,
    held,
    held_or_none,
    limit,
    name_field,
    rubric,
    seconds,
)
from mlchecks._text import fmt, plural
from mlchecks._validate import describe
from mlchecks.check import Context
from mlchecks.checks._result import ResultBuilder
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Result, Status
from mlchecks.serving.records import Record, parse_time, records_source

__all__ = ["RollbackRecordCheck"]

#: The known-good version's error rate after the switch WARNs above this multiple of its
#: rate before the command ...
ERRORS_RATIO = 2.0
#: ... when the one-sided exact test of the two error counts is below this p-value.
ERRORS_ALPHA = 0.01
#: Versions named in a message before "and N more".
_SHOWN = 3


def _version(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidInput(
            f"'known_good' must be a non-empty version string (got {describe(value)})"
        )
    return str(value)


def _epoch(value: Any) -> float:
    if isinstance(value, str):
        return parse_time(value, "rolled_back_at")  # ISO-8601 text, UTC without a zone
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise InvalidInput(
                f"'rolled_back_at' must be epoch seconds, ISO-8601 text or a timezone-aware "
                f"datetime (got {value!r}, a naive datetime: its clock is ambiguous)"
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(
            f"'rolled_back_at' must be the rollback command's time: epoch seconds, ISO-8601 "
            f"text or a timezone-aware datetime (got {describe(value)})"
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"'rolled_back_at' must be a finite time (got {value!r})")
    return number


@attrs.frozen
class _Log:
    """One pass over the record: the requests after the command sorted by time (as arrays,
    version code 0 the known-good version), and counts of the rest."""

    times: np.ndarray  # float64, sorted
    codes: np.ndarray  # int64: index into ``names``
    failed: np.ndarray  # bool
    names: list[str]  # version of each code; names[0] is known_good
    other_outcomes: list[str]  # outcome of each other-version request, in time order
    before: Counter[str]  # records before the command, by version
    good_before_errors: int
    last_before: float | None  # the latest record before the command
    skipped: Counter[str]  # items that are not Records, by type
    untimed: Counter[str]  # Records without a time, by version

    @property
    def after(self) -> Counter[str]:
        """Records at or after the command, by version."""
        counts = np.bincount(self.codes, minlength=len(self.names))
        return Counter({v: int(n) for v, n in zip(self.names, counts.tolist(), strict=True) if n})

    @property
    def versions(self) -> Counter[str]:
        """Every timed record, by version."""
        return self.before + self.after


def _outcome(failure: str | None, status: int | None) -> str:
    if failure is not None:
        return failure
    return "ok" if status is None else f"HTTP {status}"


def _read(items: Iterable[Any], known_good: str, t0: float) -> _Log:
    names, code_of = [known_good], {known_good: 0}
    times: list[float] = []
    codes: list[int] = []
    failed: list[bool] = []
    outcomes: list[str | None] = []
    before: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    untimed: Counter[str] = Counter()
    good_before_errors = 0
    latest = -math.inf
    for item in items:
        if not isinstance(item, Record):
            skipped[type(item).__name__] += 1
            continue
        raw: Any = item.time  # not converted by Record: a log may hold anything here
        if type(raw) is float:  # the common case first: an ABC check costs a microsecond
            when: float | None = raw
        elif isinstance(raw, bool) or not isinstance(raw, numbers.Real):
            when = None
        else:
            when = float(raw)
        version = item.version
        if when is None or not math.isfinite(when):
            untimed[version] += 1
        elif when < t0:
            before[version] += 1
            if version == known_good and not item.ok:
                good_before_errors += 1
            if when > latest:
                latest = when
        else:
            code = code_of.get(version)
            if code is None:
                code = code_of[version] = len(names)
                names.append(version)
            failure = item.failure
            times.append(when)
            codes.append(code)
            failed.append(failure is not None)
            outcomes.append(_outcome(failure, item.status) if code else None)
    order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable")
    sorted_codes = np.asarray(codes, dtype=np.int64)[order]
    others = [outcomes[i] or "" for i in order[sorted_codes != 0].tolist()]
    return _Log(
        np.asarray(times, dtype=np.float64)[order],
        sorted_codes,
        np.asarray(failed, dtype=bool)[order],
        names,
        others,
        before,
        good_before_errors,
        latest if before else None,
        skipped,
        untimed,
    )


@attrs.frozen
class _Switch:
    """Where the log stops showing other versions, and how much it shows after that."""

    last_other: int | None  # index of the last other-version request in the sorted arrays
    switch_s: float  # last other request's time - t0 (0 when none)
    n_good_only: int  # known-good requests after it
    good_only_s: float  # from it (or the command) to the log's last record
    settled: bool
    observed_s: float  # from the command to the log's last record


def _switch(log: _Log, t0: float, n_settle: int, settle_s: float) -> _Switch:
    other = np.flatnonzero(log.codes)
    last = int(other[-1]) if other.size else None
    start = t0 if last is None else float(log.times[last])
    end = float(log.times[-1])
    n_good = log.times.size - (0 if last is None else last + 1)
    good_s = end - start
    settled = n_good >= n_settle and good_s >= settle_s
    return _Switch(last, start - t0, n_good, good_s, settled, end - t0)


def _other_rows(log: _Log, t0: float) -> list[dict[str, Any]]:
    """Per other version: requests after the command, by outcome, first and last time."""
    other = np.flatnonzero(log.codes)
    codes, times, failed = log.codes[other], log.times[other], log.failed[other]
    rows = []
    for code in np.unique(codes).tolist():
        at = np.flatnonzero(codes == code)
        outcomes = Counter(log.other_outcomes[i] for i in at.tolist())
        failures = Counter(log.other_outcomes[i] for i in at[failed[at]].tolist())
        first, last = float(times[at[0]]), float(times[at[-1]])
        n_failed = int(failed[at].sum())
        rows.append(
            {
                "version": log.names[code],
                "n_requests": int(at.size),
                "n_ok": int(at.size) - n_failed,
                "n_failed": n_failed,
                "outcomes": dict(outcomes.most_common()),
                "failures": dict(failures.most_common()),
                "first_time": first,
                "first_s": first - t0,
                "last_time": last,
                "last_s": last - t0,
            }
        )
    return sorted(rows, key=lambda r: (-r["n_requests"], r["version"]))


def _versions_text(rows: list[dict[str, Any]]) -> str:
    """``"'v2' 238 (236 ok, 2 failed: 2 HTTP 503) from +0.01 s to +4.98 s, ..."``."""
    parts = []
    for row in rows[:_SHOWN]:
        failed = ""
        if row["n_failed"]:
            kinds = ", ".join(f"{n:,} {k}" for k, n in list(row["failures"].items())[:3])
            failed = f", {row['n_failed']:,} failed: {kinds}"
        parts.append(
            f"{row['version']!r} {row['n_requests']:,} ({row['n_ok']:,} ok{failed}) from "
            f"+{fmt(row['first_s'])} s to +{fmt(row['last_s'])} s"
        )
    if len(rows) > _SHOWN:
        parts.append(f"and {len(rows) - _SHOWN} more versions")
    return ", ".join(parts)


def _rate_increase_pvalue(e_before: int, n_before: int, e_after: int, n_after: int) -> float:
    """One-sided p-value that the after rate exceeds the before rate (conditional binomial).

    Given ``e_before + e_after`` errors, equal rates put each one after the command with
    probability ``n_after / (n_before + n_after)``: the p-value is the binomial upper tail
    ``P(X >= e_after)``, summed exactly in log space (no scipy import for one number).

    >>> round(_rate_increase_pvalue(0, 100, 7, 100), 4)
    0.0078
    """
    total = e_before + e_after
    share = n_after / (n_before + n_after)
    if e_after == 0 or share >= 1.0:
        return 1.0
    lg, log_p, log_q = math.lgamma, math.log(share), math.log1p(-share)
    logs = [lg(total + 1) - lg(k + 1) - lg(total - k + 1) for k in range(e_after, total + 1)]
    terms = [math.exp(c + k * log_p + (total - k) * log_q) for k, c in enumerate(logs, e_after)]
    return min(1.0, math.fsum(terms))


@attrs.frozen
class RollbackRecordCheck:
    """Verify a rollback from the platform's record: how long it took, what else answered.

    The rules are the module's: a log that ends right after the command never PASSes.

    Args:
        records: the record, an iterable of `mlchecks.serving.records.Record` in any order,
            or a callable returning one (called once per run). Every record needs its
            ``time`` (same clock as ``rolled_back_at``); items that are not Records (a late
            `Label`) are skipped and counted.
        known_good: the version rolled back to, as the log spells it.
        rolled_back_at: when the rollback command ran: seconds since the epoch,
            ISO-8601 text (``"2024-05-01T12:00:00Z"``; UTC when it has no zone, as in the
            log readers) or a timezone-aware `datetime.datetime`.
        max_rollback_s: the time from the command until the log shows only the known-good
            version must not exceed this (a number or `AtMost`).
        max_other_requests: requests other versions may answer after the command; None
            (the default) reports them without a limit.
        n_settle_requests: known-good requests the log must show after the last request
            of another version before the switch counts as complete.
        settle_s: seconds the log must run on after that last request.
        check_timeout_s: the longest reading ``records`` may take (a source that blocks
            included); past it the check ends in ERROR. None: no limit.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value.

    The bad version ``"v2"`` answers until 2 s after the rollback at t = 110:

    >>> from mlchecks.serving.records import Record, parse_time
    >>> log = [Record(version="v2", time=100.0 + i) for i in range(10)]
    >>> log += [Record(version="v2" if i < 3 else "v1", time=110.0 + i) for i in range(40)]
    >>> check = RollbackRecordCheck(log, known_good="v1", rolled_back_at=110.0)
    >>> result = check.run()
    >>> result.status, result.metrics["record.switch_s"], result.metrics["record.n_other_requests"]
    (<Status.PASS: 'pass'>, 2.0, 3.0)
    """

    records: Iterable[Any] | Callable[[], Iterable[Any]] = attrs.field(validator=records_source)
    known_good: str = attrs.field(converter=_version, kw_only=True)
    rolled_back_at: float = attrs.field(converter=_epoch, kw_only=True)
    max_rollback_s: MaxLimit = limit("max", 60.0)
    max_other_requests: MaxLimit | None = limit("max", None, integer=True, optional=True)
    n_settle_requests: int = count(20, minimum=1)
    settle_s: float = seconds(10.0)
    check_timeout_s: float | None = seconds(3600.0, optional=True)
    name: str = name_field("rollback-record")
    rubric: int | None = rubric(7)

    def run(self, context: Context | None = None) -> Result:
        """Read the record once and judge the switch, the other requests and the errors."""
        b = ResultBuilder.of(self)
        t0, good = self.rolled_back_at, self.known_good
        items = self.records() if callable(self.records) else self.records
        with Deadline(self.check_timeout_s, self.name) as deadline, stopping(items):
            log = deadline.call(_read, items, good, t0, doing="reading the records")
        b.detail("known_good", good)
        b.detail("rolled_back_at", t0)
        b.detail("settle", {"n_settle_requests": self.n_settle_requests, "settle_s": self.settle_s})
        b.update_metrics(
            {
                "record.n_requests": log.times.size,
                "record.n_requests_before": log.before.total(),
                "record.n_skipped": log.skipped.total(),
                "record.n_without_time": log.untimed.total(),
            }
        )
        b.detail("skipped", dict(log.skipped))
        b.detail("without_time", dict(log.untimed))
        b.detail("versions_before", dict(log.before.most_common()))
        b.detail("versions_after", dict(log.after.most_common()))
        if not self._times(b, log):
            return b.result()
        others = _other_rows(log, t0)
        self._judge_other(b, others)
        if not log.versions[good] and not log.untimed[good]:
            seen = ", ".join(repr(v) for v, _ in log.versions.most_common(5))
            b.note(
                "record.known_good",
                Status.FAIL,
                f"known_good version {good!r} answered no request in the log (versions seen: "
                f"{seen}): pass known_good as the log spells it",
            )
            return b.result()
        if not log.times.size:
            assert log.last_before is not None
            b.note(
                "record.switch",
                Status.WARN,
                f"insufficient data: none of the {plural(log.before.total(), 'timed record')} "
                f"was answered after the rollback command (the log ends "
                f"{fmt(t0 - log.last_before)} s before it), so it cannot show the switch",
                limit=held(self.max_rollback_s).describe(),
            )
            return b.result()
        switch = _switch(log, t0, self.n_settle_requests, self.settle_s)
        self._judge_switch(b, log, switch, others)
        self._judge_errors(b, log, switch)
        return b.result(pass_summary=self._pass_summary(switch, others))

    # ------------------------------------------------------------------- judging

    def _times(self, b: ResultBuilder, log: _Log) -> bool:
        """Records without a time: FAIL when none has one, else left out (and said so)."""
        n_untimed, n_timed = log.untimed.total(), log.versions.total()
        if not n_untimed:
            if not n_timed:
                b.note(
                    "record.switch",
                    Status.WARN,
                    "insufficient data: the record holds no request, so it cannot show the "
                    "rollback",
                    limit=held(self.max_rollback_s).describe(),
                )
                return False
            return True
        if not n_timed:
            b.note(
                "record.time",
                Status.FAIL,
                f"no record carries a time ({plural(n_untimed, 'record')}), so the rollback "
                "cannot be timed from them: give each Record its time (seconds since the "
                "epoch, the clock of rolled_back_at)",
            )
            return False
        other = {v: n for v, n in log.untimed.items() if v != self.known_good}
        shown = ", ".join(f"{v!r} {n:,}" for v, n in Counter(other).most_common(_SHOWN))
        b.note(
            "record.time",
            Status.WARN if other else Status.PASS,
            f"{n_untimed:,} of {plural(n_untimed + n_timed, 'record')} "
            + ("carries no time and was" if n_untimed == 1 else "carry no time and were")
            + " left out"
            + (
                f", {sum(other.values()):,} of them from other versions ({shown}), which may "
                "have answered after the rollback command"
                if other
                else f" (all from version {self.known_good!r})"
            ),
            observed=n_untimed,
        )
        return True

    def _judge_other(self, b: ResultBuilder, others: list[dict[str, Any]]) -> None:
        n_other = sum(row["n_requests"] for row in others)
        n_failed = sum(row["n_failed"] for row in others)
        b.update_metrics({"record.n_other_requests": n_other, "record.n_other_errors": n_failed})
        b.detail("other_requests", others)
        allowed = held_or_none(self.max_other_requests)
        if not others:
            message = (
                f"no request after the rollback command was answered by a version other "
                f"than {self.known_good!r}"
            )
        else:
            message = (
                f"after the rollback command {plural(n_other, 'request')} "
                f"{'was' if n_other == 1 else 'were'} answered by other versions than "
                f"{self.known_good!r}: {_versions_text(others)}"
            )
            if allowed is not None and not allowed.holds(n_other):
                message += f", more than max_other_requests {fmt(allowed.value)}"
        if allowed is None:
            b.note("record.other_requests", Status.PASS, message, observed=n_other)
        else:
            b.judge("record.other_requests", allowed, n_other, message=message)

    def _judge_switch(
        self, b: ResultBuilder, log: _Log, switch: _Switch, others: list[dict[str, Any]]
    ) -> None:
        good, bound = self.known_good, held(self.max_rollback_s)
        b.update_metrics(
            {
                "record.observed_s": switch.observed_s,
                "record.n_known_good_only": switch.n_good_only,
                "record.known_good_only_s": switch.good_only_s,
            }
        )
        need = (
            f"n_settle_requests={self.n_settle_requests} and settle_s={fmt(self.settle_s)} s of it"
        )
        seen_only = f"{plural(switch.n_good_only, 'request')} over {fmt(switch.good_only_s)} s"
        if switch.last_other is not None:
            when = float(log.times[switch.last_other])
            version = log.names[int(log.codes[switch.last_other])]
            b.detail(
                "last_other",
                {"version": version, "time": when, "after_s": when - self.rolled_back_at},
            )
        if switch.settled:
            b.metric("record.switch_s", switch.switch_s)
            if switch.last_other is None:
                message = (
                    f"every request after the rollback command was answered by version "
                    f"{good!r} ({seen_only})"
                )
            elif bound.holds(switch.switch_s):
                message = (
                    f"the log shows only version {good!r} from {fmt(switch.switch_s)} s after "
                    f"the rollback command (within max_rollback_s {fmt(bound.value)} s), then "
                    f"{seen_only} with no other version"
                )
            else:
                message = (
                    f"other versions answered until {fmt(switch.switch_s)} s after the "
                    f"rollback command, more than max_rollback_s {fmt(bound.value)} s: "
                    f"{_versions_text(others)}"
                )
            b.judge("record.switch", bound, switch.switch_s, message=message, unit="s")
            return
        if not bound.holds(switch.switch_s):
            b.metric("record.switch_s", math.inf)
            message = (
                f"{self._tail(log, switch)} at the end of the log, the last request "
                f"{fmt(switch.switch_s)} s after the rollback command: the log, which ends "
                f"{fmt(switch.observed_s)} s after the command, never shows only version "
                f"{good!r}, so the switch took more than max_rollback_s {fmt(bound.value)} s"
            )
            b.judge("record.switch", bound, math.inf, message=message, unit="s")
            return
        if switch.last_other is None:
            where = f"the log ends {fmt(switch.observed_s)} s after the rollback command"
        else:
            where = (
                f"{self._tail(log, switch)} until {fmt(switch.switch_s)} s after the rollback "
                f"command, and the log ends {fmt(switch.good_only_s)} s later"
            )
        b.note(
            "record.switch",
            Status.WARN,
            f"insufficient data: {where}, showing only version {good!r} for {seen_only}; "
            f"{need} are needed to call the switch complete",
            limit=bound.describe(),
        )

    def _tail(self, log: _Log, switch: _Switch) -> str:
        """``"version 'v2' (118 requests after the command, 3 in the last 10 s) still answers"``."""
        assert switch.last_other is not None
        t_last = float(log.times[switch.last_other])
        recent = log.codes[log.times >= t_last - self.settle_s]
        window = Counter(
            {log.names[c]: n for c, n in Counter(recent[recent != 0].tolist()).items()}
        )
        totals = log.after
        names = [v for v, _ in window.most_common(_SHOWN)]
        shown = ", ".join(
            f"{v!r} ({plural(totals[v], 'request')} after the command, {window[v]:,} in the "
            f"last {fmt(self.settle_s)} s)"
            for v in names
        )
        more = f" and {len(window) - _SHOWN} more" if len(window) > _SHOWN else ""
        if len(window) == 1:
            return f"version {shown} still answers"
        return f"versions {shown}{more} still answer"

    def _judge_errors(self, b: ResultBuilder, log: _Log, switch: _Switch) -> None:
        good = self.known_good
        start = switch.last_other + 1 if switch.settled and switch.last_other is not None else 0
        is_good = log.codes[start:] == 0
        n_after = int(is_good.sum())
        e_after = int((log.failed[start:] & is_good).sum())
        n_before, e_before = log.before[good], log.good_before_errors
        rate_after = e_after / n_after if n_after else None
        rate_before = e_before / n_before if n_before else None
        b.update_metrics({"record.error_rate": rate_after, "record.error_rate_before": rate_before})
        if rate_after is None:
            return
        after_text = (
            f"version {good!r} failed {e_after:,} of {plural(n_after, 'request')} after the "
            f"{'switch' if switch.settled else 'command'} (error rate {fmt(rate_after)})"
        )
        if rate_before is None:
            b.note(
                "record.errors",
                Status.PASS,
                f"{after_text}; it answered no request before the rollback command to compare with",
                observed=rate_after,
            )
            return
        pvalue = _rate_increase_pvalue(e_before, n_before, e_after, n_after)
        b.metric("record.errors.pvalue", pvalue)
        higher = rate_after > ERRORS_RATIO * rate_before and pvalue < ERRORS_ALPHA
        verdict = (
            f"markedly higher than its {fmt(rate_before)} before the command "
            f"({e_before:,} of {n_before:,}; p = {fmt(pvalue, 2)} under equal rates)"
            if higher
            else f"vs {fmt(rate_before)} before the command ({e_before:,} of {n_before:,})"
        )
        b.note(
            "record.errors",
            Status.WARN if higher else Status.PASS,
            f"{after_text}, {verdict}",
            observed=rate_after,
            limit=f"<= {fmt(ERRORS_RATIO)} x before, or p >= {fmt(ERRORS_ALPHA)}",
        )

    def _pass_summary(self, switch: _Switch, others: list[dict[str, Any]]) -> str:
        n_other = sum(row["n_requests"] for row in others)
        return (
            f"rolled back to version {self.known_good!r}: the log shows only it from "
            f"{fmt(switch.switch_s)} s after the command (max_rollback_s "
            f"{fmt(held(self.max_rollback_s).value)} s); "
            f"{plural(n_other, 'request')} answered by other versions meanwhile"
        )
