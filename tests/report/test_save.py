from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlchecks import InvalidInput, Result, Status, SuiteResult
from mlchecks.report import FORMATS, save


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


class TestSave:
    @pytest.mark.parametrize(
        ("suffix", "start"),
        [
            (".json", "{\n"),
            (".xml", '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites'),
            (".md", "## 💥 ERROR: mlchecks suite `demo`"),
            (".markdown", "## 💥 ERROR: mlchecks suite `demo`"),
            (".html", "<!doctype html>"),
            (".htm", "<!doctype html>"),
            (".txt", "mlchecks suite 'demo': ERROR"),
            (".JSON", "{\n"),
        ],
    )
    def test_format_follows_the_suffix(
        self, mixed_result: SuiteResult, tmp_path: Path, suffix: str, start: str
    ) -> None:
        """Each suffix writes its format as UTF-8, ending with a newline."""
        path = save(mixed_result, tmp_path / f"report{suffix}")
        assert tmp_path / f"report{suffix}" == path
        text = read(path)
        assert text.startswith(start)
        assert text.endswith("\n")

    def test_json_reads_back(self, mixed_result: SuiteResult, tmp_path: Path) -> None:
        """The saved JSON is the lossless report."""
        path = save(mixed_result, tmp_path / "r.json")
        assert mixed_result == SuiteResult.from_json(read(path))

    def test_xml_is_junit(self, mixed_result: SuiteResult, tmp_path: Path) -> None:
        """The saved XML parses as JUnit with one testcase per check."""
        root = ET.parse(save(mixed_result, tmp_path / "junit.xml")).getroot()
        assert 5 == len(root.findall("testsuite/testcase"))

    def test_text_is_the_str(self, mixed_result: SuiteResult, tmp_path: Path) -> None:
        """The saved text is str(result) plus a final newline."""
        assert str(mixed_result) + "\n" == read(save(mixed_result, tmp_path / "r.txt"))

    def test_creates_parent_directories(self, mixed_result: SuiteResult, tmp_path: Path) -> None:
        """Missing directories on the way to the file are created."""
        path = save(mixed_result, str(tmp_path / "a" / "b" / "report.md"))
        assert path.is_file()

    def test_newlines_are_not_translated(self, tmp_path: Path) -> None:
        """Files use \\n line endings on every platform."""
        sr = SuiteResult([Result("a", Status.PASS, "ok")])
        assert b"\r\n" not in save(sr, tmp_path / "r.md").read_bytes()

    def test_unknown_suffix_names_the_path_and_the_choices(
        self, mixed_result: SuiteResult, tmp_path: Path
    ) -> None:
        """An unknown suffix raises InvalidInput with the path and the allowed suffixes."""
        target = tmp_path / "report.pdf"
        with pytest.raises(InvalidInput) as info:
            save(mixed_result, target)
        message = str(info.value)
        assert str(target) in message
        assert ".json, .xml, .md, .markdown, .html, .htm, .txt" in message
        assert not target.exists()

    def test_no_suffix_is_rejected(self, mixed_result: SuiteResult, tmp_path: Path) -> None:
        """A path without a suffix cannot choose a format."""
        with pytest.raises(InvalidInput, match="'path' must end with one of"):
            save(mixed_result, tmp_path / "report")

    def test_rejects_a_single_result(self, tmp_path: Path) -> None:
        """save() wants a SuiteResult and says so."""
        with pytest.raises(InvalidInput, match="'sr' must be a SuiteResult"):
            save(Result("a", Status.PASS), tmp_path / "r.json")  # type: ignore[arg-type]

    def test_method_delegates(self, mixed_result: SuiteResult, tmp_path: Path) -> None:
        """SuiteResult.save writes the same file."""
        path = mixed_result.save(tmp_path / "r.html")
        assert mixed_result.to_html() == read(path)


class TestFormats:
    def test_suffixes(self) -> None:
        """FORMATS maps every supported suffix to a writer."""
        assert [".json", ".xml", ".md", ".markdown", ".html", ".htm", ".txt"] == list(FORMATS)
        assert all(callable(writer) for writer in FORMATS.values())

    def test_read_only(self) -> None:
        """FORMATS cannot be changed by accident."""
        with pytest.raises(TypeError):
            FORMATS[".pdf"] = FORMATS[".txt"]  # type: ignore[index]
