"""Whole-call deadlines for the serving transports.

A `Deadline` is a point in time (``time.monotonic()``) with the setting that made it
(``timeout_s=1``), so a call that runs out names what ran out. `Deadlines` keeps, per
thread, the deadline of the call in progress: a request made inside `Deadlines.bounded`
(the metadata lookup of an ``infer``, the readiness checks of a ``load``) ends by the
earlier of its own deadline and the enclosing one, so one public call never takes longer
than its own timeout, whatever it does inside.

>>> deadlines = Deadlines()
>>> with deadlines.bounded(60.0, "load_timeout_s"):
...     deadlines.current(10.0, "timeout_s").name
'timeout_s'
>>> with deadlines.bounded(0.5, "timeout_s"):
...     inner = deadlines.current(10.0, "load_timeout_s")
>>> inner.name, inner.seconds, inner.remaining() <= 0.5
('timeout_s', 0.5, True)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["Deadline", "Deadlines"]


class Deadline(NamedTuple):
    """When a call must end (``at``, on the ``time.monotonic()`` clock) and why: the
    setting's ``name`` and its value in ``seconds``.

    >>> deadline = Deadline.after(2.0, "timeout_s")
    >>> deadline.text, deadline.allows(1.0), deadline.allows(5.0)
    ('timeout_s=2 s', True, False)
    """

    at: float
    name: str
    seconds: float

    @classmethod
    def after(cls, seconds: float, name: str) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(time.monotonic() + seconds, name, seconds)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    def allows(self, wait_s: float) -> bool:
        """True when more than ``wait_s`` seconds are left (time for a wait and a try)."""
        return self.remaining() > wait_s

    @property
    def text(self) -> str:
        """``"timeout_s=2 s"``: the setting that bounds the call, for messages."""
        return f"{self.name}={self.seconds:g} s"


class Deadlines:
    """The deadline of the call in progress, per thread (see the module docstring)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def enclosing(self) -> Deadline | None:
        """The deadline of the enclosing `bounded` block of this thread, if any."""
        deadline: Deadline | None = getattr(self._local, "deadline", None)
        return deadline

    def current(self, seconds: float, name: str) -> Deadline:
        """The deadline of a call allowed ``seconds`` (named ``name``) that starts now:
        the earlier of its own and the enclosing one."""
        own = Deadline.after(seconds, name)
        outer = self.enclosing()
        return own if outer is None or own.at < outer.at else outer

    @contextlib.contextmanager
    def bounded(self, seconds: float, name: str) -> Iterator[Deadline]:
        """Every call of this thread inside the block ends within ``seconds`` from now
        (or by the enclosing block's deadline, when that is earlier)."""
        outer = self.enclosing()
        deadline = self.current(seconds, name)
        self._local.deadline = deadline
        try:
            yield deadline
        finally:
            self._local.deadline = outer
