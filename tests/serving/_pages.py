"""Run the server-side code blocks of a docs page against a server a test started.

A docs page about a model server shows its check code with the server's usual address
(``http://127.0.0.1:8000``, say); blocks marked ``<!-- server -->`` need that server and are
skipped by tests/test_docs.py. The server's tests run them here, in order and in one
namespace, with the page's addresses (and any other literal) replaced by the running
server's.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from _doc_outputs import run_checked

ROOT = Path(__file__).resolve().parents[2]
SERVER_BLOCK = re.compile(r"<!-- server -->\s*```python\n(.*?)```", re.S)


def server_blocks(page: str | Path) -> list[str]:
    """The ``<!-- server -->`` Python blocks of ``page`` (a path under the repository)."""
    path = ROOT / page
    return SERVER_BLOCK.findall(path.read_text())


def run_server_blocks(
    page: str | Path,
    replacements: Mapping[str, str],
    namespace: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Execute the page's server blocks with each ``replacements`` key replaced by its value.

    Returns the namespace, so a test can assert on what the page computed (``result``...).
    """
    blocks = server_blocks(page)
    assert blocks, f"{page} has no <!-- server --> blocks"
    scope: dict[str, Any] = {"__name__": f"docs_{Path(page).stem}", **(namespace or {})}
    for number, code in enumerate(blocks, start=1):
        for old, new in replacements.items():
            code = code.replace(old, new)
        run_checked(code, f"{page}[server block {number}]", scope)
    return scope


BLOCK = re.compile(
    r"(?:<!-- (no-test|server) -->\s*)?```python\n(.*?)```(?:\s*```text\n(.*?)```)?", re.S
)


def run_block(code: str, where: str, scope: dict[str, Any], expected: str | None) -> None:
    """Execute one block; when the page shows its output (a ```text block right after it),
    what it prints must be exactly that."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        run_checked(code, where, scope)
    if expected is not None:
        assert printed.getvalue() == expected, f"{where} printed:\n{printed.getvalue()}"


def run_page(
    page: str | Path,
    start: Callable[[dict[str, Any]], Mapping[str, str]],
) -> dict[str, Any]:
    """Execute every block of ``page`` a reader runs, in order, in one namespace.

    Plain blocks (the setup: training, writing a model repository) run as written;
    ``start(namespace)`` is called before the first ``<!-- server -->`` block, starts the
    server the page describes, and returns the replacements for the server blocks (the
    page's address -> the running server's). ``<!-- no-test -->`` blocks are skipped. A
    block followed by a ```text block must print exactly that text.
    """
    scope: dict[str, Any] = {"__name__": f"docs_{Path(page).stem}"}
    replacements: Mapping[str, str] | None = None
    blocks = BLOCK.findall((ROOT / page).read_text())
    for number, (marker, code, expected) in enumerate(blocks, 1):
        if marker == "no-test":
            continue
        if marker == "server":
            if replacements is None:
                replacements = start(scope)
            for old, new in replacements.items():
                code = code.replace(old, new)
        run_block(code, f"{page}[block {number}]", scope, expected or None)
    assert replacements is not None, f"{page} has no <!-- server --> blocks"
    return scope
