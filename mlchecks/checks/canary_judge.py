"""Rubric test 6 where the platform routes the traffic: judge the canary from its record.

In production the traffic split is done by the platform (KServe ``canaryTrafficPercent``,
Istio, Argo Rollouts, Flagger) and what a team has is the traffic's record: request logs
and payload loggers. `CanaryJudge` judges that record with the tests `CanaryCheck` runs on
the trickle it routes itself (errors, latency, tail latency, prediction shift, and in shadow
mode the disagreement rate), anytime-valid, so it may be looked at after every request:

- **split** (the default): each request was answered by one version. The platform's share
  of traffic is not known here and changes during a progressive rollout, so errors, slow
  requests and predicted classes are compared between each candidate request and the
  baseline requests nearest it (`mlchecks.stats.sequential.RoutedRateTest`), not against a
  routing fraction; latencies and accuracies in pairs of requests.
- **shadow**: mirrored requests, answered by both versions, paired by request id.

Labels that arrive later (`Label`, joined by request id) feed an **accuracy** test: is the
candidate's accuracy more than ``max_accuracy_drop`` below the baseline's, on labelled
requests paired as latencies are?

`CanaryJudge.run` reads ``records`` to the end or to a decision; `CanaryJudge.start` returns
a `CanaryWatch`, fed one record at a time (``mlchecks canary watch`` and the judge service
``mlchecks judge serve`` use it). The verdict is ``"pass"`` once the candidate served
``n_candidate_requests`` requests with no regression, ``"fail"`` on a regression, and
otherwise ``"inconclusive"`` (the record ended first), or ``"insufficient data"`` when none
of the candidate's requests succeeded: a record where everything errored never passes.
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

import attrs

from mlchecks._deadline import Deadline, stopping
from mlchecks._fields import (
    MaxLimit,
    count,
    held_or_none,
    limit,
    name_field,
    rubric,
    seconds,
    seed,
)
from mlchecks._text import fmt
from mlchecks._validate import describe, non_empty_string
from mlchecks.check import Context
from mlchecks.checks._canary_fields import TrickleSettings
from mlchecks.checks._canary_leads import lead
from mlchecks.checks._canary_outputs import Row
from mlchecks.checks._canary_policy import TESTS, CanaryMonitor, Decision
from mlchecks.checks._canary_report import Trickle, report_trickle, summary
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._traffic import request_rows
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Result, Status
from mlchecks.serving.records import Label, Record, records_source
from mlchecks.stats._evalue import exp_capped

__all__ = ["VERDICTS", "CanaryJudge", "CanaryWatch"]

#: The tail test's threshold is the quantile of this many latest latencies (bounded work per
#: request on a long record).
TAIL_WINDOW = 20_000

Verdict = Literal["pass", "fail", "inconclusive", "insufficient data"]
#: The monitor's decision -> the verdict a judge reports.
VERDICTS: Mapping[Decision, Verdict] = {
    "pass": "pass",
    "fail": "fail",
    "continue": "inconclusive",
    "insufficient": "insufficient data",
}


@attrs.frozen
class CanaryJudge(TrickleSettings):
    """Judge a canary from the record of traffic the platform routed.

    Args:
        baseline: the version serving most of the traffic (the record's ``version``).
        candidate: the version under test.
        records: the record (keyword-only, like every field after ``candidate``):
            `Record` and `Label` items, e.g. ``mlchecks.serving.read_records(path)``, or a
            callable returning a fresh iterable per run; None when records are fed to a
            `CanaryWatch` (`start`).
        mode: ``"split"`` (each request answered by one version) or ``"shadow"``
            (mirrored requests answered by both, paired by ``request_id``).
        max_accuracy_drop: the candidate's accuracy on labelled requests may be this much
            below the baseline's (None: labels are not tested).
        n_candidate_labels: a PASS also needs this many labelled candidate requests (0:
            labels are judged as they come, the verdict does not wait for them).
        n_pending: the most requests held while waiting for their mirrored twin (shadow)
            or their label; the oldest beyond it are counted as unmatched.
        seed: seeds the draw of one row per batched answer for the shift test (None: the
            `Context`'s seed).
        check_timeout_s: the longest `run` may read ``records`` (a source that blocks
            included); past it the judge ends in ERROR. None: no limit.
        name: the check's name.
        rubric: the ML Test Score test number.

    The other fields are `CanaryCheck`'s stage-1 fields, with its defaults:
    ``alpha``, ``n_candidate_requests``, ``max_latency_ratio``, ``clip_ratio``,
    ``max_tail_ratio``, ``latency_quantile``, ``max_psi``, ``max_js``,
    ``max_disagreement``, ``score_atol``, ``score_bins``, ``classify``, ``classes``.

    Raises:
        InvalidInput: a field has the wrong type or value.

    >>> from mlchecks.serving import Record
    >>> log = [
    ...     Record(version="v2" if i % 10 == 0 else "v1", latency_s=0.010, outputs=[0.3, 0.7])
    ...     for i in range(5000)
    ... ]
    >>> result = CanaryJudge("v1", "v2", records=log).run()
    >>> result.status, result.metrics["trickle.candidate.n_requests"]
    (<Status.PASS: 'pass'>, 500.0)
    >>> failing = [Record(version=r.version, error=r.version == "v2") for r in log]
    >>> CanaryJudge("v1", "v2", records=failing).run().status
    <Status.FAIL: 'fail'>
    """

    _stage: ClassVar[str] = "the canary"

    baseline: str = attrs.field(validator=non_empty_string)
    candidate: str = attrs.field(validator=non_empty_string)
    records: Iterable[Any] | Callable[[], Iterable[Any]] | None = attrs.field(
        default=None, validator=records_source, kw_only=True
    )
    max_accuracy_drop: MaxLimit | None = limit("max", 0.02, high=1.0, optional=True)
    n_candidate_labels: int = count(0)
    n_pending: int = count(100_000, minimum=1)
    seed: int | None = seed()
    check_timeout_s: float | None = seconds(3600.0, optional=True)
    name: str = name_field("canary-judge")
    rubric: int | None = rubric(6)

    def __attrs_post_init__(self) -> None:
        self._check_limits()
        if self.baseline == self.candidate:
            raise InvalidInput(
                f"'baseline' and 'candidate' must be different versions (both {self.baseline!r})"
            )

    def _accuracy_limit(self) -> AtMost | None:
        return held_or_none(self.max_accuracy_drop)

    def start(self, context: Context | None = None) -> CanaryWatch:
        """A `CanaryWatch`: the judge's state, fed one record at a time."""
        return CanaryWatch(self, context)

    def run(self, context: Context | None = None) -> Result:
        """Judge ``records`` to the end, or until the verdict is reached."""
        ctx = context if context is not None else Context()
        if self.records is None:
            raise InvalidInput(
                "'records' is None: pass records=... to run the judge, or feed a watch "
                "from judge.start()"
            )
        records = self.records() if callable(self.records) else self.records
        watch = self.start(ctx)
        ctx.report(f"canary judge: {self.candidate!r} against {self.baseline!r}")
        with Deadline(self.check_timeout_s, self.name) as deadline, stopping(records):
            deadline.call(_feed, watch, records, ctx, deadline, doing="reading the records")
        stats = getattr(records, "stats", None)
        return watch.result(source=stats if stats is not None else None)


def _feed(watch: CanaryWatch, records: Iterable[Any], ctx: Context, deadline: Deadline) -> None:
    """Feed ``records`` to ``watch`` until its verdict, the end, or ``deadline``."""
    for item in records:
        if watch.observe(item) != "continue":
            return
        if deadline.expired:
            deadline.check(f"reading record {watch.n_records + 1}")
        if watch.n_records % 10_000 == 0:
            ctx.report(f"canary judge: {watch.n_records} records, {watch.progress()}")


class CanaryWatch:
    """A canary judged while its record grows: feed it with `observe`, read the verdict.

    Not thread-safe: a service that feeds it from one thread and reads it from others
    holds a lock around both.

    >>> from mlchecks.serving import Label, Record
    >>> watch = CanaryJudge("v1", "v2", n_candidate_requests=2).start()
    >>> for i, version in enumerate(["v1", "v2", "v1", "v2"]):
    ...     _ = watch.observe(Record(version=version, latency_s=0.01, request_id=str(i)))
    >>> watch.verdict, watch.n_records
    ('pass', 4)
    """

    def __init__(self, judge: CanaryJudge, context: Context | None = None) -> None:
        self.judge = judge
        accuracy = judge._accuracy_limit()
        policy = judge._trickle_policy(
            traffic_fraction=None if judge.mode == "split" else 0.5,
            tail_window=TAIL_WINDOW,
            alpha=judge.alpha,
            max_accuracy_drop=None if accuracy is None else accuracy.value,
            n_candidate_labels=judge.n_candidate_labels,
        )
        self.monitor = CanaryMonitor(policy)
        self.reader = judge._reader()
        self.trickle = Trickle(judge.baseline, stop_reason="the record ended")
        self.n_records = 0
        self.other_versions: dict[str, int] = {}
        self.labels = {"received": 0, "joined": 0, "unmatched": 0}
        self.unpaired = 0  # shadow mode: records whose twin never came (or had no id)
        self._twins: OrderedDict[str, Record] = OrderedDict()
        self._predictions: OrderedDict[str, dict[str, int | None]] = OrderedDict()
        seed = judge.seed if judge.seed is not None else (context or Context()).seed
        self._rng = random.Random(seed)
        self._first_time: float | None = None  # the first and the latest record time
        self._last_time: float | None = None
        self._started = time.perf_counter()

    # ------------------------------------------------------------------ feeding

    @property
    def decision(self) -> Decision:
        """``"continue"``, ``"fail"``, ``"pass"`` or ``"insufficient"`` (the monitor's)."""
        return self.monitor.decision

    @property
    def verdict(self) -> Verdict:
        """``"pass"``, ``"fail"``, ``"inconclusive"`` or ``"insufficient data"``."""
        return VERDICTS[self.monitor.decision]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The tests that detected a regression (empty unless the verdict is a FAIL)."""
        return self.monitor.reasons

    def observe(self, item: Record | Label) -> Decision:
        """Add one `Record` (a request) or `Label` (a late label); return the decision.

        Records of other versions than the two judged are counted, not judged; records
        after the decision are counted too.
        """
        if isinstance(item, Label):
            self._label(item.request_id, item.label)
            return self.decision
        if not isinstance(item, Record):
            raise InvalidInput(f"'item' must be a Record or a Label (got {describe(item)})")
        self.n_records += 1
        if item.time is not None:
            self._last_time = item.time
            if self._first_time is None:
                self._first_time = item.time
        judge = self.judge
        if item.version not in (judge.baseline, judge.candidate):
            self.other_versions[item.version] = self.other_versions.get(item.version, 0) + 1
            return self.decision
        if self.decision != "continue":
            return self.decision
        self.trickle.consumed += 1
        arm = "candidate" if item.version == judge.candidate else "baseline"
        ok = item.ok
        label = self._class(item) if ok else None
        if judge.mode == "split":
            self._count(arm, item, ok)
            self.monitor.observe(
                candidate=arm == "candidate",
                error=not ok,
                latency_s=item.latency_s if ok else None,
                label=label,
            )
        else:
            self._mirror(arm, item)
        if ok and item.request_id is not None:
            self._remember(item.request_id, arm, label)
        if ok and item.label is not None:
            if item.request_id is None:
                self._outcome(arm, label, item.label)
            else:
                self._label(item.request_id, item.label, counted=False)
        self.trickle.track(self.monitor.log_evalues)
        return self._stopped()

    def _stopped(self) -> Decision:
        self.trickle.decided(self.monitor.decision, self.judge.n_candidate_requests)
        return self.monitor.decision

    def _count(self, arm: str, record: Record, ok: bool) -> None:
        self.trickle.count(
            arm,
            ok=ok,
            latency_s=record.latency_s,
            kind=None if ok else _error_kind(record),
            message=None if ok else record.failure,
        )

    def _row(self, outputs: Any) -> Row:
        """The answer's rows and the one drawn at random to speak for it (as `CanaryCheck`
        draws one per request)."""
        n = request_rows(outputs)  # a batch's answer is a list of rows
        return Row(n, self._rng.randrange(n) if n > 1 else 0)

    def _class(self, record: Record, row: Row | None = None) -> int | None:
        """The predicted class of the answer (of ``row``, else of a row drawn now)."""
        if record.outputs is None:
            return None
        row = self._row(record.outputs) if row is None else row
        return self.reader.row_label(record.outputs, row.n, row.drawn)

    def _mirror(self, arm: str, record: Record) -> None:
        """Shadow mode: hold a record until its twin from the other version comes."""
        key = record.request_id
        twin = None if key is None else self._twins.get(key)
        if key is None or twin is None or twin.version == record.version:
            if key is None:
                self.unpaired += 1
            else:
                self._twins[key] = record
                self.unpaired += self._bound(self._twins)
            return
        del self._twins[key]
        pair = {arm: record, ("baseline" if arm == "candidate" else "candidate"): twin}
        c, b = pair["candidate"], pair["baseline"]
        self._count("candidate", c, c.ok)
        self._count("baseline", b, b.ok)
        row = self._row(c.outputs if c.ok else b.outputs)  # the same row of both answers
        both = c.ok and b.ok and c.outputs is not None and b.outputs is not None
        self.monitor.observe_pair(
            candidate_error=not c.ok,
            baseline_error=not b.ok,
            candidate_latency_s=c.latency_s if c.ok else None,
            baseline_latency_s=b.latency_s if b.ok else None,
            candidate_label=self._class(c, row) if c.ok else None,
            baseline_label=self._class(b, row) if b.ok else None,
            disagree=row.disagreement(self.reader, c.outputs, b.outputs) if both else None,
        )

    def _bound(self, table: OrderedDict[str, Any]) -> int:
        """Drop the oldest entries beyond ``n_pending``; how many were dropped."""
        dropped = max(0, len(table) - self.judge.n_pending)
        for _ in range(dropped):
            table.popitem(last=False)
        return dropped

    # ------------------------------------------------------------------- labels

    def _remember(self, request_id: str, arm: str, label: int | None) -> None:
        if self.judge.max_accuracy_drop is None:
            return
        self._predictions.setdefault(request_id, {})[arm] = label
        self._predictions.move_to_end(request_id)
        self._bound(self._predictions)

    def _label(self, request_id: str, truth: Any, *, counted: bool = True) -> None:
        """Join a label with the prediction(s) of its request."""
        self.labels["received"] += counted
        predictions = self._predictions.pop(request_id, None)
        if predictions is None:
            self.labels["unmatched"] += counted
            return
        if self.judge.mode == "split":
            self.labels["joined"] += 1
            for arm, predicted in predictions.items():
                self._outcome(arm, predicted, truth)
            return
        # shadow mode: both versions' predictions of the request, or it cannot be compared
        candidate, baseline = predictions.get("candidate"), predictions.get("baseline")
        if candidate is None or baseline is None:
            self.labels["unmatched"] += counted
            return
        self.labels["joined"] += 1
        if self.monitor.decision == "continue":
            code = self.reader.code(truth)
            self.monitor.observe_outcome_pair(
                candidate_wrong=float(candidate != code), baseline_wrong=float(baseline != code)
            )
            self._stopped()

    def _outcome(self, arm: str, predicted: int | None, truth: Any) -> None:
        if self.judge.max_accuracy_drop is None or predicted is None:
            return
        wrong = float(predicted != self.reader.code(truth))
        if self.monitor.decision == "continue":
            self.monitor.observe_outcome(candidate=arm == "candidate", wrong=wrong)
            self._stopped()

    # ------------------------------------------------------------------ reading

    def progress(self) -> str:
        """One line: requests per version, each test's e-value against the threshold."""
        m = self.monitor
        threshold = m.config.evalue_threshold
        tests = ", ".join(f"{name} {fmt(value, 3)}" for name, value in self._evalues().items())
        return (
            f"{self.verdict}: candidate {m.n_candidate}/{self.judge.n_candidate_requests} "
            f"requests, baseline {self.trickle.arms['baseline']['requests']}; e-values "
            f"{tests} (FAIL at {fmt(threshold, 3)})"
        )

    def _evalues(self) -> dict[str, float]:
        """Each running test's e-value now."""
        values = self.monitor.log_evalues()
        return {
            name: exp_capped(value)
            for name, value in zip(TESTS, values, strict=True)
            if not math.isnan(value)
        }

    def evidence(self) -> dict[str, Any]:
        """The verdict and everything it rests on, as JSON-safe values."""
        evidence = self.monitor.evidence()
        evidence.update(
            {
                "verdict": self.verdict,
                "baseline": self.judge.baseline,
                "candidate": self.judge.candidate,
                "records": self.n_records,
                "other_versions": dict(self.other_versions),
                "unpaired": self.unpaired,
                "labels": dict(self.labels),
                "n_candidate_requests": self.judge.n_candidate_requests,
                "evalues": self._evalues(),
            }
        )
        return evidence

    def result(self, source: Any = None) -> Result:
        """The canary's `Result`: the stage-1 findings of `CanaryCheck`, on the record.

        Args:
            source: the reader's statistics (``stats`` of `read_records`), reported as the
                ``records`` finding: bad lines are counted, never dropped silently.
        """
        judge = self.judge
        b = ResultBuilder.of(judge)
        b.detail("candidate", judge.candidate)
        if self._first_time is not None and self._last_time is not None:
            self.trickle.elapsed_s = max(0.0, self._last_time - self._first_time)
        self._report_record(b, source)
        report_trickle(judge, self.monitor, self.trickle, b)
        note = b.details.get("trickle", {}).get("note")
        passed = "the canary on the traffic's record"
        lead(b, judge.candidate)
        result = b.result(summary=summary(b.findings, judge.candidate, note, passed=passed))
        return attrs.evolve(result, duration_s=time.perf_counter() - self._started)

    def _report_record(self, b: ResultBuilder, source: Any) -> None:
        judge = self.judge
        b.update_metrics(
            {
                "record.n_records": float(self.n_records),
                "record.n_other_versions": float(sum(self.other_versions.values())),
                "record.n_labels_joined": float(self.labels["joined"]),
            }
        )
        b.detail("record", {"labels": dict(self.labels), "unpaired": self.unpaired})
        parts = [f"{self.n_records} records"]
        status = Status.PASS
        if self.other_versions:
            others = ", ".join(f"{v!r}: {n}" for v, n in sorted(self.other_versions.items()))
            parts.append(
                f"records of other versions than {judge.baseline!r} and {judge.candidate!r} "
                f"were not judged ({others})"
            )
        if self.unpaired:
            parts.append(f"{self.unpaired} mirrored records found no twin by request id")
        if self.labels["unmatched"]:
            parts.append(f"{self.labels['unmatched']} labels matched no request id")
        bad = 0 if source is None else int(getattr(source, "bad_lines", 0) or 0)
        if source is not None:
            b.detail("source", _stats_dict(source))
            b.metric("record.n_bad_lines", float(bad))
            if bad:
                status = Status.WARN
                parts.append(f"{bad} lines could not be read: {_first_bad(source)}")
        if self.n_records and self.trickle.consumed == 0:
            status = Status.WARN
            parts.append(
                f"no record was served by {judge.baseline!r} or {judge.candidate!r}: check "
                "the version names"
            )
        b.note("record", status, "; ".join(parts), observed=float(bad), limit="no bad lines")


def _error_kind(record: Record) -> str:
    if record.status is not None and 400 <= record.status < 500:
        return "client"
    if record.status is not None and record.status >= 500:
        return "server"
    return "error"


def _stats_dict(stats: Any) -> Any:
    if isinstance(stats, Mapping):
        return dict(stats)
    if attrs.has(type(stats)):
        return attrs.asdict(stats)
    return {k: v for k, v in vars(stats).items() if not k.startswith("_")}


def _first_bad(stats: Any) -> str:
    examples = getattr(stats, "bad_examples", None) or []
    return "; ".join(str(e) for e in list(examples)[:3]) or "see details['source']"
