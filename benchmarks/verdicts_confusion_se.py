"""Paired precision/recall/F1 tests: the count bootstrap (before) against the delta method (now).

`paired_confusion` used to bootstrap the joint (true, candidate, baseline) counts (1,000
multinomial draws of C**3 cells per slice: ~0.1 s per slice at 10 classes); it now takes the
delta-method standard error of the same counts (the bootstrap's limit). This script
simulates both on the same data and prints, per setting, the false-alarm rate of the
two-sided test of "no difference" at alpha = 0.05 for two models of the same quality, and
the coverage of the 95% interval of the difference for a candidate that is worse (the true
difference is the metric at the population's expected counts). Run:
``python benchmarks/verdicts_confusion_se.py [--reps 400]``;
tests/stats/test_confusion_se.py asserts the delta method's rates with the same seeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mlchecks.stats.intervals import bootstrap_counts
from mlchecks.stats.paired import _joint_standard_error, confusion_statistic, paired_confusion

SEED = 17
ALPHA = 0.05
#: (metric, classes, rows): binary F1 on 2 classes, macro F1 on 10, small to large slices.
SETTINGS = (
    ("f1", 2, 100),
    ("f1", 2, 1_000),
    ("f1_macro", 10, 200),
    ("f1_macro", 10, 1_000),
    ("f1_macro", 10, 10_000),
)
#: Accuracy of (candidate, baseline): the same quality, then a candidate 5 points worse.
SAME, WORSE = (0.8, 0.8), (0.75, 0.8)
#: How often the baseline repeats the candidate's prediction (the models are correlated).
SHARED = 0.5


def cell_probabilities(classes: int, accuracy: tuple[float, float]) -> np.ndarray:
    """P(true, candidate, baseline): uniform labels; each model right with its accuracy,
    else a uniform wrong class; the baseline copies the candidate's prediction with
    probability SHARED when both are drawn alike (exchangeable when the accuracies match)."""
    c = classes

    def model(acc: float) -> np.ndarray:  # P(pred | true)
        wrong = (1.0 - acc) / (c - 1)
        return np.full((c, c), wrong) + np.eye(c) * (acc - wrong)

    cand, base = model(accuracy[0]), model(accuracy[1])
    joint: np.ndarray = np.einsum("tc,tb->tcb", cand, base) / c
    if accuracy[0] == accuracy[1]:
        copy = np.zeros((c, c, c))
        for t in range(c):
            copy[t, np.arange(c), np.arange(c)] = cand[t] / c
        joint = SHARED * copy + (1.0 - SHARED) * joint
    return joint / joint.sum()


def population_difference(name: str, probs: np.ndarray) -> float:
    stat = confusion_statistic(name)
    big = probs * 1e12
    return float(stat(big.sum(axis=2)[None])[0] - stat(big.sum(axis=1)[None])[0])


def rates(
    name: str,
    classes: int,
    rows: int,
    accuracy: tuple[float, float],
    reps: int,
    seed: int,
    bootstrap: bool = True,
) -> dict[str, float]:
    """Rejections of "no difference" (p < ALPHA) and coverage of the difference, per method
    (``bootstrap=False``: the delta method only, with the same draws of the tables)."""
    rng = np.random.default_rng(seed)
    probs = cell_probabilities(classes, accuracy)
    truth = population_difference(name, probs)
    z = 1.959963984540054
    stat = confusion_statistic(name)
    boot_rng = np.random.default_rng(seed + 10_000)  # tables do not depend on `bootstrap`
    out = {"bootstrap_reject": 0.0, "delta_reject": 0.0, "bootstrap_cover": 0.0, "delta_cover": 0.0}
    for _ in range(reps):
        joint = rng.multinomial(rows, probs.reshape(-1)).reshape(probs.shape)
        res = paired_confusion(name, joint)
        methods = [("delta", _joint_standard_error(name, joint))]
        if bootstrap:
            boot_se = bootstrap_counts(
                joint,
                lambda t: stat(t.sum(axis=-1)) - stat(t.sum(axis=-2)),
                n_resamples=1000,
                rng=boot_rng,
            ).standard_error
            methods.append(("bootstrap", boot_se))
        for method, se in methods:
            d = res.statistic
            if se > 0:
                out[f"{method}_reject"] += abs(d) / se > z
                out[f"{method}_cover"] += abs(d - truth) <= z * se
            else:
                out[f"{method}_reject"] += d != 0
                out[f"{method}_cover"] += d == truth
    return {k: v / reps for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    args = parser.parse_args()
    print(f"reps {args.reps}, seed {SEED}, alpha {ALPHA}; bootstrap: 1,000 count resamples")
    print(
        "| metric | classes | rows | false alarms, bootstrap | false alarms, delta "
        "| coverage, bootstrap | coverage, delta | seconds |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, (name, classes, rows) in enumerate(SETTINGS):
        start = time.perf_counter()
        same = rates(name, classes, rows, SAME, args.reps, SEED + i)
        worse = rates(name, classes, rows, WORSE, args.reps, SEED + 100 + i)
        print(
            f"| {name} | {classes} | {rows:,} | {same['bootstrap_reject']:.3f} | "
            f"{same['delta_reject']:.3f} | {worse['bootstrap_cover']:.3f} | "
            f"{worse['delta_cover']:.3f} | {time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
