"""LossDecreasesCheck's trend verdict: false alarms on flat curves, power on falling ones.

Prints every rate quoted in docs/checks/loss_decreases.md and docs/stats.md (issue 13, item
5); tests/verdicts/test_loss_trend.py runs the same functions with the same settings and
seeds and asserts them. Run: ``python benchmarks/verdicts_loss_trend.py``.

The simulation runs the kernel `LossDecreasesCheck` calls (`mlchecks.stats.trend`:
`lag1_autocorrelation`, `block_steps`, `kendall_pvalue_less` on `numpy.array_split` block
means, and `slope_test` on curves too short for the blocks), vectorised over curves;
`decide` is `loss_trend(...).decreasing(alpha)` and `.judgeable` for every row (the test
checks that on whole curves).

- Null: a flat loss (1.0) plus stationary AR(1) noise (unit variance, lag-1 correlation
  ``rho``), ``REPS`` curves per (window, rho). A false alarm is a curve declared decreasing
  (the check would PASS a model that does not learn); a curve too short for its estimated
  autocorrelation is not judged by the block test ("judged" is the share that is); the
  slope test decides those, and the check WARNS (asking for more steps) where it cannot show
  a decline, which is not a false alarm. Rates are shown with their exact (Clopper-Pearson)
  95% interval.
- Power: ``2.0 -> 0.5`` exponential decay with time constant ``n / 3`` steps (a loss that
  falls to about 0.57 by the end of the window) plus AR(1) noise of standard deviation
  ``POWER_NOISE`` (about a tenth of the drop), ``POWER_REPS`` curves per (window, rho).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import scipy.stats

from mlchecks.stats.trend import (
    block_steps,
    kendall_pvalue_less,
    lag1_autocorrelation,
    min_blocks,
    slope_test,
)

SEED = 13
ALPHAS = (0.05, 0.01)
RHOS = (0.0, 0.5, 0.8, 0.9, 0.95)
#: From the fewest steps the check accepts (6 at alpha 0.01) to long runs; the block test
#: judges white noise from 25 steps at alpha 0.05 and 30 at 0.01, the slope test the rest.
WINDOWS = (8, 12, 20, 30, 40, 60, 100, 200, 500)
REPS = 20_000
N_BLOCKS = 10
POWER_RHOS = (0.0, 0.5, 0.8, 0.9)
POWER_WINDOWS = (12, 30, 60, 100, 200, 500)
POWER_REPS = 1_000
POWER_NOISE = 0.15


def ar1(rng: np.random.Generator, n: int, rho: float, size: int) -> np.ndarray:
    """``size`` stationary AR(1) series of length ``n``, unit variance.

    The first value is drawn from the stationary distribution, so no burn-in is needed.
    """
    noise = rng.normal(size=(size, n))
    noise[:, 1:] *= math.sqrt(1.0 - rho * rho)
    series: np.ndarray = scipy.signal.lfilter([1.0], [1.0, -rho], noise, axis=-1)
    return series


def decide(curves: np.ndarray, alpha: float, n_blocks: int = N_BLOCKS) -> tuple[np.ndarray, ...]:
    """``(decreasing, judged)`` for every row, as `loss_trend` decides them."""
    n = curves.shape[1]
    floor = min(n_blocks, min_blocks(alpha))
    rho = lag1_autocorrelation(curves)
    steps = block_steps(rho)
    blocks = np.clip(n // steps, floor, n_blocks)
    judged = n >= floor * steps
    decreasing = np.zeros(len(curves), dtype=bool)
    for b in np.unique(blocks[judged]):
        rows = judged & (blocks == b)
        means = np.stack([c.mean(axis=1) for c in np.array_split(curves[rows], b, axis=1)], 1)
        decreasing[rows] = kendall_pvalue_less(means) <= alpha
    if not judged.all():
        _, slope_p = slope_test(curves[~judged])
        decreasing[~judged] = slope_p <= alpha
    return decreasing, judged


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """The exact two-sided 95% interval of a binomial proportion ``k / n``."""
    ci = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return float(ci.low), float(ci.high)


def false_alarms(reps: int = REPS, seed: int = SEED) -> dict[tuple[float, int, float], dict]:
    """``{(alpha, n, rho): {"alarms", "reps", "judged", "low", "high"}}`` on flat curves."""
    out: dict[tuple[float, int, float], dict] = {}
    for w, n in enumerate(WINDOWS):
        for r, rho in enumerate(RHOS):
            rng = np.random.default_rng([seed, w, r])
            curves = 1.0 + ar1(rng, n, rho, reps)
            for alpha in ALPHAS:
                decreasing, judged = decide(curves, alpha)
                k = int(decreasing.sum())
                low, high = clopper_pearson(k, reps)
                out[(alpha, n, rho)] = {
                    "alarms": k,
                    "reps": reps,
                    "judged": float(judged.mean()),
                    "low": low,
                    "high": high,
                }
    return out


def falling_curves(rng: np.random.Generator, n: int, rho: float, size: int) -> np.ndarray:
    """``2.0 -> 0.5`` exponential decay (time constant ``n / 3``) plus AR(1) noise."""
    t = np.arange(n)
    return 0.5 + 1.5 * np.exp(-3.0 * t / n) + POWER_NOISE * ar1(rng, n, rho, size)


def power(reps: int = POWER_REPS, seed: int = SEED) -> dict[tuple[float, int, float], dict]:
    """``{(alpha, n, rho): {"power", "judged"}}`` on falling curves."""
    out: dict[tuple[float, int, float], dict] = {}
    for w, n in enumerate(POWER_WINDOWS):
        for r, rho in enumerate(POWER_RHOS):
            rng = np.random.default_rng([seed, 100 + w, r])
            curves = falling_curves(rng, n, rho, reps)
            for alpha in ALPHAS:
                decreasing, judged = decide(curves, alpha)
                out[(alpha, n, rho)] = {
                    "power": float(decreasing.mean()),
                    "judged": float(judged.mean()),
                }
    return out


def alarm_table(alarms: dict[tuple[float, int, float], dict], alpha: float = 0.01) -> str:
    """The false-alarm table docs/checks/loss_decreases.md shows: rate (share judged)."""
    lines = [
        "| steps | " + " | ".join(f"rho {rho:g}" for rho in RHOS) + " |",
        "| --- |" + " --- |" * len(RHOS),
    ]
    for n in WINDOWS:
        cells = []
        for rho in RHOS:
            c = alarms[(alpha, n, rho)]
            cells.append(f"{c['alarms'] / c['reps']:.4f} ({c['judged']:.0%})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def worst_bounds(alarms: dict[tuple[float, int, float], dict]) -> dict[float, float]:
    """The largest exact upper 95% bound of the false-alarm rate over every cell, per alpha."""
    return {a: max(v["high"] for k, v in alarms.items() if k[0] == a) for a in ALPHAS}


def power_table(rates: dict[tuple[float, int, float], dict], alpha: float = 0.01) -> str:
    """The power table docs/checks/loss_decreases.md shows: power (share judged by blocks)."""
    lines = [
        "| steps | " + " | ".join(f"rho {rho:g}" for rho in POWER_RHOS) + " |",
        "| --- |" + " --- |" * len(POWER_RHOS),
    ]
    for n in POWER_WINDOWS:
        cells = [
            f"{rates[(alpha, n, rho)]['power']:.3f} ({rates[(alpha, n, rho)]['judged']:.0%})"
            for rho in POWER_RHOS
        ]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Print the false-alarm and power tables."""
    alarms = false_alarms()
    print(f"False alarms on flat AR(1) curves ({REPS:,} per cell): rate [95% CI] (judged)")
    for alpha in ALPHAS:
        print(f"\nalpha {alpha}")
        print("n_steps | " + " | ".join(f"rho {rho}" for rho in RHOS))
        for n in WINDOWS:
            cells = []
            for rho in RHOS:
                c = alarms[(alpha, n, rho)]
                rate = c["alarms"] / c["reps"]
                cells.append(f"{rate:.4f} [{c['low']:.4f}, {c['high']:.4f}] ({c['judged']:.0%})")
            print(f"{n} | " + " | ".join(cells))
    worst = worst_bounds(alarms)
    print(
        "\nlargest upper 95% bound: " + ", ".join(f"alpha {a}: {h:.4f}" for a, h in worst.items())
    )
    rates = power()
    print(
        f"\nPower: 2.0 -> 0.5 decay (time constant n/3) + AR(1) noise sd {POWER_NOISE} "
        f"({POWER_REPS:,} per cell): decreasing (judged)"
    )
    for alpha in ALPHAS:
        print(f"\nalpha {alpha}")
        print("n_steps | " + " | ".join(f"rho {rho}" for rho in POWER_RHOS))
        for n in POWER_WINDOWS:
            cells = [
                f"{rates[(alpha, n, rho)]['power']:.3f} ({rates[(alpha, n, rho)]['judged']:.0%})"
                for rho in POWER_RHOS
            ]
            print(f"{n} | " + " | ".join(cells))
    print("\nThe tables docs/checks/loss_decreases.md shows (alpha 0.01):\n")
    print(alarm_table(alarms))
    print()
    print(power_table(rates))


if __name__ == "__main__":
    main()
