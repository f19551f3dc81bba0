"""The mlchecks pytest plugin, as pytest loads it: free in sessions that do not use mlchecks.

Registered through the ``pytest11`` entry point, so pytest loads it in every session of an
environment where mlchecks is installed. It therefore imports nothing of mlchecks (and no
numpy) and prints nothing until a test uses mlchecks:

- the ``mlchecks_context`` fixture imports `mlchecks.check` when a test asks for it;
- a failed assertion is explained by `mlchecks.pytest_plugin` only when mlchecks objects
  can exist (``mlchecks.result`` is imported) and one of the compared values is one;
- the seed is reported once, at the end of the run, when a test used the fixture or
  ``--mlchecks-seed`` was given.

Turn it off with ``pytest -p no:mlchecks``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from mlchecks.check import Context

__all__ = [
    "mlchecks_context",
    "pytest_addoption",
    "pytest_assertrepr_compare",
    "pytest_terminal_summary",
]

#: How many tests of the session used the ``mlchecks_context`` fixture.
_USED = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--mlchecks-seed``, the seed of the ``mlchecks_context`` fixture."""
    group = parser.getgroup("mlchecks")
    group.addoption(
        "--mlchecks-seed",
        type=int,
        default=None,
        metavar="N",
        help="root seed of the mlchecks_context fixture (default: 0)",
    )


def _seed(config: pytest.Config) -> int:
    seed = config.getoption("mlchecks_seed", default=None)
    return 0 if seed is None else int(seed)


@pytest.fixture
def mlchecks_context(request: pytest.FixtureRequest, tmp_path: Path) -> Context:
    """A `Context` with the ``--mlchecks-seed`` seed and the test's ``tmp_path`` as workdir."""
    from mlchecks.check import Context

    config = request.config
    config.stash[_USED] = config.stash.get(_USED, 0) + 1
    return Context(seed=_seed(config), workdir=tmp_path)


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    """mlchecks' explanation of a failed comparison of its objects, else None at once."""
    if "mlchecks.result" not in sys.modules:  # no mlchecks object can exist yet
        return None
    from mlchecks.pytest_plugin import explain_comparison

    return explain_comparison(op, left, right)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """``mlchecks <version>: --mlchecks-seed=N`` when the run used the seed."""
    used = config.stash.get(_USED, 0)
    if not used and config.getoption("mlchecks_seed", default=None) is None:
        return
    from mlchecks._version import package_version

    tests = f"{used} test{'s' if used != 1 else ''} used mlchecks_context"
    terminalreporter.write_line(
        f"mlchecks {package_version()}: --mlchecks-seed={_seed(config)} ({tests})"
    )
