"""Loading the ``TARGET`` of ``mlchecks run``: a Suite, a Check, or a callable returning one.

``TARGET`` is ``path/to/file.py:name`` or ``package.module:name``. Every problem becomes a
`UsageError` with a one-line message; `mlchecks.cli` re-exports the public names.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import itertools
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from mlchecks._fields import TEXT
from mlchecks._text import printable, redact
from mlchecks.check import Check
from mlchecks.exceptions import MLChecksError
from mlchecks.suite import Suite

__all__ = ["UsageError", "load_target", "one_line", "split_target"]

_TARGET_FORMAT = "TARGET must look like path/to/file.py:name or package.module:name"

_module_ids = itertools.count()


class UsageError(MLChecksError):
    """The command cannot run as given; `mlchecks.cli.main` prints the message and returns 2."""


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(exc: BaseException) -> str:
    """``"Type: first line of the message"``, control characters and passwords removed first."""
    lines = printable(redact(str(exc))).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@contextlib.contextmanager
def _on_sys_path(directory: str) -> Iterator[None]:
    """Put ``directory`` first on ``sys.path`` for the duration, unless it is there."""
    if directory in sys.path:
        yield
        return
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)


def split_target(target: str) -> tuple[str, str]:
    """Split ``TARGET`` into (file or module, attribute path).

    Raises:
        UsageError: TARGET has no ``:name`` part or an empty side.

    >>> split_target("checks/ml.py:suite")
    ('checks/ml.py', 'suite')
    >>> split_target("C:/work/ml.py:make.suite")
    ('C:/work/ml.py', 'make.suite')
    """
    where, _, name = target.rpartition(":")
    if not where or not name or not all(part.isidentifier() for part in name.split(".")):
        raise UsageError(f"{_TARGET_FORMAT} (got {target!r})")
    return where, name


def _is_file_target(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where or Path(where).is_file()


def _user_error(action: str, exc: BaseException, show_traceback: bool) -> UsageError:
    """A one-line `UsageError` for an exception raised by the user's code while loading."""
    if show_traceback:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # the user's message may hold escape sequences or a URL password: shown harmless
        sys.stderr.write(printable(redact(text)))
        hint = ""
    else:
        hint = " (rerun with --traceback for details)"
    return UsageError(f"{action} raised {one_line(exc)}{hint}")


def _load_file(path_text: str, show_traceback: bool, stack: contextlib.ExitStack) -> ModuleType:
    path = Path(path_text)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "not found"
        raise UsageError(f"file {path_text!r} {reason}")
    path = path.resolve()
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    name = f"_mlchecks_target_{stem}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path_text!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    # The directory stays on sys.path while the suite runs: checks may import siblings late.
    stack.enter_context(_on_sys_path(str(path.parent)))
    sys.modules[name] = module
    stack.callback(sys.modules.pop, name, None)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise _user_error(f"importing {path_text!r}", exc, show_traceback) from None
    return module


def _load_module(dotted: str, show_traceback: bool, stack: contextlib.ExitStack) -> ModuleType:
    # Like `python -m`, resolve modules from the current directory first.
    stack.enter_context(_on_sys_path(os.getcwd()))
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (dotted == missing or dotted.startswith(missing + ".")):
            raise UsageError(
                f"no module named {missing!r} (for a file, give path/to/file.py:name)"
            ) from None
        raise _user_error(f"importing {dotted!r}", exc, show_traceback) from None
    except (Exception, SystemExit) as exc:
        raise _user_error(f"importing {dotted!r}", exc, show_traceback) from None


def _candidates(module: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and _is_runnable(value)
    )


def _is_runnable(value: object) -> bool:
    return not isinstance(value, type) and isinstance(value, Suite | Check)


def _resolve(module: ModuleType, where: str, name: str) -> object:
    value: object = module
    parts = name.split(".")
    for i, part in enumerate(parts):
        try:
            value = getattr(value, part)
        except AttributeError:
            if i == 0:
                found = _candidates(module)
                listed = (
                    f"Suites and Checks there: {', '.join(found)}"
                    if found
                    else "it defines no Suite or Check objects"
                )
                raise UsageError(f"{where!r} has no attribute {name!r} ({listed})") from None
            owner = ".".join(parts[:i])
            raise UsageError(f"{where}:{owner} has no attribute {part!r}") from None
    return value


def _as_suite(value: object, target: str, show_traceback: bool) -> Suite:
    label = repr(target)
    if not _is_runnable(value) and callable(value):
        try:
            inspect.signature(value).bind()
        except TypeError:
            raise UsageError(
                f"{label} takes arguments; TARGET must name a Suite, a Check, or a "
                "zero-argument callable returning one"
            ) from None
        except ValueError:  # no signature (some builtins): just try the call
            pass
        try:
            value = value()
        except (Exception, SystemExit) as exc:
            raise _user_error(f"calling {label}", exc, show_traceback) from None
        label = repr(f"{target}()")
    if isinstance(value, Suite):
        return value
    if _is_runnable(value):
        check: Check = value  # type: ignore[assignment]
        name = check.name if TEXT.accepts(check.name) else "mlchecks"  # printable text only
        return Suite([check], name=name)
    raise UsageError(
        f"{label} is not a Suite or a Check (got {_short_repr(value)} that is a "
        f"{type(value).__name__}); a check is an object with name, rubric and run(context)"
    )


def load_target(
    target: str, *, show_traceback: bool = False, stack: contextlib.ExitStack | None = None
) -> Suite:
    """Load ``TARGET`` as a `Suite`: a suite as is, a single check wrapped in one.

    Args:
        target: ``path/to/file.py:name`` or ``package.module:name``; ``name`` may be a
            dotted attribute path. A callable that is not itself a check (a factory
            function, a check class) is called with no arguments.
        show_traceback: print the traceback of an exception raised while importing.
        stack: keeps the file's directory on ``sys.path`` until it closes (so checks can
            import sibling modules while they run); by default only during loading.

    Returns:
        The suite to run.

    Raises:
        UsageError: with a one-line message naming what is wrong.

    >>> load_target("mlchecks.testing:StaticCheck")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks._cli_target.UsageError: 'mlchecks.testing:StaticCheck' takes arguments; ...
    """
    where, name = split_target(target)
    with contextlib.ExitStack() as own:
        keep = stack if stack is not None else own
        if _is_file_target(where):
            module = _load_file(where, show_traceback, keep)
        else:
            module = _load_module(where, show_traceback, keep)
        value = _resolve(module, where, name)
        return _as_suite(value, f"{where}:{name}", show_traceback)
