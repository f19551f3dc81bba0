"""Constructors of the public classes hold under hostile field values (issue 16, item 6).

Hypothesis feeds every init field of every class in ``benchmarks/fuzz_constructors.py``
(the checks, `GoldenSet`, `Stage`, `Pipeline`, `TrainingRun`, the conditions, `Suite`,
`MLTestScore`) wrong types, NaN, infinities, negative and huge numbers, empty and odd strings,
None and containers. The property: the instance is built and what the field holds fits its
kind, or the constructor raises `InvalidInput` (or `TypeError`) naming the field; never
another exception, never a hang. Construction only: nothing is run. The seeded script's table
is the one docs/robustness.md quotes.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import pytest
from _benchmarks import ROOT, load_benchmark
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlchecks import AtLeast, AtMost, Between
from mlchecks._fields import KIND, SECONDS_MAX, TEXT

bench = load_benchmark("fuzz_constructors")
BASES = {name: build() for name, build in bench._bases().items()}

#: Everything a user might pass by mistake.
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.complex_numbers(),
    st.fractions(),
    st.decimals(),
    st.text(),
    st.text(alphabet=st.characters(codec=None), max_size=8),
    st.binary(max_size=8),
    st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3)), max_size=5),
    st.tuples(st.floats(), st.floats()),
    st.dictionaries(st.text(max_size=6), st.one_of(st.floats(), st.text(max_size=3)), max_size=3),
    st.builds(np.float64, st.floats()),
    st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    hnp.arrays(
        st.sampled_from([np.dtype(t) for t in ("f8", "i8", "?", "c16", "U3")]),
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
    ),
    st.sampled_from(bench.hostile_values()),
)


def _fits(field: attrs.Attribute[Any], held: Any) -> bool:
    """What an accepted field holds fits its glossary kind."""
    meta, kind = field.metadata, field.metadata.get(KIND)
    if kind == "count":
        ok_int = isinstance(held, int) and not isinstance(held, bool)
        return held is None or (ok_int and meta["minimum"] <= held <= meta["maximum"])
    if kind == "limit":
        return held is None or (isinstance(held, AtMost | AtLeast) and math.isfinite(held.value))
    if kind == "band":
        return isinstance(held, Between)
    if kind in ("tolerance", "alpha"):
        numbers = held.values() if isinstance(held, Mapping) else [held]  # metric_atol: per metric
        return all(isinstance(x, float) and math.isfinite(x) and x >= 0 for x in numbers)
    if kind == "seconds":
        return held is None or (isinstance(held, float) and 0 < held <= SECONDS_MAX)
    if kind == "flag":
        return isinstance(held, bool)
    if kind == "name":
        return TEXT.accepts(held)
    if kind == "rubric":
        return held is None or (type(held) is int and 1 <= held <= 7)
    if kind == "choice":
        return held in meta["options"]
    return True


def _field(base: Any, alias: str) -> attrs.Attribute[Any]:
    return next(f for f in attrs.fields(type(base)) if f.alias == alias)


class TestConstructorFuzz:
    @pytest.mark.parametrize("cls_name", list(BASES))
    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def test_builds_or_names_the_field(self, cls_name: str, data: st.DataObject) -> None:
        """Any value: built with a field that fits its kind, or an error naming the field."""
        base = BASES[cls_name]
        alias = data.draw(st.sampled_from(bench.init_fields(base)), label="field")
        value = data.draw(HOSTILE, label="value")
        outcome, what = bench.attempt(base, alias, value)
        assert "obscure" != outcome, what
        if outcome == "accepted":
            field = _field(base, alias)
            held = getattr(what, field.name)
            assert _fits(field, held), (alias, value, held)

    def test_the_table_has_no_obscure_error(self) -> None:
        """The seeded script finds no obscure error, and every accepted value fits its kind."""
        for cls_name, alias, value, outcome, what in bench.attempts():
            assert "obscure" != outcome, (cls_name, alias, value, what)
            if outcome == "accepted":
                field = _field(BASES[cls_name], alias)
                assert _fits(field, getattr(what, field.name)), (cls_name, alias, value)

    def test_docs_quote_the_script(self) -> None:
        """docs/robustness.md quotes the table `python benchmarks/fuzz_constructors.py` prints."""
        out = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "fuzz_constructors.py")],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            cwd=ROOT,
        ).stdout.strip()
        docs = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
        assert "python benchmarks/fuzz_constructors.py" in docs
        assert out in docs
        assert "| **total** |" in out
        assert out.splitlines()[-1].endswith("| 0 |")


class TestNamedDefects:
    """The constructor defects of issue 16, each one a test."""

    @pytest.mark.parametrize("bad", [3, "", "  ", "a\nb", "\x1b[32mok", "\ud800", None])
    @pytest.mark.parametrize("cls_name", ["QualityCheck", "CanaryJudge", "TrainingRun", "Suite"])
    def test_a_name_is_printable_text(self, cls_name: str, bad: Any) -> None:
        """name=3, '' or a name with control characters is refused, naming 'name'."""
        outcome, what = bench.attempt(BASES[cls_name], "name", bad)
        assert "clear" == outcome
        assert "'name' must be a non-empty string of printable characters" in str(what)

    def test_a_wrong_type_is_invalid_input_naming_field_and_value(self) -> None:
        """n_repeats='3' is an InvalidInput saying the field, the expectation and the value."""
        outcome, what = bench.attempt(BASES["RollbackCheck"], "n_repeats", "3")
        assert ("clear", "InvalidInput") == (outcome, type(what).__name__)
        assert "'n_repeats' must be an integer (got '3' that is a str)" == str(what)

    @pytest.mark.parametrize("cls_name", ["ReproducibilityCheck", "SingleBatchCheck", "Stage"])
    def test_flags_take_only_booleans(self, cls_name: str) -> None:
        """A switch given 1 or 'yes' is refused as InvalidInput, not attrs' TypeError."""
        base = BASES[cls_name]
        alias = next(
            a for a in bench.init_fields(base) if _field(base, a).metadata.get(KIND) == "flag"
        )
        for bad in (1, "yes", np.bool_(True)):
            outcome, what = bench.attempt(base, alias, bad)
            assert ("clear", "InvalidInput") == (outcome, type(what).__name__)

    @pytest.mark.parametrize("bad", [0, 8, 9, True, 3.0, "1"])
    def test_rubric_out_of_range_is_refused_for_built_ins(self, bad: Any) -> None:
        """rubric=9 (or any non 1..7 int) is refused at construction."""
        for cls_name in ("QualityCheck", "CanaryCheck", "SingleBatchCheck", "LossDecreasesCheck"):
            outcome, what = bench.attempt(BASES[cls_name], "rubric", bad)
            assert "clear" == outcome, (cls_name, what)
            assert "'rubric' must be an int in 1..7 or None" in str(what)

    @pytest.mark.parametrize("huge", [200, 10**6, 10**18, 2**64])
    def test_n_blocks_is_bounded(self, huge: int) -> None:
        """n_blocks beyond 100 is refused at once (it used to overflow or never return)."""
        outcome, what = bench.attempt(BASES["LossDecreasesCheck"], "n_blocks", huge)
        assert "clear" == outcome
        assert f"'n_blocks' must be <= 100 (got {huge})" == str(what)

    @pytest.mark.parametrize(
        ("cls_name", "field"),
        [
            ("QualityCheck", "n_resamples"),
            ("CanaryCheck", "n_probes"),
            ("RollbackCheck", "n_repeats"),
        ],
    )
    def test_counts_have_an_upper_bound(self, cls_name: str, field: str) -> None:
        """A count of 10**12 is refused, naming the field and its range."""
        outcome, what = bench.attempt(BASES[cls_name], field, 10**12)
        assert "clear" == outcome
        assert str(what).startswith(f"'{field}' must be <= ")

    @pytest.mark.parametrize("field", ["max_psi", "max_probe_errors", "max_latency_ratio"])
    def test_an_infinite_limit_names_its_field(self, field: str) -> None:
        """max_*=inf is an InvalidInput naming the field (it used to name 'value' or overflow)."""
        outcome, what = bench.attempt(BASES["CanaryCheck"], field, math.inf)
        assert ("clear", "InvalidInput") == (outcome, type(what).__name__)
        assert str(what).startswith(f"'{field}' must be a finite number")

    def test_a_duration_is_at_most_a_year(self) -> None:
        """budget_s=1e300 is refused (the standard library's waits overflow on it)."""
        outcome, what = bench.attempt(BASES["CanaryCheck"], "budget_s", 1e300)
        assert "clear" == outcome
        assert "'budget_s' must be in (0, 3.1536e+07]" in str(what)

    @pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), np.array([]), ["holm"]])
    def test_an_array_for_a_choice_is_refused(self, bad: Any) -> None:
        """correction=<array> is an InvalidInput, not numpy's 'truth value is ambiguous'."""
        outcome, what = bench.attempt(BASES["QualityCheck"], "correction", bad)
        assert ("clear", "InvalidInput") == (outcome, type(what).__name__)
        assert "'correction' must be one of 'holm', 'bh'" in str(what)
