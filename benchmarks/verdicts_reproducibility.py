"""How often ReproducibilityCheck's churn verdict is wrong, or flips between reruns.

Two reruns of a training setup whose true churn is ``p`` are simulated by synthetic
predictions of ``N`` = 10,000 examples: run ``b`` equals run ``a`` except that each example's
predicted class moves to another class with probability ``p``. Two simulations:

- the whole check (`ReproducibilityCheck` on two `TrainingRun` objects), a few hundred
  reruns per true churn, giving the PASS / WARN / FAIL rates of the ``churn`` finding and
  the PASS/FAIL flip rate between consecutive reruns;
- the check's decision function (`rate_status`, which `ReproducibilityCheck` calls) on
  binomial churn counts, many more reruns, giving the false FAIL rate at a true churn
  equal to the limit (the worst case of "true churn <= limit") with an exact binomial CI.

``tests/verdicts/test_reproducibility.py`` runs the same functions with the same settings
and asserts the numbers quoted in ``docs/checks/reproducibility.md``.

Run: ``python benchmarks/verdicts_reproducibility.py``.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import beta

from mlchecks import ReproducibilityCheck, Status, TrainingRun
from mlchecks.checks._repro_tasks import rate_status

N = 10_000
LIMIT = 0.01
ALPHA = 0.05
SEED = 13
#: Reruns of the whole check per true churn.
CHECK_REPS = {0.01: 300, 0.002: 150, 0.03: 150}
#: Reruns of the decision function at a true churn equal to the limit.
KERNEL_REPS = 100_000


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided binomial CI of ``k / n``."""
    a = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def simulate_check(p: float, reps: int, seed: int = SEED) -> list[Status]:
    """The ``churn`` status of the whole check on ``reps`` reruns with true churn ``p``."""
    rng = np.random.default_rng([seed, round(p * 1e6)])
    labels = rng.integers(0, 3, size=N)
    statuses = []
    for _ in range(reps):
        probs = rng.dirichlet(np.ones(3), size=N)
        moved = probs.copy()
        flips = rng.random(N) < p
        # Rolling the columns of an example moves its largest probability to another class.
        moved[flips] = np.roll(probs[flips], int(rng.integers(1, 3)), axis=1)
        runs = [
            TrainingRun(predictions=probs, labels=labels, name="a"),
            TrainingRun(predictions=moved, labels=labels, name="b"),
        ]
        result = ReproducibilityCheck(runs, max_churn=LIMIT, alpha=ALPHA).run()
        statuses.append(result.finding("churn").status)
    return statuses


def simulate_decisions(p: float, reps: int, seed: int = SEED) -> list[Status]:
    """`rate_status` on ``reps`` binomial churn counts of ``N`` examples at true churn ``p``."""
    counts = np.random.default_rng([seed, 1, round(p * 1e6)]).binomial(N, p, size=reps)
    verdict = {int(k): rate_status(int(k), N, LIMIT, ALPHA) for k in np.unique(counts)}
    return [verdict[int(k)] for k in counts]


def rate(statuses: list[Status], status: Status) -> tuple[int, int]:
    """How many of ``statuses`` are ``status``, and of how many."""
    return sum(s is status for s in statuses), len(statuses)


def flips(statuses: list[Status]) -> tuple[int, int]:
    """Consecutive reruns with one PASS and the other FAIL, and the number of pairs."""
    pairs = list(itertools.pairwise(statuses))
    decided = {Status.PASS, Status.FAIL}
    count = sum(a != b and {a, b} <= decided for a, b in pairs)
    return count, len(pairs)


def main() -> None:
    """Print the rates of the docs' table."""
    print(f"n = {N:,} examples, max_churn = {LIMIT}, alpha = {ALPHA}")
    print("whole check:")
    for p, reps in CHECK_REPS.items():
        statuses = simulate_check(p, reps)
        parts = []
        for status in (Status.PASS, Status.WARN, Status.FAIL):
            k, n = rate(statuses, status)
            low, high = clopper_pearson(k, n)
            parts.append(f"{status.value} {k}/{n} = {k / n:.3f} [{low:.3f}, {high:.3f}]")
        k, n = flips(statuses)
        low, high = clopper_pearson(k, n)
        parts.append(f"flips {k}/{n} = {k / n:.3f} [{low:.3f}, {high:.3f}]")
        print(f"  true churn {p}: " + "; ".join(parts))
    statuses = simulate_decisions(LIMIT, KERNEL_REPS)
    k, n = rate(statuses, Status.FAIL)
    low, high = clopper_pearson(k, n)
    print(
        f"decision function, true churn {LIMIT}: false FAIL {k}/{n} = {k / n:.5f} "
        f"[{low:.4f}, {high:.4f}]"
    )
    pairs = statuses[: n - n % 2]
    k, n = flips(pairs)
    print(f"  PASS/FAIL flips between consecutive reruns {k}/{n} = {k / n:.4f}")


if __name__ == "__main__":
    main()
