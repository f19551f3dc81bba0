"""The fuzzing figures quoted in docs/robustness.md are the script's (issue 16, item 5)."""

from __future__ import annotations

from typing import Any

import pytest
from _benchmarks import ROOT, load_benchmark

bench = load_benchmark("fuzz_kernels")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """``benchmarks/fuzz_kernels.py``'s run with its own seed and size."""
    result: dict[str, Any] = bench.run()
    return result


class TestFuzzReport:
    def test_no_obscure_crash_hang_or_silent_pass(self, report: dict[str, Any]) -> None:
        """Every fuzzed input gets a clear error or a valid answer."""
        assert [] == [
            (name, bad.dtype, bad.shape, bad.values, what) for name, bad, what in report["failures"]
        ]
        counts = report["counts"]
        assert 0 == counts["obscure crash"] == counts["hang"] == counts["silent pass"]

    def test_every_target_and_input_tried(self, report: dict[str, Any]) -> None:
        """All targets are fuzzed with PER_TARGET inputs each."""
        assert len(bench.TARGETS) * bench.PER_TARGET == sum(report["counts"].values())

    def test_table_quoted_in_the_docs(self, report: dict[str, Any]) -> None:
        """docs/robustness.md shows the script's table verbatim, with its command."""
        doc = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
        assert bench.table(report) in doc
        assert "python benchmarks/fuzz_kernels.py" in doc
