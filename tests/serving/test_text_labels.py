"""Class names served as V2 ``BYTES``, on a real MLServer: the canary reads them through
``classes=``.

A scikit-learn classifier trained on class names (``"benign"``, ``"malignant"``) answers
``predict`` with those names; MLServer sends them as a ``BYTES`` tensor. Versions 1 and 2
are healthy retrains, version 3 was trained on inverted labels. The same check code as for
probabilities gives PASS and FAIL; only ``classes=`` and the offline labels differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from _mlserver_models import MLServerProcess

from mlchecks import Status
from mlchecks.checks.canary import CanaryCheck
from mlchecks.serving import V2Deployment, V2Endpoint

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

NAMES = np.array(["malignant", "benign"])


class NamedClasses:
    def __init__(self, process: MLServerProcess, models: dict[str, Any], x: np.ndarray) -> None:
        self.process, self.models, self.x = process, models, x

    def deployment(self) -> V2Deployment:
        return V2Deployment(V2Endpoint(self.process.url, "names"), live="1")


@pytest.fixture(scope="module")
def served(mlserver_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedClasses]:
    root = tmp_path_factory.mktemp("text-labels") / "models"
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_live, y_train, _ = train_test_split(x, y, test_size=0.5, random_state=0)
    models = {}
    for version, labels, seed in (("1", y_train, 1), ("2", y_train, 2), ("3", 1 - y_train, 3)):
        rows = np.random.default_rng(seed).permutation(len(x_train))[:250]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        models[version] = model.fit(x_train[rows], NAMES[labels[rows]])
        folder = root / "names" / f"v{version}"
        folder.mkdir(parents=True)
        joblib.dump(model, folder / "model.joblib")
        settings = {
            "name": "names",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": version},
        }
        (folder / "model-settings.json").write_text(json.dumps(settings))
    process = MLServerProcess(mlserver_exe, root).start(ready_model="names")
    try:
        yield NamedClasses(process, models, x_live)
    finally:
        process.stop()


def test_mlserver_answers_class_names_as_bytes(served: NamedClasses) -> None:
    response = served.deployment().infer(served.x[:3])
    assert response.ok, response.error
    assert response.outputs.dtype.kind in "OUS"
    assert {str(v) for v in np.asarray(response.outputs).ravel()} <= set(NAMES)


@pytest.mark.parametrize("mode", ["split", "shadow"])
@pytest.mark.parametrize("size", [1, 8])
def test_canary_reads_class_names(served: NamedClasses, mode: str, size: int) -> None:
    rng = np.random.default_rng(5)
    x = served.x
    batches = [x[rng.choice(len(x), size, replace=False)] for _ in range(1800)]
    classes = served.models["1"].classes_
    results = {}
    for candidate in ("2", "3"):
        results[candidate] = CanaryCheck(
            served.deployment(),
            candidate,
            probe_inputs=batches[:10],
            offline_predictions=served.models[candidate].predict,
            traffic=batches[10:],
            mode=mode,
            classes=classes,
            traffic_fraction=0.5,
            n_candidate_requests=150 if candidate == "2" else 700,
            budget_requests=1790,
            unload=False,
        ).run()
    assert results["2"].status == Status.PASS, results["2"].summary
    assert results["2"].metrics["probe.agreement"] == 1.0
    assert results["3"].status == Status.FAIL, results["3"].summary
    failed = {f.name for f in results["3"].findings if f.status == Status.FAIL}
    assert ("trickle.shift" if mode == "split" else "trickle.disagreement") in failed


def test_without_classes_text_labels_are_numbered_as_first_seen(
    served: NamedClasses, tmp_path: Path
) -> None:
    """Shadow mode compares the names themselves, so the class list is optional there."""
    x = served.x
    result = CanaryCheck(
        served.deployment(),
        "3",
        probe_inputs=[x[i : i + 1] for i in range(5)],
        traffic=[x[i : i + 1] for i in range(len(x))],
        mode="shadow",
        traffic_fraction=0.5,
        n_candidate_requests=100,
        unload=False,
    ).run()
    assert result.finding("trickle.disagreement").status == Status.FAIL
    assert result.finding("probe.outputs").status == Status.PASS
