"""Writing report files atomically: a reader sees the old file or the whole new one."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from mlchecks.report._format import encodable

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` through a temporary file in the same directory.

    The temporary file is renamed over ``path`` (`os.replace`) only once every byte is
    written, so a failure (a full disk, an interrupt) never leaves a partial or empty
    report: the previous file, if any, stays as it was. Text UTF-8 cannot encode (a lone
    surrogate) is written as U+FFFD; missing parent directories are created. The file gets
    the permissions of any new file (``0o666`` less the umask).

    Args:
        path: where to write.
        text: the report, written as is (no newline added, none translated).

    Returns:
        ``path`` as a `pathlib.Path`.

    Raises:
        OSError: the directory or the file cannot be written; nothing is left behind.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     target = write_atomic(Path(tmp) / "out" / "report.txt", "odd \\ud800 text\\n")
    ...     target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'odd \\xef\\xbf\\xbd text\\n', ['report.txt'])
    """
    target = Path(path)
    data = encodable(text).encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target
