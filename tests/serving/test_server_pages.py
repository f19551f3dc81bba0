"""The server pages under docs/servers/ run as written against real servers.

Each page's setup blocks run in a scratch directory (they train models and write the
server's repository), the test starts the server the page describes on free loopback ports,
and the page's ``<!-- server -->`` blocks run against it with the page's address replaced;
what a block prints must be what the page shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _mlserver_models import MLServerProcess
from _pages import run_page


def test_mlserver_page(mlserver_exe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/servers/mlserver.md: canary PASS for the retrain, FAIL for inverted labels,
    rollback PASS, and FAIL when traffic bypasses the pointer."""
    monkeypatch.chdir(tmp_path)
    servers: list[MLServerProcess] = []

    def start(scope: dict[str, Any]) -> dict[str, str]:
        server = MLServerProcess(mlserver_exe, tmp_path / "models").start(ready_model="clf")
        servers.append(server)
        return {"http://127.0.0.1:8080": server.url}

    try:
        scope = run_page("docs/servers/mlserver.md", start)
    finally:
        for server in servers:
            server.stop()
    assert scope["healthy"].status.name == "PASS"
    assert scope["faulty"].status.name == "FAIL"
    assert scope["stale"].status.name == "FAIL"
