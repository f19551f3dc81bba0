from __future__ import annotations

import xml.etree.ElementTree as ET

from mlchecks import Finding, Result, Status, SuiteResult
from mlchecks.report.junit import suite_to_junit_xml


def parse(sr: SuiteResult) -> ET.Element:
    """The <testsuite> element of the suite's JUnit XML, parsed back."""
    root = ET.fromstring(suite_to_junit_xml(sr).encode("utf-8"))
    assert "testsuites" == root.tag
    suites = root.findall("testsuite")
    assert 1 == len(suites)
    return suites[0]


def case(suite: ET.Element, name: str) -> ET.Element:
    (found,) = [c for c in suite.findall("testcase") if c.get("name") == name]
    return found


def properties(node: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in node.findall("properties/property")}


class TestSuiteToJunitXml:
    def test_counts(self, mixed_result: SuiteResult) -> None:
        """tests, failures, errors and skipped count the checks by status."""
        suite = parse(mixed_result)
        expected = {"name": "demo", "tests": "5", "failures": "1", "errors": "1", "skipped": "1"}
        assert expected == {k: suite.get(k) for k in expected}
        assert float(suite.get("time", "nan")) >= 0

    def test_root_repeats_the_counts(self, mixed_result: SuiteResult) -> None:
        """<testsuites> carries the same totals for tools that read only the root."""
        root = ET.fromstring(suite_to_junit_xml(mixed_result))
        assert ("5", "1", "1") == (root.get("tests"), root.get("failures"), root.get("errors"))

    def test_one_testcase_per_check(
        self, mixed_result: SuiteResult, expected: dict[str, Status]
    ) -> None:
        """Each check is a testcase named after it, in the suite's class, in order."""
        cases = parse(mixed_result).findall("testcase")
        assert list(expected) == [c.get("name") for c in cases]
        assert {"mlchecks.demo"} == {c.get("classname") for c in cases}
        assert all(float(c.get("time", "nan")) >= 0 for c in cases)

    def test_status_elements(self, mixed_result: SuiteResult, expected: dict[str, Status]) -> None:
        """FAIL has <failure>, ERROR <error>, SKIP <skipped>; PASS and WARN have none."""
        suite = parse(mixed_result)
        marker = {Status.FAIL: "failure", Status.ERROR: "error", Status.SKIP: "skipped"}
        for name, status in expected.items():
            children = {c.tag for c in case(suite, name)} & {"failure", "error", "skipped"}
            assert ({marker[status]} if status in marker else set()) == children
            assert status.label == properties(case(suite, name))["mlchecks.status"]

    def test_failure_lists_the_failing_findings(self, mixed_result: SuiteResult) -> None:
        """The failure's message is the summary and its text the non-passing findings."""
        failure = case(parse(mixed_result), "quality").find("failure")
        assert failure is not None
        assert "FAIL" == failure.get("type")
        assert "accuracy 0.81 is below the minimum 0.9" == failure.get("message")
        expected = (
            "FAIL accuracy: observed 0.81, limit >= 0.9: accuracy 0.81 is below the minimum 0.9"
        )
        assert expected == failure.text

    def test_error_carries_the_traceback(self, mixed_result: SuiteResult) -> None:
        """The error element names the exception and holds the full traceback."""
        error = case(parse(mixed_result), "crashes").find("error")
        assert error is not None
        assert "RuntimeError" == error.get("type")
        assert "boom: the checkpoint file is truncated" == error.get("message")
        assert error.text is not None
        assert error.text.startswith("Traceback (most recent call last):")
        assert "in load_model" in error.text

    def test_error_without_exception_info(self) -> None:
        """An ERROR a check reported itself (no exception) still becomes an <error>."""
        sr = SuiteResult([Result("self_reported", Status.ERROR, "could not reach the server")])
        error = case(parse(sr), "self_reported").find("error")
        assert error is not None
        assert ("ERROR", "could not reach the server") == (error.get("type"), error.get("message"))

    def test_skip_gives_the_reason(self, mixed_result: SuiteResult) -> None:
        """<skipped> carries the reason the check did not run."""
        skipped = case(parse(mixed_result), "canary").find("skipped")
        assert skipped is not None
        assert "skipped: no serving endpoint is configured" == skipped.get("message")

    def test_warn_passes_with_findings_in_system_out(self, mixed_result: SuiteResult) -> None:
        """A WARN check is a passing testcase whose output lists the warning."""
        out = case(parse(mixed_result), "latency").findtext("system-out")
        assert out is not None
        assert "- WARN accuracy: observed 0.85, limit >= 0.9" in out

    def test_score_in_properties(self, mixed_result: SuiteResult) -> None:
        """The suite's properties hold the score, its reading and the points per test."""
        props = properties(parse(mixed_result))
        score = mixed_result.score
        assert f"{score.total:g}" == props["ml_test_score.total"]
        assert "7" == props["ml_test_score.maximum"]
        assert score.reading == props["ml_test_score.reading"]
        assert "1" == props["ml_test_score.test_1"]
        assert "0.5" == props["ml_test_score.test_3"]
        assert props["ml_test_score.manual_3"].startswith("pipeline runbook")

    def test_control_characters_and_markup_stay_valid_xml(
        self, hostile_result: SuiteResult
    ) -> None:
        """Characters XML 1.0 forbids are dropped; markup is escaped and parses back."""
        text = suite_to_junit_xml(hostile_result)
        suite = parse(hostile_result)
        for bad in ("\x00", "\x07", "\x1b", "\x01", "\x0b"):
            assert bad not in text
        failure = case(suite, "<script>alert(1)</script>").find("failure")
        assert failure is not None
        assert failure.text is not None
        assert "<img src=x onerror=alert(1)> | two\nlines " in failure.text
        assert case(suite, "crashed").find("error") is not None

    def test_empty_suite(self) -> None:
        """An empty suite is a valid report with zero tests."""
        suite = parse(SuiteResult([], name="empty"))
        assert ("0", []) == (suite.get("tests"), suite.findall("testcase"))

    def test_method_delegates(self, mixed_result: SuiteResult) -> None:
        """SuiteResult.to_junit_xml is this serializer."""
        assert suite_to_junit_xml(mixed_result) == mixed_result.to_junit_xml()

    def test_failure_without_findings_uses_the_summary(self) -> None:
        """A FAIL with no findings explains itself with its summary."""
        sr = SuiteResult([Result("bare", Status.FAIL, "it broke", findings=[Finding("a", "pass")])])
        failure = case(parse(sr), "bare").find("failure")
        assert failure is not None
        assert "it broke" == failure.text
