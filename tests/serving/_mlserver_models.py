"""Helpers for the MLServer integration tests: a model repository and a server process.

MLServer runs from its own virtual environment (it pins many dependencies), found through
the ``MLCHECKS_MLSERVER`` environment variable (the path of its ``mlserver`` executable) or
``mlserver`` on PATH. Models are trained and pickled by that environment's Python, so they
load in the server's scikit-learn whatever the test environment has; their offline
predictions are saved next to them as ``.npy`` files for the tests to compare with.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _process import ServerProcess

from mlchecks.serving.v2 import V2Endpoint

N_FEATURES = 4
MODEL = "clf"  # the scikit-learn model's name on the server
ECHO = "echo"  # a custom runtime that answers its inputs unchanged

# Trains and saves scikit-learn models in the server's environment. argv[1] is a JSON list
# of specs: {"dir", "name", "version", "kind", "seed"}; argv[2] the evaluation data file.
_TRAIN = r"""
import json, sys
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

specs = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
w = np.array([1.5, -2.0, 0.75, 1.0])
x = rng.normal(size=(600, 4))
y = (x @ w + rng.normal(scale=0.5, size=600) > 0).astype(np.int64)
x_eval = np.load(sys.argv[2])
for spec in specs:
    kind = spec["kind"]
    if kind == "healthy":
        idx = np.random.default_rng(spec["seed"]).choice(600, size=500, replace=False)
        model = LogisticRegression(C=1.0).fit(x[idx], y[idx])
    elif kind == "three_features":  # trained on another feature count: fails on 4 features
        model = LogisticRegression().fit(x[:, :3], y)
    elif kind == "skewed":  # trained on a label computed with a wrong threshold
        model = LogisticRegression().fit(x, (x @ w > 2.0).astype(np.int64))
    else:
        raise ValueError(kind)
    joblib.dump(model, f"{spec['dir']}/model.joblib")
    if kind != "three_features":
        np.save(f"{spec['dir']}/offline_proba.npy", model.predict_proba(x_eval))
"""

_ECHO_RUNTIME = '''
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class EchoModel(MLModel):
    """Answers every input tensor unchanged (name, shape, datatype and data)."""

    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = [
            ResponseOutput(name=t.name, shape=t.shape, datatype=t.datatype, data=t.data)
            for t in payload.inputs
        ]
        return InferenceResponse(
            model_name=self.name, model_version=self.version, outputs=outputs
        )
'''


def mlserver_executable() -> str | None:
    """The ``mlserver`` executable: ``$MLCHECKS_MLSERVER`` or ``mlserver`` on PATH."""
    configured = os.environ.get("MLCHECKS_MLSERVER")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("mlserver")


def server_python(executable: str) -> str:
    """The Python interpreter of the environment ``executable`` was installed into."""
    first = Path(executable).read_bytes()[:512].split(b"\n", 1)[0]
    if first.startswith(b"#!"):
        interpreter = first[2:].decode().strip().split()[0]
        if Path(interpreter).is_file():
            return interpreter
    sibling = Path(executable).resolve().parent / "python"
    return str(sibling) if sibling.is_file() else sys.executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eval_inputs(n: int = 200) -> np.ndarray:
    """Production-like inputs: ``n`` rows of the 4 features, float64."""
    return np.random.default_rng(12345).normal(size=(n, N_FEATURES))


def model_dir(root: Path, name: str, version: str) -> Path:
    """Where version ``version`` of model ``name`` lives in a repository at ``root``."""
    return root / name / f"v{version}"


def write_sklearn_versions(
    python: str, root: Path, versions: dict[str, str], *, name: str = MODEL
) -> dict[str, Path]:
    """Train and save scikit-learn models as versions of ``name`` under ``root``.

    ``versions`` maps version -> kind: ``"healthy"`` (a logistic regression; different
    versions use different subsamples, so they nearly always agree), ``"three_features"``
    (expects 3 features: every 4-feature request fails), ``"skewed"`` (trained on a label
    computed with a wrong threshold: predicts the positive class far less often). Every
    version answers ``predict_proba`` (``predict_fn`` in its
    model-settings.json). Returns version -> its folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    x_eval = root / "eval_inputs.npy"
    np.save(x_eval, eval_inputs())
    specs, dirs = [], {}
    for seed, (version, kind) in enumerate(versions.items(), start=1):
        folder = model_dir(root, name, version)
        folder.mkdir(parents=True, exist_ok=True)
        settings = {
            "name": name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {
                "uri": "./model.joblib",
                "version": version,
                "extra": {"predict_fn": "predict_proba"},
            },
        }
        (folder / "model-settings.json").write_text(json.dumps(settings, indent=2))
        specs.append({"dir": str(folder), "name": name, "version": version, "kind": kind})
        specs[-1]["seed"] = seed
        dirs[version] = folder
    done = subprocess.run(
        [python, "-c", _TRAIN, json.dumps(specs), str(x_eval)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"training the test models with {python} failed:\n{done.stderr}")
    return dirs


def write_echo(root: Path, version: str = "1") -> Path:
    """A custom-runtime model ``echo`` that answers its inputs unchanged."""
    folder = model_dir(root, ECHO, version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "echo_runtime.py").write_text(_ECHO_RUNTIME)
    settings = {
        "name": ECHO,
        "implementation": "echo_runtime.EchoModel",
        "parameters": {"version": version},
    }
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2))
    return folder


class MLServerProcess(ServerProcess):
    """An MLServer started on free loopback ports, serving the repository at ``root``.

    Settings: HTTP and gRPC on free ports of 127.0.0.1, metrics server off, and
    ``parallel_workers: 0`` (models run in the server process: the default worker pool
    fails to start with recent uvloop, MLServer issue #2286).
    """

    def __init__(self, executable: str, root: Path, *, http_port: int | None = None) -> None:
        self.executable = executable
        self.root = root
        self.http_port = http_port or free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_port = free_port()
        self.grpc_url = f"grpc://127.0.0.1:{self.grpc_port}"
        super().__init__("MLServer", root.parent / f"mlserver-{self.http_port}.log")

    def start(self, timeout_s: float = 90.0, *, ready_model: str = MODEL) -> MLServerProcess:
        """Start the server and wait until ``ready_model`` is ready; raise with the log if not."""
        settings = {
            "host": "127.0.0.1",
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
            "metrics_endpoint": None,
            "parallel_workers": 0,
            "debug": False,
        }
        (self.root / "settings.json").write_text(json.dumps(settings, indent=2))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER")}
        self.launch([self.executable, "start", str(self.root)], cwd=self.root.parent, env=env)
        endpoint = V2Endpoint(self.url, ready_model, timeout_s=5.0)
        try:
            self.wait_until(endpoint.ready, timeout_s)
        finally:
            endpoint.close()
        return self

    def endpoint(self, model: str = MODEL, **kwargs: Any) -> V2Endpoint:
        """A `V2Endpoint` for ``model`` on this server."""
        return V2Endpoint(self.url, model, **kwargs)
