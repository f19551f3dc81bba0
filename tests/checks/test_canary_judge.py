"""CanaryJudge: the canary judged from the traffic's record (issue 15, items 1 and 5)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mlchecks import Status
from mlchecks.checks import CanaryCheck, CanaryJudge, CanaryWatch
from mlchecks.exceptions import InvalidInput
from mlchecks.serving import Label, Record, read_records


def split_log(
    n: int = 6000,
    *,
    share: float = 0.2,
    seed: int = 0,
    error: tuple[float, float] = (0.01, 0.01),
    latency: tuple[float, float] = (1.0, 1.0),
    invert: bool = False,
    outputs: str = "class",
) -> list[Record]:
    """Records of a split canary: (candidate, baseline) error rates and latency factors."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cand = bool(rng.random() < share)
        arm = 0 if cand else 1
        version = "v2" if cand else "v1"
        if rng.random() < error[arm]:
            out.append(Record(version=version, status=500, request_id=f"r{i}"))
            continue
        truth = int(rng.random() < 0.5)
        pred = truth if rng.random() < 0.9 else 1 - truth
        if invert and cand:
            pred = 1 - pred
        answer: Any = pred if outputs == "class" else [[1.0 - pred, float(pred)]] * 3
        out.append(
            Record(
                version=version,
                latency_s=0.01 * latency[arm] * float(np.exp(rng.normal(0, 0.3))),
                outputs=answer,
                request_id=f"r{i}",
                label=truth,
            )
        )
    return out


def findings(result: Any) -> dict[str, Status]:
    return {f.name: f.status for f in result.findings}


class TestVerdicts:
    def test_a_healthy_candidate_passes_with_the_canary_checks_findings(self) -> None:
        result = CanaryJudge("v1", "v2", records=split_log()).run()
        assert result.status is Status.PASS
        assert {
            "record",
            "trickle.errors",
            "trickle.latency",
            "trickle.tail",
            "trickle.shift",
            "trickle.accuracy",
            "trickle",
        } == set(findings(result))
        assert result.summary.startswith(
            "Version 'v2' did no worse than the current version over 2,319 live requests. "
            "It passed the canary on the traffic's record"
        )
        assert result.metrics["trickle.candidate.n_requests"] == 500

    def test_twice_the_errors_fail_naming_errors(self) -> None:
        """At the default quota (500 candidate requests) a 2x error rate of 2% is seen about
        half the time; a quota of 4,000 sees it (docs/canary_platforms.md)."""
        log = split_log(20_000, error=(0.04, 0.02))
        result = CanaryJudge("v1", "v2", records=log, n_candidate_requests=4000).run()
        assert result.status is Status.FAIL
        assert findings(result)["trickle.errors"] is Status.FAIL
        assert result.summary.startswith("Version 'v2' failed 69 of 1,852 live requests")
        assert ": the candidate fails more often than the baseline" in result.summary

    def test_slower_candidate_fails_on_latency(self) -> None:
        result = CanaryJudge("v1", "v2", records=split_log(latency=(1.5, 1.0))).run()
        assert result.status is Status.FAIL
        statuses = findings(result)
        assert Status.FAIL in (statuses["trickle.latency"], statuses["trickle.tail"])

    def test_inverted_labels_fail_on_the_labels(self) -> None:
        """The class mix is the same (balanced classes): only the labels show it."""
        result = CanaryJudge("v1", "v2", records=split_log(invert=True)).run()
        assert findings(result)["trickle.accuracy"] is Status.FAIL
        assert findings(result)["trickle.shift"] is Status.PASS
        assert "less accurate" in result.summary

    def test_without_labels_split_mode_says_what_it_cannot_see(self) -> None:
        log = [attrs_evolve(r, label=None) for r in split_log(invert=True)]
        result = CanaryJudge("v1", "v2", records=log).run()
        assert result.status is Status.PASS
        assert "split mode compares class mixes" in result.summary

    def test_an_all_errored_record_never_passes(self) -> None:
        log = [Record(version="v2" if i % 5 == 0 else "v1", error=True) for i in range(5000)]
        result = CanaryJudge("v1", "v2", records=log).run()
        assert result.status is Status.WARN
        assert findings(result)["trickle"] is Status.WARN
        assert "insufficient data" in result.summary
        watch = CanaryJudge("v1", "v2").start()
        for record in log:
            watch.observe(record)
        assert watch.verdict == "insufficient data"

    def test_a_short_record_is_inconclusive(self) -> None:
        result = CanaryJudge("v1", "v2", records=split_log(300)).run()
        assert result.status is Status.WARN
        assert "inconclusive after 300 requests: the record ended" in result.summary

    def test_batched_answers_judged_by_one_drawn_row(self) -> None:
        result = CanaryJudge("v1", "v2", records=split_log(outputs="batch")).run()
        assert result.status is Status.PASS
        classes = result.details["trickle"]["classes"]
        assert set(classes) == {"0", "1"}


def attrs_evolve(record: Record, **changes: Any) -> Record:
    import attrs

    return attrs.evolve(record, **changes)


class TestRecord:
    def test_other_versions_counted_not_judged(self) -> None:
        log = split_log(3000) + [Record(version="v0", latency_s=0.1)] * 7
        result = CanaryJudge("v1", "v2", records=log, n_candidate_requests=10_000).run()
        assert "records of other versions than 'v1' and 'v2' were not judged ('v0': 7)" in (
            next(f.message for f in result.findings if f.name == "record")
        )
        assert result.metrics["record.n_other_versions"] == 7

    def test_misnamed_versions_warn(self) -> None:
        result = CanaryJudge("blue", "green", records=split_log(100)).run()
        record = next(f for f in result.findings if f.name == "record")
        assert record.status is Status.WARN
        assert "check the version names" in record.message

    def test_bad_lines_of_a_log_are_reported(self, tmp_path: Any) -> None:
        path = tmp_path / "requests.jsonl"
        lines = [
            json.dumps({"version": r.version, "latency_s": r.latency_s, "prediction": r.outputs})
            for r in split_log(800)
            if r.ok
        ]
        lines.insert(10, "not json")
        path.write_text("\n".join(lines) + "\n")
        result = CanaryJudge("v1", "v2", records=read_records(path)).run()
        record = next(f for f in result.findings if f.name == "record")
        assert record.status is Status.WARN
        assert "1 lines could not be read: line 11" in record.message
        assert result.metrics["record.n_bad_lines"] == 1


class TestLabels:
    def test_late_labels_are_joined_by_request_id(self) -> None:
        log: list[Any] = []
        for r in split_log(invert=True):
            log.append(attrs_evolve(r, label=None))
            if r.label is not None:
                log.append(Label(request_id=r.request_id or "", label=r.label))
        log.append(Label(request_id="nobody", label=1))
        watch = CanaryJudge("v1", "v2").start()
        for item in log:
            watch.observe(item)
        assert watch.verdict == "fail"
        assert watch.reasons == ("accuracy",)
        assert watch.labels["joined"] > 0

    def test_a_pass_waits_for_labels_when_asked(self) -> None:
        log = [attrs_evolve(r, label=None) for r in split_log()]
        watch = CanaryJudge("v1", "v2", n_candidate_labels=50).start()
        for item in log:
            watch.observe(item)
        assert watch.verdict == "inconclusive"
        for r in split_log():
            if r.label is not None and r.version == "v2":
                watch.observe(Label(request_id=r.request_id or "", label=r.label))
        for r in split_log(600, seed=1):  # the verdict is taken on the next records
            watch.observe(attrs_evolve(r, request_id=f"x{r.request_id}", label=None))
        assert watch.verdict == "pass"

    def test_no_accuracy_test_without_a_limit(self) -> None:
        result = CanaryJudge("v1", "v2", records=split_log(), max_accuracy_drop=None).run()
        assert "trickle.accuracy" not in findings(result)
        assert result.details["trickle"]["tests"] == 4


class TestShadow:
    def mirrored(self, n: int = 1500, *, invert: bool = False, seed: int = 2) -> list[Record]:
        rng = np.random.default_rng(seed)
        out = []
        for i in range(n):
            pred = int(rng.integers(0, 3))
            for version in ("v1", "v2"):
                p = (pred + 1) % 3 if invert and version == "v2" else pred
                latency = 0.01 * float(np.exp(rng.normal(0, 0.2)))
                out.append(
                    Record(version=version, latency_s=latency, outputs=p, request_id=f"m{i}")
                )
        out.append(Record(version="v2", latency_s=0.01, outputs=0))  # no id: unpaired
        return out

    def test_mirrored_requests_pair_by_id(self) -> None:
        judge = CanaryJudge("v1", "v2", mode="shadow", n_candidate_requests=1000)
        watch = judge.start()
        for record in self.mirrored():
            watch.observe(record)
        assert watch.verdict == "pass"
        assert watch.monitor.n_compared == 1000
        assert watch.unpaired == 0  # the verdict came before the unpaired record
        assert judge.run.__doc__

    def test_inverted_predictions_fail_disagreement(self) -> None:
        result = CanaryJudge("v1", "v2", mode="shadow", records=self.mirrored(invert=True)).run()
        assert findings(result)["trickle.disagreement"] is Status.FAIL

    def test_late_labels_join_both_answers_of_a_mirrored_request(self) -> None:
        """Shadow mode: a label scores both versions' predictions of its request; a label
        whose request only one version answered cannot compare them and is unmatched."""
        judge = CanaryJudge(
            "v1", "v2", mode="shadow", max_disagreement=None, n_candidate_requests=10_000
        )
        watch = judge.start()
        rng = np.random.default_rng(5)
        for i in range(400):
            truth = int(rng.integers(0, 3))
            for version in ("v1", "v2"):
                predicted = (truth + 1) % 3 if version == "v2" else truth
                watch.observe(Record(version=version, outputs=predicted, request_id=f"m{i}"))
            if watch.observe(Label(request_id=f"m{i}", label=truth)) == "fail":
                break
        assert watch.verdict == "fail"
        assert "accuracy" in watch.reasons
        assert watch.labels["unmatched"] == 0
        fresh = judge.start()
        fresh.observe(Record(version="v1", outputs=0, request_id="alone"))
        fresh.observe(Label(request_id="alone", label=0))
        assert fresh.labels == {"received": 1, "joined": 0, "unmatched": 1}

    def test_batched_mirrored_answers_compared_row_by_row(self) -> None:
        """8-row answers: both versions' rows are compared (Row.disagreement, as CanaryCheck
        does), so a candidate inverting every row FAILs disagreement; an identical one
        passes."""
        rng = np.random.default_rng(6)

        def log(invert: bool) -> list[Record]:
            out = []
            for i in range(600):
                rows = rng.integers(0, 2, size=8)
                for version in ("v1", "v2"):
                    classes = 1 - rows if invert and version == "v2" else rows
                    scores = np.stack([1.0 - classes, classes.astype(float)], axis=1)
                    out.append(Record(version=version, outputs=scores.tolist(), request_id=f"b{i}"))
            return out

        def run(invert: bool) -> Any:
            judge = CanaryJudge("v1", "v2", mode="shadow", records=log(invert))
            return judge.run()

        assert findings(run(True))["trickle.disagreement"] is Status.FAIL
        healthy = run(False)
        assert healthy.status is Status.PASS
        assert healthy.details["trickle"]["disagreements"] == 0

    def test_unpaired_records_are_reported(self) -> None:
        result = CanaryJudge(
            "v1", "v2", mode="shadow", records=self.mirrored(100), n_candidate_requests=5000
        ).run()
        record = next(f for f in result.findings if f.name == "record")
        assert "1 mirrored records found no twin by request id" in record.message


class TestInterface:
    def test_evidence_is_json(self) -> None:
        watch = CanaryJudge("v1", "v2").start()
        for record in split_log(2000):
            watch.observe(record)
        evidence = watch.evidence()
        json.dumps(evidence)  # JSON-safe types (NaN aside, as Python's json writes it)
        assert evidence["verdict"] == watch.verdict
        assert set(evidence["evalues"]) == {"errors", "latency", "tail", "shift", "accuracy"}
        assert "e-values" in watch.progress()

    def test_same_fields_and_limits_as_the_canary_check(self) -> None:
        judge, check_fields = CanaryJudge("v1", "v2"), {a.name for a in CanaryCheck.__attrs_attrs__}
        shared = {a.name for a in CanaryJudge.__attrs_attrs__} & check_fields
        assert {"max_latency_ratio", "max_tail_ratio", "max_psi", "classes", "alpha"} <= shared
        check = CanaryCheck.__attrs_attrs__
        assert judge.max_latency_ratio.value == check.max_latency_ratio.default

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"baseline": "v1", "candidate": "v1"}, "must be different versions"),
            ({"baseline": "v1", "candidate": "v2", "records": "log.jsonl"}, "read_records"),
            ({"baseline": "", "candidate": "v2"}, "'baseline'"),
            ({"baseline": "v1", "candidate": "v2", "clip_ratio": 1.1}, "'clip_ratio'"),
            ({"baseline": "v1", "candidate": "v2", "max_accuracy_drop": 2}, "max_accuracy_drop"),
        ],
    )
    def test_bad_fields(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(InvalidInput, match=match):
            CanaryJudge(**kwargs)

    def test_run_needs_records_and_observe_needs_a_record(self) -> None:
        with pytest.raises(InvalidInput, match="'records' is None"):
            CanaryJudge("v1", "v2").run()
        watch: CanaryWatch = CanaryJudge("v1", "v2").start()
        with pytest.raises(InvalidInput, match="'item' must be a Record or a Label"):
            watch.observe({"version": "v1"})  # type: ignore[arg-type]

    def test_records_may_be_a_callable(self) -> None:
        judge = CanaryJudge("v1", "v2", records=lambda: iter(split_log()))
        assert judge.run().status is Status.PASS
        assert judge.run().status is Status.PASS  # a fresh iterable per run
