"""JUnit XML, the test report format every CI system reads.

One ``<testsuite>`` per suite run and one ``<testcase>`` per check: FAIL becomes
``<failure>``, ERROR ``<error>`` (with the traceback), SKIP ``<skipped>``; WARN passes with
its findings in ``<system-out>``. The ML Test Score goes in the suite's ``<properties>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from mlchecks.report._format import clean, finding_line, notable_findings, scrubbed_suite
from mlchecks.report.text import result_to_text
from mlchecks.result import Result, Status

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = ["suite_to_junit_xml"]

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    node = ET.SubElement(parent, tag, {k: clean(v) for k, v in attrib.items()})
    if text is not None:
        node.text = clean(text)
    return node


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _counts(sr: SuiteResult) -> dict[str, str]:
    counts = sr.counts()
    return {
        "tests": str(len(sr)),
        "failures": str(counts[Status.FAIL]),
        "errors": str(counts[Status.ERROR]),
        "skipped": str(counts[Status.SKIP]),
        "time": _seconds(sr.duration_s),
    }


def _properties(parent: ET.Element, items: list[tuple[str, str]]) -> None:
    node = _element(parent, "properties")
    for name, value in items:
        _element(node, "property", name=name, value=value)


def _score_properties(sr: SuiteResult) -> list[tuple[str, str]]:
    score = sr.score
    items = [
        ("mlchecks.status", sr.status.label),
        ("ml_test_score.total", f"{score.total:g}"),
        ("ml_test_score.maximum", f"{score.maximum:g}"),
        ("ml_test_score.reading", score.reading),
    ]
    items.extend((f"ml_test_score.test_{k}", f"{v:g}") for k, v in sorted(score.points.items()))
    items.extend((f"ml_test_score.manual_{k}", note) for k, note in sorted(score.manual.items()))
    return items


def _findings_text(result: Result) -> str:
    lines = [finding_line(f) for f in notable_findings(result)]
    return "\n".join(lines) if lines else result.summary


def _testcase(parent: ET.Element, result: Result, classname: str) -> None:
    case = _element(
        parent,
        "testcase",
        classname=classname,
        name=result.check,
        time=_seconds(result.duration_s),
    )
    props = [("mlchecks.status", result.status.label)]
    if result.rubric is not None:
        props.append(("mlchecks.rubric", str(result.rubric)))
    _properties(case, props)
    status = result.status
    if status is Status.FAIL:
        _element(case, "failure", _findings_text(result), message=result.summary, type="FAIL")
    elif status is Status.ERROR:
        if result.error is not None:
            text = result.error.traceback or f"{result.error.type}: {result.error.message}"
            _element(case, "error", text, message=result.error.message, type=result.error.type)
        else:
            _element(case, "error", _findings_text(result), message=result.summary, type="ERROR")
    elif status is Status.SKIP:
        _element(case, "skipped", message=result.summary)
    _element(case, "system-out", result_to_text(result, traceback=False))


def suite_to_junit_xml(sr: SuiteResult) -> str:
    """The suite run as JUnit XML, one ``<testcase>`` per check.

    Characters that XML 1.0 forbids (most control characters) and terminal escape
    sequences are removed from every message, so the output always parses and prints
    harmlessly; URL passwords are hidden.

    Args:
        sr: the suite's result.

    Returns:
        An XML document (with its ``<?xml ...?>`` declaration) as text.

    >>> import xml.etree.ElementTree as ET
    >>> from mlchecks import Suite
    >>> from mlchecks.testing import StaticCheck
    >>> sr = Suite([StaticCheck("quality", Status.FAIL)], name="demo").run(progress=False)
    >>> suite = ET.fromstring(suite_to_junit_xml(sr)).find("testsuite")
    >>> suite.get("tests"), suite.get("failures"), suite.find("testcase/failure").get("type")
    ('1', '1', 'FAIL')
    """
    sr = scrubbed_suite(sr, terminal=True)
    root = ET.Element("testsuites", {"name": "mlchecks", **_counts(sr)})
    suite = _element(root, "testsuite", name=sr.name, **_counts(sr))
    _properties(suite, _score_properties(sr))
    classname = f"mlchecks.{sr.name}"
    for result in sr.results:
        _testcase(suite, result, classname)
    ET.indent(root)
    return _DECLARATION + ET.tostring(root, encoding="unicode") + "\n"
