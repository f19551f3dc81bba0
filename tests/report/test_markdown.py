from __future__ import annotations

import re

from mlchecks import Finding, Result, Status, SuiteResult
from mlchecks.report.markdown import suite_to_markdown

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
FENCED = re.compile(r"^(`{3,})text\n.*?\n\1$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")


def outside_code(text: str) -> str:
    """``text`` without its code blocks and code spans, where markup is shown literally."""
    return CODE_SPAN.sub("", FENCED.sub("", text))


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row, split on unescaped pipes."""
    assert line.startswith("| "), line
    assert line.endswith(" |"), line
    return [c.strip() for c in UNESCAPED_PIPE.split(line)[1:-1]]


def checks_table(text: str) -> list[list[str]]:
    """The rows of the table of checks (header and alignment rows left out)."""
    lines = text.splitlines()
    start = lines.index("| Status | Check | Rubric | Summary | Duration |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


class TestSuiteToMarkdown:
    def test_heading_gives_the_overall_status_as_a_word(self, mixed_result: SuiteResult) -> None:
        """The first line is a heading with the status word and the suite's name."""
        assert (
            "## 💥 ERROR: mlchecks suite `demo`" == suite_to_markdown(mixed_result).splitlines()[0]
        )

    def test_one_row_per_check(
        self, mixed_result: SuiteResult, expected: dict[str, Status]
    ) -> None:
        """The table has a row per check: status word, name, rubric, summary, duration."""
        rows = checks_table(suite_to_markdown(mixed_result))
        assert [f"`{name}`" for name in expected] == [r[1] for r in rows]
        for r, status in zip(rows, expected.values(), strict=True):
            assert 5 == len(r)
            assert r[0].endswith(status.label)
            assert r[4].endswith("s")
        quality = rows[1]
        assert ["4", "accuracy 0.81 is below the minimum 0.9"] == quality[2:4]

    def test_score_with_its_reading(self, mixed_result: SuiteResult) -> None:
        """The score line gives the total out of 7 and the paper's reading."""
        score = mixed_result.score
        text = suite_to_markdown(mixed_result)
        line = f"**ML Test Score (infrastructure): {score.total:g} / 7.** {score.reading}"
        assert line in text.splitlines()

    def test_points_per_rubric_test(self, mixed_result: SuiteResult) -> None:
        """A collapsed table shows each rubric test's points and how they were earned."""
        text = suite_to_markdown(mixed_result)
        rows = [cells(line) for line in text.splitlines() if re.match(r"\| \d \| ", line)]
        assert ["1", "2", "3", "4", "5", "6", "7"] == [r[0] for r in rows]
        assert ["1", "automated: reproducibility (PASS)"] == rows[0][2:]
        assert rows[2][3].startswith("done by hand: pipeline runbook")
        assert "not covered" == rows[1][3]

    def test_sections_for_non_passing_and_warning_checks(self, mixed_result: SuiteResult) -> None:
        """FAIL, ERROR and WARN checks get a section; PASS and SKIP do not."""
        headings = [
            line for line in suite_to_markdown(mixed_result).splitlines() if line[:4] == "### "
        ]
        expected = ["### ❌ FAIL: `quality`", "### 💥 ERROR: `crashes`", "### ⚠️ WARN: `latency`"]
        assert expected == headings

    def test_section_lists_the_findings(self, mixed_result: SuiteResult) -> None:
        """A failing check's section has a findings table with the failing finding only."""
        text = suite_to_markdown(mixed_result)
        section = text.split("### ❌ FAIL: `quality`", 1)[1].split("###", 1)[0]
        rows = [cells(line) for line in section.splitlines() if line.startswith("| ❌")]
        expected = [
            "❌ FAIL",
            "`accuracy`",
            "0.81",
            "&gt;= 0.9",
            "accuracy 0.81 is below the minimum 0.9",
        ]
        assert [expected] == rows
        assert "1 of 2 conditions passed." in section

    def test_error_section_has_the_traceback_in_a_code_block(
        self, mixed_result: SuiteResult
    ) -> None:
        """The traceback is in a fenced code block inside a collapsed <details>."""
        section = suite_to_markdown(mixed_result).split("### 💥 ERROR: `crashes`", 1)[1]
        block = section.split("```text\n", 1)[1].split("\n```", 1)[0]
        assert block.startswith("Traceback (most recent call last):")
        assert block.endswith("RuntimeError: boom: the checkpoint file is truncated")

    def test_cells_escape_pipes_newlines_and_html(self, hostile_result: SuiteResult) -> None:
        """User text cannot add columns, break rows or inject HTML."""
        text = suite_to_markdown(hostile_result)
        rows = checks_table(text)
        assert 2 == len(rows)
        assert all(5 == len(r) for r in rows)
        summary = rows[0][3]
        assert "summary with \\| a pipe<br>and &lt;img src=x onerror=alert(1)&gt;" in summary
        prose = outside_code(text)
        assert "<script" not in prose
        assert "<img" not in prose
        assert "`<script>alert(1)</script>`" in text
        for bad in ("\x00", "\x07", "\x0b"):
            assert bad not in text

    def test_traceback_fence_cannot_be_closed_by_the_content(
        self, hostile_result: SuiteResult
    ) -> None:
        """A traceback that contains ``` gets a longer fence."""
        text = suite_to_markdown(hostile_result)
        assert "````text\n" in text
        assert "Bad<Error>: msg ```\n````" in text

    def test_long_finding_lists_are_capped(self) -> None:
        """At most 50 findings are listed per check, with a count of the rest."""
        findings = [Finding(f"slice_{i}", Status.FAIL, i, "<= 0", "too high") for i in range(70)]
        sr = SuiteResult([Result.from_findings("quality", findings)])
        text = suite_to_markdown(sr)
        assert 50 == sum(line.startswith("| ❌ FAIL | `slice_") for line in text.splitlines())
        assert "... and 20 more findings." in text

    def test_empty_suite(self) -> None:
        """An empty suite has a heading and a score but no checks table."""
        text = suite_to_markdown(SuiteResult([], name="empty"))
        assert text.startswith("## ✅ PASS: mlchecks suite `empty`\n\nno checks in ")
        assert "| Status | Check |" not in text

    def test_ends_with_one_newline(self, mixed_result: SuiteResult) -> None:
        """The document ends with exactly one newline, ready to append to a summary file."""
        text = suite_to_markdown(mixed_result)
        assert text.endswith("\n")
        assert not text.endswith("\n\n")

    def test_method_delegates(self, mixed_result: SuiteResult) -> None:
        """SuiteResult.to_markdown is this serializer."""
        assert suite_to_markdown(mixed_result) == mixed_result.to_markdown()
