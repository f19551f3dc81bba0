"""Helpers of `mlchecks.integrations.torch` that touch torch objects without importing torch."""

from __future__ import annotations

import functools
import weakref
from typing import Any

__all__ = ["track_optimizer_steps"]


def track_optimizer_steps(optimizer: Any) -> None:
    """Mark ``optimizer.step`` calls the way a torch LR scheduler does when it is built.

    A deep copy of an optimizer loses that mark (it lives on the instance), and the copied
    scheduler then warns at its first step that ``optimizer.step()`` was overridden.
    """
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        return
    func = type(optimizer).step
    ref = weakref.ref(optimizer)

    @functools.wraps(func)
    def step(*args: Any, **kwargs: Any) -> Any:
        opt = ref()
        opt._opt_called = True  # type: ignore[union-attr]
        return func(opt, *args, **kwargs)

    step._wrapped_by_lr_sched = True  # type: ignore[attr-defined]
    optimizer.step = step
