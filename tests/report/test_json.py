from __future__ import annotations

import json
import math
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given

from mlchecks import ErrorInfo, Finding, InvalidInput, Result, Status, SuiteResult
from mlchecks.report.json import result_from_json, result_to_json, suite_from_json, suite_to_json


def strict_loads(text: str) -> Any:
    """json.loads that rejects the NaN and Infinity tokens strict JSON forbids."""

    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


any_float = st.floats(allow_nan=True, allow_infinity=True)
finite_float = st.floats(allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=20)
scalars = st.none() | st.booleans() | st.integers() | finite_float | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
findings = st.builds(
    Finding,
    name=names,
    status=st.sampled_from(Status),
    observed=st.none() | any_float,
    limit=st.text(max_size=20),
    message=st.text(max_size=40),
)
errors = st.none() | st.builds(ErrorInfo, type=names, message=st.text(), traceback=st.text())
results = st.builds(
    Result,
    check=names,
    status=st.sampled_from(Status),
    summary=st.text(max_size=40),
    findings=st.lists(findings, max_size=4),
    metrics=st.dictionaries(names, any_float, max_size=5),
    details=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    rubric=st.none() | st.integers(1, 7),
    duration_s=st.floats(min_value=0, max_value=1e6),
    error=errors,
)


class TestSuiteJson:
    def test_round_trip_is_lossless(self, mixed_result: SuiteResult) -> None:
        """suite_from_json(suite_to_json(sr)) equals sr, tracebacks and details included."""
        back = suite_from_json(suite_to_json(mixed_result))
        assert mixed_result == back
        assert mixed_result["crashes"].error == back["crashes"].error
        assert mixed_result.score == back.score

    def test_methods_delegate(self, mixed_result: SuiteResult) -> None:
        """SuiteResult.to_json and from_json are the same round trip."""
        assert suite_to_json(mixed_result) == mixed_result.to_json()
        assert mixed_result == SuiteResult.from_json(mixed_result.to_json())

    def test_output_is_strict_json(self, mixed_result: SuiteResult) -> None:
        """The NaN metric is written as a string, so strict parsers accept the file."""
        data = strict_loads(suite_to_json(mixed_result))
        quality = next(r for r in data["results"] if r["check"] == "quality")
        assert "NaN" == quality["metrics"]["auc"]
        assert "error" == data["status"]

    def test_indent_none_is_one_line(self, mixed_result: SuiteResult) -> None:
        """indent=None writes compact JSON on one line."""
        assert "\n" not in suite_to_json(mixed_result, indent=None)

    def test_non_ascii_is_kept(self) -> None:
        """Non-ASCII text is written as UTF-8 characters, not escapes."""
        sr = SuiteResult([Result("qualité", Status.PASS, "précision ≥ 0.9")])
        assert "précision ≥ 0.9" in suite_to_json(sr)

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("{not json", "'text' is not valid JSON"),
            ("[1, 2]", "got a JSON list"),
            ('{"results": [{"status": "pass"}]}', "missing key 'check'"),
            ('{"results": [{"check": "a", "status": "great"}]}', "'status' must be one of"),
        ],
    )
    def test_bad_input_is_rejected_clearly(self, text: str, says: str) -> None:
        """Malformed JSON, or JSON that is not a suite result, raises InvalidInput."""
        with pytest.raises(InvalidInput, match="'text'") as info:
            suite_from_json(text)
        assert says in str(info.value)

    def test_non_string_is_rejected(self) -> None:
        """Passing an object instead of JSON text names the argument and the type."""
        with pytest.raises(InvalidInput, match=r"'text' must be a JSON string \(got \{\} that is"):
            suite_from_json({})  # type: ignore[arg-type]

    def test_accepts_bytes(self, mixed_result: SuiteResult) -> None:
        """UTF-8 bytes read back the same as text."""
        assert mixed_result == suite_from_json(suite_to_json(mixed_result).encode("utf-8"))


class TestResultJson:
    def test_non_finite_metrics_round_trip(self) -> None:
        """NaN and infinite metrics and observations survive, as strict JSON."""
        result = Result(
            "x",
            Status.FAIL,
            metrics={"x": float("nan"), "up": math.inf, "down": -math.inf},
            findings=[Finding("f", Status.FAIL, observed=float("nan"))],
        )
        text = result_to_json(result)
        strict_loads(text)
        back = result_from_json(text)
        assert result == back
        assert math.isnan(back.metrics["x"])
        assert math.inf == back.metrics["up"]
        assert back.findings[0].observed is not None
        assert math.isnan(back.findings[0].observed)

    def test_rejects_a_suite(self, mixed_result: SuiteResult) -> None:
        """A suite's JSON is not mistaken for a result."""
        with pytest.raises(InvalidInput, match="does not describe an mlchecks result"):
            result_from_json(mixed_result.to_json())

    @given(results)
    def test_round_trip_property(self, result: Result) -> None:
        """Any result, with random findings, metrics and details, survives JSON unchanged."""
        text = result_to_json(result)
        strict_loads(text)
        assert result == result_from_json(text)

    @given(st.lists(results, max_size=3), st.text(max_size=10))
    def test_suite_round_trip_property(self, items: list[Result], name: str) -> None:
        """Any suite of results survives JSON unchanged."""
        sr = SuiteResult(items, name=name, manual={7: "runbook"})
        assert sr == suite_from_json(suite_to_json(sr, indent=None))
