"""Output comments in docs code blocks: what a ``print(...)`` prints is checked.

A docs page shows what a line prints the way a reader expects, in comments. The docs tests
run each block through `run_checked`, which records what every commented ``print`` call
prints and compares it with its comments, so a stale number fails CI. A print's output
comment is either

- the comment at the end of its line: ``print(result.status)  # Status.PASS`` (it applies
  to each time the call prints, as in a loop), or
- the comment lines directly under it, when its own line has none: what it printed,
  wrapped over several lines (joined with a space). When the call prints several times (in
  a loop), each line starting ``# `` is one output, in order, and lines starting ``#   ``
  (three spaces) continue the previous one.

Each printed text (its lines joined by ``; ``) must be stated by its comment:

- exactly, or
- followed by ``: ``, `` - `` or `` (`` and an explanation for the reader
  (``# Status.PASS: the pickled forest restores bitwise``), or
- by a pattern where ``...`` stands for any text (``# {'index': ..., 'abs_diff': ...}``),
  as doctest's ELLIPSIS; use it for timings and other numbers that vary between runs.

A commented ``print`` that never runs is an error too (its comment would be unchecked).
Other comments are prose: keep a blank line between a print and a prose comment below it.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import tokenize
from typing import Any

__all__ = ["OutputMismatch", "matches", "run_checked"]


class OutputMismatch(AssertionError):
    """A ``print`` whose output differs from its comment."""


def _comments(code: str) -> tuple[dict[int, str], set[int]]:
    """Line number -> the text of the comment on that line; and the lines that are only a
    comment."""
    found: dict[int, str] = {}
    alone: set[int] = set()
    previous = tokenize.NL
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string[1:].rstrip()
            if previous in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                alone.add(token.start[0])
        if token.type not in (tokenize.INDENT, tokenize.DEDENT):
            previous = token.type
    return found, alone


def _expected(line: int, comments: dict[int, str], alone: set[int]) -> list[str] | str | None:
    """A print's output comment: its line's comment (a str), the comment lines under it
    (a list, one entry per printed text), or None."""
    if line in comments and line not in alone:
        return comments[line].strip()
    entries: list[str] = []
    below = line + 1
    while below in alone:
        text = comments[below]
        if text.startswith("   ") and entries:
            entries[-1] += " " + text.strip()
        else:
            entries.append(text.strip())
        below += 1
    return entries or None


def matches(comment: str, printed: str) -> bool:
    """Whether ``comment`` states ``printed`` (see the module docstring).

    >>> matches("Status.PASS: bitwise", "Status.PASS"), matches("0.5", "0.25")
    (True, False)
    >>> matches("{'index': ..., 'x': 1}", "{'index': 7, 'x': 1}")
    True
    """
    if comment == printed:
        return True
    for separator in (": ", " - ", " ("):
        if comment.startswith(printed + separator):
            return True
    if "..." in comment:
        pattern = ".*".join(re.escape(part) for part in comment.split("..."))
        return re.fullmatch(pattern, printed, re.S) is not None
    return False


class _Printed(ast.NodeTransformer):
    """Route ``print(...)`` calls that have an output comment through the recorder."""

    def __init__(self, comments: dict[int, str], alone: set[int]) -> None:
        self.comments, self.alone = comments, alone
        self.expected: dict[int, list[str] | str] = {}

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        line = node.end_lineno
        if not (isinstance(node.func, ast.Name) and node.func.id == "print" and line):
            return node
        expected = _expected(line, self.comments, self.alone)
        if expected is None:
            return node
        self.expected[line] = expected
        node.func = ast.Name("__docs_print__", ast.Load())
        node.args.insert(0, ast.Constant(line))
        return ast.copy_location(node, node)


def run_checked(
    code: str, where: str, scope: dict[str, Any], found: list[str] | None = None
) -> None:
    """Execute ``code`` in ``scope``; every commented ``print`` must print its comment.

    Args:
        found: collect every mismatch here instead of raising at the first.

    Raises:
        OutputMismatch: naming the block, the line, the comment and what was printed.
    """
    comments, alone = _comments(code)
    tree = ast.parse(code, where)
    transformer = _Printed(comments, alone)
    tree = ast.fix_missing_locations(transformer.visit(tree))
    printed: dict[int, list[str]] = {}

    def docs_print(line: int, *args: Any, **kwargs: Any) -> None:
        out = io.StringIO()
        builtins.print(*args, **{**kwargs, "file": out})
        printed.setdefault(line, []).append("; ".join(out.getvalue().strip().splitlines()))
        builtins.print(*args, **kwargs)

    scope["__docs_print__"] = docs_print
    try:
        exec(compile(tree, where, "exec"), scope)
    finally:
        scope.pop("__docs_print__", None)
    problems: list[str] = []
    for line, expected in sorted(transformer.expected.items()):
        texts = printed.get(line, [])
        if not texts:
            problems.append(f"{where}, line {line}: the print commented {expected!r} never ran")
            continue
        if isinstance(expected, list) and len(texts) == 1:
            expected = [" ".join(expected)]  # one output, wrapped over several lines
        if isinstance(expected, list) and len(expected) != len(texts):
            problems.append(
                f"{where}, line {line}: the comments under the print show {len(expected)} "
                f"outputs but it printed {len(texts)}: {texts!r}"
            )
            continue
        for text, comment in zip(
            texts,
            expected if isinstance(expected, list) else None or [expected] * len(texts),
            strict=True,
        ):
            if not matches(comment, text):
                problems.append(
                    f"{where}, line {line}: the comment says {comment!r} but it printed {text!r}"
                )
    if found is not None:
        found.extend(problems)
    elif problems:
        raise OutputMismatch("\n".join(problems))
