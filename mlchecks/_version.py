"""The one place that looks up the installed version of mlchecks.

>>> package_version()[0].isdigit()
True
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["package_version"]  # and __version__, looked up on first access

#: What `package_version` returns when mlchecks runs from a source tree without metadata.
UNKNOWN = "0.0.0+unknown"


@functools.cache
def package_version() -> str:
    """The installed distribution's version (`UNKNOWN` when mlchecks is not installed).

    The distribution is ``mlchecks-infra`` (the name ``mlchecks`` on PyPI belongs to an
    unrelated project); the import name is ``mlchecks``.

    `importlib.metadata` costs about 50 ms to import, so it loads here, on first use, not
    with ``import mlchecks``.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlchecks-infra")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return UNKNOWN


def __getattr__(name: str) -> Any:
    """``__version__``, looked up on first access (``mlchecks.__version__`` reads it)."""
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
