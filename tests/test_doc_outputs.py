"""The docs tests compare output comments with what the code prints (`_doc_outputs`).

The point: a changed number in any docs output comment fails CI. Each convention a page
uses is exercised here, and so is every page: changing a digit of any checked comment in
the docs makes its block fail.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from _doc_outputs import OutputMismatch, matches, run_checked


def run(code: str) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    run_checked(code, "page.md[block 1]", scope)
    return scope


def test_a_comment_on_the_print_line_must_state_the_output() -> None:
    run("print(2 + 2)  # 4")
    with pytest.raises(OutputMismatch, match=r"line 1: the comment says '5' but it printed '4'"):
        run("print(2 + 2)  # 5")


def test_an_explanation_may_follow_the_output() -> None:
    run("print('Status.PASS')  # Status.PASS: the forest restores bitwise")
    run("print(0.25)  # 0.25 (a quarter)")
    with pytest.raises(OutputMismatch):
        run("print(0.25)  # 0.2: a quarter")


def test_ellipsis_stands_for_text_that_varies() -> None:
    run("print({'index': 7, 'abs_diff': 0.5})  # {'index': ..., 'abs_diff': ...}")
    run("print('latency ratio 9.66 (12 pairs)')  # latency ratio ... (... pairs)")
    with pytest.raises(OutputMismatch):
        run("print('latency ratio 9.66 (12 pairs)')  # latency ratio ... (13 pairs)")


def test_comment_lines_under_a_print_are_its_output_wrapped() -> None:
    code = "print('no regression detected after 902 requests; served 200')\n"
    run(code + "# no regression detected after 902 requests;\n# served 200\n")
    with pytest.raises(OutputMismatch, match="919 requests"):
        run(code + "# no regression detected after 919 requests;\n# served 200\n")


def test_in_a_loop_each_comment_line_is_one_output() -> None:
    loop = "for k in (1, 2):\n    print(f'fault {k}: failed', 'twice' if k == 2 else '')\n"
    run(loop + "# fault 1: failed\n# fault 2: failed\n#   twice\n")
    with pytest.raises(OutputMismatch, match="show 1 outputs but it printed 2"):
        run(loop + "# fault 1: failed\n")
    with pytest.raises(OutputMismatch, match="'fault 3: failed twice'"):
        run(loop + "# fault 1: failed\n# fault 3: failed twice\n")


def test_a_commented_print_that_never_runs_fails() -> None:
    with pytest.raises(OutputMismatch, match="never ran"):
        run("if False:\n    print('x')  # x\n")


def test_prose_comments_are_not_outputs() -> None:
    scope = run("x = 1  # one\n# a note about the next line\nprint(x)\n\n# explained\ny = 2\n")
    assert scope["x"] == 1
    with pytest.raises(OutputMismatch):  # directly under a print: read as its output
        run("print(1)\n# one, as a number\n")


def test_a_multi_line_output_joins_its_lines() -> None:
    run("print('a\\nb')  # a; b")


@pytest.mark.parametrize(
    ("comment", "printed", "expected"),
    [
        ("Status.FAIL", "Status.PASS", False),
        ("1 None: served by the live baseline", "1 None", True),
        ("[0.005 0.08 ...]", "[0.005 0.08  0.09]", True),
        ("...", "anything", True),
        ("", "", True),
    ],
)
def test_matches(comment: str, printed: str, expected: bool) -> None:
    assert matches(comment, printed) is expected


def test_a_changed_digit_in_a_docs_comment_fails(tmp_path: Any) -> None:
    """Take a real page's commented print, change a digit of its comment: the block fails."""
    from test_docs import ROOT

    page = (ROOT / "docs" / "stats.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S)
    assert code is not None
    block = code.group(1)
    assert "# 0.341 1.4968542403436687" in block
    run(block)
    with pytest.raises(OutputMismatch, match="0.342"):
        run(block.replace("# 0.341 1.4968542403436687", "# 0.342 1.4968542403436687"))
