"""A model-quality gate for CI: `QualityCheck` on a scikit-learn candidate, with JUnit output.

A nightly job has retrained a churn classifier. Before the new model may replace the one in
production, this script checks it on the held-out evaluation set (rubric test 4 of the ML
Test Score):

- golden examples: hand-checked customers whose right answer is known must be classified
  correctly;
- floors: accuracy and ROC AUC must clear a minimum on their confidence bound;
- no regression versus the production model, paired on the same examples, overall and in
  every region (with Holm's correction across regions).

The exit code gates the CI job: 0 when the candidate may ship, 1 when it may not. The JUnit
XML feeds the CI's test tab; the Markdown report is appended to the GitHub Actions job
summary when ``$GITHUB_STEP_SUMMARY`` is set.

Run it (scikit-learn needed; everything else is synthetic and made here)::

    python examples/sklearn_quality_gate.py                      # exit 0: the gate passes
    python examples/sklearn_quality_gate.py --plant-regression   # exit 1: region 'east' broke
    python examples/sklearn_quality_gate.py --junit reports/junit.xml --markdown reports/summary.md

``--plant-regression`` plants the bug this gate exists to catch: a broken join in the
training data back-fills most 'east' labels with "stays", so the candidate stops predicting
churn in that region while its overall accuracy moves by about a point.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlchecks import AtLeast, NoWorseThan, Suite
from mlchecks.checks.quality import GoldenSet, QualityCheck

REGIONS = np.array(["north", "south", "west", "centre", "coast", "east"])
REGION_SHARE = np.array([0.25, 0.23, 0.2, 0.15, 0.12, 0.05])
N_FEATURES = 6  # tenure, monthly spend, support calls, discount, app sessions, contract age


def make_customers(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` synthetic customers: model features, churn labels (1 = churns) and regions."""
    rng = np.random.default_rng(seed)
    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARE)
    numeric = rng.normal(size=(n, N_FEATURES))
    logit = numeric @ np.array([-1.6, 0.9, 1.4, -0.7, -1.1, 0.4]) + 0.5 * (region == 5) - 0.3
    churns = (logit + rng.logistic(size=n) > 0).astype(np.int64)
    features = np.column_stack([numeric, np.eye(len(REGIONS))[region]])
    return features, churns, REGIONS[region]


def train(features: np.ndarray, labels: np.ndarray) -> Pipeline:
    """The team's training code: standardize, then an L2-regularized logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(features, labels)


def build_gate(plant_regression: bool = False) -> Suite:
    """Train the production and the candidate model, and the gate that compares them."""
    # The model in production was trained on last month's data ...
    x_old, y_old, _ = make_customers(6_000, seed=1)
    production = train(x_old, y_old)

    # ... the candidate on this month's.
    x_new, y_new, region_new = make_customers(6_000, seed=2)
    if plant_regression:
        # The bug: a broken join back-fills 60% of the 'east' labels with 0 ("stays").
        broken = (region_new == "east") & (np.random.default_rng(3).random(len(y_new)) < 0.6)
        y_new = np.where(broken, 0, y_new)
    candidate = train(x_new, y_new)

    # Held-out evaluation data, never trained on.
    x_eval, y_eval, region_eval = make_customers(10_000, seed=4)

    # Customers whose answer support has checked by hand: two sure churners, two sure stayers.
    golden_inputs = np.zeros((4, N_FEATURES + len(REGIONS)))
    golden_inputs[:, :N_FEATURES] = [
        [-2.5, 1.5, 2.5, -1.0, -2.0, 0.0],  # new, expensive, calls support: churns
        [-2.0, 2.0, 2.0, 0.0, -1.5, 1.0],
        [2.5, -1.0, -1.5, 1.0, 2.0, 0.0],  # long tenure, cheap, happy: stays
        [2.0, 0.0, -2.0, 1.5, 1.5, -1.0],
    ]
    golden_inputs[:, N_FEATURES] = 1.0  # region 'north'
    golden = GoldenSet(golden_inputs, expected=[1, 1, 0, 0])

    quality = QualityCheck(
        labels=y_eval,
        predict=candidate.predict_proba,
        inputs=x_eval,
        baseline_predictions=production.predict_proba(x_eval),
        slices={"region": region_eval},
        golden=golden,
        metric_limits={"accuracy": AtLeast(0.75), "roc_auc": AtLeast(0.8)},
        max_regression={"accuracy": NoWorseThan(abs=0.02), "roc_auc": NoWorseThan(abs=0.02)},
    )
    return Suite([quality], name="churn model quality gate")


def main(argv: list[str] | None = None) -> int:
    """Run the gate, write the reports, and return the exit code (0 pass, 1 fail)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--junit", metavar="PATH", help="write a JUnit XML report here")
    parser.add_argument("--markdown", metavar="PATH", help="write a Markdown report here")
    parser.add_argument(
        "--plant-regression",
        action="store_true",
        help="train the candidate on data with a broken join in region 'east'",
    )
    args = parser.parse_args(argv)

    report = build_gate(args.plant_regression).run(progress=False)
    print(report)
    for path in (args.junit, args.markdown):
        if path:
            print(f"wrote {report.save(path)}", file=sys.stderr)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(report.to_markdown())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
