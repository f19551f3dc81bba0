"""Training trajectories and run-to-run spread, for `ReproducibilityCheck`.

`compare_trajectories` finds, for every pair of runs, the first step where the losses
differ (exactly, and beyond ``loss_atol``) and where the parameter hashes differ, and
reports the earliest as the ``first_divergence`` finding; `spread` gives the standard
deviation of each metric over three or more runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks.checks._repro_slices import is_builtin
from mlchecks.checks._runs import TrainingRun
from mlchecks.checks._series import even_indices
from mlchecks.result import Finding, Status
from mlchecks.stats.compare import LossDivergence, first_mismatch, loss_divergence

if TYPE_CHECKING:
    from mlchecks.checks._repro_eval import Evaluation

__all__ = ["compare_trajectories", "spread"]


def _distinct(a: float, b: float) -> tuple[str, str]:
    """Both numbers with just enough digits to tell them apart."""
    for digits in range(5, 18):
        left, right = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if left != right:
            return left, right
    return repr(a), repr(b)


def _earliest(*steps: int | None) -> int | None:
    present = [s for s in steps if s is not None]
    return min(present) if present else None


def _hash_at(run: TrainingRun, step: int) -> str:
    hashes = run.step_hashes or ()
    return hashes[step] if step < len(hashes) else "(none: the run ended)"


def _trajectory_length(a: TrainingRun, b: TrainingRun) -> int:
    lengths = [len(x) for r in (a, b) for x in (r.losses, r.step_hashes) if x is not None]
    return max(lengths, default=0)


def compare_trajectories(ev: Evaluation) -> None:
    """The first step where each pair's losses or parameter hashes part."""
    atol = 0.0 if ev.exact else ev.check.loss_atol
    found: list[tuple[tuple[float, float, int], int, LossDivergence | None, int | None]] = []
    for k, (i, j) in enumerate(ev.pairs):
        a, b = ev.prepared[i].run, ev.prepared[j].run
        entry: dict[str, Any] = {}
        divergence = None
        hash_step = None
        if a.losses is not None and b.losses is not None:
            divergence = loss_divergence(a.losses, b.losses, tolerance=atol)
            entry["losses"] = attrs.asdict(divergence)
        if a.step_hashes is not None and b.step_hashes is not None:
            hash_step = first_mismatch(a.step_hashes, b.step_hashes)
            entry["first_hash_difference"] = hash_step
        if not entry:
            continue
        ev.out.details["pairs"][k]["divergence"] = entry
        beyond = divergence.first_step_beyond if divergence else None
        first = _earliest(divergence.first_step if divergence else None, hash_step)
        order = (
            math.inf if beyond is None else beyond,
            math.inf if first is None else first,
            k,
        )
        found.append((order, k, divergence, hash_step))
    _loss_curves(ev, found)
    if not found:
        return
    _, k, divergence, hash_step = min(found, key=lambda row: row[0])
    ev.out.add(_divergence_finding(ev, *ev.pairs[k], divergence, hash_step))
    if divergence is not None:
        ev.out.metric("first_loss_difference_step", divergence.first_step)
        ev.out.metric("first_divergence_step", divergence.first_step_beyond)
    ev.out.metric("first_hash_difference_step", hash_step)


def _loss_curves(
    ev: Evaluation, found: Sequence[tuple[Any, int, LossDivergence | None, int | None]]
) -> None:
    """Every run's losses at up to `MAX_POINTS` shared steps, for report figures.

    The steps where a pair first differs are always among them.
    """
    curves = {p.name: p.run.losses for p in ev.prepared if p.run.losses is not None}
    if not curves:
        return
    marked: list[int] = []
    for _, _, divergence, hash_step in found:
        if divergence is not None:
            steps = (divergence.first_step, divergence.first_step_beyond)
            marked += [s for s in steps if s is not None]
        if hash_step is not None:
            marked.append(hash_step)
    kept = even_indices(max(len(v) for v in curves.values()), keep=marked)
    ev.out.detail(
        "losses",
        {
            "steps": kept.tolist(),
            "runs": {
                name: [float(v[s]) if s < len(v) else math.nan for s in kept]
                for name, v in curves.items()
            },
        },
    )


def _divergence_finding(
    ev: Evaluation, i: int, j: int, divergence: LossDivergence | None, hash_step: int | None
) -> Finding:
    a, b = ev.prepared[i], ev.prepared[j]
    runs = f"runs {a.name!r} and {b.name!r}"
    atol = 0.0 if ev.exact else ev.check.loss_atol
    limit = "no difference" if ev.exact else f"losses within {atol:g}"
    beyond = divergence.first_step_beyond if divergence else None
    loss_step = divergence.first_step if divergence else None
    values = ""
    if beyond is not None and divergence is not None:
        if divergence.loss_a is not None and divergence.loss_b is not None:
            left, right = _distinct(divergence.loss_a, divergence.loss_b)
            values = f"loss {left} vs {right}"
        else:
            values = f"one run stops after {divergence.steps:,} steps"
    facts: list[tuple[int, str]] = []
    if loss_step is not None:
        if ev.exact:
            facts.append((loss_step, f"losses first differ at step {loss_step} ({values})"))
        elif loss_step != beyond:
            facts.append((loss_step, f"losses differ within tolerance from step {loss_step}"))
    if hash_step is not None:
        hash_a, hash_b = _hash_at(a.run, hash_step), _hash_at(b.run, hash_step)
        facts.append(
            (hash_step, f"parameter hashes differ from step {hash_step} ({hash_a} vs {hash_b})")
        )
    facts.sort(key=lambda fact: fact[0])
    rest = "; ".join(text for _, text in facts)
    steps = _trajectory_length(a.run, b.run)
    if ev.exact and facts:
        message = f"{runs} first differ at step {facts[0][0]}: {rest}"
        return Finding("first_divergence", Status.FAIL, facts[0][0], limit, message)
    if beyond is not None:
        message = f"{runs} diverge at step {beyond} ({values}, beyond {atol:g})"
        message += f"; {rest}" if rest else ""
        return Finding("first_divergence", Status.WARN, beyond, limit, message)
    if facts:
        message = f"losses of {runs} stay within {atol:g} over {steps:,} steps, but {rest}"
        if divergence is None:
            message = f"{runs}: {rest}"
        return Finding("first_divergence", Status.PASS, None, limit, message)
    what = " and ".join(
        word
        for word, present in (
            ("losses", divergence is not None),
            (
                "parameter hashes",
                a.run.step_hashes is not None and b.run.step_hashes is not None,
            ),
        )
        if present
    )
    message = f"{what} of {runs} are identical over all {steps:,} steps"
    return Finding("first_divergence", Status.PASS, None, limit, message)


def spread(ev: Evaluation) -> None:
    """With three or more runs, each metric's standard deviation, minimum and maximum."""
    if len(ev.prepared) < 3:
        return
    table: dict[str, dict[str, float]] = {}
    names = [k for k in ev.prepared[0].values if all(k in p.values for p in ev.prepared)]
    for name in names:
        values = np.array([p.values[name] for p in ev.prepared])
        std = float(values.std(ddof=1))
        table[name] = {"std": std, "min": float(values.min()), "max": float(values.max())}
        if is_builtin(name):
            ev.out.metric(f"metric.{name}.std", std)
    ev.out.detail("spread", table)
