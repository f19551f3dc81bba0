from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_api_reference_is_current() -> None:
    """docs/api.md lists every public name as tools/gen_api.py would write it today."""
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "tools" / "gen_api.py")
    assert spec is not None
    assert spec.loader is not None
    gen_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_api)
    expected = gen_api.render()
    assert expected == (ROOT / "docs" / "api.md").read_text(), "run: python tools/gen_api.py"
