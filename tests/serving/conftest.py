"""Fixtures for the serving integration tests: a real MLServer and a real MLflow registry.

MLServer runs as a subprocess from its own environment (``$MLCHECKS_MLSERVER``, else
``mlserver`` on PATH); the tests that need it are skipped when it is missing (CI installs
it, and fails on skipped tests). MLflow is imported in the test environment.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _mlserver_models import (
    MODEL,
    MLServerProcess,
    eval_inputs,
    mlserver_executable,
    model_dir,
    server_python,
    write_echo,
    write_sklearn_versions,
)
from _triton import TritonServer, running_triton, triton_executable

# The versions trained for the tests; "1" and "2" are in the repository from the start,
# the others (two faulty ones and a healthy candidate) are staged into it by the tests.
VERSIONS = {
    "1": "healthy",
    "2": "healthy",
    "3": "three_features",
    "4": "skewed",
    "5": "healthy",
}
IN_REPOSITORY = ("1", "2")


class MLServerFixture:
    """A running MLServer with model ``clf`` (versions 1, 2) and the echo model."""

    def __init__(self, process: MLServerProcess, staging: Path) -> None:
        self.process = process
        self.url = process.url
        self.repository = process.root
        self.staging = staging
        self.inputs = eval_inputs()

    def offline(self, version: str) -> np.ndarray:
        """``predict_proba`` of ``version`` on `inputs`, computed where it was trained."""
        return np.load(model_dir(self.staging, MODEL, version) / "offline_proba.npy")

    @contextlib.contextmanager
    def staged(self, version: str, *, load: bool = False) -> Iterator[None]:
        """Put ``version`` into the repository (and load it); take it out again afterwards."""
        target = model_dir(self.repository, MODEL, version)
        shutil.copytree(model_dir(self.staging, MODEL, version), target)
        endpoint = self.process.endpoint(MODEL)
        try:
            if load:
                endpoint.load(version)
            yield
        finally:
            shutil.rmtree(target)
            with contextlib.suppress(Exception):
                endpoint.load(IN_REPOSITORY[0])  # reload: MLServer drops what is gone
            endpoint.close()


@pytest.fixture(scope="session")
def mlserver_exe() -> str:
    """The ``mlserver`` executable, or skip."""
    executable = mlserver_executable()
    if executable is None:
        pytest.skip(
            "MLServer not found: install mlserver and mlserver-sklearn into a separate "
            "virtual environment and set MLCHECKS_MLSERVER to its bin/mlserver"
        )
    return executable


@pytest.fixture(scope="session")
def model_store(mlserver_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test model, trained once by the server's Python (the staging area)."""
    staging = tmp_path_factory.mktemp("staging")
    write_sklearn_versions(server_python(mlserver_exe), staging, VERSIONS)
    return staging


def new_repository(staging: Path, root: Path) -> Path:
    """A model repository with ``clf`` versions 1 and 2 and the echo model."""
    for version in IN_REPOSITORY:
        shutil.copytree(model_dir(staging, MODEL, version), model_dir(root, MODEL, version))
    write_echo(root)
    return root


@pytest.fixture(scope="session")
def mlserver(
    mlserver_exe: str, model_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MLServerFixture]:
    """One MLServer for the session, stopped (terminate, then kill) at the end."""
    root = new_repository(model_store, tmp_path_factory.mktemp("mlserver") / "models")
    process = MLServerProcess(mlserver_exe, root).start()
    try:
        yield MLServerFixture(process, model_store)
    finally:
        process.stop()


@pytest.fixture
def own_mlserver(mlserver_exe: str, model_store: Path, tmp_path: Path) -> Iterator[MLServerProcess]:
    """A server of the test's own (to stop and restart), stopped after the test."""
    root = new_repository(model_store, tmp_path / "models")
    process = MLServerProcess(mlserver_exe, root).start()
    try:
        yield process
    finally:
        process.stop()


# --------------------------------------------------------------------------- Triton


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """One tritonserver for the session, serving ``clf`` 1, 2 (healthy) and 3 (inverted).

    ``triton.url`` is its HTTP address, ``triton.grpc_target`` its gRPC one. Skips unless
    ``$MLCHECKS_TRITON`` names the ``tritonserver`` binary of an nvidia-pytriton install
    (or its virtual environment); see tests/serving/_triton.py.
    """
    executable = triton_executable()
    if executable is None:
        pytest.skip(
            "Triton not found: pip install nvidia-pytriton scikit-learn joblib into a "
            "separate virtual environment and set MLCHECKS_TRITON to it (or to its "
            "tritonserver binary)"
        )
    with running_triton(executable, tmp_path_factory.mktemp("triton")) as server:
        yield server


# --------------------------------------------------------------------------- MLflow


class MLflowRegistry:
    """A registry on a sqlite file with model ``clf``: versions 1, 2 (healthy), 3 (flipped)."""

    def __init__(self, root: Path) -> None:
        import mlflow.sklearn
        from mlflow import MlflowClient
        from sklearn.linear_model import LogisticRegression

        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.name = MODEL
        rng = np.random.default_rng(0)
        x = rng.normal(size=(600, 4))
        y = (x @ np.array([1.5, -2.0, 0.75, 1.0]) > 0).astype(np.int64)
        self.inputs = eval_inputs()
        self.models = {
            "1": LogisticRegression(C=1.0).fit(x[:500], y[:500]),
            "2": LogisticRegression(C=1.0).fit(x[100:], y[100:]),
            "3": LogisticRegression().fit(x, 1 - y),
        }
        client = MlflowClient(tracking_uri=self.tracking_uri)
        client.create_registered_model(self.name)
        for version, model in self.models.items():
            path = root / "artifacts" / f"v{version}"
            mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
            registered = client.create_model_version(self.name, source=str(path))
            assert version == str(registered.version)

    def expected(self, version: str) -> np.ndarray:
        """What version ``version`` predicts for `inputs` (computed in this process)."""
        return np.asarray(self.models[version].predict(self.inputs))


@pytest.fixture(scope="session")
def mlflow_registry(tmp_path_factory: pytest.TempPathFactory) -> MLflowRegistry:
    """A real MLflow model registry in a temporary directory (sqlite, local artifacts)."""
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install mlflow)")
    return MLflowRegistry(tmp_path_factory.mktemp("mlflow"))
