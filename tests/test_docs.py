"""Every Python code block in README.md and docs/ runs as written.

Blocks in one file share a namespace, in order, so a page can build up an example. A block
preceded by an HTML comment ``<!-- no-test -->`` is shown but not run (for snippets that need
a live external system). A block preceded by ``<!-- server -->`` needs a running model server:
the server's own tests run it against the server they start (`tests/serving/_pages.py`), and
`test_server_pages_are_run` checks that a test does. A block followed directly by a
```` ```text ```` block must print exactly that text, and a ``print(...)`` with a comment
after it must print what the comment says (`_doc_outputs`).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
from _doc_outputs import run_checked

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
# Pages that need these skip without them (CI has them all).
OPTIONAL = (
    "torch",
    "mlflow",
    "xgboost",
    "lightgbm",
    "lightning",
    "keras",
    "sklearn",
    "dask",
    "distributed",
    "matplotlib",
)
#: The extra that installs a package, where its name differs.
EXTRA = {"matplotlib": "plot", "distributed": "dask"}
#: A page whose code needs a package it does not import says so: ``<!-- needs matplotlib -->``.
NEEDS = re.compile(r"<!-- needs (\w+) -->")
BLOCK = re.compile(
    r"(<!-- (?:no-test|server) -->\s*)?```python\n(.*?)```(?:\s*```text\n(.*?)```)?", re.S
)


def blocks(page: Path) -> list[str]:
    return [code for skip, code, _ in BLOCK.findall(page.read_text()) if not skip]


def outputs(page: Path) -> list[str | None]:
    """What each block of `blocks` prints, when the page shows it (a ```text block right
    after the code), else None."""
    return [shown or None for skip, _, shown in BLOCK.findall(page.read_text()) if not skip]


@pytest.mark.parametrize(
    "page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_code_blocks_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page's Python blocks execute without error, in a scratch directory."""
    text = page.read_text()
    needs = {m for m in OPTIONAL if re.search(rf"^\s*(import|from) {m}\b", text, re.M)}
    needs |= set(NEEDS.findall(text))
    missing = sorted(m for m in needs if importlib.util.find_spec(m) is None)
    if missing:
        pytest.skip(
            f"{page.name} needs {', '.join(missing)} "
            f"(pip install 'mlchecks-infra[{EXTRA.get(missing[0], missing[0])}]')"
        )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, (code, shown) in enumerate(zip(blocks(page), outputs(page), strict=True), start=1):
        capsys.readouterr()
        run_checked(code, f"{page.relative_to(ROOT)}[block {number}]", namespace)
        if shown is not None:  # the page shows what the block prints: exactly that
            assert shown == capsys.readouterr().out, f"block {number}"
    assert os.getcwd() == str(tmp_path)


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link in the page points at a file or folder that exists."""
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert [] == missing


def test_server_pages_are_run() -> None:
    """Every page with ``<!-- server -->`` blocks is run by a test under tests/serving."""
    tests = "\n".join(p.read_text() for p in (ROOT / "tests" / "serving").glob("test_*.py"))
    pages = [p for p in PAGES if "<!-- server -->" in p.read_text()]
    assert [] == [str(p.relative_to(ROOT)) for p in pages if p.name not in tests]


@pytest.mark.parametrize(
    "page", sorted((ROOT / "docs" / "checks").glob("*.md")), ids=lambda p: p.name
)
def test_check_pages_end_with_the_way_to_your_own_system(page: Path) -> None:
    """Every check page ends with links to plugging in a trainer, a server, and the servers."""
    last = page.read_text().rstrip().splitlines()[-1]
    wanted = ["plug_in_your_trainer.md", "plug_in_your_server.md"]
    wanted += [f"servers/{p.name}" for p in sorted((ROOT / "docs" / "servers").glob("*.md"))]
    assert [w for w in wanted if w not in last] == []


INSTALL = re.compile(r"pip install ([^`\n#]*)")
#: The distribution's name on PyPI (`mlchecks` there is an unrelated project).
DISTRIBUTION = "mlchecks-infra"


def _extras() -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


@pytest.mark.parametrize(
    "page",
    [*PAGES, *sorted((ROOT / "mlchecks").rglob("*.py")), *sorted((ROOT / "examples").glob("*"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_install_lines_install_this_project(page: Path) -> None:
    """Every ``pip install`` line names this project as ``mlchecks-infra`` (or a checkout,
    ``.``), with extras that exist; the bare name ``mlchecks`` installs someone else's."""
    if page.is_dir():
        return
    known = _extras()
    wrong = []
    for line in INSTALL.findall(page.read_text(errors="replace")):
        for word in line.replace("'", '"').split():
            word = word.strip('"')
            name, _, extras = word.partition("[")
            if name in ("mlchecks", "mlchecks[") or word.startswith("mlchecks["):
                wrong.append(word)
            elif name in (DISTRIBUTION, ".", "-e."):
                unknown = set(extras.rstrip("]").split(",")) - known - {""}
                if unknown:
                    wrong.append(word)
    assert wrong == []
