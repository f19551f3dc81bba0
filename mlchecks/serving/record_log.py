"""Read or tail a traffic log: `read_records` iterates its `Record` and `Label` items.

Two formats, one JSON object per line:

- ``"jsonl"``: a request log of the schema in `mlchecks.serving.records` (``version``,
  ``latency_s``, ``error``, ``status``, ``prediction``, ``request_id``, ``time``,
  ``label``), with late labels as lines of ``request_id`` and ``label`` only;
- ``"cloudevents"``: structured-mode CloudEvents, what a sink that writes each event it
  receives as JSON produces from KServe's or MLServer's payload logger; request and
  response events are paired into records by `mlchecks.serving.CloudEventPairer`. Lines
  that are not CloudEvents (no ``specversion``) are read as request-log lines, so late
  labels can be appended to the same file.

``format="auto"`` (the default) takes the format of the first line that is a JSON object.
Nothing is dropped silently: every line that cannot be used is counted in `ReadStats`
with its line number and the reason. With ``follow=True`` the reader waits at the end of
the file for more lines (as ``tail -f``), waits for a last line still being written, and
reopens the file when it is truncated or replaced (log rotation); it ends when
`RecordLog.stop` is called (or ``stop_event`` is set) or after ``idle_timeout_s`` without
new data.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "requests.jsonl"
>>> _ = path.write_text('{"version": "v1", "latency_ms": 8}\\nnot json\\n'
...                     '{"version": "v2", "latency_ms": 9, "id": "r1"}\\n'
...                     '{"id": "r1", "label": 1}\\n')
>>> log = read_records(path)
>>> [type(item).__name__ for item in log]
['Record', 'Record', 'Label']
>>> print(log.stats.summary())
4 lines (jsonl): 2 records, 1 label, 1 bad line (line 2: not JSON: Expecting value)
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from mlchecks._text import plural
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._http import check_seconds
from mlchecks.serving.cloudevents import DEFAULT_VERSION_FROM, CloudEventPairer, VersionFrom
from mlchecks.serving.records import Label, Record, from_json

__all__ = ["FORMATS", "BadLine", "ReadStats", "RecordLog", "read_records"]

#: The log formats `read_records` reads.
FORMATS = ("auto", "jsonl", "cloudevents")

Item = Record | Label

_CHUNK = 1 << 16


@attrs.frozen
class BadLine:
    """A line that could not be used: its number (from 1) and why.

    >>> str(BadLine(2, "not JSON"))
    'line 2: not JSON'
    """

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@attrs.define
class ReadStats:
    """What a reader has read so far, and every line it could not use.

    Attributes:
        format: the log's format (``"jsonl"`` or ``"cloudevents"``; None until known).
        lines: lines read (blank lines included).
        records, labels: items yielded.
        bad_lines: lines that could not be used; ``bad_examples`` holds the first few as
            `BadLine` (``line``, ``reason``; ``str()`` reads ``"line 2: not JSON"``).
        events: CloudEvents read; ``ignored``: those of other types (outlier, drift, ...).
        unanswered: requests whose response was never logged (yielded as failed records).
        partial_last_line: the log ended in a line without a newline (a writer was
            mid-line); it counts as bad unless it is a complete line.
        reopened: times the file was reopened after truncation or rotation.

    >>> ReadStats(lines=3, records=2, bad_lines=1, bad_examples=[BadLine(2, "not JSON")]).summary()
    '3 lines: 2 records, 0 labels, 1 bad line (line 2: not JSON)'
    """

    format: str | None = None
    lines: int = 0
    records: int = 0
    labels: int = 0
    bad_lines: int = 0
    bad_examples: list[BadLine] = attrs.field(factory=list)
    events: int = 0
    ignored: int = 0
    unanswered: int = 0
    partial_last_line: bool = False
    reopened: int = 0

    def summary(self) -> str:
        """One line: the counts, and where the first bad lines are and why."""
        kind = f" ({self.format})" if self.format else ""
        text = (
            f"{plural(self.lines, 'line')}{kind}: {plural(self.records, 'record')}, "
            f"{plural(self.labels, 'label')}, {plural(self.bad_lines, 'bad line')}"
        )
        if self.bad_examples:
            shown = "; ".join(str(bad) for bad in self.bad_examples)
            more = self.bad_lines - len(self.bad_examples)
            text += f" ({shown}{f'; and {more} more' if more else ''})"
        if self.events:
            text += f"; {plural(self.events, 'event')}, {self.ignored:,} of other types"
            text += f", {plural(self.unanswered, 'request')} without a logged response"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The counts as a JSON-safe dict (each bad example as ``{"line": ..., "reason": ...}``)."""
        return attrs.asdict(self)


def _is_event(obj: Any) -> bool:
    return isinstance(obj, dict) and ("specversion" in obj or "cloudeventsversion" in obj)


def _reason(exc: Exception) -> str:
    """A short reason for a bad line: the first line of the message, at most 160 chars."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class RecordLog:
    """An iterable over the `Record` and `Label` items of a log file (see the module docs).

    Args:
        path: the log file.
        format: ``"auto"``, ``"jsonl"`` or ``"cloudevents"``.
        follow: keep reading as the file grows (``tail -f``) until stopped or idle.
        poll_s: how often a followed file is checked for new data, in seconds.
        idle_timeout_s: end a followed file after this long without new data (None:
            only `stop` ends it).
        pair_timeout_s, version_from: how CloudEvents are paired (`CloudEventPairer`).
        stop_event: a `threading.Event` that ends the reading when set (`stop` sets it).
        max_bad_examples: how many bad lines `stats` keeps with their reasons.

    Iterating opens the file (`FileNotFoundError` when it is missing) and reads it from
    the start; `stats` counts as it goes. Requests still waiting for their response when
    the log ends (or goes idle) become failed records; not when it is stopped.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = path.write_text('{"version": "v1", "error": true}\\n')
    >>> [record.failure for record in RecordLog(path)]
    ['error']
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "auto",
        follow: bool = False,
        poll_s: float = 0.2,
        idle_timeout_s: float | None = None,
        pair_timeout_s: float = 30.0,
        version_from: VersionFrom = DEFAULT_VERSION_FROM,
        stop_event: threading.Event | None = None,
        max_bad_examples: int = 5,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or str(path) == "":
            raise InvalidInput(f"'path' must be a file path (got {describe(path)})")
        if format not in FORMATS:
            raise InvalidInput(f"'format' must be one of {', '.join(FORMATS)} (got {format!r})")
        self.path = Path(path)
        self.format = format
        self.follow = bool(follow)
        self.poll_s = check_seconds(poll_s, "poll_s")
        self.idle_timeout_s = (
            None if idle_timeout_s is None else check_seconds(idle_timeout_s, "idle_timeout_s")
        )
        if isinstance(max_bad_examples, bool) or not isinstance(max_bad_examples, int):
            raise InvalidInput(
                f"'max_bad_examples' must be an integer (got {describe(max_bad_examples)})"
            )
        self.max_bad_examples = max(0, max_bad_examples)
        self._new_pairer = functools.partial(
            CloudEventPairer, version_from=version_from, pair_timeout_s=pair_timeout_s
        )
        self._new_pairer()  # check the settings now, not at the first event
        self._stop = stop_event if stop_event is not None else threading.Event()
        self.stats = ReadStats(format=None if format == "auto" else format)

    def __repr__(self) -> str:
        return f"RecordLog({str(self.path)!r}, format={self.format!r}, follow={self.follow})"

    def stop(self) -> None:
        """End the reading at the next line or poll (from any thread)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True once `stop` was called (or ``stop_event`` set)."""
        return self._stop.is_set()

    def __iter__(self) -> Iterator[Item]:
        self.stats = ReadStats(format=None if self.format == "auto" else self.format)
        return self._read(self._new_pairer())

    def _read(self, pairer: CloudEventPairer) -> Iterator[Item]:
        file: BinaryIO = self.path.open("rb")
        try:
            buffer = b""
            last_data = time.monotonic()
            while not self._stop.is_set():
                chunk = file.read(_CHUNK)
                if chunk:
                    last_data = time.monotonic()
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    for line in lines:
                        yield from self._line(line, pairer)
                        if self._stop.is_set():
                            return
                    continue
                idle_s = time.monotonic() - last_data
                if not self.follow or (self.idle_timeout_s or math.inf) <= idle_s:
                    break
                reopened = self._reopened(file)
                if reopened is None:
                    self._stop.wait(self.poll_s)
                    continue
                yield from self._last_line(buffer, pairer)
                file.close()
                file, buffer = reopened, b""
            if not self._stop.is_set():
                yield from self._last_line(buffer, pairer)
                yield from self._counted(pairer.flush(), pairer)
        finally:
            file.close()

    def _reopened(self, file: BinaryIO) -> BinaryIO | None:
        """The file anew when it was replaced (rotation) or truncated, else None."""
        try:
            now = os.stat(self.path)
        except OSError:
            return None  # rotated away, the new file is not there yet
        if now.st_ino == os.fstat(file.fileno()).st_ino and now.st_size >= file.tell():
            return None
        try:
            new = self.path.open("rb")
        except OSError:
            return None
        self.stats.reopened += 1
        return new

    def _last_line(self, buffer: bytes, pairer: CloudEventPairer) -> Iterator[Item]:
        if buffer.strip():
            self.stats.partial_last_line = True
            yield from self._line(buffer, pairer, partial=True)

    def _line(self, raw: bytes, pairer: CloudEventPairer, partial: bool = False) -> Iterator[Item]:
        self.stats.lines += 1
        if not raw.strip():
            return
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            if partial:
                self._bad("partial last line (no newline at the end)")
            else:
                self._bad(f"not JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else exc}")
            return
        try:
            items = self._items(obj, pairer)
        except (ValueError, TypeError, OverflowError) as exc:  # InvalidInput is a ValueError
            self._bad(_reason(exc))
            return
        yield from self._counted(items, pairer)

    def _items(self, obj: Any, pairer: CloudEventPairer) -> list[Item]:
        if self.stats.format is None and isinstance(obj, dict):
            self.stats.format = "cloudevents" if _is_event(obj) else "jsonl"
        if not _is_event(obj):
            return [from_json(obj)]
        if self.stats.format != "cloudevents":
            raise InvalidInput("a CloudEvent in a JSON Lines request log (read it as cloudevents)")
        return list(pairer.add(obj))

    def _counted(self, items: Sequence[Item], pairer: CloudEventPairer) -> Iterator[Item]:
        counts = pairer.counts
        self.stats.events, self.stats.ignored = counts["events"], counts["ignored"]
        self.stats.unanswered = counts["unanswered"]
        for item in items:
            if isinstance(item, Label):
                self.stats.labels += 1
            else:
                self.stats.records += 1
            yield item

    def _bad(self, reason: str) -> None:
        self.stats.bad_lines += 1
        if len(self.stats.bad_examples) < self.max_bad_examples:
            self.stats.bad_examples.append(BadLine(self.stats.lines, reason))


def read_records(path: str | os.PathLike[str], **options: Any) -> RecordLog:
    """The `Record` and `Label` items of a log file, as a `RecordLog` (iterate it).

    Takes the options of `RecordLog` (``format``, ``follow``, ``poll_s``,
    ``idle_timeout_s``, ``pair_timeout_s``, ``version_from``, ``stop_event``).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> _ = path.write_text('{"version": "v2", "latency_s": 0.01}')  # no newline at the end
    >>> [record.latency_s for record in read_records(path)]
    [0.01]
    """
    return RecordLog(path, **options)
