"""A real server as a test runs it: a subprocess in its own process group, its output in a
log file, started, waited for (bounded), and stopped as a whole.

MLServer, Triton, KServe, MLflow's scoring server and the FastAPI service of the tests all
run through `ServerProcess`, so each waits, fails with its log, and cleans up the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ServerProcess:
    """One server subprocess; ``name`` says which in errors, ``log`` holds its output."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")
        self._launched = float("nan")

    def launch(
        self, command: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        """Start ``command`` in its own process group (stopped whole), output to the log."""
        self._launched = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                list(command),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env),
                start_new_session=True,
            )

    def wait_until(
        self, ready: Callable[[], bool], timeout_s: float, *, poll_s: float = 0.1
    ) -> None:
        """Poll ``ready()`` until it holds; stop the server and raise with its log when it
        exits first or ``timeout_s`` (from the launch) passes. Sets ``startup_s``."""
        try:
            while not ready():
                if self.process is None or self.process.poll() is not None:
                    code = None if self.process is None else self.process.returncode
                    raise RuntimeError(f"{self.name} exited with {code}:\n{self.log_tail()}")
                if time.monotonic() - self._launched > timeout_s:
                    raise RuntimeError(
                        f"{self.name} not ready after {timeout_s:g} s:\n{self.log_tail()}"
                    )
                time.sleep(poll_s)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - self._launched

    def stop(self, timeout_s: float = 15.0) -> None:
        """Terminate the process group, then kill it if it does not exit."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout_s)
            except ProcessLookupError:
                process.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):  # anything it left in its group
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
