"""The three training runs of `CheckpointRestoreCheck`, in this process or in child processes.

The interrupted and the restored runs read a picklable `Plan`; with ``crash_mode="process"``
each runs in a child process started with ``"spawn"``, which reports back through a pipe
(`receive`) and is killed with ``SIGKILL`` after its checkpoint is written.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import pickle
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlchecks._deadline import Deadline
from mlchecks.checks._state import loss_value, seed_global_rngs, snapshot
from mlchecks.exceptions import CheckTimeout, InvalidInput
from mlchecks.protocols import Trainer

__all__ = [
    "ChildFailed",
    "Plan",
    "RestoredRun",
    "Runs",
    "SaveError",
    "batch_at",
    "interrupted_child",
    "interrupted_steps",
    "receive",
    "reference_run",
    "restore_child",
    "restored_steps",
    "run_in_process",
    "run_in_processes",
]


@attrs.frozen
class Plan:
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
class RestoredRun:
    """What the restored run reports back (from this process or a child)."""

    after_load: dict[str, np.ndarray] | None
    final: dict[str, np.ndarray] | None
    losses: list[float]
    load_error: str | None = None
    train_error: str | None = None
    train_error_step: int | None = None


@attrs.frozen
class Runs:
    """What the three runs left: the reference, the interrupted prefix, the restored run.

    ``save_error`` is ``(step, text)`` when the user's ``save`` raised; then nothing was
    restored (``restored`` is None).
    """

    reference: list[float]
    at_restore: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    prefix: list[float]
    restored: RestoredRun | None
    save_error: tuple[int, str] | None = None
    interrupted_exit_code: int | None = None


def batch_at(batches: Sequence[Any], step: int) -> Any:
    """The batch of ``step``: the batches repeat."""
    return batches[step % len(batches)]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class SaveError(Exception):
    """The user's ``save(path)`` raised after ``step``."""

    def __init__(self, step: int, text: str) -> None:
        super().__init__(step, text)
        self.step = step
        self.text = text


def reference_run(
    make_trainer: Callable[[int], Trainer], batches: Sequence[Any], plan: Plan
) -> tuple[list[float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The uninterrupted run: its losses, its state at the restore step and at the end."""
    seed_global_rngs(plan.base_seed)
    trainer = make_trainer(plan.seed)
    losses: list[float] = []
    at_restore: dict[str, np.ndarray] = {}
    for step in range(plan.n_steps):
        losses.append(loss_value(trainer.train_step(batch_at(batches, step)), step))
        if step + 1 == plan.restore_step:
            at_restore = snapshot(trainer.state())
    return losses, at_restore, snapshot(trainer.state())


def interrupted_steps(
    make_trainer: Callable[[int], Trainer],
    batches: Sequence[Any],
    plan: Plan,
    path: Path,
    on_crash_point: Callable[[list[float]], None],
) -> None:
    """Train to the crash point, saving at ``plan.save_steps``; save errors raise `SaveError`."""
    seed_global_rngs(plan.base_seed)
    trainer = make_trainer(plan.seed)
    losses: list[float] = []
    saves = set(plan.save_steps)
    for step in range(plan.crash_at):
        losses.append(loss_value(trainer.train_step(batch_at(batches, step)), step))
        if step + 1 in saves:
            try:
                trainer.save(path)
            except Exception as exc:
                raise SaveError(step + 1, _error_text(exc)) from exc
    on_crash_point(losses)


def restored_steps(
    make_trainer: Callable[[int], Trainer], batches: Sequence[Any], plan: Plan, path: Path
) -> RestoredRun:
    """Build a fresh trainer, re-seed the globals differently, load, and train to the end."""
    seed_global_rngs(plan.base_seed)
    trainer = make_trainer(plan.seed)
    seed_global_rngs(plan.other_seed)
    try:
        trainer.load(path)
    except Exception as exc:
        return RestoredRun(None, None, [], load_error=_error_text(exc))
    after_load = snapshot(trainer.state())
    losses: list[float] = []
    for step in range(plan.restore_step, plan.n_steps):
        try:
            loss = trainer.train_step(batch_at(batches, step))
        except Exception as exc:
            return RestoredRun(
                after_load, None, losses, train_error=_error_text(exc), train_error_step=step
            )
        losses.append(loss_value(loss, step))
    return RestoredRun(after_load, snapshot(trainer.state()), losses)


def _load_job(job: str) -> tuple[Callable[[int], Trainer], Sequence[Any], Plan]:
    """The child's work order, written by the parent (our own file: trusted)."""
    with open(job, "rb") as handle:
        make_trainer, batches, plan = pickle.load(handle)
    return make_trainer, batches, plan


def interrupted_child(conn: Any, job: str, path: str) -> None:  # pragma: no cover - child
    """Child process 1: train, checkpoint, report the crash point, then wait to be killed."""
    try:
        make_trainer, batches, plan = _load_job(job)
        interrupted_steps(
            make_trainer,
            batches,
            plan,
            Path(path),
            lambda losses: conn.send(("crash_point", losses)),
        )
    except SaveError as exc:
        conn.send(("save_error", (exc.step, exc.text)))
        return
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.recv()  # blocks until the parent's SIGKILL: no cleanup, no atexit


def restore_child(conn: Any, job: str, path: str, out: str) -> None:  # pragma: no cover
    """Child process 2: restore from the checkpoint and finish training; pickle the outcome."""
    try:
        make_trainer, batches, plan = _load_job(job)
        run = restored_steps(make_trainer, batches, plan, Path(path))
        with open(out, "wb") as handle:
            pickle.dump(run, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("done", out))


class ChildFailed(RuntimeError):
    """A child process of `CheckpointRestoreCheck` failed in the user's code or died."""


def receive(conn: Any, process: Any, timeout_s: float, what: str) -> tuple[str, Any]:
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
        raise ChildFailed(died.format(process.exitcode))
    try:
        kind, payload = conn.recv()
    except (EOFError, OSError):
        process.join(5)
        raise ChildFailed(died.format(process.exitcode)) from None
    if kind == "error":
        process.join(5)
        raise ChildFailed(f"the {what} child process raised:\n{payload}")
    return kind, payload


def run_in_process(
    make_trainer: Callable[[int], Trainer],
    batches: Sequence[Any],
    plan: Plan,
    path: Path,
    report: Callable[[str], None],
) -> Runs:
    """The three runs in this process; the interrupted trainer is simply discarded."""
    report(f"reference run of {plan.n_steps} steps")
    reference, at_restore, final = reference_run(make_trainer, batches, plan)
    report(f"interrupted run, crash after step {plan.crash_at}")
    prefix: list[float] = []
    try:
        interrupted_steps(make_trainer, batches, plan, path, prefix.extend)
    except SaveError as exc:
        return Runs(reference, at_restore, final, prefix, None, (exc.step, exc.text))
    report(f"restoring from step {plan.restore_step}")
    restored = restored_steps(make_trainer, batches, plan, path)
    return Runs(reference, at_restore, final, prefix, restored)


def run_in_processes(
    make_trainer: Callable[[int], Trainer],
    batches: Sequence[Any],
    plan: Plan,
    workdir: Path,
    path: Path,
    timeout_s: float,
    report: Callable[[str], None],
    deadline: Deadline,
) -> Runs:
    """The interrupted and the restored runs in child processes; the first gets SIGKILL.

    Every wait for a child is cut to the time ``deadline`` leaves (a child still running
    then is killed, and `CheckTimeout` raised); the reference run in this process runs
    through `Deadline.call`.
    """

    def wait(conn: Any, process: Any, what: str) -> tuple[str, Any]:
        limit = deadline.bound(timeout_s)
        assert limit is not None
        try:
            return receive(conn, process, limit, what)
        except TimeoutError:
            if limit < timeout_s:
                raise CheckTimeout(deadline.message(f"waiting for the {what} child")) from None
            raise

    # The work order goes through a file, not the process arguments: a child that dies
    # while starting would leave the parent blocked writing large arguments to its pipe.
    job = workdir / "job.pkl"
    try:
        with open(job, "wb") as handle:
            pickle.dump((make_trainer, batches, plan), handle, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise InvalidInput(
            "crash_mode='process' needs make_trainer and batches that can be pickled "
            "(a function defined at the top level of an importable module, not a lambda, "
            f"a closure or a notebook cell): {type(exc).__name__}: {exc}"
        ) from exc
    mp = multiprocessing.get_context("spawn")
    parent, child = mp.Pipe()
    report(f"interrupted run in a child process, SIGKILL after step {plan.crash_at}")
    first = mp.Process(
        target=interrupted_child,
        args=(child, str(job), str(path)),
        name="mlchecks-interrupted",
        daemon=True,
    )
    first.start()
    child.close()
    try:
        report(f"reference run of {plan.n_steps} steps")
        reference, at_restore, final = deadline.call(
            reference_run, make_trainer, batches, plan, doing="the reference run"
        )
        kind, payload = wait(parent, first, "interrupted")
    finally:
        if first.is_alive():
            first.kill()  # SIGKILL on POSIX: the crash
        first.join(timeout_s)
        parent.close()
    if kind == "save_error":
        step, text = payload
        return Runs(reference, at_restore, final, [], None, (step, text), first.exitcode)
    prefix = list(payload)

    report(f"restoring from step {plan.restore_step} in a new process")
    out = workdir / "restored.pkl"
    parent, child = mp.Pipe()
    second = mp.Process(
        target=restore_child,
        args=(child, str(job), str(path), str(out)),
        name="mlchecks-restore",
        daemon=True,
    )
    second.start()
    child.close()
    try:
        wait(parent, second, "restore")
        second.join(deadline.bound(timeout_s))
    finally:
        if second.is_alive():
            second.kill()
            second.join(5)
        parent.close()
    with open(out, "rb") as reader:
        restored: RestoredRun = pickle.load(reader)  # written by our own child
    return Runs(reference, at_restore, final, prefix, restored, None, first.exitcode)
