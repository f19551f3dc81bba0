"""Rubric test 5: a single example or training batch can be sent to the model.

"Test that a single example or training batch can be sent to the model, and changes to
internal state can be observed from training through to prediction. Observing internal
state on small amounts of data is a useful debugging strategy for issues like numerical
instability" (Breck et al., ML Test Score).

`SingleBatchCheck` sends one batch and one example through ``train_step`` and ``predict``
on copies of your trainer (or fresh ones from ``make_trainer``), records every ``state()``
entry before and after (changed or not, max |delta|, update ratio ``||delta|| / ||w||``,
finite, norm), the gradients when the trainer offers ``gradients()`` and named
activations when it offers ``trace(inputs)``, and judges them. What it collects is in
`mlchecks.checks._single_batch_probe`, how it judges in `mlchecks.checks._single_batch_judge`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from mlchecks import _fields
from mlchecks._deadline import Deadline
from mlchecks._fields import Range, held_range
from mlchecks._text import plural
from mlchecks._validate import callable_field, describe, optional
from mlchecks.check import Context
from mlchecks.checks import _single_batch_judge as judge
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._single_batch_probe import (
    Probe,
    array_stats,
    collect,
    is_float,
    n_rows,
    rows,
    tensor_row,
)
from mlchecks.checks._state import (
    ISOLATIONS,
    EntryDiff,
    Isolation,
    matches,
    note_restored,
    one_source,
    run_isolated,
    trainer_or_none,
    validate_patterns,
)
from mlchecks.conditions import Between
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer
from mlchecks.result import Result, Status

__all__ = ["SingleBatchCheck"]


def _trainable(value: Any) -> tuple[str, ...] | None:
    return None if value is None else validate_patterns(value, "trainable")


def _frozen(value: Any) -> tuple[str, ...]:
    return validate_patterns(value, "frozen")


@_fields.renamed(
    {"update_ratio": "update_ratio_range", "atol": "prediction_atol", "rtol": "prediction_rtol"}
)
@attrs.frozen(kw_only=True, eq=False)
class SingleBatchCheck:
    """One example and one batch go through training and prediction; internal state is sane.

    On copies of ``trainer`` (or fresh ``make_trainer(seed)`` trainers; your trainer is
    left bitwise as it was) the check:

    1. predicts ``inputs`` as a batch, then each of the first ``n_compare`` examples alone;
    2. runs ``train_step(batch)`` and records every ``state()`` entry before and after,
       the ``gradients()`` and the ``trace(inputs)`` activations when the trainer has them,
       and the predictions after the step;
    3. runs ``train_step(example)`` on a fresh copy (skipped with ``train_example=False``,
       for models that cannot train on one example, such as those with batch norm).

    Findings (each names the tensors, examples or entries at fault):

    - ``loss_finite``, ``state_finite``, ``gradients_finite``, ``activations_finite``,
      ``outputs_finite``: no NaN or infinity anywhere after one step;
    - ``trainable_changed``: every trainable entry changed (``trainable`` patterns; by
      default the names ``gradients()`` reports, else every floating-point entry not
      ``frozen``); a dead parameter FAILS here;
    - ``frozen_parameters``: every parameter that takes no gradient (``gradients()``
      reports it with None, as `TorchTrainer` does for ``requires_grad=False``) is
      declared in ``frozen``; one that is not FAILS by name (a layer frozen by mistake
      never trains);
    - ``frozen_unchanged``: entries matching ``frozen`` did not change;
    - ``update_ratio``: ``||delta|| / ||w||`` of each trainable entry is inside
      ``update_ratio_range`` (about 1e-3 is typical for one step; far below means the
      update is lost, far above means the step size overwhelms the weights); outside it the
      finding takes the range's severity, WARN by default;
    - ``prediction_changed``: the predictions after the step differ from before (the
      update reaches prediction);
    - ``predict_stateless``: ``predict`` changed no state entry (batch-norm statistics
      updated in train mode, a generator consumed by dropout left on);
    - ``single_example``: ``predict`` on one example works and returns shape
      ``(1, *batch_outputs.shape[1:])``;
    - ``single_vs_batch``: each example's prediction alone equals its prediction inside
      the batch within ``prediction_atol + prediction_rtol * |batch value|`` (batch norm in
      train mode, padding
      and other batch-dependent bugs FAIL here);
    - ``example_step``: one training step on a single example runs and stays finite;
    - ``trainer_restored``: your trainer's ``state()`` is bitwise what it was.

    Batches: a tuple, list or mapping ``batch`` is a structure of parallel arrays (such as
    ``(inputs, targets)``) and one example is row 0 of each; for ``inputs`` only tuples and
    mappings are structures (a list is a list of examples). Pass ``example`` and ``inputs``
    yourself for other layouts.

    Args:
        batch: a training batch of at least 2 examples, as ``train_step`` takes it.
        trainer: a `Trainer` to copy (exactly one of ``trainer`` and ``make_trainer``).
        make_trainer: a factory ``seed -> Trainer``.
        seed: the seed for ``make_trainer`` (None: the context's seed).
        inputs: prediction inputs of at least 2 examples (None: ``batch[0]``).
        example: a one-example training batch (None: row 0 of ``batch``).
        train_example: also train on one example.
        trainable: state names or `fnmatch` patterns that must change in one step.
        frozen: state names or patterns that must not change.
        update_ratio_range: the allowed update ratios, a ``(low, high)`` pair (outside it
            FAILS) or `Between` with the severity you choose (default
            ``Between(1e-7, 1.0, severity="warn")``: outside it WARNS).
        n_compare: how many examples are predicted alone and compared.
        prediction_atol, prediction_rtol: tolerance of the single-vs-batch comparison.
        isolation: ``"copy"``, ``"checkpoint"`` or ``"auto"`` (see `LossDecreasesCheck`).
        check_timeout_s: the longest the whole check may take (see `LossDecreasesCheck`).

    Raises:
        InvalidInput: a field is out of range, not exactly one trainer source is given,
            or ``inputs`` is None and ``batch`` is not a tuple or list.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> batch = DemoSystem(seed=0).batches(0)[0]
    >>> result = SingleBatchCheck(make_trainer=make_trainer, batch=batch).run()
    >>> result.status, len(result.details["tensors"])
    (<Status.PASS: 'pass'>, 15)
    """

    batch: Any = attrs.field(repr=False)
    trainer: Trainer | None = attrs.field(default=None, validator=trainer_or_none)
    make_trainer: Callable[[int], Trainer] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    seed: int | None = _fields.seed()
    inputs: Any = attrs.field(default=None, repr=False)
    example: Any = attrs.field(default=None, repr=False)
    train_example: bool = _fields.flag(True)
    trainable: tuple[str, ...] | None = attrs.field(default=None, converter=_trainable)
    frozen: tuple[str, ...] = attrs.field(default=(), converter=_frozen)
    # The default WARNS (as before 0.2).
    update_ratio_range: Range = _fields.band(Between(1e-7, 1.0, severity=Status.WARN), low=0.0)
    n_compare: int = _fields.count(8, minimum=1)
    prediction_atol: float = _fields.tolerance(1e-6)
    prediction_rtol: float = _fields.tolerance(1e-5)
    isolation: Isolation = _fields.choice("auto", *ISOLATIONS)
    check_timeout_s: float | None = _fields.seconds(3600.0, optional=True)
    name: str = _fields.name_field("single_batch")
    rubric: int | None = _fields.rubric(5)
    global_state = ("rng",)  # runs user training code: one at a time on threads (see Check)

    def __attrs_post_init__(self) -> None:
        one_source(self.trainer, self.make_trainer)
        n_batch = n_rows(self.batch, lists=True, name="batch")
        if n_batch < 2:
            raise InvalidInput(f"'batch' must hold at least 2 examples (got {n_batch})")
        if self.inputs is None and not isinstance(self.batch, tuple | list):
            raise InvalidInput(
                "'inputs' is required when 'batch' is not a tuple or list whose first item is "
                f"the inputs (got batch {describe(self.batch)})"
            )
        n_inputs = n_rows(self.prediction_inputs, lists=False, name="inputs")
        if n_inputs < 2:
            raise InvalidInput(f"'inputs' must hold at least 2 examples (got {n_inputs})")

    @property
    def prediction_inputs(self) -> Any:
        """The inputs predicted as a batch and example by example."""
        return self.inputs if self.inputs is not None else self.batch[0]

    @property
    def one_example(self) -> Any:
        """The one-example training batch."""
        return self.example if self.example is not None else rows(self.batch, 0, 1, lists=True)

    def run(self, context: Context | None = None) -> Result:
        """Probe the trainer and judge what was observed; see the class docstring."""
        ctx = context if context is not None else Context()
        ctx.report(f"{self.name}: one training step on a batch")
        with Deadline(self.check_timeout_s, self.name) as deadline:
            probe, changed, mode = run_isolated(
                ctx,
                trainer=self.trainer,
                make_trainer=self.make_trainer,
                seed=_fields.resolve_seed(self.seed, ctx),
                isolation=self.isolation,
                work=lambda source: collect(
                    source,
                    batch=self.batch,
                    inputs=self.prediction_inputs,
                    example=self.one_example if self.train_example else None,
                    n_compare=self.n_compare,
                ),
                deadline=deadline,
                doing="train_step and predict on the batch",
            )
        return self._judge(probe, changed, mode)

    def _trainable_names(self, probe: Probe) -> tuple[list[str], str]:
        state = probe.before
        if self.trainable is not None:
            names = [n for n in state if matches(n, self.trainable)]
            source = "the 'trainable' patterns"
        elif probe.gradients and set(probe.gradients) & set(state):
            names = [n for n in state if n in probe.gradients]
            source = "the names gradients() reports"
        else:
            names = [n for n in state if is_float(state[n])]
            source = "every floating-point state entry"
        return [n for n in names if not matches(n, self.frozen)], source

    def _judge(self, probe: Probe, changed: list[EntryDiff], mode: str) -> Result:
        trainable, trainable_source = self._trainable_names(probe)
        frozen = [n for n in probe.before if matches(n, self.frozen)]
        no_gradient = [n for n in probe.no_gradient if n in probe.before and n not in trainable]
        undeclared = [n for n in no_gradient if not matches(n, self.frozen)]
        roles = (
            dict.fromkeys(trainable, "trainable")
            | dict.fromkeys(no_gradient, "frozen")
            | dict.fromkeys(frozen, "frozen")
        )
        parameters = set(trainable) | set(no_gradient) | (set(frozen) & set(probe.gradients or {}))
        n_frozen = len(parameters - set(trainable))
        names = sorted(set(probe.before) | set(probe.after))
        table = [
            tensor_row(n, roles.get(n, "other"), probe.before.get(n), probe.after.get(n))
            for n in names
        ]
        by_name = {row["name"]: row for row in table}
        grad_rows = [array_stats(k, v) for k, v in sorted((probe.gradients or {}).items())]
        for row in grad_rows:
            if row["name"] in by_name:
                by_name[row["name"]]["grad_norm"] = row.get("norm")
                by_name[row["name"]]["grad_finite"] = row["nonfinite"] == 0
        act_rows = [array_stats(k, v) for k, v in (probe.activations or {}).items()]

        b = ResultBuilder.of(self)
        b.update_metrics(
            {
                "loss.batch": probe.loss,
                "n_state_entries": len(table),
                "n_trainable": len(trainable),
                "n_frozen": n_frozen,
            }
        )
        b.detail("isolation", mode)
        b.detail("trainable_from", trainable_source)
        b.detail("tensors", table)
        b.detail("gradients", grad_rows)
        b.detail("activations", act_rows)
        band = held_range(self.update_ratio_range)
        b.detail("update_ratio_band", [band.low, band.high])

        judge.judge_loss(b, probe)
        judge.judge_state_finite(b, probe, table)
        if probe.gradients is not None:
            judge.judge_finite_table(b, "gradients_finite", "gradients()", grad_rows)
        if probe.activations is not None:
            judge.judge_finite_table(b, "activations_finite", "trace(inputs) activations", act_rows)
        judge.judge_outputs_finite(b, probe)
        judge.judge_trainable(b, trainable, trainable_source, by_name)
        if probe.gradients is not None:
            judge.judge_frozen_parameters(b, no_gradient, undeclared, by_name)
        if self.frozen:
            judge.judge_frozen(b, frozen, self.frozen, by_name)
        judge.judge_update_ratio(b, band, trainable, by_name)
        judge.judge_prediction_changed(b, probe)
        judge.judge_stateless(b, probe)
        judge.judge_single_examples(b, probe, self.prediction_atol, self.prediction_rtol)
        if probe.example is not None:
            judge.judge_example(b, probe.example)
        note_restored(b, changed)
        for name, sentence in judge.LEADS.items():
            b.lead(name, sentence)
        ratios = ""
        if "update_ratio.min" in b.metrics and "update_ratio.max" in b.metrics:
            ratios = (
                f" (update ratios {b.metrics['update_ratio.min']:.2g} to "
                f"{b.metrics['update_ratio.max']:.2g})"
            )
        return b.result(
            pass_summary=(
                f"One batch and one example went through training and prediction: "
                f"{plural(len(trainable), 'trainable tensor')} updated{ratios}"
                + (f", {n_frozen} frozen unchanged" if n_frozen else "")
                + f" ({len(table)} state entries judged); "
                "state, gradients, activations and outputs finite; each example predicted "
                "alone equals its prediction in the batch."
            )
        )
