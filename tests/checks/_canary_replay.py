"""A recorded canary, replayed: every number the monitor and the online tests report.

`collect` feeds fixed request sequences (healthy, shifted classes, a drifting shift, a
latency regression, an error burst; split, routed split and shadow mode) through
`CanaryMonitor`, the online tests one by one, and `CanaryJudge` end to end, and returns
what they report as JSON-safe values.
``tests/data/canary_replay.json.gz`` holds its output from the code before the per-request
bookkeeping was made faster; `test_canary_replay` compares the current code with it.

The requests come from `random.Random` (``random()`` only, transformed with `math`), so the
sequence does not depend on numpy's or Python's version.

Regenerate (only when a change of the numbers is intended)::

    python tests/checks/_canary_replay.py tests/data/canary_replay.json.gz
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
from typing import Any

SCENARIOS = ("healthy", "shifted", "drift", "latency", "errors")
MODES = ("split", "routed", "shadow")
#: log e-values are recorded after every this many requests, the evidence after every `LOOK`.
EVERY = 50
LOOK = 1000
#: the online tests' log e-values are recorded after every this many observations.
KERNEL_EVERY = 5


def _normal(rng: random.Random) -> float:
    u, v = rng.random(), rng.random()
    return math.sqrt(-2.0 * math.log(1.0 - u)) * math.cos(2.0 * math.pi * v)


def _label(rng: random.Random, shifted: bool) -> int:
    u = rng.random()
    if shifted:  # the candidate: more of class 2, a little of class 3
        return 0 if u < 0.30 else 1 if u < 0.55 else 2 if u < 0.93 else 3
    return 0 if u < 0.47 else 1 if u < 0.79 else 2


def requests(scenario: str, mode: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` requests of ``scenario`` as the monitor's keyword arguments (one or two calls)."""
    rng = random.Random(f"{scenario}-{mode}-{seed}")
    out = []
    for i in range(n):
        burst = scenario == "errors" and 600 <= i < 900
        slow = 1.0
        if scenario == "latency":
            slow = 1.3 * (4.0 if rng.random() < 0.04 else 1.0)
        c_err = rng.random() < (0.4 if burst else 0.01)
        b_err = rng.random() < 0.01
        c_lat = 0.01 * slow * math.exp(0.3 * _normal(rng))
        b_lat = 0.01 * math.exp(0.3 * _normal(rng))
        if rng.random() < 0.002:
            c_lat = 0.0  # a clock reading 0
        b_lab = _label(rng, False)
        moved = rng.random() < {"shifted": 0.35, "drift": 0.25 * i / n}.get(scenario, 0.0)
        c_lab = _label(rng, True) if moved else (b_lab if rng.random() < 0.95 else (b_lab + 1) % 3)
        no_label = rng.random() < 0.05
        no_latency = rng.random() < 0.03
        c_wrong = float(rng.random() < (0.16 if scenario == "shifted" else 0.1))
        b_wrong = float(rng.random() < 0.1)
        if rng.random() < 0.05:
            c_wrong = round(rng.random(), 3)  # a loss in [0, 1]
        labelled = rng.random() < 0.8
        if mode == "shadow":
            pair: dict[str, Any] = {
                "candidate_error": c_err,
                "baseline_error": b_err,
                "candidate_latency_s": None if no_latency else c_lat,
                "baseline_latency_s": b_lat,
                "candidate_label": None if no_label else c_lab,
                "baseline_label": None if no_label else b_lab,
            }
            if rng.random() < 0.05:
                pair["disagree"] = round(rng.random() * 0.5, 3)  # a batch's share of rows
            outcome = {"candidate_wrong": c_wrong, "baseline_wrong": b_wrong} if labelled else None
            out.append({"pair": pair, "outcome": outcome})
            continue
        candidate = rng.random() < (0.2 if i < n // 2 or mode == "split" else 0.1)
        error = c_err if candidate else b_err
        one = {
            "candidate": candidate,
            "error": error,
            "latency_s": None if no_latency else (c_lat if candidate else b_lat),
            "label": None if no_label else (c_lab if candidate else b_lab),
        }
        wrong = c_wrong if candidate else b_wrong
        out.append({"one": one, "outcome": {"candidate": candidate, "wrong": wrong}})
    return out


def policy(mode: str, variant: str, n: int) -> Any:
    """The monitor's settings: the defaults with labels tested, or a variant."""
    from mlchecks.checks._canary_policy import CanaryPolicy

    kwargs: dict[str, Any] = {"n_candidate_requests": n + 1, "max_accuracy_drop": 0.05}
    if variant == "patient":  # the tests never reach their threshold: every number moves
        kwargs["alpha"] = 1e-12
    if variant == "gate":  # the size gate decides (no disagreement test in shadow mode)
        kwargs.update(max_disagreement=None, max_psi=0.03)
    if variant == "js":
        kwargs.update(max_psi=None, max_js=0.02, alpha=1e-6)
    if mode == "split":
        return CanaryPolicy(traffic_fraction=0.2, **kwargs)
    if mode == "routed":
        return CanaryPolicy(traffic_fraction=None, tail_window=500, **kwargs)
    return CanaryPolicy(traffic_fraction=0.5, mode="shadow", **kwargs)


def _json_dict(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _json(value)
    return out


def _json(value: Any) -> Any:
    """Floats as they are (json writes NaN and inf), tuples as lists, numpy scalars as floats."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    return float(value)


def replay(scenario: str, mode: str, variant: str, n: int = 3000) -> dict[str, Any]:
    """One monitor fed ``n`` requests: its log e-values, decisions and evidence over time."""
    from mlchecks.checks._canary_policy import CanaryMonitor

    monitor = CanaryMonitor(policy(mode, variant, n))
    decisions = []
    path = []
    looks = []
    for i, request in enumerate(requests(scenario, mode, n, seed=len(variant))):
        if "pair" in request:
            decision = monitor.observe_pair(**request["pair"])
            if request["outcome"] is not None:
                decision = monitor.observe_outcome_pair(**request["outcome"])
        else:
            decision = monitor.observe(**request["one"])
            if not request["one"]["error"]:
                decision = monitor.observe_outcome(**request["outcome"])
        decisions.append(decision[0])
        if (i + 1) % EVERY == 0:
            path.append([*monitor.log_evalues(), monitor.shift_tolerated, *monitor.shift_crossed])
        if (i + 1) % LOOK == 0 or i + 1 == n:
            looks.append(
                {
                    "evidence": monitor.evidence(),
                    "latency_ratio_interval": monitor.latency_ratio_interval(),
                    "accuracy_drop_interval": monitor.accuracy_drop_interval(),
                    "disagreement_interval": monitor.disagreement_interval(),
                    "reasons": monitor.reasons,
                }
            )
    return _json_dict({"decisions": "".join(decisions), "path": path, "looks": looks})


def kernels() -> dict[str, Any]:
    """The online tests fed streams directly, every log e-value (all their options)."""
    from mlchecks.stats._running_cs import RunningConfidenceSequence
    from mlchecks.stats.sequential import (
        BettingTest,
        CategoricalShareTest,
        RateTest,
        RoutedCategoryTest,
        RoutedRateTest,
        ShareTest,
    )

    rng = random.Random("kernels")
    out: dict[str, Any] = {}
    for share in (0.05, 0.3, 0.5):
        for alternative in ("greater", "less", "two-sided"):
            for sparse in (False, True):
                test = ShareTest(share, alternative=alternative, sparse=sparse)
                rate = share * (1.5 if alternative != "less" else 0.6)
                out[f"share-{share}-{alternative}-{sparse}"] = [
                    test.update(rng.random() < rate) for _ in range(700)
                ]
    test = ShareTest(0.1, a=2.0, b=5.0)
    out["share-prior"] = [test.update(rng.random() < 0.2) for _ in range(300)]
    for alternative in ("greater", "less"):
        for null in (-0.3, 0.0, 0.2):
            bet = BettingTest(null, low=-1.0, high=1.0, alternative=alternative)  # type: ignore[arg-type]
            values = [max(-1.0, min(1.0, 0.1 + 0.5 * _normal(rng))) for _ in range(1500)]
            out[f"betting-{alternative}-{null}"] = [bet.update(x) for x in values]
        bet = BettingTest(0.1, low=0.0, high=2.0, alternative=alternative, n_bets=3)  # type: ignore[arg-type]
        out[f"betting-3-{alternative}"] = [bet.update(rng.random() * 2.0) for _ in range(500)]
        rate_test = RateTest(0.1, alternative=alternative)  # type: ignore[arg-type]
        out[f"rate-{alternative}"] = [
            rate_test.update(rng.random() < 0.13)
            if rng.random() < 0.8
            else rate_test.update_fraction(round(rng.random() * 0.3, 3))
            for _ in range(1500)
        ]
        rate_test = RateTest(0.3, alternative=alternative, n_bets=5)  # type: ignore[arg-type]
        out[f"rate-5-{alternative}"] = [rate_test.update(rng.random() < 0.25) for _ in range(500)]
    for share in (0.5, 0.1):
        cat = CategoricalShareTest(share)
        out[f"categorical-{share}"] = [
            cat.update(int(rng.random() * 4), rng.random() < share * 1.2) for _ in range(1500)
        ]
    routed = RoutedRateTest(2.0)
    out["routed-rate"] = [
        routed.observe(rng.random() < 0.15, rng.random() < 0.05) for _ in range(3000)
    ]
    category = RoutedCategoryTest()
    out["routed-category"] = [
        category.update(int(rng.random() * 3), rng.random() < 0.15) for _ in range(3000)
    ]
    for low, high in ((-1.0, 1.0), (-2.302585092994046, 2.302585092994046)):
        cs = RunningConfidenceSequence(low=low, high=high, alpha=0.0125)
        intervals = []
        for i in range(5000):
            cs.add(max(low, min(high, 0.05 + 0.3 * _normal(rng))))
            if (i + 1) % 97 == 0 or i < 20:
                intervals.append([*cs.interval(), cs.mean])
        out[f"running-cs-{high}"] = intervals
    return _json_dict({k: v[KERNEL_EVERY - 1 :: KERNEL_EVERY] + v[-1:] for k, v in out.items()})


def judge() -> dict[str, Any]:
    """`CanaryJudge` on a split and a shadow record: the results' details and findings."""
    from mlchecks.checks import CanaryJudge
    from mlchecks.serving import Record

    out = {}
    for mode in ("split", "shadow"):
        rng = random.Random(f"judge-{mode}")
        records = []
        for i in range(4000):
            versions = ("v1", "v2") if mode == "shadow" else (
                ("v2",) if rng.random() < 0.2 else ("v1",)
            )  # fmt: skip
            truth = int(rng.random() < 0.5)
            pred = truth if rng.random() < 0.9 else 1 - truth
            for version in versions:
                cand = version == "v2"
                if rng.random() < (0.02 if cand else 0.01):
                    records.append(Record(version=version, status=500, request_id=f"r{i}"))
                    continue
                if cand and rng.random() < 0.05:
                    pred = 1 - pred
                latency = 0.01 * (1.1 if cand else 1.0) * math.exp(0.3 * _normal(rng))
                records.append(
                    Record(
                        version=version,
                        latency_s=latency,
                        outputs=pred,
                        request_id=f"r{i}",
                        label=truth,
                    )
                )
        result = CanaryJudge(
            "v1", "v2", mode=mode, records=records, n_candidate_requests=100_000, alpha=1e-6
        ).run()
        out[mode] = {
            "status": result.status.value,
            "findings": [f.to_dict() for f in result.findings],
            "details": result.details,
            "metrics": dict(result.metrics),
        }
    return _json_dict(out)


def collect() -> dict[str, Any]:
    """Everything `test_canary_replay` compares."""
    monitors = {
        f"{scenario}-{mode}-{variant}": replay(scenario, mode, variant)
        for scenario in SCENARIOS
        for mode in MODES
        for variant in ("default", "patient", "js", "gate")
        if variant in ("default", "patient") or scenario in ("shifted", "drift")
    }
    return {"monitors": monitors, "kernels": kernels(), "judge": judge()}


if __name__ == "__main__":
    with gzip.open(sys.argv[1], "wt", encoding="utf-8") as f:
        json.dump(collect(), f, separators=(",", ":"))
