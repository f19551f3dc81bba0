"""The per-record jobs of ``bench_checks.py``: PipelineCheck, CanaryJudge, LossDecreasesCheck.

These checks do Python work for every row, request or step, so their "floor" is a plain
Python loop that touches every record once, and their size is capped (see `_checks_jobs`):

- **pipeline**: `PipelineCheck` with a two-stage pipeline (a 1,000-row training table, a
  fitted standardizer and logistic weights) and an `InProcessServer` that computes the
  features itself (``send="raw"``): ``m`` held-out rows of 4 raw features go through the
  batch feature path and, one row at a time, the serving path (skew) and the server
  (served vs offline). Peer: the same loop by hand, without a check around it.
- **canary**: `CanaryJudge` over ``n`` records in memory (10% to the candidate, 1% errors,
  log-normal latencies, 3 classes, a `Label` 100 requests late), with
  ``n_candidate_requests`` above ``n`` so the whole record is judged (WARN: not enough
  candidate requests to pass, no regression). Peers: a Python loop of per-version counts,
  log latencies, class counts and the label join; ``pandas.DataFrame`` of the records and
  a ``groupby("version")``.
- **loss**: `LossDecreasesCheck` on ``n`` steps of a trainer whose ``train_step`` returns
  the next value of a noisy decaying loss series. Peer: the same loop of ``train_step``,
  then 10 block means and ``scipy.stats.kendalltau``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from _checks_jobs import have
from _harness import Job, read_once

__all__ = ["record_jobs"]

State = dict[str, Any]
Params = dict[str, Any]


# --------------------------------------------------------------------------- pipeline


class _Model:
    """A served logistic model on raw rows: standardize, then softmax of ``x @ w``."""

    def __init__(self, fit: dict[str, np.ndarray]) -> None:
        self.fit = fit

    def predict(self, raw: Any) -> np.ndarray:
        return _proba(self.fit, (np.asarray(raw) - self.fit["mean"]) / self.fit["std"])


def _proba(fit: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    z = features @ fit["w"]
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def _pipeline_setup(params: Params) -> State:
    m = int(min(params["rows"], params["pipeline_rows_cap"]))
    rng = np.random.default_rng(1)
    return {
        "train": rng.normal(size=(1000, 4)),
        "holdout": rng.normal(size=(m, 4)),
        "w": rng.normal(size=(4, 2)),
    }


def _fit(st: State) -> dict[str, np.ndarray]:
    return {"mean": st["train"].mean(axis=0), "std": st["train"].std(axis=0), "w": st["w"]}


def mlchecks_pipeline(st: State) -> tuple[Any, ...]:
    """`PipelineCheck` end to end: two stages, skew on every row, one request per row."""
    from mlchecks.checks import Pipeline, PipelineCheck, Stage
    from mlchecks.serving import InProcessServer

    registry: dict[str, _Model] = {}
    server = InProcessServer(loader=registry.__getitem__)

    def deploy(out: Mapping[str, Any]) -> str:
        registry["1"] = _Model(out["fit"])
        return "1"

    def standardize(out: Mapping[str, Any], rows: Any) -> Any:
        return (rows - out["fit"]["mean"]) / out["fit"]["std"]

    pipeline = Pipeline([Stage("source", lambda: st["train"]), Stage("fit", lambda _: _fit(st))])
    result = PipelineCheck(
        pipeline,
        holdout=lambda out: st["holdout"],
        training_features=standardize,
        serving_features=standardize,
        server=server,
        deploy=deploy,
        predict=lambda out, features: _proba(out["fit"], features),
        n_rows=len(st["holdout"]),
    ).run()
    return result.status.label, int(result.metrics["n_requests"])


def hand_pipeline(st: State) -> tuple[Any, ...]:
    """By hand: batch features, then per row the serving features and a model call, compared."""
    fit = _fit(st)
    model = _Model(fit)
    offline_features = (st["holdout"] - fit["mean"]) / fit["std"]
    offline = _proba(fit, offline_features)
    skewed = mismatched = 0
    for i, row in enumerate(st["holdout"]):
        features = (row - fit["mean"]) / fit["std"]
        skewed += not np.allclose(features, offline_features[i], rtol=1e-6, atol=1e-6)
        served = model.predict(row.reshape(1, -1))[0]
        mismatched += not np.allclose(served, offline[i], rtol=1e-5, atol=1e-6)
    return skewed, mismatched


def pipeline_floor(st: State) -> int:
    """A Python loop over the held-out rows, touching each once."""
    total = 0
    for row in st["holdout"]:
        total += row.size
    return total


# --------------------------------------------------------------------------- canary


def _canary_setup(params: Params) -> State:
    from mlchecks.serving import Label, Record

    n = int(min(params["rows"], params["python_rows_cap"]))
    rng = np.random.default_rng(2)
    candidate = (rng.random(n) < 0.1).tolist()
    failed = (rng.random(n) < 0.01).tolist()
    latency = (0.01 * np.exp(rng.normal(0.0, 0.3, n))).tolist()
    truth = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.9, truth, (truth + 1) % 3).tolist()
    truth_list = truth.tolist()
    log: list[Any] = []
    for i in range(n):
        version = "v2" if candidate[i] else "v1"
        if failed[i]:
            log.append(Record(version=version, status=503, request_id=f"r{i}"))
        else:
            log.append(
                Record(
                    version=version,
                    latency_s=latency[i],
                    outputs=predicted[i],
                    request_id=f"r{i}",
                )
            )
        if i >= 100 and not failed[i - 100]:
            log.append(Label(request_id=f"r{i - 100}", label=truth_list[i - 100]))
    return {"log": log, "n": n}


def mlchecks_canary(st: State) -> tuple[Any, ...]:
    """`CanaryJudge` over the whole record (the quota above its length)."""
    from mlchecks.checks import CanaryJudge

    result = CanaryJudge("v1", "v2", records=st["log"], n_candidate_requests=st["n"] + 1).run()
    return result.status.label, len(result.findings)


def canary_floor(st: State) -> int:
    """A Python loop over the records, reading one attribute of each."""
    total = 0
    for item in st["log"]:
        total += item.request_id is not None
    return total


def hand_canary(st: State) -> tuple[Any, ...]:
    """By hand: per-version requests, errors, log latency sums, class counts, label join."""
    from mlchecks.serving import Label

    requests = {"v1": 0, "v2": 0}
    errors = {"v1": 0, "v2": 0}
    log_latency = {"v1": 0.0, "v2": 0.0}
    classes: dict[tuple[str, Any], int] = {}
    pending: dict[str, tuple[str, Any]] = {}
    right = {"v1": 0, "v2": 0}
    for item in st["log"]:
        if isinstance(item, Label):
            seen = pending.pop(item.request_id, None)
            if seen is not None:
                right[seen[0]] += seen[1] == item.label
            continue
        v = item.version
        requests[v] += 1
        if not item.ok:
            errors[v] += 1
            continue
        log_latency[v] += math.log(item.latency_s)
        key = (v, item.outputs)
        classes[key] = classes.get(key, 0) + 1
        pending[item.request_id] = (v, item.outputs)
    return requests["v2"], errors["v2"]


def pandas_canary(st: State) -> tuple[Any, ...]:
    """``pandas.DataFrame`` of the records and of the labels, a merge, one groupby."""
    import pandas as pd

    from mlchecks.serving import Label

    records = [
        (r.version, r.ok, r.latency_s, r.outputs, r.request_id)
        for r in st["log"]
        if not isinstance(r, Label)
    ]
    labels = [(r.request_id, r.label) for r in st["log"] if isinstance(r, Label)]
    frame = pd.DataFrame.from_records(
        records, columns=["version", "ok", "latency_s", "outputs", "request_id"]
    )
    frame = frame.merge(pd.DataFrame(labels, columns=["request_id", "label"]), how="left")
    frame["log_latency"] = np.log(frame["latency_s"])
    frame["right"] = frame["outputs"] == frame["label"]
    table = frame.groupby("version").agg(
        requests=("ok", "size"),
        ok=("ok", "sum"),
        log_latency=("log_latency", "mean"),
        right=("right", "sum"),
    )
    frame.groupby(["version", "outputs"]).size()
    return int(table.loc["v2", "requests"]), int(
        table.loc["v2", "requests"] - table.loc["v2", "ok"]
    )


# --------------------------------------------------------------------------- loss


class _SeriesTrainer:
    """A trainer whose ``train_step`` returns its batch, the next value of a loss series."""

    def __init__(self, seed: int = 0) -> None:
        self.step = 0

    def train_step(self, batch: Any) -> float:
        self.step += 1
        return float(batch)

    def predict(self, inputs: Any) -> Any:
        return inputs

    def state(self) -> dict[str, np.ndarray]:
        return {"step": np.array(self.step)}

    def save(self, path: Any) -> None:
        pass

    def load(self, path: Any) -> None:
        pass


def _loss_setup(params: Params) -> State:
    n = int(min(params["rows"], params["python_rows_cap"]))
    rng = np.random.default_rng(3)
    steps = np.arange(n)
    losses = 2.0 * np.exp(-3.0 * steps / max(n, 1)) + rng.normal(0.0, 0.05, n)
    return {"losses": losses, "batches": losses.tolist()}


def mlchecks_loss(st: State) -> tuple[Any, ...]:
    """`LossDecreasesCheck` over the whole series (``n_steps`` = its length)."""
    from mlchecks.checks import LossDecreasesCheck

    result = LossDecreasesCheck(make_trainer=_SeriesTrainer, batches=st["batches"]).run()
    return result.status.label, float(result.metrics["trend.tau"])


def hand_loss(st: State) -> tuple[Any, ...]:
    """By hand: the same ``train_step`` loop, 10 block means, ``scipy.stats.kendalltau``."""
    from scipy.stats import kendalltau

    trainer = _SeriesTrainer()
    losses = np.array([trainer.train_step(batch) for batch in st["batches"]])
    blocks = losses[: len(losses) // 10 * 10].reshape(10, -1).mean(axis=1)
    tau = kendalltau(np.arange(10), blocks)
    return float(tau.statistic), float(tau.pvalue)


# --------------------------------------------------------------------------- jobs


def record_jobs(params: Params) -> list[Job]:
    """The three per-record groups, sized by the caps."""
    n = int(min(params["rows"], params["python_rows_cap"]))
    m = int(min(params["rows"], params["pipeline_rows_cap"]))
    jobs = [
        Job("pipeline: floor", "floor", _pipeline_setup, pipeline_floor, "loop over the rows"),
        Job(
            "pipeline: PipelineCheck",
            "mlchecks",
            _pipeline_setup,
            mlchecks_pipeline,
            "skew + served vs offline, InProcessServer",
            reference=True,
            extra={"rows": m},
        ),
        Job(
            "pipeline: loop by hand",
            "other",
            _pipeline_setup,
            hand_pipeline,
            "per row: features, model call, allclose",
            versus="pipeline: PipelineCheck",
            extra={"rows": m},
        ),
        Job("canary: floor", "floor", _canary_setup, canary_floor, "loop over the records"),
        Job(
            "canary: CanaryJudge",
            "mlchecks",
            _canary_setup,
            mlchecks_canary,
            "records in memory, split mode, late labels",
            reference=True,
            extra={"rows": n},
        ),
        Job(
            "canary: loop by hand",
            "other",
            _canary_setup,
            hand_canary,
            "counts, log latency, classes, label join",
            versus="canary: CanaryJudge",
            extra={"rows": n},
        ),
        Job("loss: floor", "floor", _loss_setup, lambda st: read_once(st["losses"]), "losses"),
        Job(
            "loss: LossDecreasesCheck",
            "mlchecks",
            _loss_setup,
            mlchecks_loss,
            f"{n:,} steps of a series trainer",
            reference=True,
            extra={"rows": n},
        ),
        Job(
            "loss: loop + kendalltau",
            "scipy",
            _loss_setup,
            hand_loss,
            "train_step loop, block means, kendalltau",
            versus="loss: LossDecreasesCheck",
            extra={"rows": n},
        ),
    ]
    if have("pandas"):
        jobs.insert(
            6,
            Job(
                "canary: pandas groupby",
                "pandas",
                _canary_setup,
                pandas_canary,
                "DataFrame of records + labels, groupby",
                versus="canary: CanaryJudge",
                extra={"rows": n},
            ),
        )
    for job in jobs:
        group = job.name.split(":", 1)[0]
        job.extra.update(group=group, rows=m if group == "pipeline" else n)
    return jobs
