"""The closest checks of deepchecks and evidently, end to end, against mlchecks on the same data.

The peers do not install next to the current releases of their own dependencies, so each
lives in its own virtualenv with the pins that make it import (benchmarks/README.md has
the commands; docs/benchmarks.md records the versions and the errors without the pins).
Each job runs under its own interpreter (``--mlchecks-python``, ``--deepchecks-python``,
``--evidently-python``); this file imports no peer and no mlchecks at module level, and it
is not imported by the tests.

The data (default n = 1e6, binary): labels ``y`` (50% positives), two features ``segment``
(25 values) and ``group`` (4 values) whose combinations are the 100 slices, a numeric
feature ``x``, and two models' probabilities of class 1: ``a`` (about 91% accurate) and
``b = a + N(0, 0.02)``, clipped. Predicted classes are ``p > 0.5``.

``--task run`` pairs each peer check with the mlchecks call that answers the same question
("x ref" is the peer's time over its mlchecks equivalent):

- deepchecks ``SegmentPerformance`` (accuracy on the segment x group grid), once per model,
  vs mlchecks ``sliced_metric`` for both models and vs `QualityCheck` testing a
  per-slice accuracy regression of b against a (paired tests, Holm) in every slice;
- deepchecks ``SimpleModelComparison`` (model a vs a most-frequent-class model, accuracy)
  vs `QualityCheck` of a against the constant prediction;
- evidently ``Report([ClassificationPreset()])`` with a as reference and b as current vs
  mlchecks computing the same metrics for both models (accuracy, precision, recall, F1,
  ROC AUC, log loss and the confusion matrix) and vs `QualityCheck` testing all six for
  regression with confidence intervals.

``--task import`` times ``import`` statements in fresh interpreters (wall time, median).

Run: ``python benchmarks/bench_peers.py --task run [--n 1000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _harness import Job, main, read_once

State = dict[str, Any]
PEERS = Path("/work/venv-peers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("run", "import"), default="run")
    parser.add_argument("--n", type=int, default=1_000_000, help="examples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mlchecks-python", default=sys.executable)
    parser.add_argument("--deepchecks-python", default=str(PEERS / "deepchecks/bin/python"))
    parser.add_argument("--evidently-python", default=str(PEERS / "evidently/bin/python"))


def make_data(params: dict[str, Any]) -> State:
    """The arrays every job starts from (identical in every interpreter: PCG64, one seed)."""
    n = params["n"]
    rng = np.random.default_rng(params["seed"])
    y = rng.integers(0, 2, n)
    segment = rng.integers(0, 25, n)
    group = rng.integers(0, 4, n)
    x = rng.normal(size=n)
    a = 1.0 / (1.0 + np.exp(-(2.0 * (2 * y - 1) + rng.normal(0.0, 1.5, n))))
    b = np.clip(a + rng.normal(0.0, 0.02, n), 0.0, 1.0)
    return {
        "y": y,
        "segment": segment,
        "group": group,
        "slice": segment * 4 + group,
        "x": x,
        "a": a,
        "b": b,
        "pred_a": (a > 0.5).astype(np.int64),
        "pred_b": (b > 0.5).astype(np.int64),
        "n": n,
    }


def _frame(s: State) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {"segment": s["segment"], "group": s["group"], "x": s["x"], "label": s["y"]}
    )


def floor(s: State) -> int:
    return read_once(s["y"], s["slice"], s["a"], s["b"])


# --------------------------------------------------------------------------- deepchecks


def deepchecks_setup(params: dict[str, Any]) -> State:
    warnings.filterwarnings("ignore")
    import pandas as pd
    from deepchecks.tabular.checks import SegmentPerformance, SimpleModelComparison

    s = make_data(params)
    s["df"] = _frame(s)
    s["importance"] = pd.Series({"segment": 1 / 3, "group": 1 / 3, "x": 1 / 3})
    s["SegmentPerformance"] = SegmentPerformance
    s["SimpleModelComparison"] = SimpleModelComparison
    return s


def _proba(p: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - p, p], axis=1)


def deepchecks_segments(s: State) -> tuple[float, float]:
    from deepchecks.tabular import Dataset

    dataset = Dataset(s["df"], label="label", cat_features=["segment", "group"])
    means = []
    for model in ("a", "b"):
        check = s["SegmentPerformance"](
            feature_1="segment",
            feature_2="group",
            alternative_scorer=("Accuracy", "accuracy"),
            max_segments=25,
            n_samples=s["n"],
        )
        result = check.run(
            dataset,
            y_pred=s[f"pred_{model}"],
            y_proba=_proba(s[model]),
            feature_importance=s["importance"],
            model_classes=[0, 1],
            with_display=False,
        )
        means.append(float(np.mean(result.value["scores"])))
    return means[0], means[1]


def deepchecks_simple(s: State) -> float:
    from deepchecks.tabular import Dataset

    train = Dataset(s["df"], label="label", cat_features=["segment", "group"])
    test_df = s["df"].set_axis(s["df"].index + s["n"])
    test = Dataset(test_df, label="label", cat_features=["segment", "group"])
    pred, proba = s["pred_a"], _proba(s["a"])
    result = s["SimpleModelComparison"](scorers=["accuracy"], n_samples=s["n"]).run(
        train,
        test,
        y_pred_train=pred,
        y_pred_test=pred,
        y_proba_train=proba,
        y_proba_test=proba,
        feature_importance=s["importance"],
        model_classes=[0, 1],
        with_display=False,
    )
    scores = result.value["scores"]
    first = next(iter(scores.values()))
    return float(first["Origin"])


# --------------------------------------------------------------------------- evidently


def evidently_setup(params: dict[str, Any]) -> State:
    warnings.filterwarnings("ignore")
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition

    s = make_data(params)
    s["definition"] = DataDefinition(
        classification=[
            BinaryClassification(
                target="target", prediction_labels="pred", prediction_probas="proba"
            )
        ],
        categorical_columns=["target", "pred"],
    )
    s["frames"] = {
        model: pd.DataFrame({"target": s["y"], "pred": s[f"pred_{model}"], "proba": s[model]})
        for model in ("a", "b")
    }
    return s


def evidently_report(s: State) -> tuple[float, float]:
    from evidently import Dataset, Report
    from evidently.presets import ClassificationPreset

    reference = Dataset.from_pandas(s["frames"]["a"], data_definition=s["definition"])
    current = Dataset.from_pandas(s["frames"]["b"], data_definition=s["definition"])
    snapshot = Report([ClassificationPreset()]).run(current_data=current, reference_data=reference)
    accuracy = next(
        m["value"] for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("Accuracy")
    )
    auc = next(
        m["value"] for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("RocAuc")
    )
    return float(accuracy), float(auc)


# --------------------------------------------------------------------------- mlchecks


def mlchecks_sliced_metric(s: State) -> tuple[float, float]:
    from mlchecks.stats.sliced import sliced_metric

    means = [
        float(np.nanmean(sliced_metric("accuracy", s["slice"], 100, s["y"], s[f"pred_{m}"])))
        for m in ("a", "b")
    ]
    return means[0], means[1]


def mlchecks_quality_sliced(s: State) -> tuple[float, float]:
    from mlchecks.checks.quality import QualityCheck
    from mlchecks.conditions import NoWorseThan

    result = QualityCheck(
        labels=s["y"],
        predictions=s["pred_b"],
        baseline_predictions=s["pred_a"],
        slices={"segment_group": s["slice"]},
        max_regression={"accuracy": NoWorseThan(abs=0.01)},
    ).run()
    rows = [r for r in result.details["table"] if r["slice"] != "all"]
    return (
        float(np.mean([r["baseline"] for r in rows])),
        float(np.mean([r["candidate"] for r in rows])),
    )


def mlchecks_vs_constant(s: State) -> float:
    from mlchecks.checks.quality import QualityCheck
    from mlchecks.conditions import NoWorseThan

    majority = np.full(s["n"], np.bincount(s["y"]).argmax())
    result = QualityCheck(
        labels=s["y"],
        predictions=s["pred_a"],
        baseline_predictions=majority,
        max_regression={"accuracy": NoWorseThan(abs=0.0)},
    ).run()
    return float(result.metrics["accuracy"])


def mlchecks_metrics(s: State) -> tuple[float, float]:
    from mlchecks.stats import metrics
    from mlchecks.stats.sliced import sliced_confusion

    y = s["y"]
    values = {}
    for model in ("a", "b"):
        p, pred = s[model], s[f"pred_{model}"]
        values[model] = (
            metrics.accuracy(y, pred),
            metrics.precision(y, pred),
            metrics.recall(y, pred),
            metrics.f1(y, pred),
            metrics.roc_auc(y, p),
            metrics.log_loss(y, p),
            sliced_confusion(np.zeros(len(y), dtype=np.intp), 1, y, pred, 2),
        )
    return float(values["b"][0]), float(values["b"][4])


def mlchecks_quality_six(s: State) -> tuple[float, float]:
    from mlchecks.checks.quality import QualityCheck
    from mlchecks.conditions import NoWorseThan

    limits = {
        name: NoWorseThan(abs=0.01)
        for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
    }
    result = QualityCheck(
        labels=s["y"],
        predictions=s["b"],
        baseline_predictions=s["a"],
        max_regression=limits,
    ).run()
    return float(result.metrics["accuracy"]), float(result.metrics["roc_auc"])


# --------------------------------------------------------------------------- imports


def _no_setup(params: dict[str, Any]) -> State:
    return dict(params)


def _importer(python_key: str, statement: str) -> Any:
    def run(s: State) -> int:
        done = subprocess.run(
            [
                s[python_key],
                "-W",
                "ignore",
                "-c",
                f"{statement}; import sys; print(len(sys.modules))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(done.stdout.strip().splitlines()[-1])

    return run


def _role(name: str) -> str:
    if "deepchecks" in name or "evidently" in name:
        return "peer"
    return "mlchecks" if "mlchecks" in name or "QualityCheck" in name else "other"


#: What running a QualityCheck loads: the check and scipy.stats, which its kernels import
#: on first use.
REFERENCE_IMPORT = "import QualityCheck, scipy.stats"

IMPORTS = [
    ("python -c pass (main venv)", "mlchecks_python", "pass"),
    ("import numpy", "mlchecks_python", "import numpy"),
    ("import mlchecks", "mlchecks_python", "import mlchecks"),
    (
        "import mlchecks QualityCheck",
        "mlchecks_python",
        "from mlchecks.checks.quality import QualityCheck",
    ),
    (
        REFERENCE_IMPORT,
        "mlchecks_python",
        "from mlchecks.checks.quality import QualityCheck; import scipy.stats",
    ),
    ("python -c pass (deepchecks venv)", "deepchecks_python", "pass"),
    (
        "import deepchecks checks",
        "deepchecks_python",
        "from deepchecks.tabular.checks import SegmentPerformance, SimpleModelComparison",
    ),
    ("python -c pass (evidently venv)", "evidently_python", "pass"),
    (
        "import evidently preset",
        "evidently_python",
        "from evidently import Report; from evidently.presets import ClassificationPreset",
    ),
]


def jobs(params: dict[str, Any]) -> list[Job]:
    if params["task"] == "import":
        return [
            Job(
                name,
                _role(name),
                _no_setup,
                _importer(key, stmt),
                stmt,
                reference=name == REFERENCE_IMPORT,
            )
            for name, key, stmt in IMPORTS
        ]
    ml, dc, ev = params["mlchecks_python"], params["deepchecks_python"], params["evidently_python"]
    return [
        Job("floor: read inputs once", "floor", make_data, floor, "y, slice, a, b", python=ml),
        Job(
            "mlchecks sliced_metric x2",
            "mlchecks",
            make_data,
            mlchecks_sliced_metric,
            "accuracy in 100 slices, both models",
            reference=True,
            python=ml,
        ),
        Job(
            "mlchecks QualityCheck sliced",
            "mlchecks",
            make_data,
            mlchecks_quality_sliced,
            "per-slice paired regression tests + Holm",
            python=ml,
        ),
        Job(
            "deepchecks SegmentPerformance x2",
            "peer",
            deepchecks_setup,
            deepchecks_segments,
            "accuracy on 25 x 4 segments, once per model",
            python=dc,
            versus="mlchecks sliced_metric x2",
        ),
        Job(
            "mlchecks QualityCheck vs const",
            "mlchecks",
            make_data,
            mlchecks_vs_constant,
            "accuracy of a vs the majority class, paired test",
            python=ml,
        ),
        Job(
            "deepchecks SimpleModelComparison",
            "peer",
            deepchecks_setup,
            deepchecks_simple,
            "accuracy of a vs a most-frequent model",
            python=dc,
            versus="mlchecks QualityCheck vs const",
        ),
        Job(
            "mlchecks metrics x2",
            "mlchecks",
            make_data,
            mlchecks_metrics,
            "acc, P, R, F1, AUC, log loss, confusion; both",
            python=ml,
        ),
        Job(
            "mlchecks QualityCheck 6 metrics",
            "mlchecks",
            make_data,
            mlchecks_quality_six,
            "the six metrics, paired tests with CIs",
            python=ml,
        ),
        Job(
            "evidently ClassificationPreset",
            "peer",
            evidently_setup,
            evidently_report,
            "Report, reference a, current b",
            python=ev,
            versus="mlchecks metrics x2",
        ),
    ]


if __name__ == "__main__":
    main(
        "Peers end to end on the same data (bench_peers.py)",
        jobs,
        add_arguments=add_arguments,
        default_repeats=3,
    )
