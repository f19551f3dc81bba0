"""Reports never fail on text, never let a string fake a verdict, never show a password."""

from __future__ import annotations

import json
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from mlchecks import ErrorInfo, Finding, Result, Status, SuiteResult
from mlchecks.report import FORMATS, save
from mlchecks.report._files import write_atomic
from mlchecks.report.html import result_to_html, suite_to_html
from mlchecks.report.json import result_from_json, result_to_json, suite_to_json
from mlchecks.report.junit import suite_to_junit_xml
from mlchecks.report.markdown import suite_to_markdown
from mlchecks.report.text import result_to_text, suite_to_text

SURROGATE = "\ud800"
FAKE_PASS = "\x1b[2K\r\x1b[32mALL PASSED\x1b[0m"
SECRET = "s3cr3t-pw"
URL = f"postgresql://ml:{SECRET}@db:5432/runs"
ESCAPES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def surrogate_suite() -> SuiteResult:
    """Lone surrogates everywhere text can go: names, summary, finding, details, error."""
    result = Result(
        f"check{SURROGATE}",
        Status.ERROR,
        f"summary {SURROGATE}",
        findings=[Finding(f"f{SURROGATE}", Status.FAIL, 1.0, f"<= {SURROGATE}", SURROGATE)],
        details={f"key{SURROGATE}": [f"value{SURROGATE}", {"x": SURROGATE}]},
        error=ErrorInfo("OSError", f"message {SURROGATE}", f"Traceback {SURROGATE}\n"),
    )
    return SuiteResult([result], name=f"suite{SURROGATE}", manual={3: f"note{SURROGATE}"})


def hostile_suite() -> SuiteResult:
    """Escape sequences, control characters, newlines and a credential in every field."""
    failing = Result(
        FAKE_PASS,
        Status.FAIL,
        f"bad\x07 {FAKE_PASS} via {URL}",
        findings=[Finding(f"acc\n{FAKE_PASS}", Status.FAIL, 0.5, f">= 0.9{FAKE_PASS}", URL)],
        details={f"k{FAKE_PASS}": {f"inner{FAKE_PASS}": f"{URL} \x9b31m"}},
        error=None,
    )
    crashed = Result(
        f"name with {URL}",
        Status.ERROR,
        "check could not run",
        error=ErrorInfo("ConnectionError", f"cannot reach {URL}{FAKE_PASS}", f"tb {URL}\n"),
    )
    return SuiteResult([failing, crashed], name=f"demo{FAKE_PASS}", manual={7: f"see {URL}"})


def human_reports(sr: SuiteResult) -> dict[str, str]:
    """Every rendering of ``sr`` a person reads."""
    return {
        "text": suite_to_text(sr),
        "markdown": suite_to_markdown(sr),
        "junit": suite_to_junit_xml(sr),
        "html": suite_to_html(sr),
        "result_text": result_to_text(sr.results[0]),
        "result_html": result_to_html(sr.results[0]),
    }


class TestSurrogates:
    @pytest.mark.parametrize("suffix", sorted(FORMATS))
    def test_every_format_saves_valid_utf8(self, tmp_path: Path, suffix: str) -> None:
        """A lone surrogate in any field is saved as U+FFFD: the file is valid UTF-8."""
        path = save(surrogate_suite(), tmp_path / f"report{suffix}")
        text = path.read_bytes().decode("utf-8")
        assert text.endswith("\n")
        assert SURROGATE not in text

    def test_json_parses_and_names_the_replacement(self) -> None:
        """The JSON parses and carries U+FFFD where the surrogate was."""
        data = json.loads(suite_to_json(surrogate_suite()).encode("utf-8"))
        assert "check\ufffd" == data["results"][0]["check"]
        assert "message \ufffd" == data["results"][0]["error"]["message"]
        assert {"key\ufffd": ["value\ufffd", {"x": "\ufffd"}]} == data["results"][0]["details"]

    def test_a_split_surrogate_pair_becomes_its_character(self) -> None:
        """A pair left as two code points is written as the one character it stands for."""
        text = result_to_json(Result("a\ud83d\ude00", Status.PASS), None)
        assert "a\U0001f600" == result_from_json(text.encode("utf-8")).check

    def test_junit_parses(self) -> None:
        """The JUnit XML parses."""
        root = ET.fromstring(suite_to_junit_xml(surrogate_suite()).encode("utf-8"))
        case = root.find("testsuite/testcase")
        assert case is not None
        assert "check\ufffd" == case.get("name")

    @pytest.mark.parametrize("render", ["text", "markdown", "junit", "html"])
    def test_human_reports_encode(self, render: str) -> None:
        """Text, Markdown, JUnit and HTML encode as UTF-8 without error."""
        human_reports(surrogate_suite())[render].encode("utf-8")


class TestAtomicWrite:
    def test_a_failed_write_keeps_the_old_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When the final rename fails, the previous report is intact and no temporary file
        is left behind."""
        target = tmp_path / "report.json"
        target.write_text("old report\n", encoding="utf-8")

        def broken(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", broken)
        with pytest.raises(OSError, match="No space left"):
            save(surrogate_suite(), target)
        assert "old report\n" == target.read_text(encoding="utf-8")
        assert ["report.json"] == sorted(p.name for p in tmp_path.iterdir())

    def test_a_failing_renderer_leaves_no_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A renderer that raises leaves no file at all (not an empty one)."""
        import mlchecks.report.json as json_report

        def broken(sr: SuiteResult, indent: int | None = 2) -> str:
            raise RuntimeError("renderer bug")

        monkeypatch.setattr(json_report, "suite_to_json", broken)
        with pytest.raises(RuntimeError):
            save(surrogate_suite(), tmp_path / "r.json")
        assert [] == list(tmp_path.iterdir())

    def test_new_files_get_the_usual_permissions(self, tmp_path: Path) -> None:
        """The report is readable like any new file (0o666 less the umask), not 0o600."""
        umask = os.umask(0o022)
        os.umask(umask)
        path = write_atomic(tmp_path / "r.txt", "x\n")
        assert 0o666 & ~umask == path.stat().st_mode & 0o777


class TestTerminalEscapes:
    @pytest.mark.parametrize("render", ["text", "markdown", "junit", "html", "result_text"])
    def test_no_control_characters_survive(self, render: str) -> None:
        """No escape sequence, carriage return or other control character reaches a report."""
        text = human_reports(hostile_suite())[render]
        assert [] == ESCAPES.findall(text.replace("\n", "").replace("\t", ""))

    def test_a_name_cannot_fake_the_verdict_line(self) -> None:
        """The first line of the text report is the suite's real verdict, and a check name
        with a newline stays on its own row."""
        lines = suite_to_text(hostile_suite()).splitlines()
        assert lines[0].startswith("mlchecks suite 'demoALL PASSED': ERROR (")
        assert lines[1].startswith("  FAIL   ALL PASSED")
        assert not any(line.startswith("ALL PASSED") for line in lines)
        assert any(line.lstrip().startswith("- FAIL acc ALL PASSED") for line in lines)

    def test_colour_codes_are_only_the_renderers(self) -> None:
        """With colour on, the only escape sequences are the status colours the renderer adds."""
        text = suite_to_text(hostile_suite(), color=True)
        codes = re.findall("\x1b\\[[0-9;]*m", text)
        assert {"\x1b[31m", "\x1b[1;35m", "\x1b[0m"} == set(codes)
        assert "\x1b[32m" not in text

    def test_the_json_escapes_every_control_character(self) -> None:
        """The JSON keeps the text losslessly but as \\u escapes, so printing it is safe."""
        sr = hostile_suite()
        text = suite_to_json(sr)
        assert [] == ESCAPES.findall(text.replace("\n", ""))
        assert sr.results[0].check == json.loads(text)["results"][0]["check"]


class TestCredentials:
    @pytest.mark.parametrize("render", ["text", "markdown", "junit", "html", "result_html"])
    def test_no_report_shows_the_password(self, render: str) -> None:
        """The password of a URL appears in no human report; the user name does."""
        text = human_reports(hostile_suite())[render]
        assert SECRET not in text
        assert "ml:***@db" in text

    def test_json_hides_the_password(self, tmp_path: Path) -> None:
        """The JSON report (and so `mlchecks score`) never holds the password."""
        text = save(hostile_suite(), tmp_path / "r.json").read_text(encoding="utf-8")
        assert SECRET not in text
        assert "postgresql://ml:***@db:5432/runs" in text

    def test_the_renderers_redact_what_bypassed_the_result(self) -> None:
        """A check name (not redacted in the Result, it is a lookup key) is redacted in
        every report."""
        sr = hostile_suite()
        assert SECRET in sr.results[1].check
        for text in (*human_reports(sr).values(), suite_to_json(sr)):
            assert SECRET not in text


class TestLongText:
    @pytest.mark.parametrize("run", ["a.", "QUJD", " \t"])
    def test_a_long_run_renders_in_linear_time(self, run: str) -> None:
        """A 400,000-character run (dotted words, base64, blanks) with an '@' in a summary
        and a name renders in well under 5 s (the password search stays linear)."""
        text = run * 100_000 + "@x"
        sr = SuiteResult(
            [Result(text, Status.FAIL, text, findings=[Finding("f", "fail", None, text)])]
        )
        start = time.perf_counter()
        suite_to_json(sr)
        suite_to_text(sr)
        assert time.perf_counter() - start < 5.0


class TestOnlyControlCharacters:
    def test_a_note_of_escape_codes_is_shown_escaped(self) -> None:
        """A name or note made only of escape codes is shown as visible escapes, so it is
        never empty (a manual note must not be)."""
        sr = SuiteResult([Result("\x1b[0m", Status.PASS)], manual={3: "\x1b[0m"})
        text = suite_to_text(sr)
        assert "\\x1b[0m" in text
        assert "\x1b" not in text


class TestHtmlEscaping:
    def test_every_field_is_escaped(self) -> None:
        """Names, summaries, finding fields and details keys and values are HTML-escaped."""
        tag = "<img src=x onerror=alert(1)>"
        result = Result(
            f"name{tag}",
            Status.FAIL,
            f"summary{tag}",
            findings=[Finding(f"f{tag}", Status.FAIL, 1.0, f"l{tag}", f"m{tag}")],
            details={
                f"key{tag}": f"value{tag}",
                f"table{tag}": [{f"col{tag}": f"cell{tag}"}],
                f"nested{tag}": {"deep": [[f"x{tag}"]]},
            },
            error=ErrorInfo(f"T{tag}", f"msg{tag}", f"tb{tag}"),
        )
        page = suite_to_html(SuiteResult([result], name=f"suite{tag}"))
        assert "<img" not in page
        assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 12


HOSTILE_CHARACTERS = st.one_of(
    st.characters(exclude_categories=()),  # surrogates included
    st.sampled_from(["\ud800", "\udfff", "\x1b", "[", "\x9b", "\r", "\n", "\x00", ":", "@"]),
)
HOSTILE_TEXT = st.text(HOSTILE_CHARACTERS, max_size=12) | st.sampled_from([FAKE_PASS, URL])
HOSTILE_RESULTS = st.builds(
    Result,
    check=HOSTILE_TEXT,
    status=st.sampled_from(Status),
    summary=HOSTILE_TEXT,
    findings=st.lists(
        st.builds(
            Finding,
            HOSTILE_TEXT,
            st.sampled_from(Status),
            st.none(),
            HOSTILE_TEXT,
            HOSTILE_TEXT,
        ),
        max_size=2,
    ),
    details=st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT | st.lists(HOSTILE_TEXT), max_size=2),
    error=st.none() | st.builds(ErrorInfo, HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT),
)


HOSTILE_NOTES = st.dictionaries(st.integers(1, 7), HOSTILE_TEXT.filter(str.strip), max_size=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(HOSTILE_RESULTS, min_size=1, max_size=3), HOSTILE_TEXT, HOSTILE_NOTES)
def test_no_text_breaks_a_report(results: list[Result], name: str, notes: dict[int, str]) -> None:
    """Any text in any field: every report encodes as UTF-8, the JSON and XML parse, and
    no control character reaches a report a person reads."""
    sr = SuiteResult(results, name=name, manual=notes)
    for text in human_reports(sr).values():
        text.encode("utf-8")
        assert [] == ESCAPES.findall(text.replace("\n", "").replace("\t", ""))
    assert len(results) == len(json.loads(suite_to_json(sr).encode("utf-8"))["results"])
    ET.fromstring(suite_to_junit_xml(sr).encode("utf-8"))
