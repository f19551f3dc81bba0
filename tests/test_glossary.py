"""Every built-in check speaks the glossary of docs/concepts.md.

The first class walks the attrs fields of every public check class; the second walks every
result the demo produces (healthy and with each check's own fault planted) and checks the
metric keys and finding names against the key scheme.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

import mlchecks
from mlchecks import AtLeast, AtMost, Between, NoWorseThan, Status
from mlchecks._fields import COUNT_MAX, SEED_MAX
from mlchecks.checks.pipeline import Stage
from mlchecks.checks.quality import GoldenSet
from mlchecks.demo import FAULTS
from mlchecks.demo.data import REGIONS, SLICE_COLUMN
from mlchecks.demo.suite import build_suite
from mlchecks.exceptions import InvalidInput

#: The system-under-test fields of each check, in order; every other field is keyword-only.
POSITIONAL: dict[str, tuple[str, ...]] = {
    "ReproducibilityCheck": ("runs",),
    "LossDecreasesCheck": (),
    "CheckpointRestoreCheck": (),
    "PipelineCheck": ("pipeline",),
    "QualityCheck": (),
    "SingleBatchCheck": (),
    "CanaryCheck": ("server", "candidate"),
    "RollbackCheck": ("deployment", "endpoint", "candidate"),
    "CanaryJudge": ("baseline", "candidate"),
    "RollbackRecordCheck": ("records",),
}
CHECK_CLASSES = [getattr(mlchecks, name) for name in POSITIONAL]
#: Settings objects that checks take: the same glossary applies to their fields.
SETTINGS = {
    GoldenSet: (("inputs", "expected"), GoldenSet([[0.0]], [1])),
    Stage: (("name", "fn"), Stage("source", list)),
}

#: Names the glossary gives one other spelling (see docs/concepts.md, "Glossary").
BANNED = {
    "atol",
    "rtol",
    "confidence",
    "train",
    "trainer_factory",
    "repeats",
    "top_k",
    "examples",
    "fraction",
    "thresholds",
    "max_requests",
    "max_duration_s",
    "suspicious_improvement",
    "min_slice_size",
    "timeout_s",
}
#: Limits that map a metric name to a number or a condition.
METRIC_LIMITS = {"metric_limits", "max_regression", "max_improvement"}
KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def _fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [f for f in attrs.fields(cls) if f.init]


def _kind(field: attrs.Attribute[Any]) -> str | None:
    return field.metadata.get("mlchecks")


@functools.cache
def _demo_checks() -> dict[str, Any]:
    """One instance of every check class, built by the demo."""
    return {type(check).__name__: check for check in build_suite().checks}


def _field_ids() -> list[tuple[str, str]]:
    classes = [*CHECK_CLASSES, *SETTINGS]
    return [(cls.__name__, f.name) for cls in classes for f in _fields(cls)]


def _class(name: str) -> type:
    by_name = {cls.__name__: cls for cls in [*CHECK_CLASSES, *SETTINGS]}
    return by_name[name]


#: Checks the demo does not build (they judge a platform's record), and an instance of each.
RECORD_CHECKS = {
    "CanaryJudge": lambda: mlchecks.CanaryJudge("v1", "v2"),
    "RollbackRecordCheck": lambda: mlchecks.RollbackRecordCheck(
        [], known_good="v1", rolled_back_at=0.0
    ),
}


def _instance(name: str) -> Any:
    settings = {cls.__name__: example for cls, (_, example) in SETTINGS.items()}
    if name in RECORD_CHECKS:
        return RECORD_CHECKS[name]()
    return settings[name] if name in settings else _demo_checks()[name]


class TestFields:
    @pytest.mark.parametrize("cls", CHECK_CLASSES, ids=lambda c: c.__name__)
    def test_keyword_only_after_the_system_under_test(self, cls: type) -> None:
        """Only the system-under-test fields are positional, in the declared order."""
        positional = tuple(f.name for f in _fields(cls) if not f.kw_only)
        assert POSITIONAL[cls.__name__] == positional

    @pytest.mark.parametrize("cls", list(SETTINGS), ids=lambda c: c.__name__)
    def test_settings_objects_are_keyword_only_too(self, cls: type) -> None:
        """GoldenSet and Stage: their defining fields are positional, the rest keyword-only."""
        positional = tuple(f.name for f in _fields(cls) if not f.kw_only)
        assert SETTINGS[cls][0] == positional

    @pytest.mark.parametrize(("cls_name", "field"), _field_ids())
    def test_no_banned_synonyms(self, cls_name: str, field: str) -> None:
        """No field uses a spelling the glossary replaced."""
        assert field not in BANNED
        assert not field.endswith("_tolerance")

    @pytest.mark.parametrize(("cls_name", "field"), _field_ids())
    def test_field_kind_matches_its_name(self, cls_name: str, field: str) -> None:
        """Name patterns and field kinds agree: limits, bands, tolerances, alpha, counts."""
        attribute = getattr(attrs.fields(_class(cls_name)), field)
        kind = _kind(attribute)
        if field in METRIC_LIMITS:
            return
        if field.startswith(("max_", "min_")):
            assert "limit" == kind
        elif field.endswith("_range"):
            assert "band" == kind
        elif field.endswith(("_atol", "_rtol")):
            assert "tolerance" == kind
        elif field == "alpha":
            assert "alpha" == kind
        elif field.startswith("n_"):
            assert "count" == kind
        elif field.endswith("_s"):
            assert "seconds" == kind
        if kind == "limit":
            assert field.startswith(("max_", "min_"))

    @pytest.mark.parametrize(("cls_name", "field"), _field_ids())
    def test_limits_accept_a_number_and_a_condition(self, cls_name: str, field: str) -> None:
        """Every max_/min_ field takes a float and a condition, and keeps the user's severity."""
        if not field.startswith(("max_", "min_")):
            return
        check = _instance(cls_name)
        if field in METRIC_LIMITS:
            condition: Any = NoWorseThan(abs=0.01, severity="warn")
            if field == "max_improvement":
                condition = AtMost(0.1, severity="warn")
            number = attrs.evolve(check, **{field: {"accuracy": 0.01}})
            warn = attrs.evolve(check, **{field: {"accuracy": condition}})
            assert isinstance(getattr(number, field), Mapping)
            assert Status.WARN == getattr(warn, field)["accuracy"].severity
            return
        cls = AtMost if field.startswith("max_") else AtLeast
        meta = getattr(attrs.fields(type(check)), field).metadata
        value = 1.0 if meta.get("high") is None else float(meta["high"])
        value = max(value, float(meta.get("low") or 0.0))
        from_number = attrs.evolve(check, **{field: value})
        assert cls(value) == getattr(from_number, field)
        from_condition = attrs.evolve(check, **{field: cls(value, severity="warn")})
        assert Status.WARN == getattr(from_condition, field).severity
        with pytest.raises(ValueError, match=f"'{field}'"):
            attrs.evolve(check, **{field: "often"})

    @pytest.mark.parametrize("cls", CHECK_CLASSES, ids=lambda c: c.__name__)
    def test_name_and_rubric_are_validated(self, cls: type) -> None:
        """A check's name is printable text and its rubric a test 1..7; others are refused."""
        fields = attrs.fields_dict(cls)
        assert ("name", "rubric") == (_kind(fields["name"]), _kind(fields["rubric"]))
        assert fields["rubric"].default in range(1, 8)
        check = _instance(cls.__name__)
        for bad_name in (3, "", "  ", "a\nb", "\x1b[32mok", None):
            with pytest.raises(InvalidInput, match="'name' must be a non-empty string"):
                attrs.evolve(check, name=bad_name)
        for bad_rubric in (0, 8, 9, True, 3.0, "1"):
            with pytest.raises(InvalidInput, match="'rubric' must be an int in 1..7 or None"):
                attrs.evolve(check, rubric=bad_rubric)

    @pytest.mark.parametrize(("cls_name", "field"), _field_ids())
    def test_counts_have_an_upper_bound(self, cls_name: str, field: str) -> None:
        """Every count has an upper bound; one past it is an InvalidInput naming the field."""
        attribute = getattr(attrs.fields(_class(cls_name)), field)
        if _kind(attribute) != "count":
            return
        maximum = attribute.metadata["maximum"]
        assert maximum <= (SEED_MAX if field == "seed" else COUNT_MAX)
        with pytest.raises(InvalidInput, match=f"'{field}' must be <= "):
            attrs.evolve(_instance(cls_name), **{field: maximum + 1})

    @pytest.mark.parametrize(("cls_name", "field"), _field_ids())
    def test_no_bare_attrs_validators(self, cls_name: str, field: str) -> None:
        """No field uses attrs' own validators, whose failures are bare TypeErrors."""
        validator = getattr(attrs.fields(_class(cls_name)), field).validator
        assert not type(validator).__module__.startswith("attr"), validator

    @pytest.mark.parametrize("cls", CHECK_CLASSES, ids=lambda c: c.__name__)
    def test_one_alpha_range(self, cls: type) -> None:
        """alpha, where a check has one, is a level in (0, 0.5) with one message."""
        if "alpha" not in attrs.fields_dict(cls):
            return
        check = _instance(cls.__name__)
        assert 0.25 == attrs.evolve(check, alpha=0.25).alpha
        for bad in (0.0, 0.5, 0.95):
            with pytest.raises(ValueError, match=r"'alpha' must be in \(0, 0.5\)"):
                attrs.evolve(check, alpha=bad)

    @pytest.mark.parametrize("cls", CHECK_CLASSES, ids=lambda c: c.__name__)
    def test_seeds_default_to_the_context(self, cls: type) -> None:
        """A seed field defaults to None, which means Context.seed."""
        for name in ("seed", "seeds"):
            if name in attrs.fields_dict(cls):
                assert attrs.fields_dict(cls)[name].default is None

    @pytest.mark.parametrize("cls", CHECK_CLASSES, ids=lambda c: c.__name__)
    def test_old_keywords_name_their_new_name(self, cls: type) -> None:
        """Passing a 0.1 keyword raises TypeError naming the keyword that replaced it."""
        renames: Mapping[str, str] = getattr(cls, "__mlchecks_renamed__", {})
        fields = attrs.fields_dict(cls)
        for old, new in renames.items():
            assert old not in fields
            with pytest.raises(TypeError, match=f"'{old}', which was renamed to"):
                cls(**{old: 1})
            new_name = new if new.isidentifier() else new.split("'")[1]
            assert new_name in fields, (old, new)


def _user_strings() -> set[str]:
    """Strings the demo's user code chooses: slice names and values, stage names, runs."""
    stages = {"source", "split", "fit", "features"}
    return {SLICE_COLUMN, *REGIONS, *stages, "seed_0", "pipeline"}


def _results() -> list[mlchecks.Result]:
    results = list(build_suite().run(progress=False).results)
    for name, fault in FAULTS.items():
        suite = build_suite(fault=name)
        own = [c for c in suite.checks if c.name == fault.check]
        results.extend(mlchecks.Suite(own).run(progress=False).results)
    return results


@pytest.fixture(scope="module")
def demo_results() -> list[mlchecks.Result]:
    return _results()


class TestKeys:
    def test_metric_keys_follow_the_scheme(self, demo_results: list[mlchecks.Result]) -> None:
        """Every metric key is dot-separated snake_case with no user string in it."""
        user = _user_strings()
        for result in demo_results:
            for key in result.metrics:
                assert KEY.match(key), (result.check, key)
                assert not user & set(key.split(".")), (result.check, key)

    def test_finding_names_follow_the_scheme(self, demo_results: list[mlchecks.Result]) -> None:
        """Every finding name is dot-separated snake_case with no user string in it."""
        user = _user_strings()
        for result in demo_results:
            for finding in result.findings:
                assert KEY.match(finding.name), (result.check, finding.name)
                assert not user & set(finding.name.split(".")), (result.check, finding.name)

    def test_the_faults_still_fail_their_checks(self, demo_results: list[mlchecks.Result]) -> None:
        """The walk covered the failing paths: each planted fault failed its own check."""
        failing = [r for r in demo_results if r.status is Status.FAIL]
        assert len(FAULTS) <= len(failing)


def test_between_is_the_band_type() -> None:
    """A (low, high) band is stored as Between."""
    check = _demo_checks()["SingleBatchCheck"]
    bands = [f.name for f in _fields(type(check)) if _kind(f) == "band"]
    for name in bands:
        assert isinstance(getattr(check, name), Between)
