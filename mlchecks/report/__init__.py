"""Reports of suite runs: text, JSON, JUnit XML, Markdown and HTML.

Each format has its module (`mlchecks.report.text`, ``.json``, ``.junit``, ``.markdown``,
``.html``); `save` picks the format from a file's suffix. The modules load when first used.

>>> sorted(FORMATS)
['.htm', '.html', '.json', '.markdown', '.md', '.txt', '.xml']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlchecks.exceptions import InvalidInput
from mlchecks.report._files import write_atomic
from mlchecks.report._format import is_suite_result

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = ["FORMATS", "save"]

Writer = Callable[["SuiteResult"], str]


def _text(sr: SuiteResult) -> str:
    from mlchecks.report.text import suite_to_text

    return suite_to_text(sr)


def _json(sr: SuiteResult) -> str:
    from mlchecks.report.json import suite_to_json

    return suite_to_json(sr)


def _junit(sr: SuiteResult) -> str:
    from mlchecks.report.junit import suite_to_junit_xml

    return suite_to_junit_xml(sr)


def _markdown(sr: SuiteResult) -> str:
    from mlchecks.report.markdown import suite_to_markdown

    return suite_to_markdown(sr)


def _html(sr: SuiteResult) -> str:
    from mlchecks.report.html import suite_to_html

    return suite_to_html(sr, full_page=True)


#: The writer for each file suffix `save` accepts (lower case, with the dot).
FORMATS: Mapping[str, Writer] = MappingProxyType(
    {
        ".json": _json,
        ".xml": _junit,
        ".md": _markdown,
        ".markdown": _markdown,
        ".html": _html,
        ".htm": _html,
        ".txt": _text,
    }
)


def save(sr: SuiteResult, path: str | os.PathLike[str]) -> Path:
    """Write a report of ``sr`` to ``path``, in the format its suffix names.

    ``.json`` (lossless, reads back with `SuiteResult.from_json`), ``.xml`` (JUnit),
    ``.md`` / ``.markdown``, ``.html`` / ``.htm`` (a full page) and ``.txt``. The suffix is
    case-insensitive; missing parent directories are created; the file is UTF-8.

    The report is rendered first, then written to a temporary file beside ``path`` and
    renamed over it: a failure never leaves an empty or partial file. No text fails a
    report: URL passwords are hidden, and text UTF-8 cannot encode becomes U+FFFD.

    Args:
        sr: the suite's result.
        path: where to write.

    Returns:
        ``path`` as a `pathlib.Path`.

    Raises:
        InvalidInput: ``sr`` is not a `SuiteResult`, or the suffix is not one of `FORMATS`.

    >>> import tempfile
    >>> from mlchecks import Status, Suite
    >>> from mlchecks.testing import StaticCheck
    >>> sr = Suite([StaticCheck("quality", Status.PASS)]).run(progress=False)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = save(sr, Path(tmp) / "reports" / "mlchecks.json")
    ...     written.read_text(encoding="utf-8").startswith("{")
    True
    """
    if not is_suite_result(sr):
        raise InvalidInput(
            f"'sr' must be a SuiteResult (got {sr!r} that is a {type(sr).__name__}); "
            "run a Suite to get one"
        )
    target = Path(path)
    writer = FORMATS.get(target.suffix.lower())
    if writer is None:
        allowed = ", ".join(FORMATS)
        raise InvalidInput(
            f"'path' must end with one of {allowed} to choose the report format (got {str(path)!r})"
        )
    text = writer(sr)
    if not text.endswith("\n"):
        text += "\n"
    return write_atomic(target, text)
