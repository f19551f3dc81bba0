"""Run the server-side code blocks of a docs page against a server a test started.

A docs page about a model server shows its check code with the server's usual address
(``http://127.0.0.1:8000``, say); blocks marked ``<!-- server -->`` need that server and are
skipped by tests/test_docs.py. The server's tests run them here, in order and in one
namespace, with the page's addresses (and any other literal) replaced by the running
server's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
        exec(compile(code, f"{page}[server block {number}]", "exec"), scope)
    return scope
