"""Tests for mlchecks.checks.rollback_record: `RollbackRecordCheck`."""

from __future__ import annotations

import datetime
import doctest
import json
import math
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import pytest

from mlchecks import AtMost, Check, Result, Status, run_check
from mlchecks.checks import RollbackRecordCheck
from mlchecks.checks import rollback_record as module
from mlchecks.exceptions import InvalidInput
from mlchecks.serving.records import Label, Record

T0 = 1_700_000_000.0  # the rollback command, seconds since the epoch
RATE = 10.0  # requests per second in the hand-built logs


def ticks(start: float, stop: float, rate: float = RATE) -> list[float]:
    """Times from ``T0 + start`` up to ``T0 + stop`` (inclusive), ``rate`` per second."""
    n = round((stop - start) * rate)
    return [T0 + start + i / rate for i in range(n + 1)]


def healthy_log(trickle_s: float = 5.0, after_s: float = 60.0) -> list[Record]:
    """Half the traffic on "v2" before the command; "v2" trickles out until ``trickle_s``."""
    log = [Record(version="v1" if i % 2 else "v2", time=t) for i, t in enumerate(ticks(-30, -0.1))]
    trickle = ticks(0.0, trickle_s)
    log += [Record(version="v2" if i % 2 == 0 else "v1", time=t) for i, t in enumerate(trickle)]
    log[-1] = Record(version="v2", time=trickle[-1])  # the last "v2" request, exactly at trickle_s
    log += [Record(version="v1", time=t) for t in ticks(trickle_s + 0.1, trickle_s + after_s)]
    return log


def check_of(log: Any, **settings: Any) -> RollbackRecordCheck:
    return RollbackRecordCheck(log, known_good="v1", rolled_back_at=T0, **settings)


def shuffled(log: list[Record], seed: int = 0) -> list[Record]:
    order = np.random.default_rng(seed).permutation(len(log))
    return [log[i] for i in order]


class TestSwitch:
    def test_a_healthy_rollback_passes_with_the_switch_time(self) -> None:
        """ "v2" trickles out over 5 s, then only "v1" answers for 60 s: PASS, switch 5 s."""
        check = check_of(healthy_log())
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        assert 5.0 == pytest.approx(result.metrics["record.switch_s"])
        assert Status.PASS == result.finding("record.switch").status
        assert 5.0 == pytest.approx(result.finding("record.switch").observed)
        assert 26.0 == result.metrics["record.n_other_requests"]
        assert 600.0 == result.metrics["record.n_known_good_only"]
        assert "v2" == result.details["last_other"]["version"]
        assert "rolled back to version 'v1'" in result.summary
        assert 7 == result.rubric
        assert isinstance(check, Check)
        assert "rollback-record" == check.name

    def test_records_out_of_time_order_give_the_same_verdict(self) -> None:
        """Payload loggers deliver late: the check sorts by time."""
        ordered = check_of(healthy_log()).run()
        mixed = check_of(shuffled(healthy_log())).run()
        assert Status.PASS == mixed.status
        assert ordered.metrics == mixed.metrics

    def test_no_other_version_after_the_command_switches_at_zero(self) -> None:
        """Every request after the command from the known-good version: switch 0 s."""
        log = [Record(version="v2", time=t) for t in ticks(-10, -0.1)]
        log += [Record(version="v1", time=t) for t in ticks(0, 30)]
        result = check_of(log).run()
        assert Status.PASS == result.status
        assert 0.0 == result.metrics["record.switch_s"]
        assert "every request after the rollback command" in result.finding("record.switch").message

    def test_a_slow_switch_fails(self) -> None:
        """ "v2" answers until 90 s after the command, more than max_rollback_s 60 s."""
        result = check_of(healthy_log(trickle_s=90.0)).run()
        assert Status.FAIL == result.status
        finding = result.finding("record.switch")
        assert Status.FAIL == finding.status
        assert 90.0 == pytest.approx(finding.observed)
        assert "more than max_rollback_s 60 s" in finding.message
        assert "'v2'" in finding.message
        assert finding.message == result.summary

    def test_the_limit_takes_a_condition_with_its_severity(self) -> None:
        """AtMost(..., severity="warn") makes a slow switch a warning; a number moves it."""
        warn = check_of(healthy_log(trickle_s=90.0), max_rollback_s=AtMost(60, severity="warn"))
        assert Status.WARN == warn.run().finding("record.switch").status
        assert Status.PASS == check_of(healthy_log(trickle_s=90.0), max_rollback_s=120).run().status

    def test_a_version_still_answering_at_the_end_fails_naming_it(self) -> None:
        """ "v2" keeps answering 2% of requests to the end of the log: FAIL with its count."""
        rng = np.random.default_rng(3)
        log = [Record(version="v2", time=t) for t in ticks(-10, -0.1)]
        after = [
            Record(version="v2" if rng.random() < 0.02 else "v1", time=t) for t in ticks(0, 300)
        ]
        after[-5] = Record(version="v2", time=after[-5].time)  # it answers at the very end
        log += after
        n_v2 = sum(r.version == "v2" for r in after)
        result = check_of(log).run()
        assert Status.FAIL == result.status
        finding = result.finding("record.switch")
        assert Status.FAIL == finding.status
        assert math.inf == finding.observed
        assert math.inf == result.metrics["record.switch_s"]
        assert f"version 'v2' ({n_v2} requests after the command" in finding.message
        assert "still answers at the end of the log" in finding.message
        assert "never shows only version 'v1'" in finding.message
        assert float(n_v2) == result.metrics["record.n_other_requests"]

    def test_a_third_version_answering_counts_as_other(self) -> None:
        """Any version but the known-good one is "other", and is named."""
        log = healthy_log(trickle_s=2.0)
        log.append(Record(version="v3", time=T0 + 4.0, error="boom"))
        result = check_of(log).run()
        assert Status.PASS == result.status
        assert 4.0 == pytest.approx(result.metrics["record.switch_s"])
        rows = {row["version"]: row for row in result.details["other_requests"]}
        assert {"v2", "v3"} == set(rows)
        assert {"n_requests": 1, "n_ok": 0, "n_failed": 1} == {
            k: rows["v3"][k] for k in ("n_requests", "n_ok", "n_failed")
        }
        assert {"boom": 1} == rows["v3"]["failures"]
        assert 1.0 == result.metrics["record.n_other_errors"]
        assert "v3" == result.details["last_other"]["version"]


class TestInsufficientData:
    def test_a_log_ending_one_second_after_the_command_is_inconclusive(self) -> None:
        """The log stops 1 s after the command: WARN "insufficient data", never PASS."""
        log = [Record(version="v2", time=t) for t in ticks(-30, -0.1)]
        log += [Record(version="v1", time=t) for t in ticks(0, 1.0)]
        result = check_of(log).run()
        assert Status.WARN == result.status
        finding = result.finding("record.switch")
        assert finding.message.startswith("insufficient data")
        assert "record.switch_s" not in result.metrics
        assert 1.0 == pytest.approx(result.metrics["record.observed_s"])

    def test_other_version_at_the_end_of_a_short_log_is_inconclusive(self) -> None:
        """ "v2" answering 0.5 s after the command, log ending at 3 s: not yet over the limit."""
        log = [Record(version="v2" if t <= T0 + 0.5 else "v1", time=t) for t in ticks(0, 3.0)]
        result = check_of(log).run()
        assert Status.WARN == result.status
        message = result.finding("record.switch").message
        assert "insufficient data: version 'v2'" in message
        assert "n_settle_requests=20 and settle_s=10 s" in message

    def test_no_record_after_the_command_is_inconclusive(self) -> None:
        """A log that ends before the command cannot show the switch."""
        log = [Record(version="v1", time=t) for t in ticks(-30, -2.0)]
        result = check_of(log).run()
        assert Status.WARN == result.status
        message = result.finding("record.switch").message
        assert "insufficient data" in message
        assert "the log ends 2 s before it" in message

    def test_an_empty_log_is_inconclusive(self) -> None:
        """No records at all: WARN, not PASS."""
        result = check_of([]).run()
        assert Status.WARN == result.status
        assert "insufficient data" in result.summary

    def test_too_few_known_good_requests_is_inconclusive(self) -> None:
        """A quiet service: 60 s of known-good log but only 6 requests in it."""
        log = [Record(version="v2", time=T0 + 1.0)]
        log += [Record(version="v1", time=T0 + 10.0 * i) for i in range(1, 7)]
        result = check_of(log).run()
        assert Status.WARN == result.status
        assert 6.0 == result.metrics["record.n_known_good_only"]
        assert Status.PASS == check_of(log, n_settle_requests=5).run().status


class TestRecordContents:
    def test_records_without_time_give_a_clear_finding(self) -> None:
        """A log whose records carry no time cannot time the rollback: FAIL saying so."""
        log = [Record(version="v1"), Record(version="v2")]
        result = check_of(log).run()
        assert Status.FAIL == result.status
        finding = result.finding("record.time")
        assert Status.FAIL == finding.status
        assert "no record carries a time (2 records)" in finding.message
        assert "give each Record its time" in finding.message

    def test_some_records_without_time_are_left_out_and_counted(self) -> None:
        """Untimed records of another version may have come after the command: WARN."""
        log = [*healthy_log(), Record(version="v2"), Record(version="v1")]
        result = check_of(log).run()
        assert Status.WARN == result.status
        finding = result.finding("record.time")
        assert "2 of" in finding.message
        assert "1 of them from other versions ('v2' 1)" in finding.message
        assert 2.0 == result.metrics["record.n_without_time"]
        assert Status.PASS == result.finding("record.switch").status

    def test_items_that_are_not_records_are_skipped_and_counted(self) -> None:
        """Late labels in the stream are skipped, counted by type."""
        log = [*healthy_log(), Label("a", 1, time=T0 + 1.0), Label("b", 0)]
        result = check_of(log).run()
        assert Status.PASS == result.status
        assert 2.0 == result.metrics["record.n_skipped"]
        assert {"Label": 2} == result.details["skipped"]

    def test_a_misspelled_known_good_version_fails_naming_the_versions(self) -> None:
        """known_good absent from the log: say which versions the log has."""
        result = RollbackRecordCheck(healthy_log(), known_good="1", rolled_back_at=T0).run()
        assert Status.FAIL == result.status
        message = result.finding("record.known_good").message
        assert "'1' answered no request" in message
        assert "'v1'" in message
        assert "'v2'" in message

    def test_records_from_a_callable_are_read_on_every_run(self) -> None:
        """A callable is called once per run (a generator factory re-reads the log)."""
        calls = []

        def read() -> Iterator[Record]:
            calls.append(1)
            yield from healthy_log()

        check = check_of(read)
        assert check.run().status == check.run().status == Status.PASS
        assert 2 == len(calls)

    @pytest.mark.parametrize(
        "when",
        [
            datetime.datetime.fromtimestamp(T0, tz=datetime.timezone.utc),
            "2023-11-14T22:13:20Z",
            "2023-11-14 23:13:20+01:00",
        ],
        ids=["datetime", "iso-utc", "iso-offset"],
    )
    def test_an_aware_datetime_or_iso_text_is_the_same_command_time(self, when: Any) -> None:
        """rolled_back_at accepts an aware datetime and ISO-8601 text, as the logs write it."""
        check = RollbackRecordCheck(healthy_log(), known_good="v1", rolled_back_at=when)
        assert T0 == check.rolled_back_at
        assert 5.0 == pytest.approx(check.run().metrics["record.switch_s"])


class TestOtherRequests:
    def test_other_requests_are_reported_by_version_and_outcome(self) -> None:
        """Successes and errors answered by the other version, with first and last time."""
        log = [Record(version="v2", time=T0 - 1.0, status=200)]
        log += [Record(version="v2", time=T0 + 0.5, status=200)]
        log += [Record(version="v2", time=T0 + 1.0, status=503)]
        log += [Record(version="v2", time=T0 + 1.5, error="timeout")]
        log += [Record(version="v1", time=t, status=200) for t in ticks(2.0, 20.0)]
        result = check_of(log).run()
        assert Status.PASS == result.status
        (row,) = result.details["other_requests"]
        assert {"HTTP 200": 1, "HTTP 503": 1, "timeout": 1} == row["outcomes"]
        assert (3, 1, 2) == (row["n_requests"], row["n_ok"], row["n_failed"])
        assert (0.5, 1.5) == (row["first_s"], row["last_s"])
        message = result.finding("record.other_requests").message
        assert "3 requests were answered by other versions than 'v1'" in message
        assert "'v2' 3 (1 ok, 2 failed" in message
        assert "from +0.5 s to +1.5 s" in message

    def test_max_other_requests_judges_the_count(self) -> None:
        """A limit on the requests other versions answered after the command."""
        result = check_of(healthy_log(), max_other_requests=10).run()
        assert Status.FAIL == result.status
        finding = result.finding("record.other_requests")
        assert 26.0 == finding.observed
        assert "more than max_other_requests 10" in finding.message
        assert Status.PASS == check_of(healthy_log(), max_other_requests=26).run().status


class TestErrors:
    def errors_log(self, rate_before: float, rate_after: float) -> list[Record]:
        rng = np.random.default_rng(1)
        log = [
            Record(version="v1", time=t, status=503 if rng.random() < rate_before else 200)
            for t in ticks(-60, -0.1)
        ]
        log += [
            Record(version="v1", time=t, status=503 if rng.random() < rate_after else 200)
            for t in ticks(0, 60)
        ]
        return log

    def test_a_markedly_higher_error_rate_after_the_switch_warns(self) -> None:
        """1% errors before the command, 10% after: WARN with both rates."""
        result = check_of(self.errors_log(0.01, 0.10)).run()
        assert Status.WARN == result.status
        finding = result.finding("record.errors")
        assert Status.WARN == finding.status
        assert "markedly higher" in finding.message
        assert result.metrics["record.error_rate"] > 0.05
        assert result.metrics["record.errors.pvalue"] < 0.01

    def test_the_same_error_rate_passes(self) -> None:
        """1% before and after: reported, PASS."""
        result = check_of(self.errors_log(0.01, 0.01)).run()
        assert Status.PASS == result.status
        assert Status.PASS == result.finding("record.errors").status

    def test_no_known_good_requests_before_is_reported_only(self) -> None:
        """A full rollout of the bad version before the command: nothing to compare with."""
        log = [Record(version="v2", time=t) for t in ticks(-10, -0.1)]
        log += [Record(version="v1", time=t, error=t > T0 + 10) for t in ticks(0, 30)]
        finding = check_of(log).run().finding("record.errors")
        assert Status.PASS == finding.status
        assert "no request before the rollback command" in finding.message

    def test_the_pvalue_matches_a_brute_force_binomial_tail(self) -> None:
        """The conditional test: P(X >= e_after), X ~ Binomial(e_before + e_after, share)."""
        e_before, n_before, e_after, n_after = 3, 400, 9, 300
        share, total = n_after / (n_before + n_after), e_before + e_after
        expected = sum(
            math.comb(total, k) * share**k * (1 - share) ** (total - k)
            for k in range(e_after, total + 1)
        )
        got = module._rate_increase_pvalue(e_before, n_before, e_after, n_after)
        assert expected == pytest.approx(got, rel=1e-9)


class TestValidation:
    @pytest.mark.parametrize(
        ("settings", "named"),
        [
            ({"records": 5}, "'records' must be an iterable"),
            ({"records": "log.jsonl"}, "'records' must be an iterable"),
            ({"known_good": ""}, "'known_good' must be a non-empty version string (got ''"),
            ({"known_good": None}, "'known_good' must be a non-empty version string (got None"),
            ({"rolled_back_at": "now"}, "'rolled_back_at' must be epoch seconds or ISO-8601"),
            ({"rolled_back_at": [T0]}, "'rolled_back_at' must be the rollback command's time"),
            ({"rolled_back_at": math.nan}, "'rolled_back_at' must be a finite time (got nan)"),
            ({"rolled_back_at": True}, "'rolled_back_at' must be the rollback command's time"),
            ({"rolled_back_at": datetime.datetime(2024, 1, 1)}, "naive datetime"),
            ({"max_rollback_s": -1}, "'max_rollback_s' must be in [0, inf] (got -1)"),
            ({"max_rollback_s": "60"}, "'max_rollback_s' must be a number or AtMost(...)"),
            ({"max_other_requests": 1.5}, "'max_other_requests' must be a whole number (got 1.5)"),
            ({"n_settle_requests": 0}, "'n_settle_requests' must be >= 1 (got 0)"),
            ({"n_settle_requests": 2.0}, "'n_settle_requests' must be an integer (got 2.0"),
            ({"settle_s": 0}, "'settle_s' must be in (0, inf) (got 0)"),
        ],
    )
    def test_bad_values_name_the_argument_and_the_value(
        self, settings: dict[str, Any], named: str
    ) -> None:
        """Every field is checked at construction, with the field and the value named."""
        arguments: dict[str, Any] = {"records": [], "known_good": "v1", "rolled_back_at": T0}
        arguments.update(settings)
        records = arguments.pop("records")
        with pytest.raises(InvalidInput) as info:
            RollbackRecordCheck(records, **arguments)
        assert named in str(info.value)

    def test_everything_after_records_is_keyword_only(self) -> None:
        """known_good and rolled_back_at cannot be passed by position."""
        cls: Any = RollbackRecordCheck
        with pytest.raises(TypeError):
            cls([], "v1", T0)

    def test_a_version_given_as_an_integer_matches_the_log(self) -> None:
        """Record versions are text; known_good=1 means "1"."""
        check = RollbackRecordCheck([], known_good=1, rolled_back_at=T0)
        assert "1" == check.known_good
        assert attrs.evolve(check, settle_s=5).settle_s == 5.0


class TestResult:
    def test_result_round_trips_through_json(self) -> None:
        """An infinite switch time survives JSON."""
        log = healthy_log(trickle_s=3.0)
        log += [Record(version="v2", time=T0 + 63.5)]
        result = check_of(log).run()
        assert math.inf == result.metrics["record.switch_s"]
        again = Result.from_dict(json.loads(json.dumps(result.to_dict())))
        assert result.to_dict() == again.to_dict()

    def test_the_docstring_examples_run(self) -> None:
        """The module's doctests pass."""
        outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert 0 == outcome.failed
        assert outcome.attempted >= 5


def simulated_log(rng: np.random.Generator, switch_s: float, after_s: float) -> list[Record]:
    """Traffic split 50/50 before the command; "v2"'s share falls to 10% then 0 at switch_s.

    Both versions fail 1% of requests; the records arrive shuffled, as payload loggers
    deliver them.
    """
    rate = float(rng.uniform(4.0, 12.0))
    before = np.arange(-30.0, 0.0, 1 / rate)
    after = np.arange(0.0, after_s, 1 / rate)
    share = np.where(after < switch_s, np.maximum(0.1, 1.0 - after / switch_s), 0.0)
    is_v2 = np.concatenate([rng.random(before.size) < 0.5, rng.random(after.size) < share])
    failed = rng.random(before.size + after.size) < 0.01
    times = T0 + np.concatenate([before, after])
    log = [
        Record(version="v2" if v2 else "v1", time=float(t), status=503 if bad else 200)
        for t, v2, bad in zip(times, is_v2, failed, strict=True)
    ]
    return shuffled(log, seed=int(rng.integers(2**31)))


class TestFalseAlarmsAndPower:
    def test_healthy_rollbacks_never_fail_and_slow_ones_always_do(self) -> None:
        """200 seeded logs: trickle-outs under max_rollback_s PASS, slower switches FAIL."""
        rng = np.random.default_rng(20240515)
        healthy, slow = [], []
        for _ in range(100):
            switch_s = float(rng.uniform(0.5, 55.0))
            log = simulated_log(rng, switch_s, after_s=switch_s + float(rng.uniform(15, 60)))
            result = check_of(log).run()
            healthy.append((result.status, result.finding("record.switch").status))
            assert result.metrics["record.switch_s"] <= switch_s
        for _ in range(100):
            switch_s = float(rng.uniform(75.0, 180.0))
            log = simulated_log(rng, switch_s, after_s=switch_s + float(rng.uniform(0, 60)))
            result = check_of(log).run()
            slow.append(result.finding("record.switch").status)
        assert [] == [s for s in healthy if Status.FAIL in s]
        assert all(Status.PASS == switch for _, switch in healthy)
        assert [Status.FAIL] * 100 == slow
