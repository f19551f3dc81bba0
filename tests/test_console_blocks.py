"""Console sessions in the docs run as shown: what a command prints is what the page says.

A ```` ```console ```` block whose commands all run this project's own scripts
(``python examples/...``, ``mlchecks run examples/...``) is replayed from the repository
root in a scratch copy of the output folder: each ``$ command`` runs, and the lines under
it must be what it printed, where a line ``...`` stands for any number of lines and
``...`` inside a line for any text (a duration, say). ``$ echo $?`` checks the exit code of
the command before it. Blocks with other commands (pip, pytest on the reader's files) are
shown only.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)
RUNNABLE = re.compile(r"^(python examples/\S+\.py|mlchecks run examples/\S+)( |$)")


def sessions() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, block in enumerate(CONSOLE.findall(page.read_text()), start=1):
            commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
            runnable = [c for c in commands if c != "echo $?"]
            if runnable and all(RUNNABLE.match(c) for c in runnable):
                found.append((f"{page.relative_to(ROOT)}[console {number}]", block))
    return found


def shown_matches(shown: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` lines are ``shown``, with ``...`` wildcards (see the docstring)."""
    parts = []
    for line in shown:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.fullmatch("".join(parts), "".join(p + "\n" for p in printed), re.S) is not None


def replay(block: str, cwd: Path) -> list[str]:
    """Run the block's commands; the problems found (empty when the page is right)."""
    problems: list[str] = []
    lines = block.splitlines()
    code = None
    k = 0
    while k < len(lines):
        command = lines[k][2:]
        shown = []
        k += 1
        while k < len(lines) and not lines[k].startswith("$ "):
            shown.append(lines[k])
            k += 1
        if command == "echo $?":
            if shown != [str(code)]:
                problems.append(f"exit code {code}, the page shows {shown}")
            continue
        args = shlex.split(command)
        if args[0] == "python":
            args = [sys.executable, *args[1:]]
        else:
            args = [sys.executable, "-m", "mlchecks", *args[1:]]
        args = [str(ROOT / a) if a.startswith("examples/") else a for a in args]
        environment = {**os.environ, "COLUMNS": "100"}
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=600, env=environment
        )
        code = done.returncode
        printed = done.stdout.rstrip("\n").splitlines()
        if not shown_matches(shown, printed):
            page, out = "\n".join(shown), "\n".join(printed)
            problems.append(f"$ {command}\nthe page shows:\n{page}\nit printed:\n{out}")
    return problems


@pytest.mark.parametrize(("where", "block"), sessions(), ids=[w for w, _ in sessions()])
def test_console_sessions_print_what_the_page_shows(where: str, block: str, tmp_path: Path) -> None:
    assert [] == replay(block, tmp_path), where


def test_wildcards() -> None:
    assert shown_matches(["a in ...s", "...", "z"], ["a in 0.05s", "b", "c", "z"])
    assert not shown_matches(["a in ...s", "z"], ["a in 0.05s", "b", "z"])
    assert shown_matches(["17 of 17"], ["17 of 17"])
    assert not shown_matches(["17 of 17"], ["12 of 12"])
