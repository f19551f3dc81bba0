"""Write your own check and run it in a Suite next to the built-in ones.

mlchecks' built-in checks cover the seven infrastructure tests of the ML Test Score; your
system has invariants of its own. Any object with a ``name``, a ``rubric`` and
``run(context) -> Result`` is a check. This script writes one, `CalibrationCheck` (the
predicted churn probabilities must match the observed churn rates: expected calibration
error at most ``max_ece``), following the conventions of the built-in checks:

- a frozen attrs class: the fields are the inputs and thresholds, validated when it is built;
- ``run()`` measures, judges with a condition (`AtMost`) and returns a `Result` with the
  findings, every measured number in ``metrics`` and a drill-down table in ``details``;
- a failing model is a FAIL finding, never an exception.

It then composes it into a `Suite` with `ReproducibilityCheck` (rubric test 1) and
`QualityCheck` (rubric test 4), runs the suite, prints the report and the ML Test Score, and
exits with 0 when every check passed and 1 otherwise.

Run it (numpy only; the data and the model are made here)::

    python examples/custom_check.py                # exit 0
    python examples/custom_check.py --plant-fault  # exit 1: the served model is overconfident
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import attrs
import numpy as np

from mlchecks import (
    AtLeast,
    AtMost,
    Context,
    Finding,
    InvalidInput,
    NoWorseThan,
    Result,
    Status,
    Suite,
)
from mlchecks.checks.quality import QualityCheck
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun

# --------------------------------------------------------------------------- your check


def _fraction(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 < value < 1.0:
        raise InvalidInput(f"'{attribute.name}' must be in (0, 1) (got {value!r})")


@attrs.frozen
class CalibrationCheck:
    """Predicted probabilities of class 1 match the observed frequency of class 1.

    The expected calibration error (ECE) bins the examples by predicted probability and
    averages ``|mean predicted - observed rate|`` over the bins, weighted by their size.

    Args:
        labels: the true labels (0 or 1) of the evaluation examples.
        predict: the model, ``predict(inputs) -> probability of class 1``.
        inputs: the evaluation examples.
        max_ece: the largest allowed expected calibration error, in (0, 1).
        n_bins: the number of equal-width probability bins.
    """

    labels: np.ndarray = attrs.field(converter=np.asarray)
    predict: Any
    inputs: Any
    max_ece: float = attrs.field(default=0.05, validator=_fraction)
    n_bins: int = attrs.field(default=10, validator=attrs.validators.ge(2))
    name: str = "calibration"
    rubric: int | None = None  # a model test, not one of the seven infrastructure tests

    def run(self, context: Context | None = None) -> Result:
        """Predict, bin, and judge the calibration error."""
        probability = np.asarray(self.predict(self.inputs), dtype=np.float64)
        outside = int(np.sum(~((probability >= 0) & (probability <= 1))))  # NaN counts too
        if probability.shape != self.labels.shape or outside:
            message = (
                f"the model returned outputs of shape {probability.shape}, {outside:,} of them "
                f"not a probability in [0, 1]; expected {self.labels.size:,} probabilities"
            )
            return Result.from_findings(
                self.name, [Finding("predictions", Status.FAIL, message=message)]
            )
        bins = np.minimum((probability * self.n_bins).astype(np.int64), self.n_bins - 1)
        count = np.bincount(bins, minlength=self.n_bins)
        predicted = np.bincount(bins, weights=probability, minlength=self.n_bins)
        observed = np.bincount(bins, weights=self.labels, minlength=self.n_bins)
        used = count > 0
        gap = np.abs(predicted[used] - observed[used]) / count[used]
        ece = float(np.sum(gap * count[used]) / count.sum())
        rows = [
            {
                "bin": f"[{b / self.n_bins:.1f}, {(b + 1) / self.n_bins:.1f})",
                "n": int(count[b]),
                "mean_predicted": predicted[b] / count[b],
                "observed_rate": observed[b] / count[b],
            }
            for b in np.flatnonzero(used)
        ]
        finding = AtMost(self.max_ece).judge(
            "ece", ece, context=f" over {int(count.sum()):,} examples in {self.n_bins} bins"
        )
        return Result.from_findings(
            self.name, [finding], metrics={"ece": ece}, details={"bins": rows}
        )


# --------------------------------------------------------------------------- the system


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples with 5 features and a churn label drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    logit = x @ np.array([1.2, -0.8, 0.5, 0.0, 0.3]) - 0.4
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)


X_TRAIN, Y_TRAIN = make_data(4_000, seed=0)
X_EVAL, Y_EVAL = make_data(5_000, seed=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 5) -> np.ndarray:
    """Logistic regression by mini-batch SGD; every random choice comes from ``seed``."""
    rng = np.random.default_rng(seed)
    w: np.ndarray = rng.normal(scale=0.01, size=x.shape[1] + 1)
    xb = np.column_stack([x, np.ones(len(x))])
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), len(x) // 64):
            p = 1 / (1 + np.exp(-xb[batch] @ w))
            w -= 0.1 * xb[batch].T @ (p - y[batch]) / len(batch)
    return w


def probability(w: np.ndarray, x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The model's probability of churn."""
    logit: np.ndarray = x @ w[:-1] + w[-1]
    return 1 / (1 + np.exp(-logit / temperature))


def train(seed: int) -> TrainingRun:
    """One training run, as `ReproducibilityCheck` compares them."""
    w = fit_logistic(X_TRAIN, Y_TRAIN, seed)
    return TrainingRun(predictions=probability(w, X_EVAL), labels=Y_EVAL, name=f"seed {seed}")


def build_suite(plant_fault: bool = False) -> Suite:
    """Your check and two built-in ones, on the candidate and the model in production."""
    production = fit_logistic(X_TRAIN[:3_000], Y_TRAIN[:3_000], seed=7)
    candidate = fit_logistic(X_TRAIN, Y_TRAIN, seed=0)
    # The planted fault: serving divides the logits by 0.4 instead of 1 (a wrong
    # temperature), so every probability is pushed towards 0 or 1. Classes are unchanged.
    temperature = 0.4 if plant_fault else 1.0

    def serve(x: np.ndarray) -> np.ndarray:
        return probability(candidate, x, temperature)

    return Suite(
        [
            ReproducibilityCheck(make_run=train, seeds=(0, 0)),
            QualityCheck(
                labels=Y_EVAL,
                predict=serve,
                inputs=X_EVAL,
                baseline_predictions=probability(production, X_EVAL),
                metric_limits={"accuracy": AtLeast(0.65)},
                max_regression={"accuracy": NoWorseThan(abs=0.02)},
            ),
            CalibrationCheck(Y_EVAL, serve, X_EVAL, max_ece=0.05),
        ],
        name="churn model",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the report, and return the exit code (0 pass, 1 fail)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plant-fault", action="store_true", help="serve with a wrong temperature")
    args = parser.parse_args(argv)
    report = build_suite(args.plant_fault).run(Context(seed=0), progress=False)
    print(report)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
