"""CanaryJudge's verdicts on simulated traffic records: false alarms and power.

Every log here is what a platform that routes the traffic itself would record: one
`Record` per request (version, latency, error, predicted class, request id, time) and,
for the labelled scenarios, a `Label` per request arriving ``LABEL_DELAY`` requests later
(joined by request id). The routing share is *not* the judge's to know and changes during
the log, as a progressive rollout's does: 5%, 10%, 25% and 50% of the requests in four
equal steps (Argo Rollouts' ``setWeight`` steps). Each log is judged by the real
`CanaryJudge` at its defaults, except ``n_candidate_requests``, raised above the log's
length so that the whole log is judged (a canary passing at 500 candidate requests would
stop judging early, and a false alarm needs time to happen).

Scenarios (docs/canary_platforms.md quotes the table `table` renders):

- **A/A**: both versions alike: 1% errors, log-normal latencies (median 10 ms, sigma 0.3),
  three classes (0.5, 0.3, 0.2), 90% accurate, labels for every request.
- **errors 1% -> 2%** and **errors 2% -> 4%**: the candidate fails twice as often as the
  baseline.
- **latency 1.3x**: the candidate's latencies 1.3 times the baseline's.
- **class shift**: the candidate's classes (0.3, 0.3, 0.4) (PSI 0.24); no labels (its
  predictions are drawn from its own mix, so on labels it would also fail accuracy).
- **inverted labels**: three classes of equal frequency; the candidate predicts the next
  class, ``(c + 1) mod 3``, where the baseline predicts ``c``, so its class mix is the
  baseline's and the split-mode shift test cannot see it; the accuracy test on the late
  labels can.
- **all errors**: every request on both versions fails; the verdict must never be PASS.
  Judged at the default ``n_candidate_requests`` (500), where the verdict is due.

Rates come with exact (Clopper-Pearson) 95% intervals.
tests/verdicts/test_canary_judge.py runs the same functions with the same seeds.

Run: ``python benchmarks/verdicts_canary_judge.py`` (prints the table; about three minutes
on two cores).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks.checks import CanaryJudge
from mlchecks.serving import Label, Record
from mlchecks.stats.intervals import clopper_pearson

SEED = 20261207
N_REQUESTS = 20_000
#: The candidate's routing share in four equal steps of the log (not told to the judge).
STEPS = (0.05, 0.10, 0.25, 0.50)
ERROR_RATE = 0.01
LATENCY_MEDIAN_S = 0.01
LATENCY_SIGMA = 0.3
CLASSES = (0.5, 0.3, 0.2)
SHIFTED_CLASSES = (0.3, 0.3, 0.4)
ACCURACY = 0.9
LABEL_DELAY = 200  # a request's label arrives this many requests after it
TIMEOUT_S = 1200.0  # the longest one scenario may take

#: Logs per scenario (a 20,000-request log takes about 2 s to simulate and judge).
REPS = {
    "A/A": 100,
    "errors 1% -> 2%": 20,
    "errors 2% -> 4%": 20,
    "latency 1.3x": 20,
    "class shift": 12,
    "inverted labels": 20,
    "all errors": 20,
}
#: What each scenario's verdict must be (the finding that must be named, for a FAIL).
EXPECTED = {
    "A/A": ("not fail", ()),
    "errors 1% -> 2%": ("fail", ("errors",)),
    "errors 2% -> 4%": ("fail", ("errors",)),
    "latency 1.3x": ("fail", ("latency", "tail")),
    "class shift": ("fail", ("shift",)),
    "inverted labels": ("fail", ("accuracy",)),
    "all errors": ("not pass", ()),
}


def scenario_settings(name: str) -> dict[str, Any]:
    """The candidate's deviations from the baseline in scenario ``name``."""
    return {
        "A/A": {},
        "errors 1% -> 2%": {"error_rate": 2 * ERROR_RATE},
        "errors 2% -> 4%": {"error_rate": 4 * ERROR_RATE, "baseline_error_rate": 2 * ERROR_RATE},
        "latency 1.3x": {"latency_factor": 1.3},
        "class shift": {"candidate_classes": SHIFTED_CLASSES, "labels": False},
        "inverted labels": {"classes": (1 / 3, 1 / 3, 1 / 3), "inverted": True},
        "all errors": {"error_rate": 1.0, "baseline_error_rate": 1.0},
    }[name]


def simulate_log(
    rng: np.random.Generator,
    *,
    n: int = N_REQUESTS,
    error_rate: float = ERROR_RATE,
    baseline_error_rate: float = ERROR_RATE,
    latency_factor: float = 1.0,
    classes: tuple[float, ...] = CLASSES,
    candidate_classes: tuple[float, ...] | None = None,
    inverted: bool = False,
    labels: bool = True,
) -> list[Record | Label]:
    """One log of ``n`` requests, the candidate's share stepping through `STEPS`, and a
    late `Label` per successful request."""
    share = np.repeat(STEPS, -(-n // len(STEPS)))[:n]
    candidate = rng.random(n) < share
    failed = rng.random(n) < np.where(candidate, error_rate, baseline_error_rate)
    latency = LATENCY_MEDIAN_S * np.exp(rng.normal(0.0, LATENCY_SIGMA, n))
    latency = np.where(candidate, latency * latency_factor, latency)
    k = len(classes)
    truth = rng.choice(k, size=n, p=classes)
    right = rng.random(n) < ACCURACY
    predicted = np.where(right, truth, (truth + rng.integers(1, k, size=n)) % k)
    if candidate_classes is not None:  # a shifted candidate predicts from its own mix
        drawn = rng.choice(k, size=n, p=candidate_classes)
        predicted = np.where(candidate, drawn, predicted)
    if inverted:
        predicted = np.where(candidate, (predicted + 1) % k, predicted)
    start = 1_760_000_000.0
    items: list[Record | Label] = []
    pending: list[tuple[int, Label]] = []
    for i in range(n):
        rid = f"r{i}"
        version = "v2" if candidate[i] else "v1"
        if failed[i]:
            items.append(Record(version=version, status=503, request_id=rid, time=start + i))
        else:
            items.append(
                Record(
                    version=version,
                    latency_s=float(latency[i]),
                    outputs=int(predicted[i]),
                    request_id=rid,
                    time=start + i,
                )
            )
            if labels:
                pending.append((i + LABEL_DELAY, Label(request_id=rid, label=int(truth[i]))))
        while pending and pending[0][0] <= i:
            items.append(pending.pop(0)[1])
    items.extend(label for _, label in pending)
    return items


def judge(name: str) -> CanaryJudge:
    """The judge at its defaults, judging the whole log (all-errors logs: to the verdict
    due at 500 candidate requests)."""
    if name == "all errors":
        return CanaryJudge("v1", "v2")
    return CanaryJudge("v1", "v2", n_candidate_requests=N_REQUESTS + 1)


def judge_one(name: str, rep: int, seed: int = SEED) -> tuple[str, tuple[str, ...]]:
    """The verdict and the failed tests on log ``rep`` of scenario ``name``."""
    rng = np.random.default_rng([seed, sorted(REPS).index(name), rep])
    watch = judge(name).start()
    for item in simulate_log(rng, **scenario_settings(name)):
        if watch.observe(item) != "continue":
            break
    return watch.verdict, watch.reasons


def run_scenario(
    name: str, reps: int | None = None, seed: int = SEED, *, workers: int = 2
) -> dict[str, Any]:
    """Judge ``reps`` simulated logs of scenario ``name`` (on ``workers`` processes)."""
    reps = REPS[name] if reps is None else reps
    jobs = [(name, rep, seed) for rep in range(reps)]
    if workers > 1:
        # The workers import this script by name, on the sys.path they are started with
        # (the tests load it from its path).
        saved = list(sys.path)
        sys.path.append(str(Path(__file__).parent))
        try:
            pool = multiprocessing.get_context("spawn").Pool(workers)
        finally:
            sys.path[:] = saved
        with pool:
            outcomes = pool.starmap_async(judge_one, jobs).get(timeout=TIMEOUT_S)
    else:
        outcomes = [judge_one(*job) for job in jobs]
    want = EXPECTED[name][1]
    verdicts = Counter(verdict for verdict, _ in outcomes)
    named = sum(v == "fail" and any(r in want for r in reasons) for v, reasons in outcomes)
    return {"name": name, "reps": reps, "verdicts": dict(verdicts), "named": named}


def rate(result: dict[str, Any]) -> tuple[int, float, float, float]:
    """(count, rate, low, high) of what the scenario is judged on: FAILs for A/A, FAILs
    naming the expected finding for a fault, PASSes for all-errors logs."""
    want = EXPECTED[result["name"]][0]
    if want == "not fail":
        k = result["verdicts"].get("fail", 0)
    elif want == "not pass":
        k = result["verdicts"].get("pass", 0)
    else:
        k = result["named"]
    n = result["reps"]
    low, high = (float(b) for b in clopper_pearson(k, n))
    return k, k / n, low, high


def row(result: dict[str, Any]) -> str:
    """One row of the docs' table."""
    k, r, low, high = rate(result)
    what = {
        "not fail": "FAIL (false alarms)",
        "not pass": "PASS",
        "fail": "FAIL naming " + " or ".join(EXPECTED[result["name"]][1]),
    }[EXPECTED[result["name"]][0]]
    return (
        f"| {result['name']} | {result['reps']} | {what} | {k} / {result['reps']} = {r:.1%} "
        f"[{low:.1%}, {high:.1%}] |"
    )


def table(results: list[dict[str, Any]]) -> str:
    """The docs' table."""
    head = [
        "| scenario | logs | verdict counted | count, rate [95% interval] |",
        "|---|---|---|---|",
    ]
    return "\n".join(head + [row(r) for r in results])


def run_all() -> Iterator[dict[str, Any]]:
    """Every scenario, in `REPS` order."""
    for name in REPS:
        yield run_scenario(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    start = time.perf_counter()
    results = []
    for result in run_all():
        results.append(result)
        print(result, flush=True)
    print(table(results))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
