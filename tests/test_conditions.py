from __future__ import annotations

import json
import math

import hypothesis.strategies as st
import pytest
from hypothesis import assume, given

from mlchecks import AtLeast, AtMost, Between, NoWorseThan, Status
from mlchecks.conditions import condition_from_dict, relative_change

finite = st.floats(-1e9, 1e9, allow_nan=False)
limits = st.floats(0, 1e6, allow_nan=False)


class TestAtLeastAtMostBetween:
    def test_boundaries_are_inclusive(self) -> None:
        """A value equal to the limit holds."""
        assert AtLeast(0.9).holds(0.9)
        assert AtMost(0.01).holds(0.01)
        assert Between(0, 1).holds(0.0)
        assert Between(0, 1).holds(1.0)

    def test_nan_never_holds(self) -> None:
        """A NaN observation fails every condition."""
        assert not AtLeast(0).holds(math.nan)
        assert not AtMost(0).holds(math.nan)
        assert not Between(-1, 1).holds(math.nan)

    def test_judge_uses_the_severity(self) -> None:
        """A failing judgement has the condition's severity and names value and limit."""
        finding = AtMost(0.01, severity=Status.WARN).judge("churn", 0.157)
        assert Status.WARN == finding.status
        assert "<= 0.01" == finding.limit
        assert "churn 0.157 exceeds the maximum 0.01" == finding.message

    def test_passing_judgement(self) -> None:
        """A holding condition gives a PASS finding with the observed value."""
        finding = AtLeast(0.9).judge("accuracy", 0.95)
        assert (Status.PASS, 0.95) == (finding.status, finding.observed)

    def test_severity_must_be_fail_or_warn(self) -> None:
        """Only FAIL and WARN are valid severities."""
        with pytest.raises(ValueError, match="'severity' must be Status.FAIL or Status.WARN"):
            AtLeast(1, severity=Status.PASS)

    def test_between_rejects_inverted_range(self) -> None:
        """low > high is an error naming both."""
        with pytest.raises(ValueError, match=r"got low=2.0, high=1.0"):
            Between(2, 1)

    def test_limit_must_be_finite(self) -> None:
        """An infinite limit is rejected naming the field."""
        with pytest.raises(ValueError, match="'value' must be a finite number"):
            AtMost(math.inf)

    @pytest.mark.parametrize(
        "condition",
        [AtLeast(0.5), AtMost(2, severity="warn"), Between(-1, 1), NoWorseThan(abs=0.1, rel=0.2)],
    )
    def test_dict_round_trip(self, condition: object) -> None:
        """Every condition survives to_dict -> JSON -> condition_from_dict."""
        data = json.loads(json.dumps(condition.to_dict()))  # type: ignore[attr-defined]
        assert condition == condition_from_dict(data)

    def test_from_dict_rejects_unknown_type(self) -> None:
        """An unknown condition type names the allowed ones."""
        with pytest.raises(ValueError, match="'type' must be one of"):
            condition_from_dict({"type": "Nope"})


class TestRelativeChange:
    def test_zero_baseline(self) -> None:
        """From zero, no change is 0 and any change is infinite with its sign."""
        assert 0.0 == relative_change(0.0, 0.0)
        assert math.inf == relative_change(1e-12, 0.0)
        assert -math.inf == relative_change(-3.0, 0.0)

    def test_negative_baseline_uses_absolute_value(self) -> None:
        """The sign of the change follows candidate - baseline, not the baseline's sign."""
        assert relative_change(-0.5, -1.0) == pytest.approx(0.5)
        assert relative_change(-2.0, -1.0) == pytest.approx(-1.0)

    @given(finite, finite)
    def test_sign_matches_difference(self, candidate: float, baseline: float) -> None:
        """The relative change has the sign of candidate - baseline."""
        change = relative_change(candidate, baseline)
        diff = candidate - baseline
        assert (change > 0) == (diff > 0)
        assert (change < 0) == (diff < 0)


class TestNoWorseThan:
    def test_needs_a_limit(self) -> None:
        """Neither abs nor rel is an error."""
        with pytest.raises(ValueError, match="needs 'abs', 'rel' or both"):
            NoWorseThan()

    def test_negative_limit_rejected(self) -> None:
        """Limits are magnitudes."""
        with pytest.raises(ValueError, match="finite number >= 0"):
            NoWorseThan(abs=-0.1)

    def test_higher_is_better(self) -> None:
        """For accuracy a drop beyond abs fails, a rise always holds."""
        condition = NoWorseThan(abs=0.005)
        assert condition.holds(0.911, 0.915)
        assert not condition.holds(0.909, 0.915)
        assert condition.holds(0.99, 0.915)

    def test_lower_is_better(self) -> None:
        """For a loss a rise beyond rel fails, a fall always holds."""
        condition = NoWorseThan(rel=0.1, higher_is_better=False)
        assert condition.holds(1.09, 1.0)
        assert not condition.holds(1.11, 1.0)
        assert condition.holds(0.5, 1.0)

    def test_zero_baseline_only_abs_can_allow_a_worsening(self) -> None:
        """From a zero baseline a relative limit forbids any worsening."""
        assert not NoWorseThan(rel=0.5, higher_is_better=False).holds(0.001, 0.0)
        assert NoWorseThan(abs=0.01, higher_is_better=False).holds(0.001, 0.0)
        assert NoWorseThan(rel=0.5).holds(0.0, 0.0)

    def test_both_limits_must_hold(self) -> None:
        """With abs and rel, the stricter one decides."""
        condition = NoWorseThan(abs=0.5, rel=0.01)
        assert not condition.holds(9.8, 10.0)  # abs 0.2 ok, rel 2% too much
        assert condition.holds(9.95, 10.0)

    def test_judge_reports_the_signed_change(self) -> None:
        """The finding's observed value is candidate - baseline."""
        finding = NoWorseThan(abs=0.005).judge("accuracy", 0.90, 0.915)
        assert Status.FAIL == finding.status
        assert finding.observed == pytest.approx(-0.015)
        assert "drop <= 0.005" == finding.limit
        assert "from 0.915 to 0.9" in finding.message

    def test_nan_never_holds(self) -> None:
        """A NaN candidate or baseline fails."""
        assert not NoWorseThan(abs=1).holds(math.nan, 0.0)
        assert not NoWorseThan(abs=1).holds(0.0, math.nan)

    @given(finite, finite, limits, st.booleans())
    def test_abs_matches_definition(
        self, candidate: float, baseline: float, limit: float, higher: bool
    ) -> None:
        """holds() equals the definition of an absolute non-inferiority margin."""
        worse = (baseline - candidate) if higher else (candidate - baseline)
        assume(abs(worse - limit) > 1e-6 * max(1.0, abs(limit)))
        expected = worse <= limit
        assert expected == NoWorseThan(abs=limit, higher_is_better=higher).holds(
            candidate, baseline
        )

    @given(finite, finite, limits, st.booleans())
    def test_rel_matches_definition(
        self, candidate: float, baseline: float, limit: float, higher: bool
    ) -> None:
        """holds() equals the definition of a relative margin, zero baseline included."""
        change = relative_change(candidate, baseline)
        worse = -change if higher else change
        assume(math.isinf(worse) or abs(worse - limit) > 1e-9 * max(1.0, abs(limit)))
        expected = worse <= limit
        assert expected == NoWorseThan(rel=limit, higher_is_better=higher).holds(
            candidate, baseline
        )

    @given(finite, limits, limits, st.booleans())
    def test_no_change_always_holds(
        self, value: float, abs_limit: float, rel_limit: float, higher: bool
    ) -> None:
        """A candidate equal to its baseline is never worse."""
        condition = NoWorseThan(abs=abs_limit, rel=rel_limit, higher_is_better=higher)
        assert condition.holds(value, value)
