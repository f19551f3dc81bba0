from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

import mlchecks.report.html as html_report
from mlchecks import InvalidInput, Result, Status, SuiteResult
from mlchecks.report.html import register_figure, result_to_html, suite_to_html

XSS_NAME = "<script>alert(1)</script>"
XSS_MESSAGE = "<img src=x onerror=alert(1)>"
VOID = frozenset({"meta", "br", "img", "hr", "input", "link", "wbr", "source", "col"})


class StrictParser(HTMLParser):
    """Collects tags, attributes and text, and every nesting mistake."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.decls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void element <{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_decl(self, decl: str) -> None:
        self.decls.append(decl)


def parse(text: str) -> StrictParser:
    """Parse ``text`` and fail on unbalanced or misnested tags."""
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    assert [] == parser.problems
    assert [] == parser.stack
    return parser


def section(text: str, check: str) -> str:
    """The HTML of one check's <details> section."""
    start = text.index(f"<strong>{check}</strong>")
    start = text.rindex('<details class="mlc-check', 0, start)
    end = text.find('<details class="mlc-check', start + 1)
    return text[start : end if end >= 0 else len(text)]


class TestSuiteToHtml:
    def test_full_page_is_a_complete_document(self, mixed_result: SuiteResult) -> None:
        """full_page=True gives a doctype, a UTF-8 charset, a title and balanced tags."""
        text = suite_to_html(mixed_result)
        parser = parse(text)
        assert text.startswith("<!doctype html>\n")
        assert ["doctype html"] == parser.decls
        assert '<meta charset="utf-8">' in text
        assert "<title>mlchecks: demo - ERROR</title>" in text
        assert {"html", "head", "body", "title", "style"} <= set(parser.tags)

    def test_fragment_for_notebooks(self, mixed_result: SuiteResult) -> None:
        """full_page=False gives one styled <div> without document tags."""
        text = suite_to_html(mixed_result, full_page=False)
        parser = parse(text)
        assert text.startswith('<div class="mlc"><style>')
        assert text.endswith("</div>")
        assert not {"html", "head", "body", "title"} & set(parser.tags)
        assert [] == parser.decls

    def test_static_and_self_contained(self, mixed_result: SuiteResult) -> None:
        """No JavaScript, event handlers or external resources of any kind."""
        text = suite_to_html(mixed_result)
        parser = parse(text)
        assert "script" not in parser.tags
        assert [] == [name for name, _ in parser.attrs if name.startswith("on")]
        assert [] == [name for name, _ in parser.attrs if name in {"src", "href"}]
        assert "url(" not in text
        assert "@import" not in text

    def test_user_strings_are_escaped(self, hostile_result: SuiteResult) -> None:
        """A check called <script> and a finding message with an <img> stay text."""
        for text in (suite_to_html(hostile_result), suite_to_html(hostile_result, full_page=False)):
            assert XSS_NAME not in text
            assert XSS_MESSAGE not in text
            parser = parse(text)
            assert not {"script", "img"} & set(parser.tags)
            shown = "".join(parser.text)
            assert XSS_NAME in shown
            assert XSS_MESSAGE in shown

    def test_a_section_per_check_with_badge_word_and_colour(
        self, mixed_result: SuiteResult, expected: dict[str, Status]
    ) -> None:
        """Each check's section has a coloured badge that also says the status in words."""
        text = suite_to_html(mixed_result)
        for check, status in expected.items():
            head = (
                f'<details class="mlc-check mlc-s-{status.value}"( open)?><summary>'
                f'<span class="mlc-badge mlc-{status.value}">{status.label}</span> '
                f"<strong>{check}</strong>"
            )
            assert re.search(head, text), check
            assert f".mlc-{status.value}{{background:" in text

    def test_problems_open_and_passes_stay_folded(
        self, mixed_result: SuiteResult, expected: dict[str, Status]
    ) -> None:
        """FAIL, ERROR and WARN sections are open; PASS and SKIP are folded."""
        text = suite_to_html(mixed_result)
        for check, status in expected.items():
            opened = section(text, check).split(">", 1)[0].endswith(" open")
            assert (status >= Status.WARN) == opened, check

    def test_header_and_score(self, mixed_result: SuiteResult) -> None:
        """The page gives the overall status, the counts and the score table of tests 1..7."""
        text = suite_to_html(mixed_result)
        score = mixed_result.score
        assert '<h2><span class="mlc-badge mlc-error">ERROR</span> mlchecks suite' in text
        assert "1 passed, 1 warning, 1 failed, 1 error, 1 skipped in " in text
        assert f"ML Test Score (infrastructure): {score.total:g} / 7</h3>" in text
        assert score.reading.replace("'", "&#x27;") in text
        rows = re.findall(r'<tr><td class="mlc-num">(\d)</td>', text)
        assert ["1", "2", "3", "4", "5", "6", "7"] == rows
        assert "done by hand: pipeline runbook: https://example.com/runbook" in text

    def test_findings_and_metrics_tables(self, mixed_result: SuiteResult) -> None:
        """A check shows its findings (failing first) and its metrics, 4 significant digits."""
        part = section(suite_to_html(mixed_result), "quality")
        failing = (
            '<tr><td><span class="mlc-badge mlc-fail">FAIL</span></td><td>accuracy</td>'
            '<td class="mlc-num" title="0.81">0.81</td><td>&gt;= 0.9</td>'
            "<td>accuracy 0.81 is below the minimum 0.9</td></tr>"
        )
        assert failing in part
        assert part.index(failing) < part.index('<span class="mlc-badge mlc-pass">PASS</span>')
        assert '<tr><td>n_examples</td><td class="mlc-num" title="6000.0">6000</td></tr>' in part
        assert '<tr><td>auc</td><td class="mlc-num" title="nan">nan</td></tr>' in part

    def test_details_render_generically(self, mixed_result: SuiteResult) -> None:
        """Rows become tables, mappings key/value tables, lists of values a line of values."""
        part = section(suite_to_html(mixed_result), "quality")
        assert "<th>slice</th><th>accuracy</th><th>n</th>" in part
        assert part.count('<tr><td class="mlc-num" title=') >= 50
        assert "10 more rows not shown." in part
        assert '<tr><td>p99</td><td class="mlc-num" title="0.25">0.25</td></tr>' in part
        assert '<div class="mlc-values">3, 17, 42</div>' in part
        assert "<tr><td>device</td><td>cpu</td></tr>" in part
        # {"runs": [{"seed": 0, "hashes": [...]}], "note": None}: a table holding a table.
        assert (
            "<tr><td>runs</td><td>"
            '<div class="mlc-scroll"><table><thead><tr><th>seed</th><th>hashes</th></tr></thead>'
            '<tbody><tr><td class="mlc-num" title="0">0</td><td>a1, b2</td></tr>'
        ) in part
        assert "<pre>" not in part

    def test_every_table_scrolls_inside_its_card(self, mixed_result: SuiteResult) -> None:
        """Each table sits in a scrolling box, so a wide table never overflows its card."""
        text = suite_to_html(mixed_result)
        assert text.count("<table>") == text.count('<div class="mlc-scroll"><table>')
        assert ".mlc-scroll{max-width:100%;overflow-x:auto;" in text
        assert ".mlc details.mlc-sub .mlc-scroll{max-height:32em;overflow-y:auto}" in text

    def test_durations_have_units(self) -> None:
        """Keys ending in _s are seconds: shown scaled with their unit, exact value as title."""
        stages = [
            {"stage": "fit", "status": "ok", "duration_s": 0.00669, "violations": []},
            {"stage": "train", "status": "violated", "duration_s": 2.5, "violations": ["x < 0"]},
        ]
        result = Result(
            "pipeline",
            Status.PASS,
            metrics={"latency.p50_s": 2.15e-05, "n_requests": 100.0},
            details={"stages": stages, "duration_s": 12.0, "timeline": {"t_s": [0.0, 0.25]}},
        )
        text = result_to_html(result)
        assert "<th>stage</th><th>status</th><th>duration_s</th><th>violations</th>" in text
        assert '<td class="mlc-num" title="0.00669">6.69 ms</td><td></td>' in text
        assert '<td class="mlc-num" title="2.5">2.5 s</td><td>x &lt; 0</td>' in text
        assert (
            '<tr><td>latency.p50_s</td><td class="mlc-num" title="2.15e-05">21.5 \u00b5s<' in text
        )
        assert '<tr><td>n_requests</td><td class="mlc-num" title="100.0">100</td>' in text
        assert '<tr><td>duration_s</td><td class="mlc-num" title="12.0">12 s</td>' in text
        assert '<th>t_s</th></tr></thead><tbody><tr><td class="mlc-num" title="0.0">0 s<' in text

    def test_series_become_columns(self) -> None:
        """A mapping of equally long lists is a table with a column per list."""
        series = {"t_s": [0.001, 0.002], "outcome": ["candidate", "known_good"], "repeat": 2}
        text = result_to_html(Result("rollback", Status.PASS, details={"timeline": series}))
        assert '<tr><td>repeat</td><td class="mlc-num" title="2">2</td></tr>' in text
        assert "<th>t_s</th><th>outcome</th>" in text
        assert '<td class="mlc-num" title="0.002">2 ms</td><td>known_good</td>' in text

    def test_irregular_nesting_falls_back_to_json(self) -> None:
        """Structures that are no table (lists of lists, deep mixed nesting) stay compact JSON."""
        deep = {"a": {"b": {"c": [1, {"d": 2}]}}}
        text = result_to_html(
            Result("x", Status.PASS, details={"grid": [[1, 2], [3]], "deep": deep})
        )
        assert "<pre>[[1,2],[3]]</pre>" in text
        assert "<td><code>{&quot;c&quot;:[1,{&quot;d&quot;:2}]}</code></td>" in text

    def test_long_tables_are_capped(self) -> None:
        """A table of more than 50 rows shows 50 and says how many were left out."""
        rows = [{"i": i} for i in range(500)]
        text = suite_to_html(SuiteResult([Result("big", Status.PASS, details={"rows": rows})]))
        assert 50 == text.count('<tr><td class="mlc-num" title=')
        assert "450 more rows not shown." in text

    def test_error_traceback_in_details(self, mixed_result: SuiteResult) -> None:
        """An ERROR check shows its traceback in a <details><pre> block."""
        part = section(suite_to_html(mixed_result), "crashes")
        match = re.search(
            r"<details class=\"mlc-sub\" open><summary>Traceback: (.*?)</summary>"
            r"<pre>(.*?)</pre></details>",
            part,
            re.S,
        )
        assert match is not None
        assert "RuntimeError: boom: the checkpoint file is truncated" == match.group(1)
        assert match.group(2).startswith("Traceback (most recent call last):")
        assert "in load_model" in match.group(2)

    def test_repr_html_is_the_fragment(self, mixed_result: SuiteResult) -> None:
        """A notebook shows a SuiteResult as the fragment."""
        assert suite_to_html(mixed_result, full_page=False) == mixed_result._repr_html_()

    def test_to_html_delegates(self, mixed_result: SuiteResult) -> None:
        """SuiteResult.to_html is this serializer."""
        assert suite_to_html(mixed_result) == mixed_result.to_html()

    def test_empty_suite(self) -> None:
        """An empty suite still renders a valid page with the score."""
        text = suite_to_html(SuiteResult([], name="empty"))
        parse(text)
        assert "no checks in " in text


class TestResultToHtml:
    def test_fragment_with_open_section(self) -> None:
        """One result renders as a styled fragment whose section is open."""
        text = result_to_html(Result("quality", Status.PASS, "fine", rubric=4))
        parse(text)
        assert text.startswith('<div class="mlc"><style>')
        assert '<details class="mlc-check mlc-s-pass" open>' in text
        assert "rubric 4" in text

    def test_repr_html(self) -> None:
        """A notebook shows a Result as result_to_html."""
        result = Result(XSS_NAME, Status.FAIL, XSS_MESSAGE)
        assert result_to_html(result) == result._repr_html_()
        assert XSS_NAME not in result._repr_html_()


class TestRegisterFigure:
    @pytest.fixture(autouse=True)
    def _empty_registry(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(html_report, "FIGURES", {})

    def test_nothing_is_registered_by_default(self) -> None:
        """Without registrations a section has no figures heading."""
        assert "Figures" not in result_to_html(Result("quality", Status.PASS))

    def test_figures_show_for_results_of_the_kind(self) -> None:
        """A figure function draws in every result its check class produced, whatever the name."""

        def bars(result: Result) -> list[str]:
            return [f'<svg width="10" height="10"><title>{result.check}</title></svg>']

        assert bars is register_figure("mlchecks.checks.quality.QualityCheck", bars)
        kind = "mlchecks.checks.quality.QualityCheck"
        page = result_to_html(Result("release_gate", Status.PASS, kind=kind))
        assert "<title>release_gate</title>" in page
        assert "<svg" not in result_to_html(Result("quality", Status.PASS))
        assert "<svg" not in result_to_html(Result("q", Status.PASS, kind="my.QualityCheck"))
        assert {"QualityCheck": bars} == html_report.FIGURES

    def test_a_broken_figure_does_not_break_the_report(self, mixed_result: SuiteResult) -> None:
        """A figure function that raises leaves a note and the rest of the report intact."""

        def broken(result: Result) -> list[str]:
            raise ValueError("no <data>")

        kind = mixed_result["quality"].kind
        assert kind is not None
        register_figure(kind, broken)
        text = suite_to_html(mixed_result)
        parse(text)
        assert "could not be drawn: ValueError: no &lt;data&gt;" in text
        assert "<strong>latency</strong>" in text

    def test_wrong_return_type_is_a_note(self) -> None:
        """A figure function must return a list of strings; anything else becomes a note."""
        register_figure("my.Check", lambda result: "<svg/>")  # type: ignore[arg-type,return-value]
        result = Result("q", Status.PASS, kind="my.Check")
        assert "could not be drawn: TypeError" in result_to_html(result)

    @pytest.mark.parametrize(
        ("name", "fn", "says"),
        [
            ("", print, "'kind' must be a check class or its qualified name"),
            ("quality", print, "never the check's name"),
            (3, print, "'kind' must be a check class"),
            ("my.Check", 3, "'fn' must be callable"),
        ],
    )
    def test_bad_registration(self, name: object, fn: object, says: str) -> None:
        """A check name, a non-class or a non-callable raises InvalidInput naming the argument."""
        with pytest.raises(InvalidInput, match=says):
            register_figure(name, fn)  # type: ignore[arg-type]
