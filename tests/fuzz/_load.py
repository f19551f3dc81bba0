"""Load ``benchmarks/fuzz_kernels.py`` as a module (``benchmarks`` is not a package).

The fuzz tests run the same targets, inputs and judge as the script whose table
docs/robustness.md quotes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def fuzz_kernels() -> ModuleType:
    """``benchmarks/fuzz_kernels.py`` as module ``fuzz_kernels`` (registered once)."""
    name = "fuzz_kernels"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module
