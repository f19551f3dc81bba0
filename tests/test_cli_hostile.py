"""The command line and the pytest plugin print hostile text harmlessly (issue 16, items 7, 9)."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from mlchecks import Result, Status, Suite
from mlchecks.cli import _emit, main
from mlchecks.testing import StaticCheck
from mlchecks_pytest import pytest_assertrepr_compare

SECRET = "hunter2"
URL = f"http://admin:{SECRET}@10.0.0.1:8080/v2"
FAKE_PASS = "\x1b[2K\r\x1b[32mALL PASSED\x1b[0m"
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE_CHECKS = f"""
from mlchecks import Result, Status, Suite


class Named:
    rubric = 4

    def __init__(self, name, status, summary):
        self.name, self.status, self.summary = name, status, summary

    def run(self, context=None):
        return Result(check=self.name, status=self.status, summary=self.summary)


class Unreachable:
    name = "canary"
    rubric = 6

    def run(self, context=None):
        raise ConnectionError({"cannot reach " + URL + " " + FAKE_PASS!r})


class Surrogate:
    name = "surrogate"
    rubric = None

    def run(self, context=None):
        raise ValueError("bad byte \\ud800 here")


suite = Suite(
    [
        Named("\\x1b[31mx", Status.FAIL, {FAKE_PASS!r}),
        Named("two\\nlines", Status.PASS, "fine"),
        Unreachable(),
        Surrogate(),
    ],
    name="hostile",
)


def broken():
    raise RuntimeError({FAKE_PASS + " " + URL!r})
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding a check file full of hostile strings; the working directory."""
    (tmp_path / "hostile_checks.py").write_text(HOSTILE_CHECKS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_harmless(text: str) -> None:
    """No control character (newline and tab aside) and no password in ``text``."""
    assert [] == CONTROLS.findall(text.replace("\n", "").replace("\t", ""))
    assert SECRET not in text


class TestRun:
    def test_the_report_on_stdout_is_harmless(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A check named '\\x1b[31mx' and a summary faking ALL PASSED print as plain text; the
        run still exits 1, and a server's password is hidden."""
        assert 1 == main(["run", "hostile_checks.py:suite"])
        out = capsys.readouterr().out
        assert_harmless(out)
        lines = out.splitlines()
        assert lines[0].startswith("mlchecks suite 'hostile': ERROR (")
        assert any(line.startswith("  FAIL   x ") for line in lines)
        assert any(line.startswith("  PASS   two lines") for line in lines)
        assert "http://admin:***@10.0.0.1:8080/v2" in out

    def test_every_report_file_is_written(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A lone surrogate in an error does not stop any report: each is valid UTF-8, and
        none shows the password or a control character."""
        args = ["--json", "r.json", "--junit", "r.xml", "--markdown", "r.md", "--html", "r.html"]
        assert 1 == main(["run", "hostile_checks.py:suite", "--quiet", *args])
        for name in ("r.json", "r.xml", "r.md", "r.html"):
            text = (project / name).read_bytes().decode("utf-8")
            assert_harmless(text)
        data = json.loads((project / "r.json").read_text(encoding="utf-8"))
        assert "\x1b[31mx" == data["results"][0]["check"]

    @pytest.mark.parametrize("option", ["--json", "--junit", "--markdown", "--html"])
    def test_a_report_on_stdout_is_harmless(
        self, project: Path, capsys: pytest.CaptureFixture[str], option: str
    ) -> None:
        """A report written to stdout ('-') carries no raw control character."""
        assert 1 == main(["run", "hostile_checks.py:suite", option, "-"])
        assert_harmless(capsys.readouterr().out)

    @pytest.mark.parametrize("extra", [[], ["--traceback"]])
    def test_an_import_error_is_printed_harmlessly(
        self, project: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
    ) -> None:
        """An exception raised while loading the target prints without its escape codes or
        its password, with and without --traceback."""
        assert 2 == main(["run", "hostile_checks.py:broken", *extra])
        err = capsys.readouterr().err
        assert_harmless(err)
        assert "RuntimeError: ALL PASSED http://admin:***@10.0.0.1" in err


class TestProgress:
    @pytest.mark.parametrize("tqdm", [True, False])
    def test_progress_shows_names_without_escape_codes(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tqdm: bool
    ) -> None:
        """The progress line (or bar) on stderr shows a check's name without its escape
        codes, with and without tqdm."""
        if not tqdm:
            monkeypatch.setitem(sys.modules, "tqdm.auto", None)
        else:
            pytest.importorskip("tqdm.auto")
        Suite([StaticCheck("\x1b[31mred\x1b]0;title\x07", Status.PASS)]).run(progress=True)
        err = capsys.readouterr().err
        assert "\x1b[31m" not in err
        assert "\x1b]0;" not in err
        if not tqdm:  # a bar may close before it shows the name
            assert "[1/1] PASS  red (" in err


class TestScore:
    def test_names_and_notes_cannot_fake_lines(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Check names and manual notes with escapes, newlines and passwords print as one
        harmless row each."""
        checks = [StaticCheck(f"repro\n{FAKE_PASS}", Status.FAIL, rubric=1)]
        suite = Suite(checks, name="s", manual={7: f"runbook\r\n{URL}"})
        path = tmp_path / "r.json"
        path.write_text(suite.run(progress=False).to_json(), encoding="utf-8")
        assert 0 == main(["score", str(path)])
        out = capsys.readouterr().out
        assert_harmless(out)
        assert 10 == len(out.splitlines())
        assert "automated: repro ALL PASSED (FAIL)" in out

    def test_a_hand_written_report_is_printed_harmlessly(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A JSON report not written by mlchecks (escapes as \\u001b, a password) prints
        harmlessly, in the table and as --json."""
        report = {
            "name": "x",
            "results": [{"check": FAKE_PASS + URL, "status": "pass", "rubric": 2}],
            "manual": {"3": FAKE_PASS + URL},
        }
        path = tmp_path / "r.json"
        path.write_text(json.dumps(report), encoding="utf-8")
        for extra in ([], ["--json"]):
            assert 0 == main(["score", str(path), *extra])
            assert_harmless(capsys.readouterr().out)


class TestEmit:
    def test_a_stream_that_cannot_encode_gets_escapes(self) -> None:
        """Text the stream's encoding lacks is backslash-escaped instead of failing."""
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, encoding="ascii")
        _emit("\u2705 PASS \ufffd", stream)
        stream.flush()
        assert b"\\u2705 PASS \\ufffd\n" == raw.getvalue()

    def test_untrusted_text_is_scrubbed(self) -> None:
        """Escape sequences and passwords are removed from what is printed."""
        stream = io.StringIO()
        _emit(f"{FAKE_PASS} {URL}", stream)
        assert "ALL PASSED http://admin:***@10.0.0.1:8080/v2\n" == stream.getvalue()


class TestPytestPlugin:
    def test_explanations_are_harmless(self) -> None:
        """The lines explaining a failed comparison of results hold no control character
        and no password."""
        left = Result(FAKE_PASS + URL, Status.FAIL, f"summary {FAKE_PASS} {URL}")
        right = Result("other", Status.PASS, "ok")
        lines = pytest_assertrepr_compare(None, "==", left, right)  # type: ignore[arg-type]
        assert lines is not None
        assert_harmless("\n".join(lines))
        assert any("ALL PASSED" in line for line in lines)
