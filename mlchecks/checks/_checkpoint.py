"""`CheckpointRestoreCheck`: training survives a crash and a restore (rubric test 2).

The runs themselves live in `mlchecks.checks._checkpoint_runs`; this module holds the
check's fields and its judging. The public import path is `mlchecks.checks.training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks import _fields
from mlchecks._deadline import Deadline
from mlchecks._text import fmt, plural
from mlchecks._validate import callable_field, describe, int_at_least, optional
from mlchecks.check import Context
from mlchecks.checks._checkpoint_runs import (
    Plan,
    RestoredRun,
    Runs,
    run_in_process,
    run_in_processes,
)
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._state import (
    batches_field,
    compare_states,
    preserve_global_rngs,
    summarize_diffs,
    validate_patterns,
)
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer
from mlchecks.result import Result, Status

__all__ = ["CheckpointRestoreCheck"]

#: How the interrupted run ends, in words, for each ``crash_mode``.
_CRASH = {"process": "was killed with SIGKILL", "inprocess": "was discarded"}
_SAME = "== reference"


def _ignore_patterns(value: Any) -> tuple[str, ...]:
    return validate_patterns(value, "ignore")


#: How the interrupted run crashes.
CRASH_MODES = ("inprocess", "process")


def _optional_str(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'{attribute.name}' must be a string or None (got {describe(value)})")


@_fields.renamed(
    {
        "isolation": "crash_mode",
        "atol": "state_atol",
        "rtol": "state_rtol",
        "timeout_s": "process_timeout_s",
    }
)
@attrs.frozen(kw_only=True, eq=False)
class CheckpointRestoreCheck:
    """Training restored from your checkpoint after a crash continues exactly as if uninterrupted.

    Three runs from ``make_trainer(seed)`` on the same ``batches`` (step ``i`` uses
    ``batches[i % len(batches)]``), each started with the global generators (``random``,
    numpy's, torch's when imported) seeded alike:

    1. the **reference**: ``n_steps`` steps without interruption;
    2. the **interrupted** run: trains to ``crash_at``, writing checkpoints with your
       ``save(path)`` after step ``crash_at`` (or every ``checkpoint_every`` steps), then
       crashes: the trainer object is discarded (``crash_mode="inprocess"``), or the child
       process running it is killed with ``SIGKILL`` right after the checkpoint is written
       (``crash_mode="process"``: no cleanup, no atexit);
    3. the **restored** run: a fresh ``make_trainer(seed)``, then the global generators are
       re-seeded with *other* values (so random state the checkpoint does not restore shows),
       then your ``load(path)``, then training continues from the last checkpoint to
       ``n_steps`` (in another child process with ``crash_mode="process"``).

    Findings (losses and entries compared bitwise unless ``state_atol``/``state_rtol`` are
    given; names matching an ``ignore`` pattern are skipped):

    - ``deterministic_prefix``: the interrupted run's losses before the crash equal the
      reference's (otherwise training is not reproducible and nothing can be verified);
    - ``loss_finite``: every loss of every run is finite; a NaN or infinity FAILS naming
      the run and its first step (equal NaN losses prove nothing about the restore);
    - ``save``: FAILS when ``save(path)`` raised (and nothing else is judged);
    - ``load``: ``load(path)`` ran (an exception FAILS with its message);
    - ``restored_state``: ``state()`` right after ``load`` equals the reference's at the
      checkpoint step; every differing entry is named (what the checkpoint forgot);
    - ``step_counter``: the ``step_key`` entry after ``load`` is the checkpoint step;
    - ``losses_after_restore``: the losses after the restore equal the reference's; the
      first differing step is named;
    - ``final_state``: the final ``state()`` equals the reference's, entry by entry.

    With ``crash_mode="process"`` the children are started with the ``"spawn"`` method:
    ``make_trainer`` and ``batches`` must be picklable (a function defined at module level
    of an importable module, not a lambda or a notebook cell), and a script that runs the
    check needs the ``if __name__ == "__main__":`` guard.

    Args:
        make_trainer: a factory ``seed -> Trainer`` (required).
        batches: the deterministic batch sequence.
        seed: the seed every run's trainer is built with (None: the context's seed).
        n_steps: total steps (None: ``len(batches)``).
        crash_at: the step after which the interrupted run crashes (None: half-way).
        checkpoint_every: save every this many steps instead of once at ``crash_at``; the
            restore then starts from the last checkpoint at or before ``crash_at``.
        crash_mode: ``"inprocess"`` or ``"process"`` (a real crash of a child process).
        state_atol, state_rtol: tolerances for comparing losses and floating state entries.
        ignore: state names or `fnmatch` patterns left out of the comparison.
        step_key: the state entry holding the step counter (None: no step check).
        process_timeout_s: the longest wait for each child process.
        check_timeout_s: the longest the whole check may take, the three runs included
            (in-process training runs on a worker thread; child processes are killed);
            past it the check ends in ERROR naming the step. None: no limit.

    Raises:
        InvalidInput: a field is out of range, or ``make_trainer`` is not callable.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> batches = DemoSystem(seed=0).batches(0)[:20]
    >>> result = CheckpointRestoreCheck(make_trainer=make_trainer, batches=batches).run()
    >>> result.status
    <Status.PASS: 'pass'>
    """

    make_trainer: Callable[[int], Trainer] = attrs.field(validator=callable_field)
    batches: tuple[Any, ...] = attrs.field(converter=batches_field, repr=False)
    seed: int | None = _fields.seed()
    n_steps: int | None = _fields.count(None, minimum=2, optional=True)
    crash_at: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    checkpoint_every: int | None = attrs.field(default=None, validator=optional(int_at_least(1)))
    crash_mode: Literal["inprocess", "process"] = _fields.choice("inprocess", *CRASH_MODES)
    state_atol: float = _fields.tolerance(0.0)
    state_rtol: float = _fields.tolerance(0.0)
    ignore: tuple[str, ...] = attrs.field(default=(), converter=_ignore_patterns)
    step_key: str | None = attrs.field(default="step", validator=_optional_str)
    process_timeout_s: float = _fields.seconds(300.0)
    check_timeout_s: float | None = _fields.seconds(3600.0, optional=True)
    name: str = _fields.name_field("checkpoint_restore")
    rubric: int | None = _fields.rubric(2)
    global_state = ("rng",)  # runs user training code: one at a time on threads (see Check)

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

    def _plan(self, seed: int) -> Plan:
        sequence = np.random.SeedSequence([seed, 0xC4EC])
        base, other = (int(v) for v in sequence.generate_state(2, np.uint32))
        if other == base:  # pragma: no cover - a 1 in 2**32 coincidence
            other = (base + 1) % 2**32
        return Plan(seed, base, other, self.steps, self.crash_step, self.save_steps)

    def run(self, context: Context | None = None) -> Result:
        """Run the reference, crash, restore and compare; see the class docstring."""
        ctx = context if context is not None else Context()
        plan = self._plan(_fields.resolve_seed(self.seed, ctx))

        deadline = Deadline(self.check_timeout_s, self.name)

        def report(line: str) -> None:
            deadline.check(line)
            ctx.report(f"{self.name}: {line}")

        with deadline, ctx.tempdir() as workdir, preserve_global_rngs():
            path = workdir / "checkpoint.ckpt"
            if self.crash_mode == "process":
                runs = run_in_processes(
                    self.make_trainer,
                    self.batches,
                    plan,
                    workdir,
                    path,
                    self.process_timeout_s,
                    report,
                    deadline,
                )
            else:
                runs = deadline.call(
                    run_in_process,
                    self.make_trainer,
                    self.batches,
                    plan,
                    path,
                    report,
                    doing="training the reference run",
                )
        return self._judge(plan, runs)

    # ------------------------------------------------------------------ judging

    def _builder(self, plan: Plan) -> ResultBuilder:
        b = ResultBuilder.of(self)
        b.update_metrics(
            {
                "n_steps": plan.n_steps,
                "crash_at": plan.crash_at,
                "restore_step": plan.restore_step,
            }
        )
        b.detail("crash_mode", self.crash_mode)
        b.detail("save_steps", list(plan.save_steps))
        b.detail("restore_step", plan.restore_step)
        return b

    def _losses_equal(self, a: float, b: float) -> bool:
        if self.state_atol or self.state_rtol:
            close = np.isclose(b, a, atol=self.state_atol, rtol=self.state_rtol, equal_nan=True)
            return bool(close)
        return a == b or (math.isnan(a) and math.isnan(b))

    def _first_loss_difference(
        self, reference: Sequence[float], other: Sequence[float], start: int
    ) -> int | None:
        for offset, value in enumerate(other):
            if not self._losses_equal(reference[start + offset], value):
                return start + offset
        return None

    def _judge_state(
        self,
        b: ResultBuilder,
        name: str,
        expected: Mapping[str, np.ndarray],
        actual: Mapping[str, np.ndarray],
        ok: str,
        bad: Callable[[int], str],
    ) -> None:
        """Compare two snapshots and record finding ``name`` and its metric and detail.

        ``bad(n)`` words a failure with ``n`` differing entries (the entries follow it).
        """
        diffs = compare_states(
            expected, actual, atol=self.state_atol, rtol=self.state_rtol, ignore=self.ignore
        )
        b.detail(f"{name}_diffs", [d.to_dict() for d in diffs])
        b.metric(f"{name}.n_differing", len(diffs))
        limit = "== 0 entries differ"
        if not diffs:
            b.note(name, Status.PASS, ok, observed=0.0, limit=limit)
        else:
            message = f"{bad(len(diffs))}: {summarize_diffs(diffs)}"
            b.note(name, Status.FAIL, message, observed=len(diffs), limit=limit)

    def _judge(self, plan: Plan, runs: Runs) -> Result:
        b = self._builder(plan)
        if runs.save_error is not None:
            step, text = runs.save_error
            b.note(
                "save",
                Status.FAIL,
                f"save(path) raised {text} when checkpointing after step {step}",
                observed=step,
                limit="save(path) succeeds",
            )
            b.lead("save", "Saving a checkpoint failed")
            return b.result()
        restored = runs.restored
        assert restored is not None
        if runs.interrupted_exit_code is not None:
            b.detail("interrupted_exit_code", runs.interrupted_exit_code)
        b.detail("reference_losses", runs.reference)
        b.detail("restored_losses", restored.losses)
        self._judge_prefix(b, runs.reference, runs.prefix)
        c = plan.restore_step
        if restored.load_error is not None:
            b.note(
                "load",
                Status.FAIL,
                f"load(path) raised {restored.load_error} on the checkpoint written after step {c}",
                limit="load(path) succeeds",
            )
            b.lead("load", f"Loading the checkpoint written after step {c} failed")
            return b.result()
        b.note(
            "load",
            Status.PASS,
            f"load(path) restored the checkpoint written after step {c}",
            limit="load(path) succeeds",
        )
        assert restored.after_load is not None
        self._judge_state(
            b,
            "restored_state",
            runs.at_restore,
            restored.after_load,
            f"right after load(), state() equals the reference run's after step {c}",
            lambda n: (
                f"right after load(), state() differs from the reference run's after step {c} "
                f"in {plural(n, 'entry', 'entries')} (not saved or not restored by the "
                "checkpoint)"
            ),
        )
        if self.step_key is not None and self.step_key in runs.at_restore:
            self._judge_step(b, runs.at_restore, restored.after_load, c)
        if restored.train_error is not None:
            b.note(
                "losses_after_restore",
                Status.FAIL,
                f"train_step raised {restored.train_error} at step "
                f"{restored.train_error_step}, after restoring from step {c}",
                observed=restored.train_error_step,
                limit=_SAME,
            )
            b.lead("losses_after_restore", "Training failed after restoring the checkpoint")
            _lead(b, c, len(runs.at_restore), plan.n_steps)
            return b.result()
        self._judge_losses(b, runs.reference, restored, c)
        _judge_finite(b, {"reference": runs.reference, "restored": restored.losses}, c)
        assert restored.final is not None
        n_entries = len(runs.final)
        self._judge_state(
            b,
            "final_state",
            runs.final,
            restored.final,
            f"after {plan.n_steps} steps the restored run's state() equals the reference "
            f"run's in all {n_entries} entries",
            lambda n: (
                f"after {plan.n_steps} steps, the restored run's state() differs from the "
                f"uninterrupted run's in {n} of {plural(n_entries, 'entry', 'entries')}"
            ),
        )
        _lead(b, c, len(runs.at_restore), plan.n_steps)
        return b.result(
            pass_summary=(
                f"Training {_CRASH[self.crash_mode]} after the checkpoint at step {c}, was "
                f"restored with load() and continued to step {plan.n_steps} exactly like the "
                f"uninterrupted run: every loss and all {n_entries} state entries equal."
            )
        )

    def _judge_prefix(self, b: ResultBuilder, reference: list[float], prefix: list[float]) -> None:
        diverged = self._first_loss_difference(reference, prefix, 0)
        if diverged is None:
            b.note(
                "deterministic_prefix",
                Status.PASS,
                f"the interrupted run's {len(prefix)} losses before the crash equal the "
                "reference run's",
                limit=_SAME,
            )
            return
        b.note(
            "deterministic_prefix",
            Status.FAIL,
            f"before any restore, the interrupted run's loss at step {diverged} is "
            f"{fmt(prefix[diverged])} but the reference run's is {fmt(reference[diverged])}: "
            "training is not reproducible from make_trainer(seed), so the restore cannot be "
            "verified (make it deterministic, or set state_atol/state_rtol)",
            observed=diverged,
            limit=_SAME,
        )

    def _judge_losses(
        self, b: ResultBuilder, reference: list[float], restored: RestoredRun, c: int
    ) -> None:
        first_diff = self._first_loss_difference(reference, restored.losses, c)
        if first_diff is None:
            b.note(
                "losses_after_restore",
                Status.PASS,
                f"the {len(restored.losses)} losses after restoring from step {c} equal "
                "the reference run's",
                limit=_SAME,
            )
            return
        b.metric("first_loss_difference_step", first_diff)
        got = restored.losses[first_diff - c]
        b.note(
            "losses_after_restore",
            Status.FAIL,
            f"after restoring from step {c}, the loss first differs at step {first_diff}: "
            f"{got!r} instead of the reference's {reference[first_diff]!r} "
            f"({plural(first_diff - c, 'step')} after the restore)",
            observed=first_diff,
            limit=_SAME,
        )

    def _judge_step(
        self,
        b: ResultBuilder,
        at_restore: Mapping[str, np.ndarray],
        after_load: Mapping[str, np.ndarray],
        c: int,
    ) -> None:
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
        status = Status.PASS if ok else Status.FAIL
        b.note(
            "step_counter", status, message, observed=observed, limit=f"== {expected.tolist()!r}"
        )


def _lead(b: ResultBuilder, c: int, n_entries: int, n_steps: int) -> None:
    """Open each failing finding with a plain sentence: what the restore got wrong."""
    differing = int(b.metrics.get("restored_state.n_differing", 0))
    b.lead(
        "deterministic_prefix",
        "Training gives different losses even without a restore, so the restore cannot be judged",
    )
    b.lead(
        "restored_state",
        f"The checkpoint written after step {c} did not bring back {differing} of "
        f"{plural(n_entries, 'state entry', 'state entries')}",
    )
    b.lead("step_counter", f"The checkpoint written after step {c} did not restore the step count")
    b.lead(
        "losses_after_restore",
        f"Training resumed from the checkpoint at step {c} did not continue like the "
        "uninterrupted run",
    )
    b.lead("loss_finite", "Training diverged")
    b.lead(
        "final_state",
        f"After {n_steps} training steps the restored run ends in a different state from the "
        "uninterrupted run",
    )


def _judge_finite(b: ResultBuilder, runs: Mapping[str, Sequence[float]], restore_step: int) -> None:
    """``loss_finite``: the first NaN or infinite loss of any run FAILS, naming its step."""
    for name, losses in runs.items():
        start = restore_step if name == "restored" else 0
        values = np.asarray(losses, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            step = start + int(bad[0])
            b.metric("loss.first_nonfinite_step", step)
            b.note(
                "loss_finite",
                Status.FAIL,
                f"the {name} run's loss is {values[bad[0]]!r} at step {step} ({bad.size:,} of "
                f"{values.size:,} losses are NaN or infinite, steps counted from 0): training "
                "diverged, so equal losses after the restore prove nothing",
                observed=step,
                limit="finite",
            )
            return
    b.note("loss_finite", Status.PASS, "every loss of every run is finite", limit="finite")
