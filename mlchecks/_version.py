"""The one place that looks up the installed version of mlchecks.

>>> package_version()[0].isdigit()
True
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version

__all__ = ["package_version"]

#: What `package_version` returns when mlchecks runs from a source tree without metadata.
UNKNOWN = "0.0.0+unknown"


@functools.cache
def package_version() -> str:
    """The installed distribution's version (`UNKNOWN` when mlchecks is not installed)."""
    try:
        return version("mlchecks")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return UNKNOWN
