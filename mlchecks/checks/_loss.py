"""`LossDecreasesCheck`: training for ``n_steps`` decreases the loss (rubric test 2).

The curve is judged with the trend test of `mlchecks.stats.trend` (Kendall's tau on block
means) plus a minimum relative drop; the public import path is `mlchecks.checks.training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from mlchecks import _fields
from mlchecks._deadline import Deadline
from mlchecks._fields import MaxLimit, MinLimit, held, held_or_none
from mlchecks._text import fmt
from mlchecks._validate import callable_field, optional
from mlchecks.check import Context
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._state import (
    ISOLATIONS,
    EntryDiff,
    Isolation,
    TrainerSource,
    batches_field,
    loss_value,
    note_restored,
    one_source,
    run_isolated,
    trainer_or_none,
)
from mlchecks.conditions import Between
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer
from mlchecks.result import Result, Status
from mlchecks.stats.trend import LossTrend, check_reachable, loss_trend, min_blocks

__all__ = ["LossDecreasesCheck"]


def _plateau_hint(trend: LossTrend, min_relative_drop: float) -> str:
    """A hint for a curve that fell and then flattened inside the window."""
    means = np.asarray(trend.block_means)
    lowest = int(np.argmin(means))
    first = float(means[0])
    if (
        lowest == len(means) - 1
        or first <= 0
        or (first - means[lowest]) / first < min_relative_drop
    ):
        return ""
    return (
        f"; the block means fell to {fmt(float(means[lowest]))} by block {lowest + 1} of "
        f"{len(means)} and then stopped falling: if training converges inside the window, "
        "check fewer steps"
    )


def _trend_verdict(trend: LossTrend, alpha: float, *, fewest: int, hint: str) -> tuple[Status, str]:
    """``loss_trend``'s status and message: PASS when the deciding test (Kendall's on block
    means, or the slope test on a run too short for blocks) shows a decrease, FAIL when the
    block means do not go down at all, WARN (inconclusive) in between."""
    blocks = (
        f"Kendall's tau {trend.statistic:.3f} on {trend.n_blocks} block means of "
        f"{trend.block_size:.3g} steps"
    )
    means = f"block means {fmt(trend.block_means[0])} ... {fmt(trend.block_means[-1])}"
    if trend.judgeable:
        if trend.decreasing(alpha):
            return Status.PASS, (
                f"{blocks} shows a downward trend (p = {trend.pvalue:.3g} <= alpha {alpha})"
            )
        test = f"{blocks} has p = {trend.pvalue:.3g} > alpha {alpha}"
        more = "run more steps for more blocks"
    else:
        needs = (
            f"the block test needs at least {trend.steps_needed} steps at this "
            f"autocorrelation (lag-1 autocorrelation {trend.lag1_autocorrelation:.2f}: "
            f"{fewest} blocks of {trend.steps_needed // fewest} steps) and got {trend.n_steps}"
        )
        slope = (
            f"the slope test (least-squares slope against a random walk with the curve's "
            f"own step-to-step noise) has z = {trend.slope_statistic:.3g}, "
            f"p = {trend.slope_pvalue:.3g}"
        )
        if trend.decreasing(alpha):
            return Status.PASS, (
                f"the loss falls far beyond its step-to-step noise: {slope} <= alpha "
                f"{alpha} ({needs})"
            )
        test = f"{slope} > alpha {alpha}"
        more = f"{needs}; run more steps (for information: {blocks}, p = {trend.pvalue:.3g})"
    start, end = fmt(trend.block_means[0]), fmt(trend.block_means[-1])
    steps = f"{trend.n_steps:,} training steps"
    if trend.statistic < 0.0:
        # The block means go down, but not consistently enough to show a decrease: a lack
        # of evidence, not evidence that training does not work.
        return (
            Status.WARN,
            f"The loss went down over {steps}, from about {start} to about {end}, but too "
            f"unsteadily to be sure it is training. Inconclusive: the block means go down "
            f"({means}) but {test}; {more}" + hint,
        )
    return Status.FAIL, (
        f"The loss did not go down over {steps}: about {start} at the start, {end} at the "
        f"end. The loss shows no downward trend: its block means do not go down ({blocks}; "
        f"{means}), and {test}" + hint
    )


def _pass_summary(metrics: Mapping[str, float], overfit: bool) -> str | None:
    if overfit:
        keys: tuple[str, ...] = (
            "loss.first",
            "loss.overfit_final",
            "n_steps",
            "loss.overfit_ratio",
        )
        if not all(k in metrics for k in keys):
            return None
        return (
            f"Repeating one batch for {int(metrics['n_steps'])} training steps took the loss "
            f"from {fmt(metrics['loss.first'])} to {fmt(metrics['loss.overfit_final'])} (mean "
            f"of the last steps; {metrics['loss.overfit_ratio']:.2g} of the first loss)."
        )
    keys = ("loss.first", "loss.last", "n_steps", "loss.relative_drop", "trend.tau")
    if not all(k in metrics for k in (*keys, "trend.pvalue")):
        return None
    return (
        f"The loss went down over {int(metrics['n_steps'])} training steps, from "
        f"{fmt(metrics['loss.first'])} to {fmt(metrics['loss.last'])} "
        f"({metrics['loss.relative_drop']:.0%} lower). Kendall tau "
        f"{metrics['trend.tau']:.2f} on block means, p = {metrics['trend.pvalue']:.2g}."
    )


@_fields.renamed(
    {"initial_loss_tolerance": "initial_loss_rtol", "overfit_fraction": "max_overfit_loss_ratio"}
)
@attrs.frozen(kw_only=True, eq=False)
class LossDecreasesCheck:
    """Training for ``n_steps`` decreases the loss, by a robust trend test.

    The check trains a deep copy of ``trainer`` (or a fresh ``make_trainer(seed)``) on
    ``batches`` (step ``i`` uses ``batches[i % len(batches)]``) and judges the curve:

    - ``loss_finite``: every loss is finite; the first NaN or infinity FAILS naming its step
      (steps count from 0, the index into the loss list) and ends the run;
    - ``loss_trend``: Kendall's tau on block means shows a downward trend at level
      ``alpha`` (`mlchecks.stats.loss_trend`; robust to autocorrelated noise, unlike
      "last < first"); on a curve too short for the block test at its autocorrelation
      (boosting rounds, refits) a slope test that holds under any AR(1) noise decides. It
      FAILS when the block means do not go down at all (Kendall's tau >= 0) and WARNS
      (inconclusive, saying what would settle it) when they go down but not significantly;
    - ``relative_drop``: the mean loss of the last block is at least ``min_relative_drop``
      (a fraction) below the first block's;
    - ``overfit`` (with ``overfit_one_batch=True``, which repeats ``batches[0]``): the mean
      loss of the last 10 % of steps is at most ``max_overfit_loss_ratio`` of the first loss,
      or at most ``max_overfit_loss`` when that is given.
      In this mode ``overfit`` and ``relative_drop`` are the verdict and ``loss_trend`` is
      not judged: a loss that collapsed and then plateaus near zero is what overfitting
      one batch looks like, so the verdict does not depend on ``n_steps`` (the trend's
      figures stay in the metrics);
    - ``initial_loss`` (with ``n_classes``): the first loss is within ``initial_loss_rtol``
      (relative) of ``ln(n_classes)``, the cross-entropy of a uniform prediction, as a
      freshly initialized classifier's should be (WARN);
    - ``trainer_restored``: your trainer's ``state()`` is bitwise what it was before.

    Args:
        batches: the training batches, in the form your ``train_step`` takes (any iterable;
            it is read into a tuple once, at construction).
        trainer: a `Trainer` to train a copy of (exactly one of ``trainer`` and
            ``make_trainer``).
        make_trainer: a factory ``seed -> Trainer`` for a fresh trainer.
        seed: the seed for ``make_trainer`` (None: the context's seed).
        n_steps: steps to run (None: ``len(batches)``, or 100 with ``overfit_one_batch``).
        overfit_one_batch: repeat ``batches[0]`` and require the loss to collapse.
        n_blocks: the most blocks the trend test uses.
        alpha: the trend test's level, in (0, 0.5).
        min_relative_drop: the smallest relative drop from the first to the last block (a
            number, or `AtLeast` with the severity you choose).
        max_overfit_loss_ratio: the largest final/first loss ratio when overfitting one
            batch (a number, or `AtMost`).
        max_overfit_loss: an absolute floor when overfitting one batch: a final loss at
            most this PASSES ``overfit`` whatever its ratio to the first loss (None: no
            floor; for a loss that starts small).
        n_classes: check the first loss against ``ln(n_classes)`` (classification).
        initial_loss_rtol: allowed relative deviation of the first loss from
            ``ln(n_classes)``.
        isolation: how a given ``trainer`` is kept unchanged: ``"copy"`` (train a deep
            copy), ``"checkpoint"`` (train it, then restore it with its own ``load``), or
            ``"auto"`` (copy when the copy is faithful, else checkpoint).
        check_timeout_s: the longest the whole check may take; your ``train_step`` runs on a
            worker thread and a step still running at the deadline ends the check in
            ERROR naming the step (the step itself finishes in the background, then
            training stops). None: no limit.

    Raises:
        InvalidInput: a field is out of range, or not exactly one of ``trainer`` and
            ``make_trainer`` is given.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> batches = DemoSystem(seed=0).batches(0)[:60]
    >>> result = LossDecreasesCheck(make_trainer=make_trainer, batches=batches).run()
    >>> result.status, result.finding("loss_trend").status
    (<Status.PASS: 'pass'>, <Status.PASS: 'pass'>)
    """

    batches: tuple[Any, ...] = attrs.field(converter=batches_field, repr=False)
    trainer: Trainer | None = attrs.field(default=None, validator=trainer_or_none)
    make_trainer: Callable[[int], Trainer] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    seed: int | None = _fields.seed()
    n_steps: int | None = _fields.count(None, minimum=1, optional=True)
    overfit_one_batch: bool = _fields.flag(False)
    n_blocks: int = _fields.count(10, minimum=3, maximum=100)
    alpha: float = _fields.alpha(0.01)
    min_relative_drop: MinLimit = _fields.limit("min", 0.05, high=1.0)
    max_overfit_loss_ratio: MaxLimit = _fields.limit("max", 0.1, high=1.0)
    max_overfit_loss: MaxLimit | None = _fields.limit("max", None, high=None, optional=True)
    n_classes: int | None = _fields.count(None, minimum=2, optional=True)
    initial_loss_rtol: float = _fields.tolerance(0.5)
    isolation: Isolation = _fields.choice("auto", *ISOLATIONS)
    check_timeout_s: float | None = _fields.seconds(3600.0, optional=True)
    name: str = _fields.name_field("loss_decreases")
    rubric: int | None = _fields.rubric(2)
    global_state = ("rng",)  # runs user training code: one at a time on threads (see Check)

    def __attrs_post_init__(self) -> None:
        one_source(self.trainer, self.make_trainer)
        check_reachable(self.n_blocks, self.alpha)
        floor = min(self.n_blocks, min_blocks(self.alpha))
        if self.steps < floor:
            raise InvalidInput(
                f"'n_steps' must be at least {floor} for the trend test (got {self.steps}"
                f"{'' if self.n_steps is not None else ', from len(batches)'})"
            )

    @property
    def steps(self) -> int:
        """The number of training steps the check runs."""
        if self.n_steps is not None:
            return self.n_steps
        return 100 if self.overfit_one_batch else len(self.batches)

    def _batch(self, step: int) -> Any:
        if self.overfit_one_batch:
            return self.batches[0]
        return self.batches[step % len(self.batches)]

    def _train(self, source: TrainerSource, deadline: Deadline) -> tuple[list[float], int | None]:
        """The losses of up to ``steps`` steps, and the step of the first non-finite one."""
        trainer = source.fresh()
        losses: list[float] = []
        for step in range(self.steps):
            deadline.check(f"train_step at step {step} of {self.steps}")
            loss = loss_value(trainer.train_step(self._batch(step)), step)
            losses.append(loss)
            if not math.isfinite(loss):
                return losses, step
        return losses, None

    def run(self, context: Context | None = None) -> Result:
        """Train, then judge the loss curve; see the class docstring for the findings."""
        ctx = context if context is not None else Context()
        ctx.report(f"{self.name}: training {self.steps} steps")
        with Deadline(self.check_timeout_s, self.name) as deadline:
            (losses, bad_step), changed, mode = run_isolated(
                ctx,
                trainer=self.trainer,
                make_trainer=self.make_trainer,
                seed=_fields.resolve_seed(self.seed, ctx),
                isolation=self.isolation,
                work=lambda source: self._train(source, deadline),
                deadline=deadline,
            )
        return self._judge(losses, bad_step, changed, mode)

    def _judge(
        self, losses: list[float], bad_step: int | None, changed: list[EntryDiff], mode: str
    ) -> Result:
        n = self.steps
        b = ResultBuilder.of(self)
        b.metric("n_steps", len(losses))
        b.detail("losses", losses)
        b.detail("isolation", mode)
        if losses:
            b.metric("loss.first", losses[0])
            b.metric("loss.last", losses[-1])
        if bad_step is not None:
            after = f" after the loss was {fmt(losses[bad_step - 1])}" if bad_step else ""
            b.note(
                "loss_finite",
                Status.FAIL,
                f"Training diverged: the loss is {losses[bad_step]} at step {bad_step} of {n} "
                f"(the first non-finite loss, steps counted from 0){after}.",
                observed=bad_step,
                limit="finite",
            )
            b.metric("loss.first_nonfinite_step", bad_step)
        else:
            b.note("loss_finite", Status.PASS, f"all {n} losses are finite", limit="finite")
            self._judge_curve(b, np.asarray(losses))
        if self.n_classes is not None and losses and math.isfinite(losses[0]):
            expected = math.log(self.n_classes)
            tol = self.initial_loss_rtol
            b.judge(
                "initial_loss",
                Between(expected * (1 - tol), expected * (1 + tol), severity=Status.WARN),
                losses[0],
                context=(
                    f" around ln({self.n_classes}) = {fmt(expected)}, the cross-entropy of "
                    f"a uniform prediction over {self.n_classes} classes"
                ),
            )
        note_restored(b, changed)
        return b.result(pass_summary=_pass_summary(b.metrics, self.overfit_one_batch))

    def _judge_curve(self, b: ResultBuilder, losses: np.ndarray) -> None:
        trend = loss_trend(losses, n_blocks=self.n_blocks, alpha=self.alpha)
        b.update_metrics(
            {
                "trend.tau": trend.statistic,
                "trend.pvalue": trend.pvalue,
                "trend.n_blocks": trend.n_blocks,
                "trend.block_size": trend.block_size,
                "trend.lag1_autocorrelation": trend.lag1_autocorrelation,
                "loss.relative_drop": trend.relative_drop,
                "loss.min": float(losses.min()),
            }
        )
        b.detail("block_means", list(trend.block_means))
        first, last = trend.block_means[0], trend.block_means[-1]
        if self.overfit_one_batch:
            # Overfitting one batch means reaching a small loss: a curve that got there
            # and then flattened is the expected shape, so the trend test does not judge it.
            b.judge(
                "relative_drop",
                held(self.min_relative_drop),
                trend.relative_drop,
                context=f" (mean loss {fmt(first)} in the first block, {fmt(last)} in the last)",
            )
            self._judge_overfit(b, losses)
            return
        if not trend.judgeable:
            b.update_metrics(
                {
                    "trend.steps_needed": trend.steps_needed,
                    "trend.slope_z": trend.slope_statistic,
                    "trend.slope_pvalue": trend.slope_pvalue,
                }
            )
        status, message = _trend_verdict(
            trend,
            self.alpha,
            fewest=min(self.n_blocks, min_blocks(self.alpha)),
            hint=_plateau_hint(trend, held(self.min_relative_drop).value),
        )
        b.note(
            "loss_trend",
            status,
            message,
            observed=trend.decision_pvalue,
            limit=f"p <= {self.alpha}",
        )
        b.judge(
            "relative_drop",
            held(self.min_relative_drop),
            trend.relative_drop,
            context=f" (mean loss {fmt(first)} in the first block, {fmt(last)} in the last)",
        )

    def _judge_overfit(self, b: ResultBuilder, losses: np.ndarray) -> None:
        start = float(losses[0])
        tail = max(1, len(losses) // 10)
        final = float(losses[-tail:].mean())
        limit = held(self.max_overfit_loss_ratio)
        floor = held_or_none(self.max_overfit_loss)
        b.metric("loss.overfit_final", final)
        if floor is not None and floor.holds(final):
            b.note(
                "overfit",
                Status.PASS,
                f"repeating one batch for {len(losses)} steps took the loss from {fmt(start)} "
                f"to {fmt(final)} (mean of the last {tail} steps), within max_overfit_loss "
                f"{fmt(floor.value)}",
                observed=final,
                limit=floor.describe(),
            )
            if start > 0.0:
                b.metric("loss.overfit_ratio", final / start)
            return
        if start <= 0.0:
            b.note(
                "overfit",
                Status.SKIP,
                f"the first loss {fmt(start)} is not positive, so a fraction of it is undefined",
                limit=f"{limit.describe()} of the first loss",
            )
            return
        ratio = final / start
        b.metric("loss.overfit_ratio", ratio)
        b.judge(
            "overfit",
            limit,
            ratio,
            context=(
                f": repeating one batch for {len(losses)} steps took the loss from "
                f"{fmt(start)} to {fmt(final)} (mean of the last {tail} steps)"
            ),
        )
