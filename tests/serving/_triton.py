"""Helpers for the Triton integration tests: a model repository and a server process.

Triton is the ``tritonserver`` binary shipped in the ``nvidia-pytriton`` wheel, installed
into its own virtual environment together with scikit-learn and joblib, which the Python
backend's stub imports. ``MLCHECKS_TRITON`` names that binary
(``<venv>/lib/python3.11/site-packages/pytriton/tritonserver/bin/tritonserver``) or the
virtual environment itself; the launcher finds the rest from there:

- the wheel's bundled libraries (``site-packages/nvidia_pytriton.libs``) and the
  interpreter's ``libpython`` go on ``LD_LIBRARY_PATH``;
- the Python backend needs its stub next to it: the wheel ships one stub per Python
  version, so the backends folder is copied into the server's work folder with the stub of
  the venv's Python (what PyTriton itself does before it starts the binary);
- the venv's ``bin`` goes first on ``PATH``, so the stub's embedded Python is the venv's
  (with its scikit-learn).

The model repository is the one docs/servers/triton.md shows, written from the page's own
blocks (``config.pbtxt``, ``model.py``, ``train.py``), so the page cannot drift from what
is tested: what Triton users write, a ``config.pbtxt`` per model and a ``model.py``
(``TritonPythonModel``) per version folder loading a joblib file from that folder. The page's
``train.py`` runs with the server venv's Python, so the pickles load in the stub's
scikit-learn; it saves each version's offline predictions next to it (``eval_proba.npy``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _mlserver_models import free_port
from _pages import ROOT
from _process import ServerProcess

from mlchecks.serving import V2Endpoint

MODEL = "clf"
PAGE = "docs/servers/triton.md"
# A file of the page: a block shown but not run whose first line names it ("# model.py").
_FILE_BLOCK = re.compile(r"<!-- no-test -->\s*```(?:python|protobuf)\n# (\S+)\n(.*?)```", re.S)


def page_files() -> dict[str, str]:
    """The files docs/servers/triton.md shows, path -> text (config.pbtxt keeps its name
    line): ``models/clf/config.pbtxt``, ``model.py``, ``train.py``."""
    text = (ROOT / PAGE).read_text()
    return {
        path: (body if path.endswith(".py") else f"# {path}\n{body}")
        for path, body in _FILE_BLOCK.findall(text)
    }


_BINARY = "pytriton/tritonserver/bin/tritonserver"  # in site-packages


def triton_executable() -> str | None:
    """The ``tritonserver`` binary named by ``$MLCHECKS_TRITON`` (binary or venv), or None."""
    configured = os.environ.get("MLCHECKS_TRITON")
    if not configured:
        return None
    path = Path(configured)
    if path.is_dir():
        found = sorted(
            path.glob("lib/python3*/site-packages/pytriton/tritonserver/bin/tritonserver")
        )
        return str(found[-1]) if found else None
    return str(path) if path.is_file() else None


class TritonInstall:
    """Where the parts of a pip-installed ``nvidia-pytriton`` are, from its binary."""

    def __init__(self, executable: str) -> None:
        self.executable = Path(executable).resolve()
        self.dist = self.executable.parents[1]  # .../site-packages/pytriton/tritonserver
        site_packages = self.dist.parents[1]
        self.libs = site_packages / "nvidia_pytriton.libs"
        self.venv = site_packages.parents[2]  # <venv>/lib/python3.X/site-packages
        self.python = str(self.venv / "bin" / "python")
        if not Path(self.python).is_file():
            self.python = sys.executable
        probe = subprocess.run(
            [
                self.python,
                "-c",
                "import sys, sysconfig; "
                "print(f'{sys.version_info[0]}.{sys.version_info[1]}'); "
                "print(sysconfig.get_config_var('LIBDIR'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.python_version, self.libpython_dir = probe.stdout.split()

    def backends(self, work: Path) -> Path:
        """A backends folder in ``work`` with the Python backend's stub for the venv's Python."""
        target = work / "backends"
        if not target.exists():
            shutil.copytree(self.dist / "backends", target)
            stub = self.dist / "python_backend_stubs" / self.python_version
            shutil.copy(stub / "triton_python_backend_stub", target / "python")
        return target

    def env(self) -> dict[str, str]:
        """The environment the binary and its Python stub need."""
        env = dict(os.environ)
        libraries = [str(self.libs), self.libpython_dir]
        if env.get("LD_LIBRARY_PATH"):
            libraries.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = ":".join(libraries)
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        return env


def write_repository(python: str, work: Path) -> Path:
    """The page's model repository, written and trained in ``work``; returns ``work/models``.

    The page's ``config.pbtxt``, ``model.py`` and ``train.py`` are written as the page
    names them and ``train.py`` is run by ``python`` (the server venv's) in ``work``.
    """
    work.mkdir(parents=True, exist_ok=True)
    files = page_files()
    assert {"models/clf/config.pbtxt", "model.py", "train.py"} <= set(files), sorted(files)
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    done = subprocess.run(
        [python, "train.py"], cwd=work, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"training the test models with {python} failed:\n{done.stderr}")
    return work / "models"


class TritonProcess(ServerProcess):
    """``tritonserver`` on free loopback ports, explicit model control, serving ``root``.

    HTTP and gRPC listen on 127.0.0.1 only, metrics are off; ``models`` are loaded at start
    (``--load-model``), each version by the repository's version policy.
    """

    def __init__(self, executable: str, root: Path, *, models: tuple[str, ...] = (MODEL,)) -> None:
        self.install = TritonInstall(executable)
        self.root = root
        self.models = models
        self.work = root.parent / "triton-work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        super().__init__("tritonserver", self.work / f"tritonserver-{self.http_port}.log")

    def command(self) -> list[str]:
        """The command line: the flags as ``tritonserver --help`` spells them."""
        return [
            str(self.install.executable),
            f"--model-repository={self.root}",
            "--model-control-mode=explicit",
            *(f"--load-model={model}" for model in self.models),
            f"--backend-directory={self.install.backends(self.work)}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false",
            "--exit-timeout-secs=1",  # kept-alive client connections would hold it 30 s
        ]

    def start(self, timeout_s: float = 120.0) -> TritonProcess:
        """Start the server and wait until its models are ready; raise with the log if not."""
        self.launch(self.command(), cwd=self.work, env=self.install.env())
        endpoints = [V2Endpoint(self.url, model, timeout_s=5.0) for model in self.models]
        try:
            ready = lambda: all(endpoint.ready() for endpoint in endpoints)  # noqa: E731
            self.wait_until(ready, timeout_s, poll_s=0.2)
        finally:
            for endpoint in endpoints:
                endpoint.close()
        return self

    def endpoint(self, model: str = MODEL, **kwargs: Any) -> V2Endpoint:
        """A `V2Endpoint` for ``model`` on this server."""
        return V2Endpoint(self.url, model, **kwargs)


class TritonServer:
    """What the ``triton`` fixture gives: a running server with model ``clf`` in 1, 2, 3.

    ``url`` is its HTTP address, ``grpc_target`` its gRPC one (``"127.0.0.1:PORT"``),
    ``repository`` the model repository, ``inputs`` the rows the models' offline
    predictions were computed on (all of ``load_breast_cancer``).
    """

    def __init__(self, process: TritonProcess) -> None:
        from sklearn.datasets import load_breast_cancer

        self.process = process
        self.url = process.url
        self.grpc_target = process.grpc_target
        self.repository = process.root
        self.inputs = load_breast_cancer(return_X_y=True)[0]

    def offline(self, version: str) -> np.ndarray:
        """``predict_proba`` of ``version`` on `inputs`, computed where it was trained."""
        return np.load(self.repository / MODEL / version / "eval_proba.npy")

    def endpoint(self, **kwargs: Any) -> V2Endpoint:
        """A `V2Endpoint` for ``clf`` on this server."""
        return self.process.endpoint(MODEL, **kwargs)

    def stage_model(self, name: str, versions: tuple[str, ...], *, policy: bool) -> str:
        """Copy ``clf``'s ``versions`` into the repository as model ``name`` (not loaded),
        with ``clf``'s configuration, or without its ``version_policy`` (Triton's default,
        latest 1) when ``policy`` is false; returns ``name``."""
        folder = self.repository / name
        for version in versions:
            shutil.copytree(self.repository / MODEL / version, folder / version)
        config = (self.repository / MODEL / "config.pbtxt").read_text()
        config = config.replace(f'name: "{MODEL}"', f'name: "{name}"')
        if not policy:
            config = config.replace("version_policy: { all { } }\n", "")
        (folder / "config.pbtxt").write_text(config)
        return name


@contextlib.contextmanager
def running_triton(executable: str, folder: Path) -> Iterator[TritonServer]:
    """Write the repository into ``folder``, start Triton on it, and stop it afterwards."""
    process = TritonProcess(executable, folder / "models")
    write_repository(process.install.python, folder)
    process.start()
    try:
        yield TritonServer(process)
    finally:
        process.stop()
