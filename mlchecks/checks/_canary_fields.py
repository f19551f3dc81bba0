"""The fields stage 1 of a canary is judged by, shared by `CanaryCheck` and `CanaryJudge`.

Both judge a stream of requests with the same tests (`CanaryMonitor`) and the same report
(`report_trickle`): `CanaryCheck` on the trickle it routes itself, `CanaryJudge` on the
record of traffic a platform routed. `TrickleSettings` holds the limits and the reading of
outputs they share, with their checks, so both classes take them under the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from mlchecks._fields import (
    Interval,
    MaxLimit,
    alpha,
    check,
    choice,
    count,
    held,
    held_or_none,
    limit,
    number,
    reject,
    tolerance,
)
from mlchecks._validate import callable_field, optional
from mlchecks.checks._canary_outputs import LabelReader, classes_field
from mlchecks.checks._canary_settings import CanaryPolicy
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput

__all__ = ["SCORE_BINS", "TrickleSettings"]

#: The default bin edges that turn a scalar score into a class.
SCORE_BINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _bins(value: Any) -> tuple[float, ...]:
    wanted = "a non-empty sequence of increasing finite numbers"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInput(reject("score_bins", wanted, value))
    bins = tuple(float(check(v, "score_bins", Interval())) for v in value)
    if any(b >= a for a, b in zip(bins[1:], bins, strict=False)) or not bins:
        raise InvalidInput(reject("score_bins", wanted, value, typed=True))
    return bins


def _value(condition: AtMost | None) -> float | None:
    return None if condition is None else condition.value


@attrs.frozen(kw_only=True)
class TrickleSettings:
    """Stage 1's limits and how outputs are read (see `CanaryCheck` for each field)."""

    #: What the report calls the judged stream ("stage 1" of `CanaryCheck`).
    _stage: ClassVar[str] = "stage 1"

    mode: Literal["split", "shadow"] = choice("split", "split", "shadow")
    alpha: float = alpha(0.05)
    n_candidate_requests: int = count(500, minimum=1)
    max_latency_ratio: MaxLimit = limit("max", 1.2, low=1.0)
    clip_ratio: float = number(10.0, low=0.0, low_open=True)
    max_tail_ratio: MaxLimit | None = limit("max", 2.0, low=1.0, optional=True)
    latency_quantile: float = number(0.95, low=0.5, high=1.0, low_open=True, high_open=True)
    max_psi: MaxLimit | None = limit("max", 0.1, optional=True)
    max_js: MaxLimit | None = limit("max", None, high=1.0, optional=True)
    max_disagreement: MaxLimit | None = limit("max", 0.1, high=1.0, optional=True)
    score_atol: float = tolerance(0.1)
    score_bins: tuple[float, ...] = attrs.field(default=SCORE_BINS, converter=_bins, kw_only=True)
    classify: Callable[[Any], int | None] | None = attrs.field(
        default=None, validator=optional(callable_field), kw_only=True
    )
    classes: tuple[Any, ...] | None = attrs.field(
        default=None, converter=classes_field, kw_only=True
    )

    def _check_limits(self) -> None:
        """The checks across fields: ``clip_ratio`` above ``max_latency_ratio``, a positive
        ``max_disagreement``."""
        if self.clip_ratio <= held(self.max_latency_ratio).value:
            raise InvalidInput(
                f"'clip_ratio' must exceed 'max_latency_ratio' (got {self.clip_ratio:g} and "
                f"{held(self.max_latency_ratio).value:g})"
            )
        disagreement = held_or_none(self.max_disagreement)
        if disagreement is not None and disagreement.value <= 0.0:
            raise InvalidInput(
                f"'max_disagreement' must be > 0 (got {disagreement.value:g}); "
                "retrained models change a few percent of predictions"
            )

    def _accuracy_limit(self) -> AtMost | None:
        """The limit on the candidate's accuracy drop on labelled requests (None: labels
        are not judged; `CanaryJudge` has one)."""
        return None

    def _reader(self) -> LabelReader:
        """Reads classes and disagreement from outputs (one per run: text labels are coded
        in the order first seen when ``classes`` is not given)."""
        return LabelReader(
            classify=self.classify,
            score_bins=self.score_bins,
            score_atol=self.score_atol,
            classes=self.classes,
        )

    def _trickle_policy(self, **settings: Any) -> CanaryPolicy:
        """The numbers stage 1 decides by: these fields' values, and ``settings`` (the
        routing share, ``alpha``, what only one of the classes has)."""
        return CanaryPolicy(
            mode=self.mode,
            max_latency_ratio=held(self.max_latency_ratio).value,
            clip_ratio=self.clip_ratio,
            max_tail_ratio=_value(held_or_none(self.max_tail_ratio)),
            latency_quantile=self.latency_quantile,
            max_psi=_value(held_or_none(self.max_psi)),
            max_js=_value(held_or_none(self.max_js)),
            n_candidate_requests=self.n_candidate_requests,
            max_disagreement=_value(held_or_none(self.max_disagreement)),
            **settings,
        )
