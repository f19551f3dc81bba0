from __future__ import annotations

import json
import math
import pickle

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from mlchecks import CheckFailed, ErrorInfo, Finding, Result, Status


class TestStatus:
    def test_ordered_by_severity(self) -> None:
        """Statuses sort from PASS to ERROR."""
        assert [Status.PASS, Status.SKIP, Status.WARN, Status.FAIL, Status.ERROR] == sorted(
            [Status.ERROR, Status.WARN, Status.PASS, Status.FAIL, Status.SKIP]
        )

    def test_worst(self) -> None:
        """worst() picks the most severe status and PASS for none."""
        assert Status.FAIL == Status.worst([Status.PASS, Status.FAIL, Status.WARN])
        assert Status.PASS == Status.worst([])

    @pytest.mark.parametrize(
        ("status", "passed"),
        [
            (Status.PASS, True),
            (Status.SKIP, True),
            (Status.WARN, True),
            (Status.FAIL, False),
            (Status.ERROR, False),
        ],
    )
    def test_passed(self, status: Status, passed: bool) -> None:
        """Only FAIL and ERROR count as not passed."""
        assert passed == status.passed

    def test_compare_with_other_types_is_not_supported(self) -> None:
        """Ordering against a non-Status raises TypeError, as for other enums."""
        with pytest.raises(TypeError):
            _ = Status.PASS < 1  # type: ignore[operator]


class TestFinding:
    def test_converts_numpy_observed_to_float(self) -> None:
        """A numpy scalar observed value becomes a Python float."""
        finding = Finding("churn", Status.FAIL, np.float32(0.25))
        assert isinstance(finding.observed, float)
        assert 0.25 == finding.observed

    def test_status_from_string(self) -> None:
        """A status can be given by its value."""
        assert Status.WARN == Finding("x", "warn").status

    def test_bad_status_names_the_value(self) -> None:
        """An unknown status string is rejected with the allowed values."""
        with pytest.raises(ValueError, match=r"'status' must be one of .*got 'bad'"):
            Finding("x", "bad")


class TestResult:
    def test_one_line_construction_with_defaults(self) -> None:
        """A user's check can build a result from three arguments."""
        result = Result(check="mine", status=Status.PASS, summary="fine")
        assert ((), {}, {}, None, 0.0, None) == (
            result.findings,
            result.metrics,
            result.details,
            result.rubric,
            result.duration_s,
            result.error,
        )

    def test_metrics_become_python_floats(self) -> None:
        """numpy metric values are stored as Python floats."""
        result = Result("c", Status.PASS, metrics={"a": np.float64(1.5), "b": np.int64(2)})
        assert {"a": 1.5, "b": 2.0} == result.metrics
        assert all(type(v) is float for v in result.metrics.values())

    def test_details_become_json_safe(self) -> None:
        """Arrays, tuples and numpy scalars in details become JSON types."""
        result = Result("c", Status.PASS, details={"rows": (np.arange(3),), "x": np.bool_(True)})
        assert {"rows": [[0, 1, 2]], "x": True} == result.details
        json.dumps(result.details, allow_nan=False)

    def test_rubric_must_be_one_to_seven(self) -> None:
        """A rubric number outside 1..7 is rejected, naming the value."""
        with pytest.raises(ValueError, match=r"'rubric' must be an int in 1..7 or None \(got 8\)"):
            Result("c", Status.PASS, rubric=8)

    def test_raise_for_status_carries_the_result(self) -> None:
        """raise_for_status raises CheckFailed with the result for FAIL."""
        result = Result("c", Status.FAIL, "broken")
        with pytest.raises(CheckFailed) as info:
            result.raise_for_status()
        assert result is info.value.result
        assert isinstance(info.value, AssertionError)

    def test_raise_for_status_returns_self_when_passed(self) -> None:
        """A passing result is returned unchanged."""
        result = Result("c", Status.WARN)
        assert result is result.raise_for_status()

    def test_from_findings_takes_the_worst_status_and_message(self) -> None:
        """The status is the worst finding's and the summary its message."""
        findings = [
            Finding("a", Status.PASS, message="a ok"),
            Finding("b", Status.FAIL, message="b broke"),
            Finding("c", Status.WARN, message="c odd"),
        ]
        result = Result.from_findings("chk", findings)
        assert (Status.FAIL, "b broke") == (result.status, result.summary)

    def test_from_findings_pass_summary_only_when_everything_passed(self) -> None:
        """pass_summary says what held; a warning or failure still speaks for itself."""
        ok = [Finding("a", Status.PASS, message="a ok")]
        odd = [*ok, Finding("b", Status.WARN, message="b odd")]
        assert "loss fell" == Result.from_findings("c", ok, pass_summary="loss fell").summary
        assert "b odd" == Result.from_findings("c", odd, pass_summary="loss fell").summary

    def test_finding_lookup_lists_names(self) -> None:
        """Looking up a missing finding names the ones that exist."""
        result = Result("c", Status.PASS, findings=[Finding("churn", Status.PASS)])
        assert "churn" == result.finding("churn").name
        with pytest.raises(KeyError, match="'churn'"):
            result.finding("nope")

    def test_from_exception_keeps_the_traceback(self) -> None:
        """An ERROR result keeps type, message and the formatted traceback."""
        try:
            raise RuntimeError("disk full")
        except RuntimeError as exc:
            result = Result.from_exception("c", exc)
        assert Status.ERROR == result.status
        assert result.error is not None
        assert "RuntimeError" == result.error.type
        assert "Traceback (most recent call last)" in result.error.traceback
        assert "disk full" in result.summary

    def test_round_trip_with_non_finite_metrics(self) -> None:
        """NaN and infinities survive to_dict/JSON/from_dict."""
        result = Result(
            "c",
            Status.FAIL,
            metrics={"nan": math.nan, "inf": math.inf, "ninf": -math.inf},
            findings=[Finding("f", Status.FAIL, math.nan)],
            error=ErrorInfo("E", "m", "tb"),
        )
        text = json.dumps(result.to_dict(), allow_nan=False)
        back = Result.from_dict(json.loads(text))
        assert result == back
        assert math.isnan(back.metrics["nan"])
        assert math.inf == back.metrics["inf"]

    def test_pickles(self) -> None:
        """Results travel between processes."""
        result = Result("c", Status.PASS, metrics={"a": 1.0}, details={"t": [1, 2]})
        assert result == pickle.loads(pickle.dumps(result))


class TestRedaction:
    """Text entering a result has its URL passwords hidden."""

    def test_from_exception_hides_the_password(self) -> None:
        """An error naming a URL with a password keeps the user name and hides the password,
        in the message, the traceback and the summary."""
        try:
            raise ConnectionError("cannot reach http://admin:hunter2@10.0.0.1:8080/v2")
        except ConnectionError as exc:
            result = Result.from_exception("canary", exc)
        assert result.error is not None
        assert "cannot reach http://admin:***@10.0.0.1:8080/v2" == result.error.message
        assert "hunter2" not in result.error.traceback
        assert "http://admin:***@" in result.error.traceback
        assert "hunter2" not in result.summary

    def test_every_text_field_is_redacted(self) -> None:
        """Summary, finding limit and message, error fields and details hide passwords."""
        uri = "postgresql://ml:pw123@db/runs"
        result = Result(
            "registry",
            Status.FAIL,
            f"tracking at {uri}",
            findings=[Finding("reachable", Status.FAIL, None, uri, f"no answer from {uri}")],
            details={"uri": uri, uri: [uri, {"nested": uri}]},
            error=ErrorInfo("OSError", uri, uri),
        )
        assert "pw123" not in json.dumps(result.to_dict())
        assert "tracking at postgresql://ml:***@db/runs" == result.summary

    def test_an_exception_whose_str_raises_still_becomes_an_error(self) -> None:
        """A user exception with a broken __str__ gives an ERROR result, not a crash."""

        class Broken(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no str")

        result = Result.from_exception("check", Broken())
        assert Status.ERROR == result.status
        assert "<Broken whose str() raised>" == result.error.message  # type: ignore[union-attr]

    def test_redaction_keeps_the_round_trip(self) -> None:
        """A redacted result reads back equal from its JSON."""
        result = Result("c", Status.PASS, "via http://u:pw@h", details={"k": "http://t@h"})
        assert result == Result.from_dict(json.loads(json.dumps(result.to_dict())))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
any_float = st.floats(allow_nan=True, allow_infinity=True)
names = st.text(min_size=1, max_size=20)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
findings = st.builds(
    Finding,
    name=names,
    status=st.sampled_from(Status),
    observed=st.none() | any_float,
    limit=st.text(max_size=10),
    message=st.text(max_size=40),
)
results = st.builds(
    Result,
    check=names,
    status=st.sampled_from(Status),
    summary=st.text(max_size=40),
    findings=st.lists(findings, max_size=4),
    metrics=st.dictionaries(names, any_float, max_size=5),
    details=st.dictionaries(st.text(max_size=8), json_value, max_size=4),
    rubric=st.none() | st.integers(1, 7),
    duration_s=st.floats(0, 1e6),
    error=st.none() | st.builds(ErrorInfo, st.text(max_size=10), st.text(max_size=10)),
)


@given(results)
def test_result_json_round_trip_is_lossless(result: Result) -> None:
    """Any result survives strict JSON unchanged."""
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert result == Result.from_dict(json.loads(text))
