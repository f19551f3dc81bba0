"""QualityCheck verdicts: floors, slice intervals, the overall test (issue 13, item 6).

Prints every rate quoted in docs/checks/quality.md; tests/verdicts/test_quality.py runs the
same functions with the same settings and asserts them. Run: ``python
benchmarks/verdicts_quality.py``.

- Floors: the pass rate of a model whose true accuracy is exactly the floor (0.9), by the
  exact Clopper-Pearson lower bound (now) and the Wilson bound (before), simulated with
  ``FLOOR_REPS`` draws, plus the exact worst case over a grid of floors (binomial sums).
- Slices: the coverage of the exact conditional interval of a paired accuracy difference
  (`discordant_interval`, now) and the Wald interval (before) at few and many disagreements.
- Overall: a candidate of the same quality as the baseline under the default test
  (non-inferiority, margin 0.01) and one 5 points worse, n = 2,000.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from mlchecks.stats.intervals import clopper_pearson
from mlchecks.stats.paired import _discordant_bounds, paired_correctness

ALPHA = 0.05
SEED = 13
FLOOR = 0.9
FLOOR_NS = (30, 50, 100, 1000)
FLOOR_REPS = 200_000
#: (n, candidate-only rate, baseline-only rate): about 3 disagreements, then more.
SLICE_CASES = (
    (100, 0.01, 0.02),
    (100, 0.015, 0.015),
    (100, 0.03, 0.03),
    (100, 0.08, 0.12),
    (1000, 0.04, 0.06),
)
SLICE_REPS = 20_000
OVERALL_N = 2_000
OVERALL_MARGIN = 0.01
OVERALL_REPS = 2_000
#: (candidate-only, baseline-only) rates: same quality (0.9 vs 0.9, 10% disagreements) and
#: a 5-point regression (0.85 vs 0.90).
SAME_QUALITY = (0.05, 0.05)
REGRESSION = (0.025, 0.075)


def floor_pass_rates(seed: int = SEED) -> dict[int, dict[str, float]]:
    """Per n: passes of a model at the floor (simulated) and the exact worst case by n."""
    rng = np.random.default_rng(seed)
    out: dict[int, dict[str, float]] = {}
    grid = np.linspace(0.5, 0.995, 400)
    for n in FLOOR_NS:
        k_all = np.arange(n + 1)
        cp_low = clopper_pearson(k_all, np.full(n + 1, n), 1.0 - ALPHA)[0]
        wilson_low = np.array(
            [scipy.stats.binomtest(int(k), n).proportion_ci(1 - ALPHA, "wilson").low for k in k_all]
        )
        draws = rng.binomial(n, FLOOR, FLOOR_REPS)
        pmf = scipy.stats.binom.pmf(k_all[None, :], n, grid[:, None])
        out[n] = {
            "cp_passes": float(np.count_nonzero(cp_low[draws] >= FLOOR)),
            "wilson_passes": float(np.count_nonzero(wilson_low[draws] >= FLOOR)),
            "reps": float(FLOOR_REPS),
            "cp_worst": float((pmf * (cp_low[None, :] >= grid[:, None])).sum(axis=1).max()),
            "wilson_worst": float((pmf * (wilson_low[None, :] >= grid[:, None])).sum(axis=1).max()),
        }
    return out


def slice_coverage(seed: int = SEED) -> list[dict[str, float]]:
    """Coverage of the exact conditional and the Wald interval of the slice difference."""
    rng = np.random.default_rng(seed)
    z = scipy.stats.norm.ppf(1 - ALPHA / 2)
    out = []
    for n, pb, pc in SLICE_CASES:
        cells = rng.multinomial(n, [pb, pc, 1 - pb - pc], SLICE_REPS)
        b, c = cells[:, 0], cells[:, 1]
        truth = pb - pc
        low, high = _discordant_bounds(b, c, n, ALPHA / 2)
        diff = (b - c) / n
        se = np.sqrt(np.maximum((b + c) / n - diff**2, 0.0) / n)
        out.append(
            {
                "n": float(n),
                "mean_disagreements": float(np.mean(b + c)),
                "truth": truth,
                "exact_misses": float(np.count_nonzero((truth < low) | (truth > high))),
                "wald_misses": float(
                    np.count_nonzero((truth < diff - z * se) | (truth > diff + z * se))
                ),
                "reps": float(SLICE_REPS),
            }
        )
    return out


def overall_verdicts(rates: tuple[float, float], seed: int = SEED) -> dict[str, float]:
    """PASS / WARN / FAIL counts of the default overall test (kernel of QualityCheck)."""
    rng = np.random.default_rng(seed)
    cb, bb = rates
    cells = rng.multinomial(OVERALL_N, [cb, bb, 0.85, 1 - cb - bb - 0.85], OVERALL_REPS)
    counts = {"pass": 0.0, "warn": 0.0, "fail": 0.0, "reps": float(OVERALL_REPS)}
    level = ALPHA / 2
    for cand_only, base_only, both, neither in cells.tolist():
        paired = paired_correctness([[neither, base_only], [cand_only, both]])
        ok = paired.margin_pvalue(OVERALL_MARGIN, higher_is_better=True, test="noninferiority")
        worse = paired.margin_pvalue(OVERALL_MARGIN, higher_is_better=True, test="regression")
        key = "pass" if ok <= level else "fail" if worse <= level else "warn"
        counts[key] += 1
    return counts


def upper(k: float, n: float) -> float:
    """The exact (Clopper-Pearson) upper 95% bound of a rate k / n."""
    return float(scipy.stats.binomtest(int(k), int(n)).proportion_ci(0.95).high)


def lower(k: float, n: float) -> float:
    """The exact (Clopper-Pearson) lower 95% bound of a rate k / n."""
    return float(scipy.stats.binomtest(int(k), int(n)).proportion_ci(0.95).low)


def main() -> None:
    """Print every number the docs quote."""
    print(f"floors at accuracy {FLOOR} (pass rate of a model at the floor; promised <= 0.025)")
    for n, r in floor_pass_rates().items():
        k, reps = r["cp_passes"], r["reps"]
        print(
            f"  n={n:>5}: Clopper-Pearson {k / reps:.4f} (upper {upper(k, reps):.4f}), "
            f"Wilson {r['wilson_passes'] / reps:.4f}; worst over floors 0.5-0.995: "
            f"CP {r['cp_worst']:.4f}, Wilson {r['wilson_worst']:.4f}"
        )
    print(f"slice interval coverage (promised >= {1 - ALPHA:.2f})")
    for r in slice_coverage():
        reps = r["reps"]
        print(
            f"  n={int(r['n'])}, ~{r['mean_disagreements']:.1f} disagreements, diff "
            f"{r['truth']:+.3f}: exact {1 - r['exact_misses'] / reps:.4f} (lower "
            f"{1 - upper(r['exact_misses'], reps):.4f}), Wald {1 - r['wald_misses'] / reps:.4f}"
        )
    same = overall_verdicts(SAME_QUALITY)
    worse = overall_verdicts(REGRESSION)
    reps = same["reps"]
    print(
        f"overall, n={OVERALL_N}, margin {OVERALL_MARGIN}: same quality FAIL "
        f"{same['fail'] / reps:.4f} (upper {upper(same['fail'], reps):.4f}), PASS "
        f"{same['pass'] / reps:.4f}, WARN {same['warn'] / reps:.4f}; 5-point regression FAIL "
        f"{worse['fail'] / reps:.4f} (lower {lower(worse['fail'], reps):.4f})"
    )


if __name__ == "__main__":
    main()
