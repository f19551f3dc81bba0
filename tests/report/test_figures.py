"""Tests for mlchecks.report.figures: the built-in figures of the HTML report."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

import mlchecks.report.figures as figures
import mlchecks.report.html as html_module
from mlchecks import InvalidInput, Result, Status, SuiteResult, run_check
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
from mlchecks.demo.suite import build_suite
from mlchecks.report.figures import (
    BUILTIN_FIGURES,
    PLOT_NOTE,
    canary_figures,
    quality_figures,
    reproducibility_figures,
    rollback_figures,
)
from mlchecks.report.html import FIGURES, register_figure, result_to_html, suite_to_html

# The figures are drawn with matplotlib (the `plot` extra); the core test run goes without.
pytest.importorskip("matplotlib", reason='figures need matplotlib: pip install ".[plot]"')

XSS = "<script>alert(1)</script>"
SVG = re.compile(r"<svg\b.*?</svg>", re.S)
MAX_SVG_BYTES = 150_000

#: The class of each demo check that has built-in figures, by the check's demo name.
KIND = {
    "reproducibility": "ReproducibilityCheck",
    "quality": "QualityCheck",
    "canary": "CanaryCheck",
    "rollback": "RollbackCheck",
    "single_batch": "SingleBatchCheck",
    "loss_decreases": "LossDecreasesCheck",
    "checkpoint_restore": "CheckpointRestoreCheck",
    "pipeline": "PipelineCheck",
}

_CACHE: dict[tuple[str | None, str], Result] = {}


def demo(check: str, fault: str | None = None) -> Result:
    """The demo system's ``check`` run (with ``fault`` planted), computed once per session."""
    key = (fault, check)
    if key not in _CACHE:
        suite = build_suite(fault=fault, seed=0)
        _CACHE[key] = run_check(next(c for c in suite.checks if c.name == check))
    return _CACHE[key]


_DRAWN: dict[tuple[str, str | None, str], list[str]] = {}


def drawn(check: str, fault: str | None = None) -> list[str]:
    """The built-in figures of a demo result, drawn once per session."""
    key = (check, fault, "figures")
    if key not in _DRAWN:
        _DRAWN[key] = BUILTIN_FIGURES[KIND[check]](demo(check, fault))
    return _DRAWN[key]


def svgs(fragments: list[str]) -> list[str]:
    return [m.group(0) for f in fragments for m in SVG.finditer(f)]


def captions(fragments: list[str]) -> list[str]:
    """The captions' text, unescaped."""
    found = (m.group(1) for f in fragments for m in re.finditer(r"<figcaption>(.*?)<", f, re.S))
    return [html.unescape(c) for c in found]


def assert_figures(fragments: list[str], count: int) -> None:
    """``count`` figures, each an inline SVG with a caption and nothing that breaks a page."""
    assert count == len(fragments)
    for fragment in fragments:
        assert fragment.startswith('<figure class="mlc-fig"><svg ')
        assert fragment.endswith("</figcaption></figure>")
        assert "<?xml" not in fragment
        assert "<!DOCTYPE" not in fragment
        assert "<metadata" not in fragment
        assert "<script" not in fragment
    for svg in svgs(fragments):
        assert len(svg.encode("utf-8")) < MAX_SVG_BYTES


def training_runs(*, diverge_at: int | None, slice_names: tuple[str, ...]) -> list[TrainingRun]:
    """Two runs with losses, predictions and slices; run b differs from ``diverge_at`` on."""
    rng = np.random.default_rng(0)
    n, steps = 1200, 400
    labels = rng.integers(0, 2, size=n)
    slices = np.array(slice_names)[rng.integers(0, len(slice_names), size=n)]
    probs = np.clip(labels * 0.6 + rng.uniform(0.0, 0.4, size=n), 0.0, 1.0)
    losses = 1.0 / np.sqrt(np.arange(1, steps + 1))
    other_probs, other_losses = probs.copy(), losses.copy()
    if diverge_at is not None:
        other_losses[diverge_at:] += 0.05
        flip = slices == slice_names[0]
        other_probs[flip] = 1.0 - other_probs[flip]
    return [
        TrainingRun(predictions=probs, labels=labels, slices={"region": slices}, losses=losses),
        TrainingRun(
            predictions=other_probs, labels=labels, slices={"region": slices}, losses=other_losses
        ),
    ]


class TestSvgEmbedding:
    def test_figures_are_inline_svg_with_captions(self) -> None:
        """Each figure is an inline <svg> without XML prolog, DOCTYPE or metadata."""
        assert_figures(drawn("canary"), 2)

    def test_ids_are_unique_and_references_resolve(self) -> None:
        """Ids are unique across the figures of a page and every url(#id) names one of them."""
        page = "".join(drawn("reproducibility", "nondeterministic_training"))
        page += "".join(drawn("canary"))
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids))
        refs = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', page))
        assert refs
        assert refs <= set(ids)

    def test_drawing_is_deterministic(self) -> None:
        """The same result draws the same SVG, so saved reports diff cleanly."""
        result = demo("rollback")
        assert rollback_figures(result) == rollback_figures(result)

    def test_svg_is_labelled_for_screen_readers(self) -> None:
        """The <svg> has role="img" and an aria-label from the caption's first sentence."""
        (svg,) = svgs(drawn("rollback"))
        assert re.match(r'<svg role="img" aria-label="Which version answered', svg)

    def test_user_backend_and_style_are_untouched(self) -> None:
        """Drawing restores rcParams and never imports pyplot (checked in a fresh process)."""
        code = (
            "import sys\n"
            "import mlchecks.report.figures as f\n"
            "assert 'matplotlib' not in sys.modules, 'imported at module level'\n"
            "import matplotlib\n"
            "matplotlib.rcParams['font.size'] = 13.0\n"
            "from mlchecks import Result, Status\n"
            "details = {'timeline': {'repeat': 1, 't_s': [-0.01, 0.01], "
            "'outcome': ['candidate', 'known_good']}}\n"
            "assert f.rollback_figures(Result('rollback', Status.PASS, details=details))\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
            "assert matplotlib.rcParams['font.size'] == 13.0, 'rcParams changed'\n"
            "assert matplotlib.rcParams['svg.fonttype'] == 'path', 'rcParams changed'\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
        assert 0 == done.returncode, done.stderr


class TestReproducibilityFigures:
    def test_diverging_runs_mark_the_first_diverging_step(self) -> None:
        """The loss figure marks the step where the losses part, and says so in the caption."""
        result = ReproducibilityCheck(
            training_runs(diverge_at=40, slice_names=("east", "west", "north"))
        ).run()
        fragments = reproducibility_figures(result)
        assert_figures(fragments, 2)
        loss, slices = captions(fragments)
        assert "marks step 40" in loss
        assert "first divergence (step 40)" in fragments[0]
        assert "flagged as differing (Holm-adjusted): east." in slices

    def test_identical_runs_say_the_curves_coincide(self) -> None:
        """Reproducible runs get a caption saying the curves coincide and no slice is flagged."""
        result = ReproducibilityCheck(
            training_runs(diverge_at=None, slice_names=("east", "west"))
        ).run()
        loss, slices = captions(reproducibility_figures(result))
        assert "coincide at every recorded step" in loss
        assert "no slice is flagged" in slices

    def test_demo_fault_is_drawn(self) -> None:
        """The demo's nondeterministic training diverges at step 0."""
        fragments = drawn("reproducibility", "nondeterministic_training")
        assert_figures(fragments, 2)
        assert "marks step 0" in captions(fragments)[0]

    def test_names_from_the_data_are_escaped(self) -> None:
        """Slice names with markup or '$' appear as text, never as markup or math."""
        result = ReproducibilityCheck(
            training_runs(diverge_at=40, slice_names=(XSS, "cost $5$"))
        ).run()
        fragments = reproducibility_figures(result)
        assert_figures(fragments, 2)
        page = "".join(fragments)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert ">cost $5$</text>" in page

    def test_nothing_to_draw(self) -> None:
        """A result without losses or slices has no figures."""
        assert [] == reproducibility_figures(Result("reproducibility", Status.PASS))


class TestQualityFigures:
    def test_slice_regression_names_the_failing_slice(self) -> None:
        """The planted regression in region 'east' is the one vermillion row."""
        fragments = drawn("quality", "slice_regression")
        assert_figures(fragments, 1)
        (caption,) = captions(fragments)
        assert "vermillion rows fail: region=east." in caption
        assert "allowed drop (-0.03)" in caption

    def test_without_baseline_no_figure(self) -> None:
        """Floors alone (no comparison rows) draw nothing."""
        table = [{"kind": "floor", "metric": "accuracy", "slice": "all", "difference": None}]
        assert [] == quality_figures(Result("quality", Status.PASS, details={"table": table}))


class TestCanaryFigures:
    def test_slow_candidate(self) -> None:
        """The latency test's e-value reaches the threshold and the caption says it failed."""
        fragments = drawn("canary", "canary_slow")
        assert_figures(fragments, 2)
        latency, evalues = captions(fragments)
        assert "max_latency_ratio 1.2" in latency
        assert "the canary failed on latency" in evalues
        assert "threshold 100" in fragments[1]

    def test_without_trickle_no_figure(self) -> None:
        """Stage 0 alone (no live traffic) draws nothing."""
        assert [] == canary_figures(Result("canary", Status.PASS, details={"candidate": "2"}))


class TestRollbackFigures:
    def test_lossy_rollback_shows_failed_requests(self) -> None:
        """Requests lost during the restart appear in a 'failed' lane and in the caption."""
        result = demo("rollback", "lossy_rollback")
        fragments = drawn("rollback", "lossy_rollback")
        assert_figures(fragments, 1)
        failed = int(result.details["repeats"][result.details["timeline"]["repeat"] - 1]["failed"])
        assert failed > 0
        assert f"Here {failed} request(s) failed" in captions(fragments)[0]
        assert ">failed</text>" in fragments[0]

    def test_clean_rollback(self) -> None:
        """An atomic switch loses nothing."""
        (caption,) = captions(drawn("rollback"))
        assert "Here 0 request(s) failed and every response came from '1'" in caption


class TestSingleBatchFigures:
    def test_dead_parameter_is_named(self) -> None:
        """The bias the optimizer never updates is marked as unchanged."""
        fragments = drawn("single_batch", "dead_parameter")
        assert_figures(fragments, 1)
        assert "unchanged: no update" in fragments[0]
        assert "(vermillion): param/b1." in captions(fragments)[0]

    def test_healthy_step(self) -> None:
        """Every measurable ratio of a healthy step is inside the band."""
        (caption,) = captions(drawn("single_batch"))
        assert "Every measurable ratio is inside the band." in caption


class TestLossDecreasesFigures:
    def test_loss_curve_with_block_means(self) -> None:
        """The healthy demo's losses by step, with the block means the check judges."""
        fragments = drawn("loss_decreases")
        assert_figures(fragments, 1)
        (caption,) = captions(fragments)
        assert caption.startswith("Training loss at each of 100 steps (thin line) and its mean")
        assert "over each block of 10 consecutive steps" in caption
        assert "the mean loss fell from 1.043 in the first block to 0.6189 in the last." in caption
        assert ">block mean<" in fragments[0]

    def test_diverged_training_marks_the_first_nonfinite_step(self) -> None:
        """A loss that becomes inf is marked at its step and the caption says it diverged."""
        result = Result(
            "loss_decreases",
            Status.FAIL,
            metrics={"loss.first_nonfinite_step": 3.0},
            details={"losses": [1.0, 0.9, 0.8, "Infinity", "NaN"]},
        )
        fragments = figures.loss_figures(result)
        assert_figures(fragments, 1)
        assert "first non-finite loss (step 3)" in fragments[0]
        (caption,) = captions(fragments)
        assert "stops being a number at step 3 (marked): training diverged there" in caption

    def test_long_runs_are_thinned(self) -> None:
        """100,000 steps are drawn as at most 1,000 points, the first non-finite one kept."""
        from mlchecks.report.figures._training import _thin

        losses = np.ones(100_000)
        chosen = _thin(losses, keep=54_321.0)
        assert chosen.size <= 1001
        assert {0, 54_321, 99_999} <= set(chosen.tolist())


class TestCheckpointFigures:
    def test_restored_run_lies_on_the_reference(self) -> None:
        """The healthy restore: one panel, the crash and restore step marked and named."""
        fragments = drawn("checkpoint_restore")
        assert_figures(fragments, 1)
        assert "crash and restore at step 20" in fragments[0]
        assert "|loss difference|" not in fragments[0]
        (caption,) = captions(fragments)
        assert "killed (SIGKILL) after 20 steps, then restored from the checkpoint at step 20" in (
            caption
        )
        assert "The restored run's 20 losses lie on the reference's" in caption

    def test_forgotten_optimizer_state_shows_the_difference(self) -> None:
        """A restore that loses state: the first differing step and the difference from 0."""
        result = demo("checkpoint_restore", "checkpoint_forgets_optimizer_state")
        step = int(result.metrics["first_loss_difference_step"])
        fragments = figures.checkpoint_figures(result)
        assert_figures(fragments, 1)
        assert f"first difference (step {step})" in fragments[0]
        assert "|loss difference|" in fragments[0]
        (caption,) = captions(fragments)
        assert f"first differs from the reference's at step {step}" in caption

    def test_crash_after_the_last_checkpoint(self) -> None:
        """With checkpoint_every, the crash and the restore are two marks."""
        result = Result(
            "checkpoint_restore",
            Status.PASS,
            metrics={"crash_at": 7.0, "restore_step": 5.0},
            details={
                "reference_losses": [1.0 / (k + 1) for k in range(10)],
                "restored_losses": [1.0 / (k + 1) for k in range(5, 10)],
                "restore_step": 5,
            },
        )
        (fragment,) = figures.checkpoint_figures(result)
        assert "crash after 7 steps" in fragment
        assert "restore at step 5" in fragment


class TestPipelineFigures:
    def test_stage_timeline(self) -> None:
        """Every stage and serving step is a bar labelled with its duration and a unit."""
        result = demo("pipeline")
        fragments = drawn("pipeline")
        assert_figures(fragments, 1)
        names = [r["stage"] for r in result.details["stages"]]
        names += [r["step"] for r in result.details["serving_steps"]]
        for name in names:
            assert f">{name}<" in fragments[0], name
        assert re.search(r"> [\d.]+ (ms|\u00b5s|s)<", fragments[0])
        (caption,) = captions(fragments)
        assert "Here every stage ran and met its contract." in caption

    def test_broken_stages_are_named(self) -> None:
        """A stage that raised and the ones skipped after it are named in the caption."""
        stages = [
            {"stage": "load", "status": "ok", "duration_s": 0.5},
            {"stage": "clean", "status": "violated", "duration_s": 0.25},
            {"stage": "fit", "status": "failed", "duration_s": 0.125},
            {"stage": "export", "status": "skipped", "duration_s": 0.0},
        ]
        result = Result("pipeline", Status.FAIL, details={"stages": stages})
        (fragment,) = figures.pipeline_figures(result)
        (caption,) = captions([fragment])
        assert "(875 ms in all; the slowest, 'load', took 500 ms)" in caption
        assert "Here 'clean' ran, contract broken; 'fit' raised; 'export' skipped." in caption
        assert "> 125 ms (failed)<" in fragment


class TestLossDifferenceAxis:
    def test_identical_runs_axis_starts_at_zero(self) -> None:
        """An absolute difference that is 0 everywhere is drawn on an axis from 0, not below."""
        import matplotlib.figure

        drawn_axes: list[tuple[float, float]] = []
        original = matplotlib.figure.Figure.savefig

        def spy(fig: matplotlib.figure.Figure, *args: Any, **kwargs: Any) -> None:
            drawn_axes.extend(ax.get_ylim() for ax in fig.axes if "difference" in ax.get_ylabel())
            original(fig, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(matplotlib.figure.Figure, "savefig", spy)
            reproducibility_figures(demo("reproducibility"))
            figures.checkpoint_figures(demo("checkpoint_restore", "checkpoint_forgets_rng"))
        assert len(drawn_axes) == 2
        for low, high in drawn_axes:
            assert 0.0 <= low < high


def largest_details() -> dict[str, dict[str, Any]]:
    """Details at the bounds the checks keep (500 points, 30 slices, 3 metrics)."""
    rng = np.random.default_rng(1)
    n = 500
    lanes = ("candidate", "known_good", "failed", "other")
    steps = np.linspace(0, 99_999, n).round().tolist()
    stage_rows = [
        {"stage": f"stage {k}", "status": ("ok", "violated", "failed", "skipped")[k % 4]}
        | {"duration_s": float(rng.uniform(0, 2)), "violations": ["rows_out >= 1"] * (k % 2)}
        for k in range(60)
    ]
    return {
        "loss_decreases": {
            "losses": rng.uniform(0, 2, size=100_000).tolist(),
            "block_means": rng.uniform(0, 2, size=10).tolist(),
        },
        "checkpoint_restore": {
            "reference_losses": rng.uniform(0, 2, size=100_000).tolist(),
            "restored_losses": rng.uniform(0, 2, size=50_000).tolist(),
            "restore_step": 50_000,
        },
        "pipeline": {
            "stages": stage_rows,
            "serving_steps": [{"step": "requests", "duration_s": 0.5}],
        },
        "reproducibility": {
            "losses": {
                "steps": steps,
                "runs": {f"run {k}": rng.uniform(0, 2, size=n).tolist() for k in range(6)},
            },
            "pairs": [
                {
                    "a": "run 0",
                    "b": "run 1",
                    "divergence": {"losses": {"first_step": 7, "first_step_beyond": 9}},
                }
            ],
            "slice_tests": [
                {
                    "slicing": "region",
                    "slice": f"slice {s}",
                    "metric": m,
                    "a": "run 0",
                    "b": "run 1",
                    "difference": float(rng.normal(0, 0.02)),
                    "flagged": bool(s % 7 == 0),
                }
                for s in range(60)
                for m in ("accuracy", "log_loss", "brier", "auc")
            ],
            "slice_tolerance": 0.02,
        },
        "quality": {
            "table": [
                {
                    "kind": "regression",
                    "metric": m,
                    "slice": f"region=r{s}",
                    "n": 100,
                    "candidate": 0.8,
                    "baseline": 0.81,
                    "difference": -0.01,
                    "ci_low": -0.05,
                    "ci_high": 0.03,
                    "difference_limit": -0.03,
                    "verdict": "fail" if s % 5 == 0 else "pass",
                }
                for m in ("accuracy", "log_loss", "brier", "auc")
                for s in range(60)
            ]
        },
        "canary": {
            "trickle": {
                "decision": "fail",
                "reasons": ["latency"],
                "alpha": 0.05,
                "evalue_threshold": 60.0,
                "max_latency_ratio": 1.2,
                "arms": {
                    arm: {
                        "requests": 10_000,
                        "latency_sample_s": rng.lognormal(-7, 1, 200).tolist(),
                    }
                    for arm in ("candidate", "baseline")
                },
                "trajectory": {
                    "request": list(range(1, n + 1)),
                    **{
                        f"{t}_evalue": np.exp(rng.normal(0, 3, n)).tolist()
                        for t in ("errors", "latency", "shift", "disagreement")
                    },
                },
            }
        },
        "rollback": {
            "timeline": {
                "repeat": 1,
                "t_s": np.linspace(-0.05, 2.0, n).tolist(),
                "outcome": [lanes[i % 4] for i in range(n)],
            },
            "repeats": [{"first_s": 0.01, "all_s": float("inf"), "failed": 125}],
        },
        "single_batch": {
            "tensors": [
                {
                    "name": f"layer{k}/weight",
                    "role": "trainable",
                    "changed": k % 9 != 0,
                    "update_ratio": float(10 ** rng.uniform(-9, 1)),
                    "finite": True,
                }
                for k in range(80)
            ],
            "update_ratio_band": [1e-7, 1.0],
        },
    }


class TestFigureSize:
    @pytest.mark.parametrize("check", sorted(KIND))
    def test_largest_inputs_stay_small(self, check: str) -> None:
        """At the largest series the checks keep, every figure stays under 150 KB."""
        result = Result(check, Status.FAIL, details=largest_details()[check])
        fragments = BUILTIN_FIGURES[KIND[check]](result)
        assert fragments
        assert_figures(fragments, len(fragments))


DEGENERATE: list[tuple[str, dict[str, Any]]] = [
    ("reproducibility", {"losses": {"steps": [0], "runs": {"a": [1.0], "b": [1.0]}}}),
    (
        "reproducibility",
        {
            "losses": {"steps": [0, 1, 2], "runs": {"a": [1.0, 1.0, 1.0], "b": [1.01] * 3}},
            "pairs": [{"a": "a", "b": "b", "divergence": {"losses": {"first_step_beyond": 0}}}],
        },
    ),
    (
        "reproducibility",
        {
            "losses": {
                "steps": [0, 1, 2],
                "runs": {"a": [1.0, "NaN", "Infinity"], "b": [1.0, 2.0], "c": "oops"},
            }
        },
    ),
    (
        "reproducibility",
        {"slice_tests": [{"slicing": "s", "slice": "x", "metric": "m", "difference": 0.0}]},
    ),
    ("quality", {"table": [{"kind": "regression", "metric": "auc", "difference": 0.0}]}),
    (
        "quality",
        {"table": [{"kind": "regression", "metric": "mse", "slice": "all", "difference": "NaN"}]},
    ),
    (
        "canary",
        {
            "trickle": {
                "arms": {"candidate": {"latency_sample_s": [0.001]}, "baseline": {}},
                "trajectory": {"request": [1], "errors_evalue": ["Infinity"]},
            }
        },
    ),
    (
        "canary",
        {
            "trickle": {
                "arms": {"baseline": {"latency_sample_s": [0.001, 0.001]}},
                "trajectory": {"request": [1, 2], "latency_evalue": [1.0, 1.0]},
                "evalue_threshold": 60.0,
            }
        },
    ),
    ("canary", {"trickle": {"arms": {"candidate": {"latency_sample_s": [0.0, "NaN"]}}}}),
    ("rollback", {"timeline": {"t_s": [0.0], "outcome": ["failed"]}}),
    ("rollback", {"timeline": {"t_s": [0.0, 0.0], "outcome": ["mystery", "known_good"]}}),
    ("rollback", {"timeline": {"t_s": [0.0, 1.0], "outcome": ["failed"]}}),
    ("single_batch", {"tensors": [{"name": "w", "role": "trainable", "update_ratio": None}]}),
    (
        "single_batch",
        {
            "tensors": [
                {"name": "w", "role": "trainable", "finite": False},
                {"name": "b", "role": "trainable", "update_ratio": 0.0, "changed": True},
            ],
            "update_ratio_band": [0.5],
        },
    ),
    ("single_batch", {"tensors": [{"name": "w", "update_ratio": 1e-3}]}),
    ("loss_decreases", {"losses": [1.0]}),
    ("loss_decreases", {"losses": [1.0, "NaN", "Infinity"], "block_means": [1.0, 2.0, 3.0, 4.0]}),
    ("loss_decreases", {"losses": ["NaN", "NaN"]}),
    ("checkpoint_restore", {"reference_losses": [1.0], "restored_losses": [], "restore_step": 1}),
    (
        "checkpoint_restore",
        {"reference_losses": [1.0, 0.5], "restored_losses": [0.5, 9.0], "restore_step": 1},
    ),
    ("checkpoint_restore", {"reference_losses": [1.0, "NaN"], "restore_step": "oops"}),
    (
        "checkpoint_restore",
        {"reference_losses": [1.0, 1.0], "restored_losses": ["NaN"], "restore_step": 1},
    ),
    ("pipeline", {"stages": [{"stage": "only", "status": "mystery", "duration_s": "NaN"}]}),
    ("pipeline", {"stages": [{"stage": "a", "duration_s": 0.0}, {"stage": 3}, "junk"]}),
]


class TestDegenerateData:
    @pytest.mark.parametrize(
        ("check", "details"), DEGENERATE, ids=[f"{c}-{i}" for i, (c, _) in enumerate(DEGENERATE)]
    )
    def test_no_error_and_no_warning(self, check: str, details: dict[str, Any]) -> None:
        """Single points, constant series, NaN and malformed entries draw or skip quietly."""
        fragments = BUILTIN_FIGURES[KIND[check]](Result(check, Status.PASS, details=details))
        assert_figures(fragments, len(fragments))


class TestFigureData:
    """The checks expose the bounded series the figures draw."""

    def test_reproducibility_losses(self) -> None:
        """Both runs' losses at shared steps, and the slice tolerance."""
        details = demo("reproducibility").details
        steps = details["losses"]["steps"]
        assert 0 < len(steps) <= 500
        assert {len(steps)} == {len(v) for v in details["losses"]["runs"].values()}
        assert 0.02 == details["slice_metric_atol"]

    def test_reproducibility_slice_tolerance_reaches_the_figure(self) -> None:
        """The per-slice figure reads the tolerance the check writes (not the 0.1 key)."""
        from mlchecks.report.figures._reproducibility import slice_differences

        _, tolerance = slice_differences(demo("reproducibility"))
        assert 0.02 == tolerance

    def test_quality_difference_limit(self) -> None:
        """Comparison rows carry the allowed difference; metric-limit rows do not."""
        table = demo("quality").details["table"]
        limits = {r["kind"]: r["difference_limit"] for r in table}
        assert {"limit": None, "regression": pytest.approx(-0.03)} == limits

    def test_canary_latencies_and_trajectory(self) -> None:
        """Each arm's latency sample and the e-values after each (kept) request."""
        trickle = demo("canary").details["trickle"]
        for arm in ("candidate", "baseline"):
            sample = trickle["arms"][arm]["latency_sample_s"]
            assert 0 < len(sample) <= 200
            assert sorted(sample) == sample
        path = trickle["trajectory"]
        assert trickle["requests"] == path["request"][-1]
        assert {"request", "errors_evalue", "latency_evalue", "shift_evalue"} <= set(path)
        assert len(path["request"]) <= 500

    def test_rollback_timeline(self) -> None:
        """The responses of one repeat by arrival time, outside the per-repeat table."""
        details = demo("rollback").details
        timeline = details["timeline"]
        assert len(timeline["t_s"]) == len(timeline["outcome"]) <= 500
        assert {"candidate", "known_good"} == set(timeline["outcome"])
        assert all("timeline" not in row for row in details["repeats"])

    def test_single_batch_band(self) -> None:
        """The update-ratio band is in the details."""
        assert [1e-7, 1.0] == demo("single_batch").details["update_ratio_band"]


class TestHtmlIntegration:
    def test_report_has_figures_for_the_built_in_checks(self) -> None:
        """A rendered section holds the figures under a 'Figures' heading."""
        page = result_to_html(demo("rollback", "lossy_rollback"))
        assert "<h4>Figures</h4>" in page
        assert 1 == page.count("<svg ")
        assert "could not be drawn" not in page

    def test_builtin_figures_are_not_registered(self) -> None:
        """FIGURES holds only user registrations."""
        assert not set(BUILTIN_FIGURES) & set(FIGURES)

    def test_registered_function_replaces_the_built_in_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """register_figure under a built-in name wins over the built-in figure."""
        mine: Callable[[Result], list[str]] = lambda r: ["<p>my figure</p>"]  # noqa: E731
        monkeypatch.setitem(FIGURES, "RollbackCheck", mine)
        page = result_to_html(demo("rollback"))
        assert "<p>my figure</p>" in page
        assert "<svg" not in page

    def test_built_in_kind_with_other_data(self) -> None:
        """A QualityCheck result whose details hold something else gets no figure, no error."""
        kind = "mlchecks.checks.quality.QualityCheck"
        page = result_to_html(Result("q", Status.PASS, details={"table": [1, 2]}, kind=kind))
        assert "<h4>Figures</h4>" not in page
        assert "could not be drawn" not in page


class TestFiguresFollowTheKind:
    """Figures are chosen by the class that produced a result, never by the check's name."""

    def test_renamed_built_in_check_keeps_its_figures(self) -> None:
        """A QualityCheck named 'release_gate' gets the quality figures."""
        suite = build_suite(fault="slice_regression", seed=0)
        check = next(c for c in suite.checks if c.name == "quality")
        result = run_check(attrs.evolve(check, name="release_gate"))
        assert "release_gate" == result.check
        page = result_to_html(result)
        assert "<h4>Figures</h4>" in page
        assert "vermillion rows fail: region=east." in html.unescape(page)

    def test_user_check_with_a_built_in_looking_name_gets_none(self) -> None:
        """A user's check named 'quality_data' gets no quality figures, even with quality data."""

        @attrs.frozen
        class DataCheck:
            name: str = "quality_data"
            rubric: int | None = None

            def run(self, context: object = None) -> Result:
                return attrs.evolve(demo("quality", "slice_regression"), check=self.name, kind=None)

        result = run_check(DataCheck())
        assert result.kind is not None
        assert result.kind.endswith("DataCheck")
        assert "<h4>Figures</h4>" not in result_to_html(result)

    def test_user_class_named_like_a_built_in_gets_none(self) -> None:
        """Only a class from a module of mlchecks is known by its bare class name."""
        result = attrs.evolve(demo("quality", "slice_regression"), kind="myproject.QualityCheck")
        assert "<h4>Figures</h4>" not in result_to_html(result)

    def test_result_from_an_older_module_path(self) -> None:
        """A saved result whose kind names another mlchecks module still gets its figures."""
        kind = "mlchecks.checks._rollback_core.RollbackCheck"
        result = attrs.evolve(demo("rollback"), kind=kind)
        assert "<h4>Figures</h4>" in result_to_html(result)

    def test_kind_survives_json(self) -> None:
        """A result read back from JSON keeps its kind, so a saved report draws the same."""
        result = demo("rollback")
        back = Result.from_dict(result.to_dict())
        assert result.kind == back.kind
        assert result_to_html(result) == result_to_html(back)

    def test_register_for_a_user_class(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """register_figure(UserClass, fn) draws fn for that class's results, whatever the name."""
        monkeypatch.setattr(html_module, "FIGURES", {})

        @attrs.frozen
        class MyCheck:
            name: str
            rubric: int | None = None

            def run(self, context: object = None) -> Result:
                return Result(self.name, Status.PASS, "ok")

        register_figure(MyCheck, lambda r: [f"<p>drawn for {r.check}</p>"])
        assert "<p>drawn for anything</p>" in result_to_html(run_check(MyCheck("anything")))
        assert "<p>drawn" not in result_to_html(Result("anything", Status.PASS, "ok"))

    def test_register_built_in_class_by_class_or_name(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The class, its qualified name and its bare name register the same key."""
        from mlchecks.checks.rollback import RollbackCheck

        monkeypatch.setattr(html_module, "FIGURES", {})
        mine: Callable[[Result], list[str]] = lambda r: []  # noqa: E731
        register_figure(RollbackCheck, mine)
        register_figure("mlchecks.checks.rollback.RollbackCheck", mine)
        register_figure("RollbackCheck", mine)
        assert ["RollbackCheck"] == list(html_module.FIGURES)
        assert "<svg" not in result_to_html(demo("rollback"))

    @pytest.mark.parametrize("kind", ["quality", "rollback", "Rollback check", ""])
    def test_a_check_name_is_rejected(self, kind: str) -> None:
        """A check name (the old registry key) raises InvalidInput saying figures follow kinds."""
        with pytest.raises(InvalidInput, match="never the check's name"):
            register_figure(kind, lambda r: [])


class TestWithoutMatplotlib:
    def test_report_renders_tables_and_a_note(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without matplotlib each figure-bearing section has the install note and its tables."""
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        results = [demo("quality", "slice_regression"), demo("rollback")]
        page = suite_to_html(SuiteResult(results=results, name="no plots"))
        assert "<svg" not in page
        assert 2 == page.count(PLOT_NOTE)
        assert "install <code>mlchecks-infra[plot]</code> for figures" in page
        assert "<table>" in page
        assert "slice.regression.accuracy" in page
        assert "region=east" in page

    def test_no_note_where_there_is_nothing_to_draw(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A result without figure data gets no note either."""
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        assert PLOT_NOTE not in result_to_html(Result("canary", Status.PASS))

    def test_figure_functions_return_the_note(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Called directly, a figure function returns just the note."""
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        assert [figures.PLOT_NOTE] == canary_figures(demo("canary"))
