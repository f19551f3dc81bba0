"""Rubric test 2: the model specification trains, and it survives a crash.

"Useful assertions include testing that training results in decreased loss and that a model
can restore from a checkpoint after a mid-training job crash" (Breck et al., ML Test Score).

- `LossDecreasesCheck` runs your ``train_step`` for ``n_steps`` and judges the loss curve
  with a robust trend test (`loss_trend`: Kendall's tau on block means) plus a minimum
  relative drop; a non-finite loss fails naming the step. With ``overfit_one_batch=True``
  it repeats one batch and demands the loss fall to a small fraction of its start.
- `CheckpointRestoreCheck` trains an uninterrupted reference run, then a run that writes
  checkpoints with your ``save(path)`` and crashes (optionally a real ``SIGKILL`` of a child
  process), restores a fresh trainer with your ``load(path)`` after re-seeding the global
  generators, continues, and compares the final ``state()`` entry by entry, the losses after
  the restore and the step counter with the reference.

Both checks leave your objects as they were: they train copies or fresh trainers from your
``make_trainer(seed)``, and they restore the process-wide random generators they touch.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.connection
import pickle
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.checks._state import (
    ISOLATIONS,
    EntryDiff,
    Isolation,
    TrainerSource,
    compare_states,
    one_source,
    preserve_global_rngs,
    restored_finding,
    seed_global_rngs,
    snapshot,
    summarize_diffs,
    trainer_or_none,
    validate_patterns,
)
from mlchecks.conditions import AtLeast, AtMost, Between
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer
from mlchecks.result import Finding, Result, Status
from mlchecks._validate import (
    as_array,
    callable_field,
    check_int,
    check_open_unit,
    describe,
    int_at_least,
    number_in,
    one_of,
    optional,
)

__all__ = [
    "CheckpointRestoreCheck",
    "LossDecreasesCheck",
    "LossTrend",
    "loss_trend",
    "min_blocks",
]

#: Blocks are made at least this many noise correlation times long (see `loss_trend`).
CORRELATION_TIMES_PER_BLOCK = 4.0


# --------------------------------------------------------------------------- validators


_OPEN_UNIT = number_in(0.0, 1.0, low_open=True, high_open=True)
_POSITIVE = number_in(0.0, low_open=True)


def _ignore_patterns(value: Any) -> tuple[str, ...]:
    return validate_patterns(value, "ignore")


def _optional_str(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'{attribute.name}' must be a string or None (got {describe(value)})")


def _batches(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput(f"'batches' must be a sequence of batches (got {describe(value)})")
    batches = tuple(value)
    if not batches:
        raise InvalidInput("'batches' must contain at least one batch (got an empty sequence)")
    return batches


def _loss_value(value: Any, step: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"train_step() must return the loss as a number (got {describe(value)} at step {step})"
        ) from None


def _count(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 step"``, ``"2 steps"``."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --------------------------------------------------------------------------- the trend test


def min_blocks(alpha: float) -> int:
    """The fewest blocks (at least 5) with which a trend that has one pair of blocks out of
    order can still reach ``p <= alpha``: the smallest ``b`` with ``1 / (b - 1)! <= alpha``.

    >>> min_blocks(0.05), min_blocks(0.01), min_blocks(0.001)
    (5, 6, 8)
    """
    blocks = 5
    while 1.0 / math.factorial(blocks - 1) > alpha:
        blocks += 1
    return blocks


def _lag1_autocorrelation(losses: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residuals about a cubic trend, clipped to [0, 0.99].

    A global cubic follows smooth loss curves closely while leaving the step-to-step noise
    in the residuals; where it cannot follow the curve the misfit looks like correlated
    noise, which only makes the blocks longer (fewer, so the test is conservative).
    """
    n = len(losses)
    if n < 8:
        return 0.0
    t = np.linspace(-1.0, 1.0, n)
    poly = np.polynomial.polynomial
    residuals = losses - poly.polyval(t, poly.polyfit(t, losses, 3))
    denominator = float(np.dot(residuals, residuals))
    centered = losses - losses.mean()
    total = float(np.dot(centered, centered))
    # A curve the trend explains to rounding error has no noise to be correlated.
    if not math.isfinite(denominator) or denominator <= 1e-12 * total or denominator == 0.0:
        return 0.0
    rho = float(np.dot(residuals[:-1], residuals[1:])) / denominator
    return min(max(rho, 0.0), 0.99)


@attrs.frozen
class LossTrend:
    """The result of `loss_trend`.

    Attributes:
        tau: Kendall's tau between block index and block mean (-1: strictly decreasing).
        pvalue: one-sided p-value for a downward trend (``alternative="less"``).
        n_blocks: how many blocks were used.
        block_size: mean steps per block.
        block_means: the mean loss of each block, in order.
        relative_drop: ``(first block mean - last block mean) / |first block mean|``.
        lag1_autocorrelation: the estimated lag-1 autocorrelation of the loss noise.
        correlation_steps: the noise's integrated correlation time, ``(1 + r) / (1 - r)``.
    """

    tau: float
    pvalue: float
    n_blocks: int
    block_size: float
    block_means: tuple[float, ...]
    relative_drop: float
    lag1_autocorrelation: float
    correlation_steps: float

    def decreasing(self, alpha: float) -> bool:
        """True when the trend test shows a decrease at level ``alpha``."""
        return self.pvalue <= alpha


def loss_trend(losses: Any, *, n_blocks: int = 10, alpha: float = 0.01) -> LossTrend:
    """Test a loss curve for a downward trend with Kendall's tau on block means.

    The curve is cut into consecutive blocks and each block is replaced by its mean; the
    p-value is that of Kendall's tau between block index and block mean, one-sided
    (`scipy.stats.kendalltau` with ``alternative="less"``, exact for small counts).

    Step-to-step losses are autocorrelated (momentum, learning-rate schedules, data
    order), and Kendall's test assumes independent points: on raw steps it would find
    "trends" in flat but wandering curves far more often than ``alpha``. Block means of
    blocks much longer than the noise's correlation time are nearly independent, so the
    number of blocks adapts: the lag-1 autocorrelation ``r`` of the residuals about a cubic
    trend gives the correlation time ``(1 + r) / (1 - r)``, and blocks are made at least
    `CORRELATION_TIMES_PER_BLOCK` times that long, with ``n_blocks`` blocks at most and
    ``min_blocks(alpha)`` at least.

    Args:
        losses: the loss of every step, finite, 1-D.
        n_blocks: the largest number of blocks.
        alpha: the level of the test (decides the fewest blocks).

    Returns:
        A `LossTrend`.

    Raises:
        InvalidInput: ``losses`` is not finite and 1-D, has fewer values than the fewest
            blocks, or ``n_blocks`` cannot reach ``alpha``.

    >>> rng = np.random.default_rng(0)
    >>> curve = 0.5 + 2.0 * np.exp(-np.arange(100) / 30) + rng.normal(scale=0.05, size=100)
    >>> trend = loss_trend(curve)
    >>> trend.n_blocks, round(trend.tau, 3), trend.pvalue < 1e-6, round(trend.relative_drop, 2)
    (10, -1.0, True, 0.74)
    >>> loss_trend(np.ones(100)).pvalue
    1.0
    """
    values = as_array(losses, "losses", ndim=1, dtype=np.float64)
    alpha = check_open_unit(alpha, "alpha")
    n_blocks = check_int(n_blocks, "n_blocks", minimum=3)
    smallest_p = 1.0 / math.factorial(int(n_blocks))
    if smallest_p > alpha:
        raise InvalidInput(
            f"'n_blocks' {n_blocks} cannot reach alpha {alpha}: the smallest one-sided p-value "
            f"of Kendall's tau on {n_blocks} points is {smallest_p:.3g}"
        )
    floor = min(int(n_blocks), min_blocks(alpha))
    if len(values) < floor:
        raise InvalidInput(
            f"'losses' must have at least {floor} values for the trend test (got {len(values)})"
        )
    rho = _lag1_autocorrelation(values)
    correlation_steps = (1.0 + rho) / (1.0 - rho)
    fitting = int(len(values) // (CORRELATION_TIMES_PER_BLOCK * correlation_steps))
    blocks = min(int(n_blocks), max(floor, fitting), len(values))
    means = np.array([chunk.mean() for chunk in np.array_split(values, blocks)])
    import scipy.stats  # here, not at import: child processes of the checks stay light

    if np.ptp(means) == 0.0:
        tau, pvalue = 0.0, 1.0
    else:
        test = scipy.stats.kendalltau(np.arange(blocks), means, alternative="less")
        tau, pvalue = float(test.statistic), float(test.pvalue)
    first, last = float(means[0]), float(means[-1])
    if first == 0.0:
        drop = 0.0 if last == 0.0 else math.copysign(math.inf, first - last)
    else:
        drop = (first - last) / abs(first)
    return LossTrend(
        tau=tau,
        pvalue=pvalue,
        n_blocks=blocks,
        block_size=len(values) / blocks,
        block_means=tuple(float(m) for m in means),
        relative_drop=drop,
        lag1_autocorrelation=rho,
        correlation_steps=correlation_steps,
    )


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
        f"; the block means fell to {_fmt(float(means[lowest]))} by block {lowest + 1} of "
        f"{len(means)} and then stopped falling: if training converges inside the window, "
        "check fewer steps"
    )


# --------------------------------------------------------------------------- LossDecreasesCheck


@attrs.frozen(kw_only=True, eq=False)
class LossDecreasesCheck:
    """Training for ``n_steps`` decreases the loss, by a robust trend test.

    The check trains a deep copy of ``trainer`` (or a fresh ``make_trainer(seed)``) on
    ``batches`` (step ``i`` uses ``batches[i % len(batches)]``) and judges the curve:

    - ``loss_finite``: every loss is finite; the first NaN or infinity FAILS naming its step
      (steps count from 0, the index into the loss list) and ends the run;
    - ``loss_trend``: Kendall's tau on block means shows a downward trend at level
      ``alpha`` (`loss_trend`; robust to autocorrelated noise, unlike "last < first");
    - ``relative_drop``: the mean loss of the last block is at least ``min_relative_drop``
      (a fraction) below the first block's;
    - ``overfit`` (with ``overfit_one_batch=True``, which repeats ``batches[0]``): the mean
      loss of the last 10 % of steps is at most ``overfit_fraction`` of the first loss;
    - ``initial_loss`` (with ``n_classes``): the first loss is within
      ``initial_loss_tolerance`` (relative) of ``ln(n_classes)``, the cross-entropy of a
      uniform prediction, as a freshly initialized classifier's should be (WARN);
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
        alpha: the trend test's level.
        min_relative_drop: the smallest relative drop from the first to the last block.
        overfit_fraction: the largest final/first loss ratio when overfitting one batch.
        n_classes: check the first loss against ``ln(n_classes)`` (classification).
        initial_loss_tolerance: allowed relative deviation of the first loss from
            ``ln(n_classes)``.
        isolation: how a given ``trainer`` is kept unchanged: ``"copy"`` (train a deep
            copy), ``"checkpoint"`` (train it, then restore it with its own ``load``), or
            ``"auto"`` (copy when the copy is faithful, else checkpoint).

    Raises:
        InvalidInput: a field is out of range, or not exactly one of ``trainer`` and
            ``make_trainer`` is given.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> batches = DemoSystem(seed=0).batches(0)[:60]
    >>> result = LossDecreasesCheck(make_trainer=make_trainer, batches=batches).run()
    >>> result.status, result.finding("loss_trend").status
    (<Status.PASS: 'pass'>, <Status.PASS: 'pass'>)
    """

    batches: tuple[Any, ...] = attrs.field(converter=_batches, repr=False)
    trainer: Trainer | None = attrs.field(default=None, validator=trainer_or_none)
    make_trainer: Callable[[int], Trainer] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    seed: int | None = attrs.field(default=None, validator=optional(int_at_least(0)))
    n_steps: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    overfit_one_batch: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )
    n_blocks: int = attrs.field(default=10, validator=int_at_least(3))
    alpha: float = attrs.field(default=0.01, validator=_OPEN_UNIT)
    min_relative_drop: float = attrs.field(default=0.05, validator=number_in(0.0, 1.0))
    overfit_fraction: float = attrs.field(default=0.1, validator=_OPEN_UNIT)
    n_classes: int | None = attrs.field(default=None, validator=optional(int_at_least(2)))
    initial_loss_tolerance: float = attrs.field(default=0.5, validator=_POSITIVE)
    isolation: Isolation = attrs.field(default="auto", validator=one_of(*ISOLATIONS))
    name: str = "loss_decreases"
    rubric: int | None = 2

    def __attrs_post_init__(self) -> None:
        one_source(self.trainer, self.make_trainer)
        smallest_p = 1.0 / math.factorial(self.n_blocks)
        if smallest_p > self.alpha:
            raise InvalidInput(
                f"'n_blocks' {self.n_blocks} cannot reach alpha {self.alpha}: the smallest "
                f"one-sided p-value of Kendall's tau on {self.n_blocks} points is {smallest_p:.3g}"
            )
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

    def run(self, context: Context | None = None) -> Result:
        """Train, then judge the loss curve; see the class docstring for the findings."""
        ctx = context if context is not None else Context()
        seed = self.seed if self.seed is not None else ctx.seed
        n = self.steps
        losses: list[float] = []
        bad_step: int | None = None
        ctx.report(f"{self.name}: training {n} steps")
        with ctx.tempdir() as workdir:
            with preserve_global_rngs():
                source = TrainerSource(
                    trainer=self.trainer,
                    make_trainer=self.make_trainer,
                    seed=seed,
                    isolation=self.isolation,
                    workdir=workdir,
                )
                try:
                    trainer = source.fresh()
                    for step in range(n):
                        loss = _loss_value(trainer.train_step(self._batch(step)), step)
                        losses.append(loss)
                        if not math.isfinite(loss):
                            bad_step = step
                            break
                finally:
                    source.restore()
            changed = source.changes()
        return self._judge(losses, bad_step, changed, source.mode)

    def _judge(
        self, losses: list[float], bad_step: int | None, changed: list[EntryDiff], mode: str
    ) -> Result:
        n = self.steps
        findings: list[Finding] = []
        metrics: dict[str, float] = {"n_steps": float(len(losses))}
        details: dict[str, Any] = {"losses": losses, "isolation": mode}
        if losses:
            metrics["first_loss"] = losses[0]
            metrics["last_loss"] = losses[-1]
        if bad_step is not None:
            findings.append(
                Finding(
                    "loss_finite",
                    Status.FAIL,
                    bad_step,
                    "finite",
                    f"the loss is {losses[bad_step]} at step {bad_step} of {n} (the first "
                    "non-finite loss, steps counted from 0): training diverged"
                    + (f" after the loss was {_fmt(losses[bad_step - 1])}" if bad_step else ""),
                )
            )
            metrics["first_nonfinite_step"] = float(bad_step)
        else:
            findings.append(
                Finding("loss_finite", Status.PASS, None, "finite", f"all {n} losses are finite")
            )
            findings.extend(self._judge_curve(np.asarray(losses), metrics, details))
        if self.n_classes is not None and losses and math.isfinite(losses[0]):
            expected = math.log(self.n_classes)
            tol = self.initial_loss_tolerance
            condition = Between(expected * (1 - tol), expected * (1 + tol), severity=Status.WARN)
            findings.append(
                condition.judge(
                    "initial_loss",
                    losses[0],
                    context=(
                        f" around ln({self.n_classes}) = {_fmt(expected)}, the cross-entropy of "
                        f"a uniform prediction over {self.n_classes} classes"
                    ),
                )
            )
        findings.append(restored_finding(changed))
        return Result.from_findings(
            self.name,
            findings,
            pass_summary=_loss_pass_summary(metrics),
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    def _judge_curve(
        self, losses: np.ndarray, metrics: dict[str, float], details: dict[str, Any]
    ) -> list[Finding]:
        trend = loss_trend(losses, n_blocks=self.n_blocks, alpha=self.alpha)
        metrics.update(
            {
                "tau": trend.tau,
                "pvalue": trend.pvalue,
                "n_blocks": float(trend.n_blocks),
                "block_size": trend.block_size,
                "relative_drop": trend.relative_drop,
                "lag1_autocorrelation": trend.lag1_autocorrelation,
                "min_loss": float(losses.min()),
            }
        )
        details["block_means"] = list(trend.block_means)
        blocks = f"{trend.n_blocks} block means of {trend.block_size:.3g} steps"
        if trend.decreasing(self.alpha):
            trend_finding = Finding(
                "loss_trend",
                Status.PASS,
                trend.pvalue,
                f"p <= {self.alpha}",
                f"Kendall's tau {trend.tau:.3f} on {blocks} shows a downward trend "
                f"(p = {trend.pvalue:.3g} <= alpha {self.alpha})",
            )
        else:
            trend_finding = Finding(
                "loss_trend",
                Status.FAIL,
                trend.pvalue,
                f"p <= {self.alpha}",
                f"the loss shows no downward trend: Kendall's tau {trend.tau:.3f} on {blocks} "
                f"has p = {trend.pvalue:.3g} > alpha {self.alpha} (block means "
                f"{_fmt(trend.block_means[0])} ... {_fmt(trend.block_means[-1])})"
                + _plateau_hint(trend, self.min_relative_drop),
            )
        findings = [trend_finding]
        findings.append(
            AtLeast(self.min_relative_drop).judge(
                "relative_drop",
                trend.relative_drop,
                context=(
                    f" (mean loss {_fmt(trend.block_means[0])} in the first block, "
                    f"{_fmt(trend.block_means[-1])} in the last)"
                ),
            )
        )
        if self.overfit_one_batch:
            findings.append(self._overfit_finding(losses, metrics))
        return findings

    def _overfit_finding(self, losses: np.ndarray, metrics: dict[str, float]) -> Finding:
        start = float(losses[0])
        tail = max(1, len(losses) // 10)
        final = float(losses[-tail:].mean())
        if start <= 0.0:
            return Finding(
                "overfit",
                Status.SKIP,
                None,
                f"<= {self.overfit_fraction} of the first loss",
                f"the first loss {_fmt(start)} is not positive, so a fraction of it is undefined",
            )
        fraction = final / start
        metrics["overfit_fraction"] = fraction
        finding = AtMost(self.overfit_fraction).judge(
            "overfit",
            fraction,
            context=(
                f": repeating one batch for {len(losses)} steps took the loss from "
                f"{_fmt(start)} to {_fmt(final)} (mean of the last {tail} steps)"
            ),
        )
        return finding


# --------------------------------------------------------------------------- CheckpointRestoreCheck


@attrs.frozen
class _Plan:
    """What the interrupted and restored runs do (picklable, for child processes)."""

    seed: int
    base_seed: int
    other_seed: int
    n_steps: int
    crash_at: int
    save_steps: tuple[int, ...]

    @property
    def restore_step(self) -> int:
        return self.save_steps[-1]


@attrs.frozen
class _RestoredRun:
    """What the restored run reports back (from this process or a child)."""

    after_load: dict[str, np.ndarray] | None
    final: dict[str, np.ndarray] | None
    losses: list[float]
    load_error: str | None = None
    train_error: str | None = None
    train_error_step: int | None = None


def _batch_at(batches: Sequence[Any], step: int) -> Any:
    return batches[step % len(batches)]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _interrupted_steps(
    make_trainer: Callable[[int], Trainer],
    batches: Sequence[Any],
    plan: _Plan,
    path: Path,
    on_crash_point: Callable[[list[float]], None],
) -> None:
    """Train to the crash point, saving at ``plan.save_steps``; save errors propagate."""
    seed_global_rngs(plan.base_seed)
    trainer = make_trainer(plan.seed)
    losses: list[float] = []
    saves = set(plan.save_steps)
    for step in range(plan.crash_at):
        losses.append(_loss_value(trainer.train_step(_batch_at(batches, step)), step))
        if step + 1 in saves:
            try:
                trainer.save(path)
            except Exception as exc:
                raise _SaveError(step + 1, _error_text(exc)) from exc
    on_crash_point(losses)


class _SaveError(Exception):
    def __init__(self, step: int, text: str) -> None:
        super().__init__(step, text)
        self.step = step
        self.text = text


def _restored_steps(
    make_trainer: Callable[[int], Trainer], batches: Sequence[Any], plan: _Plan, path: Path
) -> _RestoredRun:
    """Build a fresh trainer, re-seed the globals differently, load, and train to the end."""
    seed_global_rngs(plan.base_seed)
    trainer = make_trainer(plan.seed)
    seed_global_rngs(plan.other_seed)
    try:
        trainer.load(path)
    except Exception as exc:
        return _RestoredRun(None, None, [], load_error=_error_text(exc))
    after_load = snapshot(trainer.state())
    losses: list[float] = []
    for step in range(plan.restore_step, plan.n_steps):
        try:
            loss = trainer.train_step(_batch_at(batches, step))
        except Exception as exc:
            return _RestoredRun(
                after_load, None, losses, train_error=_error_text(exc), train_error_step=step
            )
        losses.append(_loss_value(loss, step))
    return _RestoredRun(after_load, snapshot(trainer.state()), losses)


def _load_job(job: str) -> tuple[Callable[[int], Trainer], Sequence[Any], _Plan]:
    """The child's work order, written by the parent (our own file: trusted)."""
    with open(job, "rb") as handle:
        make_trainer, batches, plan = pickle.load(handle)
    return make_trainer, batches, plan


def _interrupted_child(conn: Any, job: str, path: str) -> None:  # pragma: no cover - child
    """Child process 1: train, checkpoint, report the crash point, then wait to be killed."""
    try:
        make_trainer, batches, plan = _load_job(job)
        _interrupted_steps(
            make_trainer,
            batches,
            plan,
            Path(path),
            lambda losses: conn.send(("crash_point", losses)),
        )
    except _SaveError as exc:
        conn.send(("save_error", (exc.step, exc.text)))
        return
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.recv()  # blocks until the parent's SIGKILL: no cleanup, no atexit


def _restore_child(conn: Any, job: str, path: str, out: str) -> None:  # pragma: no cover
    """Child process 2: restore from the checkpoint and finish training; pickle the outcome."""
    try:
        make_trainer, batches, plan = _load_job(job)
        run = _restored_steps(make_trainer, batches, plan, Path(path))
        with open(out, "wb") as handle:
            pickle.dump(run, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("done", out))


class _ChildFailed(RuntimeError):
    """A child process of `CheckpointRestoreCheck` failed in the user's code or died."""


def _receive(conn: Any, process: Any, timeout_s: float, what: str) -> tuple[str, Any]:
    """The child's one message, or an exception saying how the child failed.

    Waits on the pipe and on the process itself, so a child that dies before it reports
    (even during start-up, before it has taken over its end of the pipe) is noticed at once.
    """
    ready = multiprocessing.connection.wait([conn, process.sentinel], timeout_s)
    if not ready:
        process.kill()
        process.join(5)
        raise TimeoutError(f"the {what} child process sent nothing within {timeout_s} s")
    died = (
        f"the {what} child process died (exit code {{}}) before reporting; its error output is "
        "above (a script that runs the check needs the if __name__ == '__main__': guard)"
    )
    if conn not in ready and not conn.poll(0):
        process.join(5)
        raise _ChildFailed(died.format(process.exitcode))
    try:
        kind, payload = conn.recv()
    except (EOFError, OSError):
        process.join(5)
        raise _ChildFailed(died.format(process.exitcode)) from None
    if kind == "error":
        process.join(5)
        raise _ChildFailed(f"the {what} child process raised:\n{payload}")
    return kind, payload


@attrs.frozen(kw_only=True, eq=False)
class CheckpointRestoreCheck:
    """Training restored from your checkpoint after a crash continues exactly as if uninterrupted.

    Three runs from ``make_trainer(seed)`` on the same ``batches`` (step ``i`` uses
    ``batches[i % len(batches)]``), each started with the global generators (``random``,
    numpy's, torch's when imported) seeded alike:

    1. the **reference**: ``n_steps`` steps without interruption;
    2. the **interrupted** run: trains to ``crash_at``, writing checkpoints with your
       ``save(path)`` after step ``crash_at`` (or every ``checkpoint_every`` steps), then
       crashes: the trainer object is discarded (``isolation="inprocess"``), or the child
       process running it is killed with ``SIGKILL`` right after the checkpoint is written
       (``isolation="process"``: no cleanup, no atexit);
    3. the **restored** run: a fresh ``make_trainer(seed)``, then the global generators are
       re-seeded with *other* values (so random state the checkpoint does not restore shows),
       then your ``load(path)``, then training continues from the last checkpoint to
       ``n_steps`` (in another child process with ``isolation="process"``).

    Findings (entries compared bitwise unless ``atol``/``rtol`` are given; names matching
    an ``ignore`` pattern are skipped):

    - ``deterministic_prefix``: the interrupted run's losses before the crash equal the
      reference's (otherwise training is not reproducible and nothing can be verified);
    - ``load``: ``load(path)`` ran (an exception FAILS with its message);
    - ``restored_state``: ``state()`` right after ``load`` equals the reference's at the
      checkpoint step; every differing entry is named (what the checkpoint forgot);
    - ``step_counter``: the ``step_key`` entry after ``load`` is the checkpoint step;
    - ``losses_after_restore``: the losses after the restore equal the reference's; the
      first differing step is named;
    - ``final_state``: the final ``state()`` equals the reference's, entry by entry.

    With ``isolation="process"`` the children are started with the ``"spawn"`` method:
    ``make_trainer`` and ``batches`` must be picklable (a function defined at module level
    of an importable module, not a lambda or a notebook cell), and a script that runs the
    check needs the ``if __name__ == "__main__":`` guard.

    Args:
        make_trainer: a factory ``seed -> Trainer``.
        batches: the deterministic batch sequence.
        seed: the seed every run's trainer is built with (None: the context's seed).
        n_steps: total steps (None: ``len(batches)``).
        crash_at: the step after which the interrupted run crashes (None: half-way).
        checkpoint_every: save every this many steps instead of once at ``crash_at``; the
            restore then starts from the last checkpoint at or before ``crash_at``.
        isolation: ``"inprocess"`` or ``"process"`` (a real crash of a child process).
        atol, rtol: tolerances for comparing losses and floating state entries.
        ignore: state names or `fnmatch` patterns left out of the comparison.
        step_key: the state entry holding the step counter (None: no step check).
        timeout_s: the longest wait for each child process.

    Raises:
        InvalidInput: a field is out of range.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> batches = DemoSystem(seed=0).batches(0)[:20]
    >>> result = CheckpointRestoreCheck(make_trainer=make_trainer, batches=batches).run()
    >>> result.status
    <Status.PASS: 'pass'>
    """

    make_trainer: Callable[[int], Trainer] = attrs.field(validator=optional(callable_field))
    batches: tuple[Any, ...] = attrs.field(converter=_batches, repr=False)
    seed: int | None = attrs.field(default=None, validator=optional(int_at_least(0)))
    n_steps: int | None = attrs.field(default=None, validator=optional(int_at_least(2)))
    crash_at: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    checkpoint_every: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    isolation: Literal["inprocess", "process"] = attrs.field(
        default="inprocess", validator=one_of("inprocess", "process")
    )
    atol: float = attrs.field(default=0.0, validator=number_in(0.0))
    rtol: float = attrs.field(default=0.0, validator=number_in(0.0))
    ignore: tuple[str, ...] = attrs.field(default=(), converter=_ignore_patterns)
    step_key: str | None = attrs.field(default="step", validator=_optional_str)
    timeout_s: float = attrs.field(default=300.0, validator=_POSITIVE)
    name: str = "checkpoint_restore"
    rubric: int | None = 2

    def __attrs_post_init__(self) -> None:
        n, crash = self.steps, self.crash_step
        if n < 2:
            raise InvalidInput(f"'n_steps' must be at least 2 (got {n}, from len(batches))")
        if not 1 <= crash < n:
            raise InvalidInput(
                f"'crash_at' must be in [1, n_steps) = [1, {n}) so that steps remain after the "
                f"crash (got {crash})"
            )
        if self.checkpoint_every is not None and self.checkpoint_every > crash:
            raise InvalidInput(
                f"'checkpoint_every' must be <= crash_at {crash} so that a checkpoint exists "
                f"before the crash (got {self.checkpoint_every})"
            )

    @property
    def steps(self) -> int:
        """Total training steps of the reference run."""
        return self.n_steps if self.n_steps is not None else len(self.batches)

    @property
    def crash_step(self) -> int:
        """The number of steps the interrupted run completes before it crashes."""
        return self.crash_at if self.crash_at is not None else self.steps // 2

    @property
    def save_steps(self) -> tuple[int, ...]:
        """After which step counts the interrupted run calls ``save``."""
        crash = self.crash_step
        if self.checkpoint_every is None:
            return (crash,)
        return tuple(range(self.checkpoint_every, crash + 1, self.checkpoint_every))

    def _plan(self, seed: int) -> _Plan:
        sequence = np.random.SeedSequence([seed, 0xC4EC])
        base, other = (int(v) for v in sequence.generate_state(2, np.uint32))
        if other == base:  # pragma: no cover - a 1 in 2**32 coincidence
            other = (base + 1) % 2**32
        return _Plan(seed, base, other, self.steps, self.crash_step, self.save_steps)

    def run(self, context: Context | None = None) -> Result:
        """Run the reference, crash, restore and compare; see the class docstring."""
        ctx = context if context is not None else Context()
        plan = self._plan(self.seed if self.seed is not None else ctx.seed)
        with ctx.tempdir() as workdir, preserve_global_rngs():
            path = workdir / "checkpoint.ckpt"
            if self.isolation == "process":
                return self._run_processes(ctx, plan, workdir, path)
            ctx.report(f"{self.name}: reference run of {plan.n_steps} steps")
            reference = self._reference(plan)
            ctx.report(f"{self.name}: interrupted run, crash after step {plan.crash_at}")
            prefix: list[float] = []
            try:
                _interrupted_steps(self.make_trainer, self.batches, plan, path, prefix.extend)
            except _SaveError as exc:
                return self._save_failed(plan, exc.step, exc.text)
            ctx.report(f"{self.name}: restoring from step {plan.restore_step}")
            restored = _restored_steps(self.make_trainer, self.batches, plan, path)
        return self._judge(plan, reference, prefix, restored)

    def _reference(
        self, plan: _Plan
    ) -> tuple[list[float], dict[str, np.ndarray], dict[str, np.ndarray]]:
        seed_global_rngs(plan.base_seed)
        trainer = self.make_trainer(plan.seed)
        losses: list[float] = []
        at_restore: dict[str, np.ndarray] = {}
        for step in range(plan.n_steps):
            losses.append(_loss_value(trainer.train_step(_batch_at(self.batches, step)), step))
            if step + 1 == plan.restore_step:
                at_restore = snapshot(trainer.state())
        return losses, at_restore, snapshot(trainer.state())

    def _run_processes(self, ctx: Context, plan: _Plan, workdir: Path, path: Path) -> Result:
        # The work order goes through a file, not the process arguments: a child that dies
        # while starting would leave the parent blocked writing large arguments to its pipe.
        job = workdir / "job.pkl"
        try:
            with open(job, "wb") as handle:
                pickle.dump(
                    (self.make_trainer, self.batches, plan),
                    handle,
                    protocol=pickle.HIGHEST_PROTOCOL,
                )
        except Exception as exc:
            raise InvalidInput(
                "isolation='process' needs make_trainer and batches that can be pickled "
                "(a function defined at the top level of an importable module, not a lambda, "
                f"a closure or a notebook cell): {type(exc).__name__}: {exc}"
            ) from exc
        mp = multiprocessing.get_context("spawn")
        parent, child = mp.Pipe()
        ctx.report(
            f"{self.name}: interrupted run in a child process, SIGKILL after step {plan.crash_at}"
        )
        first = mp.Process(
            target=_interrupted_child,
            args=(child, str(job), str(path)),
            name="mlchecks-interrupted",
            daemon=True,
        )
        first.start()
        child.close()
        try:
            ctx.report(f"{self.name}: reference run of {plan.n_steps} steps")
            reference = self._reference(plan)
            kind, payload = _receive(parent, first, self.timeout_s, "interrupted")
        finally:
            if first.is_alive():
                first.kill()  # SIGKILL on POSIX: the crash
            first.join(self.timeout_s)
            parent.close()
        details_exit = first.exitcode
        if kind == "save_error":
            step, text = payload
            return self._save_failed(plan, step, text)
        prefix = list(payload)

        ctx.report(f"{self.name}: restoring from step {plan.restore_step} in a new process")
        out = workdir / "restored.pkl"
        parent, child = mp.Pipe()
        second = mp.Process(
            target=_restore_child,
            args=(child, str(job), str(path), str(out)),
            name="mlchecks-restore",
            daemon=True,
        )
        second.start()
        child.close()
        try:
            _receive(parent, second, self.timeout_s, "restore")
            second.join(self.timeout_s)
        finally:
            if second.is_alive():
                second.kill()
                second.join(5)
            parent.close()
        with open(out, "rb") as handle:
            restored: _RestoredRun = pickle.load(handle)  # written by our own child
        result = self._judge(plan, reference, prefix, restored)
        details = {**result.details, "interrupted_exit_code": details_exit}
        return attrs.evolve(result, details=details)

    # ------------------------------------------------------------------ judging

    def _metrics(self, plan: _Plan) -> dict[str, float]:
        return {
            "n_steps": float(plan.n_steps),
            "crash_at": float(plan.crash_at),
            "restore_step": float(plan.restore_step),
        }

    def _details(self, plan: _Plan) -> dict[str, Any]:
        return {
            "isolation": self.isolation,
            "save_steps": list(plan.save_steps),
            "restore_step": plan.restore_step,
        }

    def _save_failed(self, plan: _Plan, step: int, text: str) -> Result:
        finding = Finding(
            "save",
            Status.FAIL,
            step,
            "save(path) succeeds",
            f"save(path) raised {text} when checkpointing after step {step}",
        )
        return Result.from_findings(
            self.name,
            [finding],
            metrics=self._metrics(plan),
            details=self._details(plan),
            rubric=self.rubric,
        )

    def _losses_equal(self, a: float, b: float) -> bool:
        if self.atol or self.rtol:
            return bool(np.isclose(b, a, atol=self.atol, rtol=self.rtol, equal_nan=True))
        return a == b or (math.isnan(a) and math.isnan(b))

    def _first_loss_difference(
        self, reference: Sequence[float], other: Sequence[float], start: int
    ) -> int | None:
        for offset, value in enumerate(other):
            if not self._losses_equal(reference[start + offset], value):
                return start + offset
        return None

    def _compare(
        self, expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]
    ) -> list[EntryDiff]:
        return compare_states(expected, actual, atol=self.atol, rtol=self.rtol, ignore=self.ignore)

    def _judge(
        self,
        plan: _Plan,
        reference_run: tuple[list[float], dict[str, np.ndarray], dict[str, np.ndarray]],
        prefix: list[float],
        restored: _RestoredRun,
    ) -> Result:
        reference, at_restore, final = reference_run
        c = plan.restore_step
        findings: list[Finding] = []
        metrics = self._metrics(plan)
        details = self._details(plan)
        details["reference_losses"] = reference
        details["restored_losses"] = restored.losses

        diverged = self._first_loss_difference(reference, prefix, 0)
        if diverged is None:
            findings.append(
                Finding(
                    "deterministic_prefix",
                    Status.PASS,
                    None,
                    "== reference",
                    f"the interrupted run's {len(prefix)} losses before the crash equal the "
                    "reference run's",
                )
            )
        else:
            findings.append(
                Finding(
                    "deterministic_prefix",
                    Status.FAIL,
                    diverged,
                    "== reference",
                    f"before any restore, the interrupted run's loss at step {diverged} is "
                    f"{_fmt(prefix[diverged])} but the reference run's is "
                    f"{_fmt(reference[diverged])}: training is not reproducible from "
                    "make_trainer(seed), so the restore cannot be verified (make it "
                    "deterministic, or set atol/rtol)",
                )
            )

        if restored.load_error is not None:
            findings.append(
                Finding(
                    "load",
                    Status.FAIL,
                    None,
                    "load(path) succeeds",
                    f"load(path) raised {restored.load_error} on the checkpoint written after "
                    f"step {c}",
                )
            )
            return Result.from_findings(
                self.name, findings, metrics=metrics, details=details, rubric=self.rubric
            )
        findings.append(
            Finding(
                "load",
                Status.PASS,
                None,
                "load(path) succeeds",
                f"load(path) restored the checkpoint written after step {c}",
            )
        )
        assert restored.after_load is not None

        at_load = self._compare(at_restore, restored.after_load)
        details["restored_state_diffs"] = [d.to_dict() for d in at_load]
        metrics["restored_state_entries_differing"] = float(len(at_load))
        findings.append(
            _state_finding(
                "restored_state",
                at_load,
                f"right after load(), state() equals the reference run's after step {c}",
                f"right after load(), state() differs from the reference run's after step {c} "
                f"in {_count(len(at_load), 'entry', 'entries')} (not saved or not restored by "
                "the checkpoint)",
            )
        )

        if self.step_key is not None and self.step_key in at_restore:
            findings.append(self._step_finding(at_restore, restored.after_load, c))

        if restored.train_error is not None:
            findings.append(
                Finding(
                    "losses_after_restore",
                    Status.FAIL,
                    restored.train_error_step,
                    "== reference",
                    f"train_step raised {restored.train_error} at step "
                    f"{restored.train_error_step}, after restoring from step {c}",
                )
            )
            return Result.from_findings(
                self.name, findings, metrics=metrics, details=details, rubric=self.rubric
            )

        first_diff = self._first_loss_difference(reference, restored.losses, c)
        if first_diff is None:
            findings.append(
                Finding(
                    "losses_after_restore",
                    Status.PASS,
                    None,
                    "== reference",
                    f"the {len(restored.losses)} losses after restoring from step {c} equal "
                    "the reference run's",
                )
            )
        else:
            metrics["first_differing_step"] = float(first_diff)
            got = restored.losses[first_diff - c]
            findings.append(
                Finding(
                    "losses_after_restore",
                    Status.FAIL,
                    first_diff,
                    "== reference",
                    f"after restoring from step {c}, the loss first differs at step "
                    f"{first_diff}: {got!r} instead of the reference's "
                    f"{reference[first_diff]!r} "
                    f"({_count(first_diff - c, 'step')} after the restore)",
                )
            )

        assert restored.final is not None
        at_end = self._compare(final, restored.final)
        details["final_state_diffs"] = [d.to_dict() for d in at_end]
        metrics["final_state_entries_differing"] = float(len(at_end))
        findings.append(
            _state_finding(
                "final_state",
                at_end,
                f"after {plan.n_steps} steps the restored run's state() equals the reference "
                f"run's in all {len(final)} entries",
                f"after {plan.n_steps} steps, the restored run's state() differs from the "
                f"uninterrupted run's in {len(at_end)} of {_count(len(final), 'entry', 'entries')}",
            )
        )
        return Result.from_findings(
            self.name,
            findings,
            pass_summary=(
                f"training {_CRASH[self.isolation]} after the checkpoint at step {c}, was "
                f"restored with load() and continued to step {plan.n_steps} exactly like the "
                f"uninterrupted run: every loss and all {len(final)} state entries equal"
            ),
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    def _step_finding(
        self, at_restore: Mapping[str, np.ndarray], after_load: Mapping[str, np.ndarray], c: int
    ) -> Finding:
        key = self.step_key
        assert key is not None
        expected = at_restore[key]
        got = after_load.get(key)
        ok = got is not None and np.array_equal(np.asarray(got), np.asarray(expected))
        observed = None
        if got is not None and np.asarray(got).size == 1:
            observed = float(np.asarray(got).reshape(-1)[0])
        if ok:
            message = f"after load(), the step counter {key!r} is {expected.tolist()!r}, as saved"
        elif got is None:
            message = f"after load(), state() has no step counter {key!r}"
        else:
            message = (
                f"after load(), the step counter {key!r} is {np.asarray(got).tolist()!r}; the "
                f"checkpoint was written after step {c}, when it was {expected.tolist()!r}"
            )
        return Finding(
            "step_counter",
            Status.PASS if ok else Status.FAIL,
            observed,
            f"== {expected.tolist()!r}",
            message,
        )


def _state_finding(name: str, diffs: Sequence[EntryDiff], ok: str, bad: str) -> Finding:
    if not diffs:
        return Finding(name, Status.PASS, 0.0, "== 0 entries differ", ok)
    return Finding(
        name,
        Status.FAIL,
        len(diffs),
        "== 0 entries differ",
        f"{bad}: {summarize_diffs(diffs)}",
    )


_CRASH = {"process": "was killed with SIGKILL", "inprocess": "was discarded"}


def _loss_pass_summary(metrics: Mapping[str, float]) -> str | None:
    keys = ("first_loss", "last_loss", "n_steps", "relative_drop", "tau", "pvalue")
    if not all(k in metrics for k in keys):
        return None
    return (
        f"the loss fell from {_fmt(metrics['first_loss'])} to {_fmt(metrics['last_loss'])} "
        f"over {int(metrics['n_steps'])} steps ({metrics['relative_drop']:.0%} lower; Kendall "
        f"tau {metrics['tau']:.2f} on block means, p = {metrics['pvalue']:.2g})"
    )
