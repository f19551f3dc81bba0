"""The built-in figures of the HTML report, drawn with matplotlib (the ``plot`` extra).

One figure function per check type reads the check's result and returns HTML fragments:
a ``<figure>`` holding an inline SVG and a ``<figcaption>`` that says what to look at.

- `ReproducibilityCheck`: the runs' loss curves with the first diverging step marked, and
  the per-slice metric differences against the slice tolerance;
- `QualityCheck`: each slice's metric for the candidate and the baseline, and the
  difference with its confidence interval against the allowed drop;
- `CanaryCheck`: the latency distributions of both versions, and the sequential tests'
  e-values over the requests with their threshold;
- `RollbackCheck`: which version answered each live request around the switch;
- `SingleBatchCheck`: the update ratio ``||delta|| / ||w||`` of every tensor;
- `LossDecreasesCheck`: the loss at each step and the mean of each block of steps judged;
- `CheckpointRestoreCheck`: the reference and restored runs' losses, the crash and the
  restore marked (and their absolute difference when they differ);
- `PipelineCheck`: a timeline of the stages and the serving steps, coloured by status.

`BUILTIN_FIGURES` maps each check class's name to its figure function. The HTML report
(`mlchecks.report.html`) picks them by the result's ``kind`` (the producing class), never
by the check's name; a function registered with `mlchecks.report.html.register_figure`
for the same class replaces the built-in one.

Each figure reads its data through one accessor in its module (`loss_curves`,
`slice_differences`, `quality_comparison`, `trickle_latencies`, `evidence_path`,
`rollback_timeline`, `tensor_updates`, `loss_curve`, `restore_curves`, `stage_timeline`):
the only code that knows the result's keys.

Importing this package does not import matplotlib: each function imports it when it
draws, renders with `matplotlib.figure.Figure` (never pyplot, so the user's backend and
open figures are untouched) inside `matplotlib.rc_context`, and returns a note asking to
install ``mlchecks-infra[plot]`` when matplotlib is missing. A result without the data a figure
needs gets no figure. Every string from a check is escaped: matplotlib escapes text inside
the SVG, captions go through `html.escape`, and a ``$`` in a name is escaped so it never
starts math text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mlchecks.report.figures._canary import canary_figures
from mlchecks.report.figures._pipeline import pipeline_figures
from mlchecks.report.figures._plot import PLOT_NOTE
from mlchecks.report.figures._quality import quality_figures
from mlchecks.report.figures._reproducibility import reproducibility_figures
from mlchecks.report.figures._rollback import rollback_figures
from mlchecks.report.figures._single_batch import single_batch_figures
from mlchecks.report.figures._training import checkpoint_figures, loss_figures
from mlchecks.result import Result

__all__ = [
    "BUILTIN_FIGURES",
    "PLOT_NOTE",
    "canary_figures",
    "checkpoint_figures",
    "loss_figures",
    "pipeline_figures",
    "quality_figures",
    "reproducibility_figures",
    "rollback_figures",
    "single_batch_figures",
]

#: The built-in figure function of each check class, by class name (see
#: `mlchecks.report.html.kind_key` for how a result's ``kind`` finds its entry).
BUILTIN_FIGURES: Mapping[str, Callable[[Result], list[str]]] = {
    "ReproducibilityCheck": reproducibility_figures,
    "QualityCheck": quality_figures,
    "CanaryCheck": canary_figures,
    "RollbackCheck": rollback_figures,
    "SingleBatchCheck": single_batch_figures,
    "LossDecreasesCheck": loss_figures,
    "CheckpointRestoreCheck": checkpoint_figures,
    "PipelineCheck": pipeline_figures,
}
