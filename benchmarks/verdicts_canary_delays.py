"""How long the canary's stage 1 takes to catch a regression: detection delays, simulated.

Every canary here is the real stage-1 verdict: a `CanaryMonitor` built from the
`CanaryPolicy` that `CanaryCheck` builds at its defaults (`policy`: the check's own
``_policy()``, so stage 1's share of ``alpha`` after stage 0's, and each test's share of
it, follow the code), fed one request at a time with ``observe`` (split mode, 5% of
requests to the candidate) or one mirrored pair at a time with ``observe_pair`` (shadow
mode). Only ``n_candidate_requests`` is raised to the scenario's budget, so the monitor
does not PASS before the budget is spent. The delay of a canary is the number of
candidate requests (pairs, in shadow mode) it had served when the verdict became FAIL;
a canary still running at the budget was not caught within it.

Scenarios (docs/checks/canary.md quotes the sentences `sentences` renders):

- **errors**: the candidate fails 4% of requests, the baseline 2%; latencies are not
  simulated (``latency_s=None``): they cannot make the error test faster, and the betting
  test on them costs most of the monitor's time per request.
- **latency**: the candidate 30% slower (log-normal latencies, sigma 0.3, median 10 ms),
  both versions failing 1% of requests.
- **shift**: the candidate's classes (0.3, 0.3, 0.4) against the baseline's
  (0.5, 0.3, 0.2) (PSI 0.24), 1% errors, latencies as above.
- **disagreement** (shadow mode): the candidate predicts another class (uniformly chosen
  among the other two of three) on a share 0.5, 0.2 or 0.15 of the pairs; at 0.1
  (= ``max_disagreement``) the verdict must fail rarely. Both versions fail 1% of
  requests; latencies are not simulated (``None``), as for the errors.

Rates come with exact (Clopper-Pearson) 95% intervals; a median or 90th percentile counts
the canaries not caught within the budget as longest. The monitor is slow per request for
a simulation: a few microseconds for a request that updates only the share tests, about
0.2 ms for one that updates a betting test (each latency pair, each shadow pair), and about
0.5 ms for every request after the class test has rejected a shift while the size gate
has not opened (the noncentral chi-square gate runs again on each). So the repetitions
(`REPS`) are 50 to 200 canaries per scenario, and 12 for the class shift.
tests/verdicts/test_canary_delays.py runs the same functions with the same seeds.

Run: ``python benchmarks/verdicts_canary_delays.py [--json FILE]`` (prints the numbers and
the docs' sentences, and writes the sentences to FILE as JSON; about a minute on one core).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlchecks.checks._canary_policy import CanaryMonitor, CanaryPolicy
from mlchecks.checks.canary import CanaryCheck
from mlchecks.serving import InProcessServer
from mlchecks.stats.intervals import clopper_pearson

SEED = 20261207
#: Log-normal latencies: median 10 ms, sigma 0.3 (of the log).
LATENCY_MEDIAN_S = 0.01
LATENCY_SIGMA = 0.3
BASELINE_CLASSES = (0.5, 0.3, 0.2)
SHIFTED_CLASSES = (0.3, 0.3, 0.4)
CHUNK = 4096
#: The docs' typography (en dash, sigma), spelled as escapes for the linter.
DASH, SIGMA = "\u2013", "\u03c3"

#: Canaries per scenario (fewer where the monitor is slow: see the module docstring).
REPS = {
    "errors": 80,
    "latency": 80,
    "shift": 12,
    "disagree_0.5": 200,
    "disagree_0.2": 80,
    "disagree_0.15": 50,
    "level_0.1": 80,
}
#: The budget of candidate requests (pairs) each canary may serve.
BUDGET = {
    "errors": 2000,
    "latency": 2000,
    "shift": 1000,
    "disagree_0.5": 500,
    "disagree_0.2": 1000,
    "disagree_0.15": 2000,
    "level_0.1": 500,
}


def policy(mode: str = "split") -> CanaryPolicy:
    """Stage 1's policy as `CanaryCheck` builds it at its defaults (with ``traffic``)."""
    check = CanaryCheck(
        InProcessServer(loader=lambda version: None),
        "candidate",
        probe_inputs=[0.0],
        traffic=[],
        mode="shadow" if mode == "shadow" else "split",
    )
    built: CanaryPolicy = check._policy()
    return built


@dataclass
class Delays:
    """The outcome of one scenario's canaries."""

    name: str
    budget: int
    delays: list[int] = field(default_factory=list)  # candidate requests at FAIL
    reasons: Counter[str] = field(default_factory=Counter)
    n: int = 0
    seconds: float = 0.0

    @property
    def caught(self) -> int:
        return len(self.delays)

    @property
    def share(self) -> float:
        return self.caught / self.n

    @property
    def interval(self) -> tuple[float, float]:
        low, high = clopper_pearson(self.caught, self.n)
        return float(low), float(high)

    def quantile(self, q: float) -> float:
        """A quantile of the delays, canaries not caught within the budget counted as
        infinitely long (inf when fewer than ``q`` of them were caught)."""
        padded = np.array(self.delays + [math.inf] * (self.n - self.caught), dtype=np.float64)
        return float(np.quantile(padded, q, method="inverted_cdf"))

    @property
    def median(self) -> float:
        """The median delay (`quantile` 0.5)."""
        return self.quantile(0.5)

    @property
    def longest(self) -> int:
        return max(self.delays) if self.delays else 0

    def summary(self) -> str:
        low, high = self.interval
        return (
            f"{self.name}: caught {self.caught}/{self.n} within {self.budget} "
            f"({self.share:.1%}, 95% CI {low:.1%}-{high:.1%}), median delay {self.median:g}, "
            f"longest {self.longest}, reasons {dict(self.reasons)} [{self.seconds:.1f} s]"
        )


def _record(out: Delays, monitor: CanaryMonitor) -> None:
    out.n += 1
    if monitor.decision == "fail":
        out.delays.append(monitor.n_candidate)
        out.reasons.update(monitor.reasons)


def split_canary(
    rng: np.random.Generator,
    monitor: CanaryMonitor,
    *,
    error_rate: float,
    candidate_error_rate: float,
    latency_ratio: float | None,
    candidate_classes: tuple[float, ...],
) -> None:
    """Feed split-mode requests to ``monitor`` until it decides (FAIL or PASS)."""
    fraction = monitor.config.traffic_fraction
    while monitor.decision == "continue":
        arm = rng.random(CHUNK) < fraction
        error = rng.random(CHUNK) < np.where(arm, candidate_error_rate, error_rate)
        latency = np.exp(rng.normal(math.log(LATENCY_MEDIAN_S), LATENCY_SIGMA, CHUNK))
        if latency_ratio is not None:
            latency *= np.where(arm, latency_ratio, 1.0)
        base = rng.choice(len(BASELINE_CLASSES), CHUNK, p=BASELINE_CLASSES)
        cand = rng.choice(len(candidate_classes), CHUNK, p=candidate_classes)
        label = np.where(arm, cand, base)
        rows = zip(arm.tolist(), error.tolist(), latency.tolist(), label.tolist(), strict=True)
        for a, e, lat, lab in rows:
            decision = monitor.observe(
                candidate=a,
                error=e,
                latency_s=lat if latency_ratio is not None else None,
                label=lab,
            )
            if decision != "continue":
                break


def shadow_canary(
    rng: np.random.Generator,
    monitor: CanaryMonitor,
    *,
    disagreement: float,
    error_rate: float = 0.01,
    latencies: bool = False,
) -> None:
    """Feed mirrored pairs to ``monitor`` until it decides: the candidate predicts another
    class (uniformly among the other two of three) on a share ``disagreement`` of them."""
    while monitor.decision == "continue":
        c_err, b_err = rng.random((2, CHUNK)) < error_rate
        c_lat, b_lat = np.exp(rng.normal(math.log(LATENCY_MEDIAN_S), LATENCY_SIGMA, (2, CHUNK)))
        b_lab = rng.integers(0, 3, CHUNK)
        other = (b_lab + rng.integers(1, 3, CHUNK)) % 3
        c_lab = np.where(rng.random(CHUNK) < disagreement, other, b_lab)
        rows = zip(
            c_err.tolist(),
            b_err.tolist(),
            c_lat.tolist(),
            b_lat.tolist(),
            c_lab.tolist(),
            b_lab.tolist(),
            strict=True,
        )
        for ce, be, cl, bl, cy, by in rows:
            decision = monitor.observe_pair(
                candidate_error=ce,
                baseline_error=be,
                candidate_latency_s=cl if latencies else None,
                baseline_latency_s=bl if latencies else None,
                candidate_label=cy,
                baseline_label=by,
            )
            if decision != "continue":
                break


def _seed(name: str) -> int:
    return SEED + sum(ord(c) * (i + 1) for i, c in enumerate(name))


def run_split(name: str, **stream: Any) -> Delays:
    """``REPS[name]`` split-mode canaries with a budget of ``BUDGET[name]`` candidate requests."""
    rng = np.random.default_rng(_seed(name))
    settings = attrs.evolve(policy("split"), n_candidate_requests=BUDGET[name])
    out = Delays(name, BUDGET[name])
    start = time.perf_counter()
    for _ in range(REPS[name]):
        monitor = CanaryMonitor(settings)
        split_canary(rng, monitor, **stream)
        _record(out, monitor)
    out.seconds = time.perf_counter() - start
    return out


def run_shadow(name: str, **stream: Any) -> Delays:
    """``REPS[name]`` shadow-mode canaries with a budget of ``BUDGET[name]`` pairs."""
    rng = np.random.default_rng(_seed(name))
    settings = attrs.evolve(policy("shadow"), n_candidate_requests=BUDGET[name])
    out = Delays(name, BUDGET[name])
    start = time.perf_counter()
    for _ in range(REPS[name]):
        monitor = CanaryMonitor(settings)
        shadow_canary(rng, monitor, **stream)
        _record(out, monitor)
    out.seconds = time.perf_counter() - start
    return out


def errors() -> Delays:
    return run_split(
        "errors",
        error_rate=0.02,
        candidate_error_rate=0.04,
        latency_ratio=None,
        candidate_classes=BASELINE_CLASSES,
    )


def latency() -> Delays:
    return run_split(
        "latency",
        error_rate=0.01,
        candidate_error_rate=0.01,
        latency_ratio=1.3,
        candidate_classes=BASELINE_CLASSES,
    )


def shift() -> Delays:
    return run_split(
        "shift",
        error_rate=0.01,
        candidate_error_rate=0.01,
        latency_ratio=1.0,
        candidate_classes=SHIFTED_CLASSES,
    )


def disagreement(rate: float) -> Delays:
    return run_shadow(f"disagree_{rate:g}", disagreement=rate)


def level() -> Delays:
    """Shadow canaries disagreeing on exactly ``max_disagreement`` (0.1) of the pairs."""
    return run_shadow("level_0.1", disagreement=0.1)


def measure() -> dict[str, Delays]:
    """Every scenario, in the order the docs quote them."""
    runs = [errors(), latency(), shift()]
    runs += [disagreement(rate) for rate in (0.5, 0.2, 0.15)]
    runs.append(level())
    return {d.name: d for d in runs}


def _pct(x: float) -> str:
    """A percentage for prose: whole below 90 %, one decimal from 90 % (``98.8 %``), never
    rounded up to 100 % (``99.97 %``)."""
    p = 100.0 * x
    if p in (0.0, 100.0):
        return f"{p:.0f} %"
    if p < 90.0:
        return f"{p:.0f} %" if p >= 10.0 else f"{p:.1f} %"
    return f"{p:.1f} %" if p < 99.95 else f"{p:.2f} %"


def _ci(d: Delays) -> str:
    low, high = d.interval
    return f"{_pct(low)}{DASH}{_pct(high)}"


def _within(d: Delays, unit: str = "") -> str:
    """``96 % of 80 canaries within 2,000 (95 % CI 89 %-99 %)``."""
    return f"{_pct(d.share)} of {d.n} canaries within {d.budget:,}{unit}, 95 % CI {_ci(d)}"


def _guide(d: Delays) -> str:
    """``median / 90th percentile`` for the sizing guide."""
    return f"{_count(d.median, d)} / {_count(d.quantile(0.9), d)}"


def _count(x: float, d: Delays) -> str:
    return f"{x:,.0f}" if math.isfinite(x) else f"over {d.budget:,}"


def sentences(m: dict[str, Delays]) -> dict[str, str]:
    """The sentences docs/checks/canary.md quotes, rendered from the measurements.

    Whitespace is not significant: the docs wrap them at their own line length. The
    ``errors`` one continues a sentence of the docs, hence its lower-case start.
    """
    split, shadow = policy("split"), policy("shadow")
    e, lat, s = m["errors"], m["latency"], m["shift"]
    d5, d2, d15, lv = m["disagree_0.5"], m["disagree_0.2"], m["disagree_0.15"], m["level_0.1"]
    script = "`benchmarks/verdicts_canary_delays.py`"
    return {
        "errors": (
            f"a candidate at 4 % errors against a baseline at 2 % is caught after a median of "
            f"{_count(e.median, e)} candidate requests ({_within(e)}). This and the other "
            f"delays below are measured by {script}: the check's own `CanaryMonitor` at the "
            f"defaults (`traffic_fraction=0.05`, `alpha=0.05`: after stage 0's share each of "
            f"stage 1's {split.n_tests} tests runs at level {split.alpha_per_test:.3g}, or "
            f"{shadow.alpha_per_test:.3g} for the {shadow.n_tests} of shadow mode), fed one "
            f"request at a time."
        ),
        "latency": (
            f"A candidate 30 % slower than the baseline (log-normal latencies, {SIGMA} = 0.3) "
            f"against the default `max_latency_ratio=1.2` is caught after a median of "
            f"{_count(lat.median, lat)} candidate requests ({_within(lat)}; the FAIL named the "
            f"tail-latency test in {lat.reasons['tail']} of them, the mean-ratio test in "
            f"{lat.reasons['latency']})."
        ),
        "shift": (
            f"A candidate whose class mix moves from (0.5, 0.3, 0.2) to (0.3, 0.3, 0.4) "
            f"(PSI 0.24) is caught after a median of {_count(s.median, s)} candidate requests "
            f"({_within(s)})."
        ),
        "disagreement": (
            f"On simulated shadow canaries watched after every pair ({script}), at a true "
            f"rate equal to `max_disagreement` (0.1) the verdict failed in {_pct(lv.share)} "
            f"of {lv.n} canaries of {lv.budget:,} pairs (95 % CI {_ci(lv)}; the disagreement "
            f"test's level is {shadow.alpha_per_test:.3g}). A candidate disagreeing on half "
            f"the requests is "
            f"caught after a median of {_count(d5.median, d5)} pairs (at most {d5.longest:,} "
            f"in {d5.n} canaries), one at 0.2 after a median of {_count(d2.median, d2)} "
            f"({_within(d2, ' pairs')}), one at 0.15 after a median of "
            f"{_count(d15.median, d15)} ({_within(d15, ' pairs')})."
        ),
        "sizing": (
            f"Rough guide for `n_candidate_requests`, from the delays measured above (median / "
            f"90th percentile): {_guide(lat)} for a latency regression of 30 %, {_guide(s)} for "
            f"a class shift of PSI 0.24, {_guide(d2)} pairs for a disagreement rate twice "
            f"`max_disagreement` (shadow mode), {_guide(e)} for a doubling of a 2 % error rate; "
            f"a canary sized at the 90th percentile catches such a regression about nine "
            f"times in ten."
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the docs' sentences here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    split = policy("split")
    shadow = policy("shadow")
    print(
        f"split: alpha {split.alpha:.4g}, {split.n_tests} tests at {split.alpha_per_test:.4g}"
        f" (e-value threshold {split.evalue_threshold:.4g}); shadow: alpha {shadow.alpha:.4g},"
        f" {shadow.n_tests} tests at {shadow.alpha_per_test:.4g}"
    )
    m = measure()
    for d in m.values():
        print(d.summary())
    print()
    rendered = sentences(m)
    for key, text in rendered.items():
        print(f"[{key}] {text}\n")
    if args.json is not None:
        args.json.write_text(json.dumps(rendered, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
