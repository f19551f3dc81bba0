from __future__ import annotations

import subprocess
import sys

import pytest

import mlchecks

HEAVY = (
    "scipy",
    "pandas",
    "pytest",
    "matplotlib",
    "torch",
    "sklearn",
    "distributed",
    "tqdm",
    "xgboost",
    "lightgbm",
    "lightning",
    "keras",
    "numba",
)


class TestPublicApi:
    def test_all_is_sorted_and_importable(self) -> None:
        """__all__ is sorted and every name in it resolves."""
        names = [n for n in mlchecks.__all__ if n != "__version__"]
        assert sorted(names) == names
        for name in mlchecks.__all__:
            assert getattr(mlchecks, name) is not None

    def test_dir_lists_public_names_and_submodules(self) -> None:
        """dir(mlchecks) shows the public API and the lazy submodules."""
        listing = dir(mlchecks)
        assert "Suite" in listing
        assert "stats" in listing

    def test_unknown_attribute(self) -> None:
        """A typo raises AttributeError naming it."""
        with pytest.raises(AttributeError, match="has no attribute 'Suit'"):
            mlchecks.Suit  # noqa: B018

    def test_version(self) -> None:
        """__version__ comes from the installed metadata."""
        assert mlchecks.__version__[0].isdigit()


def test_import_is_light() -> None:
    """`import mlchecks` loads none of the heavy optional modules."""
    code = f"import sys, mlchecks; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "" == out


def test_import_defers_slow_standard_modules() -> None:
    """`import mlchecks` defers what it needs only later: importlib.metadata (``__version__``,
    about 50 ms), the process pool (10 ms), tempfile and hashlib (15 ms)."""
    slow = ("importlib.metadata", "concurrent.futures.process", "tempfile", "hashlib")
    code = f"import sys, numpy, mlchecks; print(','.join(m for m in {slow!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "" == out


@pytest.mark.parametrize("module", ["mlchecks", "mlchecks.checks", "mlchecks.stats"])
def test_all_lists_exactly_the_lazy_and_eager_names(module: str) -> None:
    """The literal __all__ (needed by type checkers) matches what the module can load."""
    import importlib

    mod = importlib.import_module(module)
    lazy = set(getattr(mod, "_LAZY", {}))
    assert lazy <= set(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None
