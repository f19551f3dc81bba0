"""A release drill against a real MLServer: canary a new model version, then roll it back.

Rubric tests 6 and 7 of the ML Test Score, run against a local MLServer (the Open Inference
Protocol, "V2", which KServe and Triton speak too) serving two versions of a scikit-learn
model:

1. `CanaryCheck` loads candidate version 2 into the running server, sends it production
   rows and compares its answers with its offline predictions, then mirrors half of a
   trickle of live traffic to it (shadow mode: users get version 1's answers) and watches
   errors, latency, the predicted classes and how often the two versions disagree on the
   same request, with sequential tests;
2. `RollbackCheck` deploys version 2, rolls back to version 1 while a load generator sends
   live requests, and measures how long until every answer came from version 1, the
   requests that failed, and whether the answers afterwards are version 1's.

The script builds a model repository in a temporary directory, starts MLServer on free
ports of 127.0.0.1, runs the two checks, stops the server, and exits with 0 when both
passed, 1 when one failed, and 2 when MLServer is missing. With ``--plant-fault`` the
candidate is trained on labels computed with a wrong threshold: it predicts the positive
class far less often, and the canary's trickle catches it disagreeing with version 1.

MLServer pins many dependencies, so it lives in its own virtual environment::

    python -m venv .venv-mlserver
    .venv-mlserver/bin/pip install "mlserver==1.7.1" "mlserver-sklearn==1.7.1"
    MLCHECKS_MLSERVER=.venv-mlserver/bin/mlserver python examples/mlserver_canary_rollback.py

(or put ``mlserver`` on PATH). The models are trained by that environment's Python, so its
scikit-learn can unpickle them. The whole drill takes about 15 seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mlchecks import Suite
from mlchecks.checks.canary import CanaryCheck
from mlchecks.checks.rollback import RollbackCheck
from mlchecks.serving import V2Deployment, V2Endpoint

MODEL = "churn"

# The training job, run by the server environment's Python. argv: the folder to write,
# the kind of model, the file of probe inputs (the candidate's offline predictions on
# them are saved next to the model, for the canary to compare with).
TRAIN = r"""
import sys
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

folder, kind, probes = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.default_rng({"v1": 1, "v2": 2, "skewed": 2}[kind])
x = rng.normal(size=(2000, 4))
score = x @ np.array([1.5, -2.0, 0.75, 1.0])
y = (score + rng.normal(scale=0.5, size=2000) > (2.0 if kind == "skewed" else 0.0)).astype(int)
model = LogisticRegression().fit(x, y)
joblib.dump(model, f"{folder}/model.joblib")
np.save(f"{folder}/offline_proba.npy", model.predict_proba(np.load(probes)))
"""


def mlserver_executable() -> str:
    """``$MLCHECKS_MLSERVER``, else ``mlserver`` on PATH; exit with a hint when neither."""
    path = os.environ.get("MLCHECKS_MLSERVER") or shutil.which("mlserver")
    if not path or not Path(path).is_file():
        print("MLServer not found: set MLCHECKS_MLSERVER to its bin/mlserver (see --help)")
        raise SystemExit(2)
    return path


def server_python(mlserver: str) -> str:
    """The Python of the environment MLServer is installed in (from its shebang line)."""
    first = Path(mlserver).read_bytes().split(b"\n", 1)[0]
    if first.startswith(b"#!") and Path(first[2:].decode().split()[0]).is_file():
        return first[2:].decode().split()[0]
    return str(Path(mlserver).parent / "python")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_version(python: str, folder: Path, version: str, kind: str, probes: Path) -> None:
    """Train one model version into ``folder`` with its MLServer ``model-settings.json``."""
    folder.mkdir(parents=True)
    subprocess.run([python, "-c", TRAIN, str(folder), kind, str(probes)], check=True, timeout=120)
    settings = {
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {
            "uri": "./model.joblib",
            "version": version,
            "extra": {"predict_fn": "predict_proba"},  # answer probabilities
        },
    }
    (folder / "model-settings.json").write_text(json.dumps(settings))


def start_mlserver(
    mlserver: str, repository: Path, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start MLServer on free loopback ports; return the process and its URL."""
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_endpoint": None,  # no metrics server
        "parallel_workers": 0,  # models run in the server process (MLServer issue #2286)
    }
    (repository / "settings.json").write_text(json.dumps(settings))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [mlserver, "start", str(repository)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Settings come from settings.json only, not from MLSERVER_* variables.
            env={k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")},
            start_new_session=True,  # its own process group, stopped as a whole
        )
    return process, f"http://127.0.0.1:{port}"


def wait_until_ready(process: subprocess.Popen[bytes], url: str, timeout_s: float = 90.0) -> float:
    """Wait until the server has loaded the model; the seconds waited."""
    start = time.monotonic()
    with V2Endpoint(url, MODEL, timeout_s=5.0) as endpoint:
        while not endpoint.ready():
            if process.poll() is not None:
                raise RuntimeError(f"MLServer exited with code {process.returncode}")
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"MLServer was not ready after {timeout_s:g} s")
            time.sleep(0.2)
    return time.monotonic() - start


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group; kill it if it does not exit within 15 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(15)
    except ProcessLookupError:
        pass


def drill(url: str, repository: Path, staged: Path, probes: np.ndarray) -> Suite:
    """The canary and rollback checks against the server at ``url``."""
    endpoint = V2Endpoint(url, MODEL, timeout_s=5.0)
    # Production traffic follows a live pointer that names the version in every request
    # (MLServer sends requests without a version to its highest loaded version).
    deployment = V2Deployment(endpoint, live="1")

    # Release: put the candidate into the repository; the canary loads it from there.
    shutil.move(staged, repository / MODEL / "v2")
    offline = np.load(repository / MODEL / "v2" / "offline_proba.npy")
    rows = [probes[i : i + 1] for i in range(len(probes))]  # one (1, 4) request per row

    def live_traffic() -> Iterator[np.ndarray]:
        """Live requests for the trickle: single rows, like production sends them."""
        x = np.random.default_rng(7).normal(size=(1500, 4))
        return (x[i : i + 1] for i in range(len(x)))

    canary = CanaryCheck(
        deployment,
        "2",
        probe_inputs=rows,
        offline_predictions=offline[:, None, :],  # one (1, 2) answer per probe
        traffic=live_traffic,
        mode="shadow",  # mirror requests to both versions: a paired comparison
        traffic_fraction=0.5,
        n_candidate_requests=150,
        budget_requests=1500,
        alpha=0.01,
        max_latency_ratio=3.0,  # a loaded laptop or CI runner is noisy
        classify=lambda outputs: int(np.argmax(outputs)),
        unload=False,  # keep it loaded for the deployment below
    )
    rollback = RollbackCheck(
        deployment,
        deployment,
        "2",
        probe_inputs=rows[:20],
        n_repeats=3,
        request_rate=300.0,
        n_settle_requests=30,
    )
    return Suite([canary, rollback], name="mlserver release drill")


def main(argv: list[str] | None = None) -> int:
    """Build the repository, start MLServer, run the drill, stop the server; the exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--plant-fault", action="store_true", help="release a candidate with skewed labels"
    )
    args = parser.parse_args(argv)
    mlserver = mlserver_executable()
    python = server_python(mlserver)

    with tempfile.TemporaryDirectory(prefix="mlserver-drill-") as tmp:
        root = Path(tmp)
        probe_file = root / "probes.npy"
        probes = np.random.default_rng(12345).normal(size=(50, 4))
        np.save(probe_file, probes)
        repository = root / "models"
        add_version(python, repository / MODEL / "v1", "1", "v1", probe_file)
        candidate = "skewed" if args.plant_fault else "v2"
        add_version(python, root / "staged" / "v2", "2", candidate, probe_file)

        process, url = start_mlserver(mlserver, repository, root / "mlserver.log")
        try:
            waited = wait_until_ready(process, url)
            print(f"MLServer ready at {url} after {waited:.1f} s", file=sys.stderr)
            report = drill(url, repository, root / "staged" / "v2", probes).run(progress=False)
        except BaseException:
            log = (root / "mlserver.log").read_text(errors="replace")
            print("MLServer log (last lines):", *log.splitlines()[-20:], sep="\n", file=sys.stderr)
            raise
        finally:
            stop(process)
    print(report)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
