"""Tests for mlchecks.checks.training: the trend test and the two training checks."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.signal
import scipy.stats
from _curves import CurveTrainer

from mlchecks import AtLeast, AtMost, Context, Result, Status, run_check
from mlchecks.checks._state import (
    compare_states,
    preserve_global_rngs,
    seed_global_rngs,
    snapshot,
)
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck
from mlchecks.demo import DemoSystem, MLPTrainer, make_trainer
from mlchecks.demo.faults import (
    ForgetsOptimizerTrainer,
    ForgetsRngTrainer,
)
from mlchecks.demo.system import DEMO_N_FEATURES
from mlchecks.exceptions import InvalidInput

SYSTEM = DemoSystem(seed=0)
BATCHES = SYSTEM.batches(0)


# --------------------------------------------------------------------------- factories
# Module-level so that crash_mode="process" can pickle them into a spawned child.


def forgets_optimizer(seed: int) -> MLPTrainer:
    """The demo trainer with the checkpoint_forgets_optimizer_state fault."""
    return ForgetsOptimizerTrainer(DEMO_N_FEATURES, 3, hidden=16, lr=0.05, seed=seed)


def forgets_rng(seed: int) -> MLPTrainer:
    """The demo trainer with the checkpoint_forgets_rng fault."""
    return ForgetsRngTrainer(DEMO_N_FEATURES, 3, hidden=16, lr=0.05, seed=seed)


def dies_in_child(seed: int) -> MLPTrainer:
    """Healthy in the parent; a spawned child exits at once, as if the machine failed."""
    if multiprocessing.parent_process() is not None:
        os._exit(3)
    return make_trainer(seed)


class FailingSave(MLPTrainer):
    def save(self, path: str | Path) -> None:
        raise OSError("disk full")


class FailingLoad(MLPTrainer):
    def load(self, path: str | Path) -> None:
        raise KeyError("optimizer")


class ForgetsStep(MLPTrainer):
    """Restores everything but the step counter."""

    def _restore(self, arrays: dict[str, np.ndarray], *, source: str) -> None:
        step = self._step
        super()._restore(arrays, source=source)
        self._step = step


class Unseeded(MLPTrainer):
    """Dropout draws from OS entropy: two runs with one seed differ."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rng = np.random.Generator(np.random.PCG64())


class UsesGlobalNumpy(MLPTrainer):
    """Perturbs the loss with the global numpy generator, which its checkpoint does not save."""

    def train_step(self, batch: Any) -> float:
        return super().train_step(batch) + float(np.random.random()) * 1e-3  # noqa: NPY002


def demo(cls: type[MLPTrainer]) -> Any:
    return lambda seed: cls(DEMO_N_FEATURES, 3, hidden=16, lr=0.05, seed=seed)


class NoCopy(MLPTrainer):
    """A trainer that refuses to be deep-copied (like one holding a lock or a device handle)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        raise TypeError("cannot deep-copy a trainer holding a device handle")


def ar1(rng: np.random.Generator, n: int, phi: float, size: int | None = None) -> np.ndarray:
    """Stationary AR(1) noise with unit innovations; shape (size, n) when size is given."""
    shape = (n + 200,) if size is None else (size, n + 200)
    noise = rng.normal(size=shape)
    return scipy.signal.lfilter([1.0], [1.0, -phi], noise, axis=-1)[..., 200:]


def roundtrips(result: Result) -> bool:
    return Result.from_dict(result.to_dict()) == result


# --------------------------------------------------------------------------- state helpers


class TestCompareStates:
    def test_equal_states_have_no_diffs(self) -> None:
        """Identical snapshots compare equal, NaNs with the same bits included."""
        state = {
            "w": np.array([1.0, np.nan]),
            "t": np.array(3),
            "rng": np.arange(4, dtype=np.uint64),
        }
        assert [] == compare_states(state, snapshot(state))

    def test_bitwise_by_default(self) -> None:
        """Without tolerances 0.0 and -0.0 differ, and so do values one ulp apart."""
        a = {"w": np.array([0.0, 1.0])}
        b = {"w": np.array([-0.0, np.nextafter(1.0, 2.0)])}
        (diff,) = compare_states(a, b)
        assert (2, 2, (0,)) == (diff.n_different, diff.size, diff.first_index)

    def test_tolerances(self) -> None:
        """With atol or rtol, floating entries compare with np.isclose; integers stay exact."""
        a = {"w": np.array([1.0, 2.0]), "t": np.array(3)}
        b = {"w": np.array([1.0 + 1e-9, 2.0]), "t": np.array(4)}
        diffs = compare_states(a, b, atol=1e-6)
        assert ["t"] == [d.name for d in diffs]
        assert "'t' is 4, expected 3" == diffs[0].describe()

    def test_missing_unexpected_shape_and_dtype(self) -> None:
        """Each kind of structural difference is reported with its reason."""
        a = {"gone": np.zeros(1), "shape": np.zeros(2), "dtype": np.zeros(2)}
        b = {"new": np.zeros(1), "shape": np.zeros(3), "dtype": np.zeros(2, dtype=np.float32)}
        reasons = {d.name: d.reason for d in compare_states(a, b)}
        assert {
            "gone": "missing",
            "new": "unexpected",
            "shape": "shape",
            "dtype": "dtype",
        } == reasons

    def test_ignore_patterns(self) -> None:
        """Names matching an ignore pattern are skipped."""
        diffs = compare_states({"rng/a": np.zeros(1)}, {"rng/a": np.ones(1)}, ignore=["rng/*"])
        assert [] == diffs

    def test_max_abs_diff_with_nan(self) -> None:
        """A value that became NaN counts as an infinite difference."""
        (diff,) = compare_states({"w": np.array([1.0])}, {"w": np.array([np.nan])})
        assert np.inf == diff.max_abs_diff

    def test_object_entries(self) -> None:
        """Non-numeric entries compare by equality."""
        a = {"names": np.array(["a", 2], dtype=object)}
        b = {"names": np.array(["a", 3], dtype=object)}
        assert 1 == compare_states(a, b)[0].n_different


class TestGlobalRngs:
    def test_preserve_restores_every_generator(self) -> None:
        """random and numpy's global generator are back where they were after the block."""
        random.seed(1)
        np.random.seed(1)  # noqa: NPY002
        with preserve_global_rngs():
            seed_global_rngs(99)
            random.random()
        assert (random.random(), np.random.random()) == (  # noqa: NPY002
            random.Random(1).random(),
            np.random.RandomState(1).random_sample(),
        )

    def test_seed_is_deterministic(self) -> None:
        """Seeding twice with one value gives the same draws."""
        with preserve_global_rngs():
            seed_global_rngs(5)
            first = (random.random(), np.random.random())  # noqa: NPY002
            seed_global_rngs(5)
            assert first == (random.random(), np.random.random())  # noqa: NPY002


# --------------------------------------------------------------------------- LossDecreasesCheck


class TestLossDecreasesCheck:
    def test_passes_on_healthy_demo(self) -> None:
        """The healthy demo trainer's loss decreases over 60 steps, from about ln 3."""
        check = LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES[:60], n_classes=3)
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        assert Status.PASS == result.finding("initial_loss").status
        assert 2 == result.rubric
        assert roundtrips(result)

    def test_leaves_the_users_trainer_and_rngs_unchanged(self) -> None:
        """Training a copy leaves the trainer's state and the global generators as they were."""
        trainer = make_trainer(0)
        trainer.train_step(BATCHES[0])
        before = snapshot(trainer.state())
        random.seed(5)
        np.random.seed(5)  # noqa: NPY002
        result = LossDecreasesCheck(trainer=trainer, batches=BATCHES[:60]).run()
        assert Status.PASS == result.status
        assert "copy" == result.details["isolation"]
        after = snapshot(trainer.state())
        assert before.keys() == after.keys()
        assert all(np.array_equal(before[k], after[k]) for k in before)
        draws = (random.random(), np.random.random())  # noqa: NPY002
        random.seed(5)
        np.random.seed(5)  # noqa: NPY002
        assert (random.random(), np.random.random()) == draws  # noqa: NPY002

    def test_checkpoint_isolation_restores_the_trainer(self) -> None:
        """isolation='checkpoint' trains the trainer itself and restores it with load()."""
        trainer = make_trainer(1)
        before = trainer.fingerprint()
        result = LossDecreasesCheck(
            trainer=trainer, batches=BATCHES[:50], isolation="checkpoint"
        ).run()
        assert "checkpoint" == result.details["isolation"]
        assert Status.PASS == result.finding("trainer_restored").status
        assert before == trainer.fingerprint()

    def test_auto_falls_back_to_checkpoint(self) -> None:
        """A trainer that cannot be deep-copied is isolated through its own checkpoints."""
        trainer = NoCopy(DEMO_N_FEATURES, 3, seed=0)
        result = LossDecreasesCheck(trainer=trainer, batches=BATCHES[:50]).run()
        assert ("checkpoint", Status.PASS) == (result.details["isolation"], result.status)
        assert 0 == trainer.step

    def test_copy_isolation_refuses_an_uncopyable_trainer(self) -> None:
        """isolation='copy' with a trainer that cannot be copied raises its error."""
        check = LossDecreasesCheck(
            trainer=NoCopy(DEMO_N_FEATURES, 3), batches=BATCHES[:50], isolation="copy"
        )
        assert Status.ERROR == run_check(check).status

    def test_checkpoint_restore_bug_is_reported(self) -> None:
        """When save/load cannot restore the trainer, trainer_restored FAILS naming entries."""
        trainer = ForgetsOptimizerTrainer(DEMO_N_FEATURES, 3, seed=0)
        trainer.train_step(BATCHES[0])
        result = LossDecreasesCheck(
            trainer=trainer, batches=BATCHES[:50], isolation="checkpoint"
        ).run()
        finding = result.finding("trainer_restored")
        assert Status.FAIL == finding.status
        assert "'adam/m/W1'" in finding.message

    def test_overfit_one_batch_passes(self) -> None:
        """Repeating one batch drives the healthy trainer's loss below 10% of its start."""
        check = LossDecreasesCheck(
            make_trainer=make_trainer, batches=[BATCHES[0]], overfit_one_batch=True, n_steps=200
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert result.metrics["loss.overfit_ratio"] <= 0.1

    def test_overfit_fails_when_the_loss_does_not_collapse(self) -> None:
        """A learning rate too small to memorize one batch FAILS the overfit finding."""
        slow = demo_factory_with_lr(1e-3)
        check = LossDecreasesCheck(
            make_trainer=slow, batches=[BATCHES[0]], overfit_one_batch=True, n_steps=100
        )
        finding = check.run().finding("overfit")
        assert Status.FAIL == finding.status
        assert "exceeds the maximum 0.1" in finding.message

    @pytest.mark.parametrize("n_steps", [20, 30, 60, 100, 200])
    def test_overfit_plateau_passes_for_every_n_steps(self, n_steps: int) -> None:
        """A loss that collapses to a noisy plateau near 0.016 PASSES overfit mode whatever
        n_steps is: the trend test does not judge the plateau."""
        rng = np.random.default_rng(0)
        curve = np.concatenate(
            [np.geomspace(2.3, 0.016, 12), 0.016 * np.exp(0.3 * rng.normal(size=188))]
        )
        result = LossDecreasesCheck(
            trainer=CurveTrainer(curve[:n_steps]),
            batches=[None],
            overfit_one_batch=True,
            n_steps=n_steps,
        ).run()
        assert Status.PASS == result.status, str(result)
        assert "loss_trend" not in {f.name for f in result.findings}
        assert "trend.pvalue" in result.metrics
        assert result.summary.startswith("Repeating one batch for")

    def test_overfit_floor_passes_a_loss_that_starts_small(self) -> None:
        """max_overfit_loss PASSES overfit when the final loss is below it, whatever the ratio."""
        curve = np.linspace(0.05, 0.01, 60)
        check = LossDecreasesCheck(
            trainer=CurveTrainer(curve), batches=[None], overfit_one_batch=True, n_steps=60
        )
        assert Status.FAIL == check.run().finding("overfit").status
        floored = LossDecreasesCheck(
            trainer=CurveTrainer(curve),
            batches=[None],
            overfit_one_batch=True,
            n_steps=60,
            max_overfit_loss=0.02,
        ).run()
        assert Status.PASS == floored.finding("overfit").status, str(floored)
        assert "within max_overfit_loss" in floored.finding("overfit").message

    def test_overfit_flat_curve_fails(self) -> None:
        """A loss that never falls (a learning rate of zero) FAILS overfit mode."""
        rng = np.random.default_rng(0)
        curve = 1.1 + 0.01 * rng.normal(size=60)
        result = LossDecreasesCheck(
            trainer=CurveTrainer(curve), batches=[None], overfit_one_batch=True, n_steps=60
        ).run()
        assert Status.FAIL == result.finding("overfit").status
        assert Status.FAIL == result.finding("relative_drop").status

    def test_fails_on_a_flat_noisy_curve(self) -> None:
        """A flat curve with autocorrelated noise FAILS: no downward trend."""
        rng = np.random.default_rng(1)
        curve = 1.0 + 0.05 * ar1(rng, 200, 0.8)
        result = LossDecreasesCheck(
            trainer=CurveTrainer(curve), batches=[None], n_steps=len(curve)
        ).run()
        assert Status.FAIL == result.status
        assert Status.FAIL == result.finding("loss_trend").status
        assert "no downward trend" in result.summary or "relative_drop" in result.summary

    def test_plateau_gets_a_hint(self) -> None:
        """A curve that falls and then flattens does not PASS the trend; a hint says fewer steps.

        The cubic cannot follow the knee, so the misfit reads as autocorrelated noise: the
        finding WARNS (more steps needed) or FAILS, and either way gives the hint."""
        rng = np.random.default_rng(0)
        curve = np.concatenate([np.linspace(2.0, 1.0, 20), 1.0 + 0.05 * rng.normal(size=180)])
        finding = LossDecreasesCheck(trainer=CurveTrainer(curve), batches=[None], n_steps=200)
        trend = finding.run().finding("loss_trend")
        message = trend.message
        assert trend.status in (Status.WARN, Status.FAIL)
        assert "then stopped falling" in message
        assert "check fewer steps" in message

    def test_short_smooth_curve_passes_on_the_slope_test(self) -> None:
        """40 steps of a smooth decay are too few for the block test at the autocorrelation
        the cubic reads into them, so the slope test decides: PASS, saying so."""
        curve = 0.01 + 0.43 * np.exp(-np.arange(40) / 6)
        result = LossDecreasesCheck(trainer=CurveTrainer(curve), batches=[None], n_steps=40).run()
        finding = result.finding("loss_trend")
        needed = int(result.metrics["trend.steps_needed"])
        assert (Status.PASS, Status.PASS) == (result.status, finding.status), str(result)
        assert "the slope test" in finding.message
        assert f"the block test needs at least {needed} steps" in finding.message
        assert needed > 40
        assert result.metrics["trend.slope_pvalue"] < 1e-6
        assert result.metrics["trend.slope_pvalue"] == finding.observed

    def test_short_noisy_curve_is_inconclusive(self) -> None:
        """20 steps whose noise swamps a slight decline: too few for the block test and the
        slope test cannot show it either, but the block means go down: WARN, saying how
        many steps the block test needs."""
        t = np.arange(20)
        curve = 1.0 - 0.005 * t + 0.2 * (-1.0) ** t
        result = LossDecreasesCheck(trainer=CurveTrainer(curve), batches=[None], n_steps=20).run()
        finding = result.finding("loss_trend")
        assert (Status.WARN, Status.WARN) == (result.status, finding.status), str(result)
        assert finding.message.startswith("The loss went down over 20 training steps")
        assert "but too unsteadily to be sure it is training. Inconclusive: " in finding.message
        assert "the block test needs at least 30 steps" in finding.message
        assert "and got 20" in finding.message
        assert 30 == result.metrics["trend.steps_needed"]

    def test_short_flat_curve_still_fails(self) -> None:
        """Too few steps to judge a trend, but a constant curve does not go down: FAIL."""
        curve = np.full(12, 0.7)
        result = LossDecreasesCheck(trainer=CurveTrainer(curve), batches=[None], n_steps=12).run()
        assert Status.FAIL == result.finding("loss_trend").status

    def test_fails_on_a_small_drop(self) -> None:
        """A significant but tiny decrease FAILS the minimum relative drop."""
        curve = np.linspace(1.0, 0.99, 100)
        result = LossDecreasesCheck(
            trainer=CurveTrainer(curve), batches=[None], n_steps=len(curve)
        ).run()
        assert Status.PASS == result.finding("loss_trend").status
        assert Status.FAIL == result.finding("relative_drop").status

    def test_small_drop_warns_with_a_warn_condition(self) -> None:
        """min_relative_drop given as AtLeast(..., severity="warn") WARNS instead of FAILING."""
        curve = np.linspace(1.0, 0.99, 100)
        check = LossDecreasesCheck(
            trainer=CurveTrainer(curve),
            batches=[None],
            n_steps=len(curve),
            min_relative_drop=AtLeast(0.05, severity="warn"),
        )
        result = check.run()
        assert Status.WARN == result.finding("relative_drop").status
        assert Status.WARN == result.status
        assert (
            AtLeast(0.05)
            == LossDecreasesCheck(
                trainer=CurveTrainer(curve), batches=[None], n_steps=100, min_relative_drop=0.05
            ).min_relative_drop
        )

    def test_overfit_limit_takes_a_warn_condition(self) -> None:
        """max_overfit_loss_ratio as AtMost(..., severity="warn") WARNS when it is exceeded."""
        curve = np.linspace(2.0, 1.0, 100)
        result = LossDecreasesCheck(
            trainer=CurveTrainer(curve),
            batches=[None],
            overfit_one_batch=True,
            max_overfit_loss_ratio=AtMost(0.1, severity="warn"),
        ).run()
        assert Status.WARN == result.finding("overfit").status
        assert Status.WARN == result.status

    def test_metric_keys(self) -> None:
        """The loss and the trend test are reported under the documented keys."""
        curve = np.linspace(2.0, 1.0, 60)
        result = LossDecreasesCheck(trainer=CurveTrainer(curve), batches=[None], n_steps=60).run()
        assert (2.0, 1.0) == (result.metrics["loss.first"], result.metrics["loss.last"])
        assert {
            "n_steps",
            "loss.first",
            "loss.last",
            "loss.min",
            "loss.relative_drop",
            "trend.tau",
            "trend.pvalue",
            "trend.n_blocks",
            "trend.block_size",
            "trend.lag1_autocorrelation",
        } == set(result.metrics)

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("initial_loss_tolerance", "initial_loss_rtol"),
            ("overfit_fraction", "max_overfit_loss_ratio"),
        ],
    )
    def test_old_keywords_name_the_new_one(self, old: str, new: str) -> None:
        """A 0.1 keyword raises TypeError naming its 0.2 name."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES[:20], **{old: 0.5})

    def test_nonfinite_loss_fails_naming_the_step(self) -> None:
        """A loss that turns NaN fails loss_finite naming the step, and training stops there."""
        curve = np.r_[np.linspace(2.0, 1.0, 10), np.nan, np.linspace(1.0, 0.5, 39)]
        result = LossDecreasesCheck(trainer=CurveTrainer(curve), batches=[None], n_steps=50).run()
        finding = result.finding("loss_finite")
        assert Status.FAIL == finding.status
        assert 10.0 == finding.observed
        assert "nan at step 10 of 50" in finding.message
        assert "after the loss was 1" in finding.message
        assert roundtrips(result)

    def test_initial_loss_warns_far_from_ln_c(self) -> None:
        """A first loss far from ln(n_classes) WARNS (here the class count is wrong)."""
        check = LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES[:50], n_classes=50)
        result = check.run()
        assert Status.WARN == result.finding("initial_loss").status
        assert Status.WARN == result.status
        assert "ln(50)" in result.finding("initial_loss").message

    def test_batches_cycle(self) -> None:
        """n_steps beyond len(batches) cycles through the batches."""
        trainer = CurveTrainer(np.linspace(2.0, 1.0, 40))
        result = LossDecreasesCheck(trainer=trainer, batches=[1, 2, 3], n_steps=40).run()
        assert 40 == result.metrics["n_steps"]

    def test_uses_context_seed(self) -> None:
        """Without a seed field, make_trainer gets the context's seed."""
        seen: list[int] = []

        def factory(seed: int) -> MLPTrainer:
            seen.append(seed)
            return make_trainer(seed)

        LossDecreasesCheck(make_trainer=factory, batches=BATCHES[:20]).run(Context(seed=11))
        assert [11] == seen

    def test_requires_exactly_one_trainer_source(self) -> None:
        """Passing both or neither of trainer and make_trainer is an error."""
        with pytest.raises(InvalidInput, match="exactly one of 'trainer'"):
            LossDecreasesCheck(batches=BATCHES[:20])
        with pytest.raises(InvalidInput, match="exactly one of 'trainer'"):
            LossDecreasesCheck(trainer=make_trainer(0), make_trainer=make_trainer, batches=[1])

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"batches": []}, "at least one batch"),
            ({"batches": "abc"}, "'batches' must be a sequence"),
            ({"n_steps": 3}, "'n_steps' must be at least 6"),
            ({"n_steps": 0}, "'n_steps' must be >= 1"),
            ({"alpha": 0.0}, r"'alpha' must be in \(0, 0.5\)"),
            ({"alpha": 0.5}, r"'alpha' must be in \(0, 0.5\)"),
            ({"min_relative_drop": 1.5}, r"'min_relative_drop' must be in \[0, 1\]"),
            ({"max_overfit_loss_ratio": "small"}, "'max_overfit_loss_ratio' must be a number"),
            ({"initial_loss_rtol": -0.1}, r"'initial_loss_rtol' must be in \[0, inf\)"),
            ({"n_blocks": 4}, "cannot reach alpha"),
            ({"n_classes": 1}, "'n_classes' must be >= 2"),
            ({"isolation": "fork"}, "'isolation' must be one of"),
            ({"make_trainer": 3}, "'make_trainer' must be callable"),
        ],
    )
    def test_validates_fields(self, kwargs: dict[str, Any], message: str) -> None:
        """Bad fields raise InvalidInput naming the field and the value."""
        fields: dict[str, Any] = {"make_trainer": make_trainer, "batches": BATCHES[:20]}
        fields.update(kwargs)
        with pytest.raises(InvalidInput, match=message):
            LossDecreasesCheck(**fields)

    def test_rejects_a_non_trainer(self) -> None:
        """A trainer without the protocol's methods is rejected."""
        with pytest.raises(InvalidInput, match="must implement the Trainer protocol"):
            LossDecreasesCheck(trainer=object(), batches=[1])  # type: ignore[arg-type]

    def test_non_numeric_loss_is_an_error(self) -> None:
        """A train_step returning something that is not a number gives an ERROR result."""

        class Odd(CurveTrainer):
            def train_step(self, batch: Any) -> Any:
                return "low"

        result = run_check(LossDecreasesCheck(trainer=Odd(np.ones(3)), batches=[1], n_steps=10))
        assert Status.ERROR == result.status
        assert "must return the loss as a number" in result.summary


def demo_factory_with_lr(lr: float) -> Any:
    return lambda seed: MLPTrainer(DEMO_N_FEATURES, 3, hidden=16, lr=lr, dropout=0.0, seed=seed)


# --------------------------------------------------------------------------- CheckpointRestoreCheck


class TestCheckpointRestoreCheck:
    def test_passes_on_healthy_demo_inprocess(self) -> None:
        """The healthy demo trainer restores exactly in-process."""
        result = run_check(CheckpointRestoreCheck(make_trainer=make_trainer, batches=BATCHES[:20]))
        assert Status.PASS == result.status, str(result)
        assert 10 == result.metrics["restore_step"]
        assert {
            "deterministic_prefix",
            "load",
            "restored_state",
            "step_counter",
            "losses_after_restore",
            "loss_finite",
            "final_state",
        } == {f.name for f in result.findings}
        assert roundtrips(result)

    def test_passes_on_healthy_demo_with_a_real_crash(self) -> None:
        """With crash_mode="process" the child is SIGKILLed and the restore still matches."""
        check = CheckpointRestoreCheck(
            make_trainer=make_trainer,
            batches=BATCHES[:16],
            crash_mode="process",
            process_timeout_s=120,
        )
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        if hasattr(signal, "SIGKILL"):
            assert -signal.SIGKILL == result.details["interrupted_exit_code"]

    def test_forgotten_optimizer_state_fails_naming_the_entries(self) -> None:
        """A checkpoint without the Adam moments FAILS, naming them and the step counter."""
        result = CheckpointRestoreCheck(make_trainer=forgets_optimizer, batches=BATCHES[:20]).run()
        assert Status.FAIL == result.status
        restored = result.finding("restored_state")
        assert Status.FAIL == restored.status
        for entry in ("'adam/m/W1'", "'adam/t' is 0, expected 10"):
            assert entry in restored.message
        assert entry.split()[0] in result.summary
        names = [d["name"] for d in result.details["restored_state_diffs"]]
        assert {f"adam/{s}/{p}" for s in "mv" for p in ("W1", "b1", "W2", "b2")} | {
            "adam/t"
        } == set(names)
        losses = result.finding("losses_after_restore")
        assert Status.FAIL == losses.status
        assert 11 == losses.observed
        assert Status.FAIL == result.finding("final_state").status

    def test_forgotten_optimizer_state_fails_with_a_real_crash(self) -> None:
        """The same fault FAILS with crash_mode="process", naming the optimizer entries."""
        check = CheckpointRestoreCheck(
            make_trainer=forgets_optimizer, batches=BATCHES[:12], crash_mode="process"
        )
        result = run_check(check)
        assert Status.FAIL == result.status, str(result)
        assert "'adam/m/W1'" in result.finding("restored_state").message

    def test_forgotten_rng_fails_naming_the_entry(self) -> None:
        """A checkpoint without the dropout generator FAILS naming 'rng/state'."""
        result = CheckpointRestoreCheck(make_trainer=forgets_rng, batches=BATCHES[:20]).run()
        assert Status.FAIL == result.status
        assert ["rng/state"] == [d["name"] for d in result.details["restored_state_diffs"]]
        assert "'rng/state'" in result.summary
        assert 10 == result.finding("losses_after_restore").observed

    def test_forgotten_rng_fails_with_a_real_crash(self) -> None:
        """The RNG fault FAILS with crash_mode="process" too."""
        check = CheckpointRestoreCheck(
            make_trainer=forgets_rng, batches=BATCHES[:12], crash_mode="process"
        )
        result = run_check(check)
        assert Status.FAIL == result.status, str(result)
        assert "'rng/state'" in result.finding("restored_state").message

    def test_state_not_in_the_checkpoint_shows_through_reseeding(self) -> None:
        """A trainer drawing from the global numpy generator diverges after the restore."""
        result = CheckpointRestoreCheck(
            make_trainer=demo(UsesGlobalNumpy), batches=BATCHES[:10]
        ).run()
        assert Status.PASS == result.finding("deterministic_prefix").status
        assert Status.FAIL == result.finding("losses_after_restore").status
        assert 5 == result.finding("losses_after_restore").observed

    def test_checkpoint_every_restores_from_the_last_checkpoint(self) -> None:
        """With checkpoint_every=3 and a crash after step 8 the restore starts at step 6."""
        check = CheckpointRestoreCheck(
            make_trainer=make_trainer, batches=BATCHES[:14], crash_at=8, checkpoint_every=3
        )
        assert (3, 6) == check.save_steps
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert 6 == result.metrics["restore_step"]
        assert 8 == len(result.details["restored_losses"])

    def test_save_error_fails(self) -> None:
        """An exception in save() is a FAIL naming the error and the step."""
        result = CheckpointRestoreCheck(make_trainer=demo(FailingSave), batches=BATCHES[:8]).run()
        finding = result.finding("save")
        assert Status.FAIL == finding.status
        assert "OSError: disk full" in finding.message
        assert "after step 4" in finding.message

    def test_load_error_fails(self) -> None:
        """An exception in load() is a FAIL naming the error."""
        result = CheckpointRestoreCheck(make_trainer=demo(FailingLoad), batches=BATCHES[:8]).run()
        finding = result.finding("load")
        assert Status.FAIL == finding.status
        assert "KeyError" in finding.message

    def test_step_counter_not_restored_fails(self) -> None:
        """A load() that keeps the fresh trainer's step counter FAILS step_counter."""
        result = CheckpointRestoreCheck(make_trainer=demo(ForgetsStep), batches=BATCHES[:8]).run()
        finding = result.finding("step_counter")
        assert Status.FAIL == finding.status
        assert 0.0 == finding.observed
        assert "'step' is 0" in finding.message

    def test_nondeterministic_training_fails_the_prefix(self) -> None:
        """Training that is not reproducible from the seed FAILS deterministic_prefix."""
        result = CheckpointRestoreCheck(make_trainer=demo(Unseeded), batches=BATCHES[:8]).run()
        finding = result.finding("deterministic_prefix")
        assert Status.FAIL == finding.status
        assert "not reproducible" in finding.message

    def test_tolerances_allow_small_differences(self) -> None:
        """With state_atol, a restore differing only in tiny noise passes the loss comparison."""
        result = CheckpointRestoreCheck(
            make_trainer=demo(UsesGlobalNumpy), batches=BATCHES[:10], state_atol=0.01
        ).run()
        assert Status.PASS == result.finding("losses_after_restore").status

    def test_ignore_skips_entries(self) -> None:
        """Entries matching an ignore pattern are not compared right after load."""
        result = CheckpointRestoreCheck(
            make_trainer=forgets_rng, batches=BATCHES[:10], ignore=["rng/*"]
        ).run()
        assert Status.PASS == result.finding("restored_state").status

    def test_child_dying_early_is_an_error(self) -> None:
        """A child process that dies before checkpointing gives an ERROR naming the exit code."""
        check = CheckpointRestoreCheck(
            make_trainer=dies_in_child,
            batches=BATCHES[:6],
            crash_mode="process",
            process_timeout_s=60,
        )
        result = run_check(check)
        assert Status.ERROR == result.status
        assert "exit code 3" in result.summary

    def test_unpicklable_factory_is_rejected_in_process_mode(self) -> None:
        """A lambda cannot reach a spawned child; the ERROR says what to do instead."""
        check = CheckpointRestoreCheck(
            make_trainer=lambda seed: make_trainer(seed), batches=BATCHES[:6], crash_mode="process"
        )
        result = run_check(check)
        assert Status.ERROR == result.status
        assert "needs make_trainer and batches that can be pickled" in result.summary

    def test_leaves_global_rngs_alone(self) -> None:
        """The check re-seeds the global generators while it runs and restores them after."""
        random.seed(9)
        state = random.getstate()
        CheckpointRestoreCheck(make_trainer=make_trainer, batches=BATCHES[:6]).run()
        assert state == random.getstate()

    def test_uses_context_seed_and_tempdir(self, tmp_path: Path) -> None:
        """make_trainer gets the context's seed; checkpoints go under the context's workdir."""
        seen: list[int] = []
        paths: list[Path] = []

        class Recording(MLPTrainer):
            def save(self, path: str | Path) -> None:
                paths.append(Path(path))
                super().save(path)

        def factory(seed: int) -> MLPTrainer:
            seen.append(seed)
            return Recording(DEMO_N_FEATURES, 3, seed=seed)

        check = CheckpointRestoreCheck(make_trainer=factory, batches=BATCHES[:6])
        assert Status.PASS == check.run(Context(seed=4, workdir=tmp_path)).status
        assert {4} == set(seen)
        assert paths
        assert tmp_path in paths[0].parents
        assert [] == list(tmp_path.iterdir())

    def test_reports_progress(self) -> None:
        """Each phase is reported through the context's progress callback."""
        lines: list[str] = []
        lock = threading.Lock()

        def progress(line: str) -> None:
            with lock:
                lines.append(line)

        CheckpointRestoreCheck(make_trainer=make_trainer, batches=BATCHES[:6]).run(
            Context(progress=progress)
        )
        assert 3 == len(lines)
        assert all(line.startswith("checkpoint_restore:") for line in lines)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"crash_at": 20}, r"'crash_at' must be in \[1, n_steps\)"),
            ({"crash_at": 0}, "'crash_at' must be an integer >= 1"),
            ({"checkpoint_every": 15}, "'checkpoint_every' must be <= crash_at 10"),
            ({"crash_mode": "thread"}, "'crash_mode' must be one of"),
            ({"state_atol": -1.0}, r"'state_atol' must be in \[0, inf\)"),
            ({"ignore": [1]}, "'ignore' must contain strings"),
            ({"batches": [BATCHES[0]]}, "'n_steps' must be at least 2"),
            ({"n_steps": 1}, "'n_steps' must be >= 2"),
            ({"process_timeout_s": 0}, r"'process_timeout_s' must be in \(0, inf\)"),
            ({"make_trainer": None}, "'make_trainer' must be callable"),
            ({"step_key": 3}, "'step_key' must be a string or None"),
        ],
    )
    def test_validates_fields(self, kwargs: dict[str, Any], message: str) -> None:
        """Bad fields raise InvalidInput naming the field and the value."""
        fields: dict[str, Any] = {"make_trainer": make_trainer, "batches": BATCHES[:20]}
        fields.update(kwargs)
        with pytest.raises(InvalidInput, match=message):
            CheckpointRestoreCheck(**fields)

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("isolation", "crash_mode"),
            ("atol", "state_atol"),
            ("rtol", "state_rtol"),
            ("timeout_s", "process_timeout_s"),
        ],
    )
    def test_old_keywords_name_the_new_one(self, old: str, new: str) -> None:
        """A 0.1 keyword raises TypeError naming its 0.2 name."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            CheckpointRestoreCheck(make_trainer=make_trainer, batches=BATCHES[:20], **{old: 1})

    def test_make_trainer_is_required(self) -> None:
        """Without make_trainer the check cannot be built."""
        with pytest.raises(TypeError, match="make_trainer"):
            CheckpointRestoreCheck(batches=BATCHES[:20])  # type: ignore[call-arg]

    def test_metric_keys_on_a_failure(self) -> None:
        """Differing entries and the first differing step are counted under dotted keys."""
        result = CheckpointRestoreCheck(make_trainer=forgets_rng, batches=BATCHES[:20]).run()
        assert 1 == result.metrics["restored_state.n_differing"]
        assert 10 == result.metrics["first_loss_difference_step"]
        assert "final_state.n_differing" in result.metrics

    def test_check_is_frozen_with_a_short_repr(self) -> None:
        """Checks are frozen attrs objects whose repr leaves out the batches."""
        check = CheckpointRestoreCheck(make_trainer=make_trainer, batches=BATCHES[:4])
        with pytest.raises(AttributeError):
            check.n_steps = 3  # type: ignore[misc]
        assert "batches" not in repr(check)
        assert "crash_at=None" in repr(check)
