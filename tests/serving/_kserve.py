"""Helpers for the KServe tests: the docs page's scripts, run as a real KServe ModelServer.

KServe runs from its own virtual environment (``$MLCHECKS_KSERVE``: that environment's
``python``). The user side is taken from docs/servers/kserve.md as written there: ``train.py``
trains the three model versions (and saves their predictions on the evaluation inputs),
``serve.py`` serves every model folder as its own model name in one ``kserve.ModelServer``.
`KServeProcess` starts ``serve.py`` on a free port of 127.0.0.1 with gRPC off, and stops it.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

import numpy as np
from _mlserver_models import free_port
from _process import ServerProcess

from mlchecks.serving import V2Endpoint

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "servers" / "kserve.md"
NAMES = {"1": "clf-1", "2": "clf-2", "3": "clf-3"}  # version -> model name on the server
_BLOCK = re.compile(r"```python\n(# (\S+\.py).*?)```", re.S)


def kserve_python() -> str | None:
    """The KServe environment's python: ``$MLCHECKS_KSERVE``, or None when it is missing."""
    configured = os.environ.get("MLCHECKS_KSERVE")
    return configured if configured and Path(configured).is_file() else None


def page_script(name: str) -> str:
    """The Python block of the docs page that starts with the comment ``# <name>``."""
    scripts = {file: code for code, file in _BLOCK.findall(PAGE.read_text())}
    assert name in scripts, f"{PAGE.name} has no block starting '# {name}' (has {list(scripts)})"
    return scripts[name]


def train(python: str, root: Path) -> Path:
    """Run the page's ``train.py`` in ``root`` with the server's python; the models folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(page_script("train.py"))
    done = subprocess.run(
        [python, "train.py"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"train.py failed with {python}:\n{done.stderr}")
    return root / "models"


class KServeProcess(ServerProcess):
    """The page's ``serve.py`` serving ``root/models`` on a free port of 127.0.0.1."""

    def __init__(self, python: str, root: Path) -> None:
        self.python = python
        self.root = root
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        super().__init__("KServe's serve.py", root / f"kserve-{self.http_port}.log")

    def command(self) -> list[str]:
        """The start command of the docs page, with this process's port."""
        return [
            self.python,
            "serve.py",
            "--model_dir",
            "models",
            "--http_port",
            str(self.http_port),
            "--enable_grpc",
            "false",
            "--host",
            "127.0.0.1",
        ]

    def start(self, timeout_s: float = 120.0) -> KServeProcess:
        """Start the server and wait (polling readiness) until every model is ready."""
        (self.root / "serve.py").write_text(page_script("serve.py"))
        self.launch(self.command(), cwd=self.root)
        endpoints = [V2Endpoint(self.url, name, timeout_s=5.0) for name in NAMES.values()]
        try:
            self.wait_until(lambda: all(endpoint.ready() for endpoint in endpoints), timeout_s)
        finally:
            for endpoint in endpoints:
                endpoint.close()
        return self

    def listening(self) -> list[str]:
        """``host:port`` of every TCP socket the server process listens on (from /proc)."""
        assert self.process is not None
        inodes = set()
        fd_dir = Path(f"/proc/{self.process.pid}/fd")
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        found = []
        for table, width in (("tcp", 8), ("tcp6", 32)):
            for line in Path(f"/proc/{self.process.pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                    continue
                address, port = fields[1].split(":")
                found.append(f"{_address(address, width)}:{int(port, 16)}")
        return found


def _address(hexed: str, width: int) -> str:
    """A /proc/net/tcp{,6} address (little-endian 32-bit words) as text."""
    raw = b"".join(bytes.fromhex(hexed[i : i + 8])[::-1] for i in range(0, width, 8))
    if width == 8:
        return ".".join(str(b) for b in raw)
    return "[" + ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2)) + "]"


class KServeModels:
    """What the tests need from a started server: its URL, inputs and offline predictions."""

    def __init__(self, process: KServeProcess, models: Path) -> None:
        self.process = process
        self.url = process.url
        self.models = models
        self.inputs = np.load(models / "eval_inputs.npy")

    def offline(self, version: str) -> np.ndarray:
        """``predict_proba`` of ``version`` on `inputs`, saved by ``train.py``."""
        return np.load(self.models / NAMES[version] / "eval_proba.npy")
