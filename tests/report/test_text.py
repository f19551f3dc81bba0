from __future__ import annotations

import re

import attrs

from mlchecks import AtLeast, Finding, Result, Status, SuiteResult, run_check
from mlchecks.report.text import result_to_text, suite_to_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def row(text: str, check: str) -> str:
    """The report line that starts the row of ``check``."""
    for line in text.splitlines():
        if re.match(rf"  [A-Z]+ +{re.escape(check)} ", line + " "):
            return line
    raise AssertionError(f"no row for {check!r} in:\n{text}")


class TestResultToText:
    def test_header_names_status_check_rubric_and_duration(self) -> None:
        """The first line gives the status word, the check, its rubric test and the time."""
        result = Result("quality", Status.FAIL, "too low", rubric=4, duration_s=1.5)
        assert "FAIL quality (rubric 4) in 1.50s" == result_to_text(result).splitlines()[0]

    def test_lists_every_finding_with_value_limit_and_message(self) -> None:
        """Each finding shows its status, name, observed value, limit and message."""
        finding = AtLeast(0.9).judge("accuracy", 0.8123456)
        text = result_to_text(Result.from_findings("quality", [finding]))
        expected = (
            "  - FAIL accuracy: observed 0.8123, limit >= 0.9: "
            "accuracy 0.8123 is below the minimum 0.9"
        )
        assert expected in text.splitlines()

    def test_metrics_use_four_significant_digits_and_are_capped(self) -> None:
        """At most 12 metrics are printed, each with 4 significant digits, then a count."""
        metrics = {f"m{i:02d}": 1 / 3 + i for i in range(15)}
        text = result_to_text(Result("big", Status.PASS, metrics=metrics))
        assert "m00=0.3333" in text
        assert "m11=11.33" in text
        assert "m12" not in text
        assert "(3 more in result.metrics)" in text

    def test_non_finite_metrics_print(self) -> None:
        """NaN and infinity print as words, not as errors."""
        text = result_to_text(Result("x", Status.PASS, metrics={"a": float("nan"), "b": -1e400}))
        assert "a=nan, b=-inf" in text

    def test_error_result_shows_the_real_traceback(self) -> None:
        """An ERROR from run_check shows the traceback down to the raising line."""

        @attrs.frozen
        class Broken:
            name: str = "broken"
            rubric: int | None = None

            def run(self, context: object = None) -> Result:
                raise ValueError("weights are all NaN")

        text = result_to_text(run_check(Broken()))
        assert text.startswith("ERROR broken in ")
        assert "Traceback (most recent call last):" in text
        assert 'raise ValueError("weights are all NaN")' in text
        assert text.rstrip().endswith("ValueError: weights are all NaN")

    def test_traceback_can_be_left_out(self) -> None:
        """traceback=False keeps the summary but drops the traceback."""
        try:
            raise KeyError("k")
        except KeyError as exc:
            result = Result.from_exception("broken", exc)
        text = result_to_text(result, traceback=False)
        assert "check could not run: KeyError: 'k'" in text
        assert "Traceback" not in text

    def test_no_colour_by_default_and_colour_on_request(self) -> None:
        """ANSI codes appear only with color=True, and the plain text is otherwise equal."""
        result = Result("quality", Status.FAIL, "too low")
        plain = result_to_text(result)
        colored = result_to_text(result, color=True)
        assert None is ANSI.search(plain)
        assert "\x1b[31mFAIL\x1b[0m" in colored
        assert plain == ANSI.sub("", colored)

    def test_str_of_a_result_is_the_text_report(self) -> None:
        """str(result) is result_to_text(result)."""
        result = Result("a", Status.WARN, "careful", findings=[Finding("x", Status.WARN)])
        assert result_to_text(result) == str(result)


class TestSuiteToText:
    def test_header_gives_overall_status_and_counts(self, mixed_result: SuiteResult) -> None:
        """The first line names the suite, its status and how many checks ended how."""
        first = suite_to_text(mixed_result).splitlines()[0]
        assert first.startswith(
            "mlchecks suite 'demo': ERROR (5 checks: 1 passed, 1 warning, 1 failed, 1 error, "
            "1 skipped) in "
        )

    def test_one_row_per_check_with_its_status(
        self, mixed_result: SuiteResult, expected: dict[str, Status]
    ) -> None:
        """Every check has a row starting with its status word."""
        text = suite_to_text(mixed_result)
        for check, status in expected.items():
            assert row(text, check).startswith(f"  {status.label:<7}{check}")

    def test_rows_show_rubric_and_summary(self, mixed_result: SuiteResult) -> None:
        """A row carries the rubric test and the summary."""
        line = row(suite_to_text(mixed_result), "quality")
        assert "rubric 4" in line
        assert line.endswith("accuracy 0.81 is below the minimum 0.9")

    def test_failing_and_warning_checks_list_their_findings(
        self, mixed_result: SuiteResult
    ) -> None:
        """FAIL and WARN checks list the findings that did not pass, not the passing ones."""
        lines = suite_to_text(mixed_result).splitlines()
        expected_fail = (
            "         - FAIL accuracy: observed 0.81, limit >= 0.9: "
            "accuracy 0.81 is below the minimum 0.9"
        )
        assert expected_fail in lines
        assert any(line.startswith("         - WARN accuracy: observed 0.85") for line in lines)
        assert not any("- PASS churn" in line for line in lines)

    def test_error_shows_the_end_of_its_traceback(self, mixed_result: SuiteResult) -> None:
        """An ERROR row is followed by the last lines of the traceback."""
        text = suite_to_text(mixed_result)
        after = text.split(row(text, "crashes"), 1)[1]
        assert "in load_model" in after
        assert "RuntimeError: boom: the checkpoint file is truncated" in after

    def test_ends_with_the_score_and_its_reading(self, mixed_result: SuiteResult) -> None:
        """The score and the paper's reading close the report, then the manual tests."""
        text = suite_to_text(mixed_result)
        score = mixed_result.score
        assert f"ML Test Score (infrastructure): {score.total:g} / 7 rubric tests." in text
        assert " ".join(text.split()).count(score.reading) == 1
        assert score.reading.startswith("Rubric test 4 failed: fix it first")  # no praise
        assert text.splitlines()[-1].startswith("Done by hand: test 3: pipeline runbook")

    def test_lines_fit_100_columns(self, mixed_result: SuiteResult) -> None:
        """Lines stay within 100 characters (tracebacks aside)."""
        text = suite_to_text(mixed_result)
        long = [line for line in text.splitlines() if len(line) > 100 and "File " not in line]
        assert [] == long

    def test_long_summaries_wrap_under_the_summary_column(self) -> None:
        """A long summary continues on the next line, aligned under the summary column."""
        summary = "word " * 40
        sr = SuiteResult([Result("quality", Status.PASS, summary.strip(), rubric=4)], name="x")
        lines = suite_to_text(sr).splitlines()
        start = lines[1].index("word")
        assert " " * start + "word" == lines[2][: start + 4]

    def test_no_colour_by_default_and_colour_on_request(self, mixed_result: SuiteResult) -> None:
        """str() has no ANSI codes; color=True colours the status words only."""
        plain = str(mixed_result)
        colored = suite_to_text(mixed_result, color=True)
        assert None is ANSI.search(plain)
        assert "\x1b[32mPASS\x1b[0m" in colored
        assert "\x1b[1;35mERROR\x1b[0m" in colored
        assert plain == ANSI.sub("", colored)

    def test_findings_per_check_are_capped(self) -> None:
        """A check lists at most 5 findings in the suite report, then how many more."""
        findings = [Finding(f"slice_{i}", Status.FAIL, i, "<= 0", "too high") for i in range(8)]
        sr = SuiteResult([Result.from_findings("quality", findings)])
        lines = suite_to_text(sr).splitlines()
        assert 5 == sum(line.startswith("         - FAIL slice_") for line in lines)
        assert "         ... and 3 more findings" in lines

    def test_empty_suite(self) -> None:
        """An empty suite reports no checks and a zero score."""
        text = suite_to_text(SuiteResult([], name="empty"))
        assert text.startswith("mlchecks suite 'empty': PASS (no checks) in ")
        assert "ML Test Score (infrastructure): 0 / 7 rubric tests." in text
