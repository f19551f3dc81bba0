"""Helpers for the REST integration tests: MLflow's scoring server and a FastAPI service.

Both run as subprocesses on free loopback ports, in their own process group (stopped as a
whole: terminate, then kill). ``mlflow models serve`` runs from the environment named by
``MLCHECKS_MLFLOW`` (the path of its ``mlflow`` executable), else the ``mlflow`` next to
this interpreter; the FastAPI service runs with this interpreter's uvicorn.

The models are scikit-learn classifiers on `sklearn.datasets.load_breast_cancer`: version
"1" healthy, "2" a healthy retrain on another subsample, "3" trained on inverted labels.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _mlserver_models import free_port
from _process import ServerProcess

from mlchecks.serving import RestEndpoint

KINDS = {"1": "healthy", "2": "healthy", "3": "inverted"}


def mlflow_executable() -> str | None:
    """``$MLCHECKS_MLFLOW``, else the ``mlflow`` beside this interpreter or on PATH."""
    configured = os.environ.get("MLCHECKS_MLFLOW")
    if configured:
        return configured if Path(configured).is_file() else None
    sibling = Path(sys.executable).parent / "mlflow"
    return str(sibling) if sibling.is_file() else shutil.which("mlflow")


def data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)


def train(kind: str, seed: int) -> Any:
    """A scaled logistic regression: healthy on a subsample, or on the inverted labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = data()
    idx = np.random.default_rng(seed).choice(len(x), size=450, replace=False)
    labels = y if kind == "healthy" else 1 - y
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return model.fit(x[idx], labels[idx])


def rows(x: np.ndarray, size: int = 1) -> list[np.ndarray]:
    """Requests of ``size`` rows each."""
    return [x[i : i + size] for i in range(0, len(x) - size + 1, size)]


class Process(ServerProcess):
    """A server started from ``command`` in ``cwd`` with ``env``, ready when its endpoint is."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str], cwd: Path) -> None:
        super().__init__(" ".join(command[:3]), log)
        self.command, self.env, self.cwd = command, env, cwd

    def start(self) -> None:
        self.launch(self.command, cwd=self.cwd, env=self.env)

    def wait_ready(self, endpoint: RestEndpoint, timeout_s: float = 120.0) -> None:
        self.wait_until(endpoint.ready, timeout_s)


# --------------------------------------------------------------------------- MLflow


class MLflowModels:
    """A registry (sqlite in ``root``) with ``clf`` (labels) and ``clf_proba`` (probabilities),
    versions 1, 2, 3 each, logged with `mlflow.sklearn.log_model` as users do."""

    def __init__(self, root: Path) -> None:
        import mlflow
        import mlflow.sklearn
        from mlflow import MlflowClient

        self.root = root
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.models = {v: train(kind, seed=int(v)) for v, kind in KINDS.items()}
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        # a process-wide setting (and environment variable): put back below
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            # artifacts in the test's folder (the default, ./mlruns, is the working dir's)
            experiment = MlflowClient(self.tracking_uri).create_experiment(
                "rest-tests", artifact_location=(root / "artifacts").as_uri()
            )
            mlflow.set_experiment(experiment_id=experiment)
            with mlflow.start_run():
                for version, model in self.models.items():
                    for name, fn in (("clf", None), ("clf_proba", "predict_proba")):
                        extra = {} if fn is None else {"pyfunc_predict_fn": fn}
                        mlflow.sklearn.log_model(
                            model,
                            name=f"{name}-v{version}",
                            registered_model_name=name,
                            pip_requirements=["scikit-learn"],
                            **extra,
                        )
        finally:
            mlflow.set_tracking_uri(previous)  # None unsets both
        MlflowClient(self.tracking_uri).set_registered_model_alias("clf", "champion", "1")

    def predict(self, version: str, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.models[version].predict(inputs))

    def proba(self, version: str, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.models[version].predict_proba(inputs))


class ScoringServer:
    """``mlflow models serve -m <uri> --env-manager local -h 127.0.0.1 -p <port>``."""

    def __init__(self, executable: str, model_uri: str, tracking_uri: str, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model_uri = model_uri
        env = dict(os.environ)
        env["MLFLOW_TRACKING_URI"] = tracking_uri
        # the scoring server runs `uvicorn` from PATH: the one of mlflow's environment
        env["PATH"] = f"{Path(executable).parent}{os.pathsep}{env.get('PATH', '')}"
        command = [executable, "models", "serve", "-m", model_uri, "--env-manager", "local"]
        command += ["-h", "127.0.0.1", "-p", str(self.port)]
        self.process = Process(command, root / f"mlflow-{self.port}.log", env, root)
        self.restarts = 0

    def endpoint(self, **kwargs: Any) -> RestEndpoint:
        return RestEndpoint.mlflow(self.url, **kwargs)

    def start(self) -> ScoringServer:
        self.process.start()
        return self

    def wait_ready(self) -> ScoringServer:
        with self.endpoint() as endpoint:
            try:
                self.process.wait_ready(endpoint)
            except BaseException:
                self.stop()
                raise
        return self

    def restart(self) -> None:
        """What the platform does when the alias moves: stop, start, wait for /ping."""
        self.stop()
        self.start().wait_ready()
        self.restarts += 1

    def stop(self) -> None:
        self.process.stop()


# -------------------------------------------------------------------------- FastAPI

#: A FastAPI model service as its users write it: the model file and the version from
#: the environment, POST /predict with {"instances": rows}, GET /health.
FASTAPI_APP = """
import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
model = joblib.load(os.environ["MODEL_PATH"])
MODEL_VERSION = os.environ["MODEL_VERSION"]


class PredictRequest(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    x = np.asarray(request.instances, dtype=np.float64)
    return {"predictions": model.predict_proba(x).tolist(), "model_version": MODEL_VERSION}


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}
"""


class FastAPIService:
    """``uvicorn app:app --host 127.0.0.1 --port <port>`` serving one model version."""

    def __init__(self, root: Path, version: str, model: Any) -> None:
        import joblib

        folder = root / f"service-v{version}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.py").write_text(FASTAPI_APP)
        joblib.dump(model, folder / "model.joblib")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(MODEL_PATH=str(folder / "model.joblib"), MODEL_VERSION=version)
        command = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        self.process = Process(command, folder / "uvicorn.log", env, folder)

    def endpoint(self, **kwargs: Any) -> RestEndpoint:
        return RestEndpoint(
            f"{self.url}/predict",
            encode=lambda inputs: {"instances": inputs},
            version_key="model_version",
            ready_path="/health",
            **kwargs,
        )

    def start(self) -> FastAPIService:
        self.process.start()
        return self

    def wait_ready(self) -> FastAPIService:
        with self.endpoint() as endpoint:
            try:
                self.process.wait_ready(endpoint)
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        self.process.stop()
