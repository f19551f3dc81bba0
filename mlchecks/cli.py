"""The ``mlchecks`` command: ``mlchecks run | demo | score``.

``mlchecks run TARGET`` loads a `Suite`, a `Check`, or a zero-argument callable returning
one, runs it, prints the text report and writes the requested report files. The exit code
is 0 when the suite passed, 1 when a check failed or errored, and 2 for a usage or import
error (one line on stderr, no traceback unless ``--traceback``).

>>> main(["run", "no-colon-here"])
2
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import itertools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn, Protocol

from mlchecks.check import Check, Context
from mlchecks.exceptions import MLChecksError
from mlchecks.result import Status
from mlchecks.suite import RUBRIC_TESTS, Suite, SuiteResult

if TYPE_CHECKING:
    from mlchecks.result import Result

__all__ = ["UsageError", "build_parser", "load_target", "main", "score_table", "split_target"]

PROG = "mlchecks"

#: Exit codes: the suite passed, a check failed or errored, the command could not run.
EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# --json PATH etc.: (option, SuiteResult method that renders it, what the file holds).
_REPORTS: tuple[tuple[str, str, str], ...] = (
    ("json", "to_json", "the lossless JSON report (read it back with `mlchecks score`)"),
    ("junit", "to_junit_xml", "JUnit XML, one testcase per check (CI test tabs)"),
    ("html", "to_html", "a static HTML report"),
    ("markdown", "to_markdown", "a Markdown summary (CI job summaries, PR comments)"),
)

_TARGET_FORMAT = "TARGET must look like path/to/file.py:name or package.module:name"

_module_ids = itertools.count()


class UsageError(MLChecksError):
    """The command cannot run as given; `main` prints the one-line message and returns 2."""


class _Fault(Protocol):
    """What `mlchecks demo` needs to know about an injectable fault."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def check(self) -> str: ...

    @property
    def rubric(self) -> int | None: ...


BuildSuite = Callable[[str | None, int], Suite]


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors raise `UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def _version() -> str:
    from mlchecks import __version__

    return __version__


def _run_options() -> _Parser:
    """The options `run` and `demo` share: report files and how to run the suite."""
    common = _Parser(add_help=False)
    reports = common.add_argument_group("report files (each also accepts '-' for stdout)")
    for option, _, what in _REPORTS:
        reports.add_argument(f"--{option}", metavar="PATH", help=f"write {what} to PATH")
    running = common.add_argument_group("running")
    running.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="root seed shared by the checks through the Context (default: 0)",
    )
    running.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run up to N checks at once on a thread pool (default: 1, in order)",
    )
    running.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first FAIL or ERROR; the checks not run are reported as SKIP",
    )
    running.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress on stderr (progress shows only when stderr is a terminal)",
    )
    running.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print one summary line instead of the full report; no progress",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``mlchecks`` argument parser (exposed for documentation tools and tests).

    >>> build_parser().parse_args(["run", "checks.py:suite", "--seed", "3"]).seed
    3
    """
    parser = _Parser(
        prog=PROG,
        description="Run ML Test Score infrastructure checks and report on them.",
        epilog="Exit codes: 0 passed, 1 a check failed or errored, 2 usage or import error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    common = _run_options()

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run a suite or check and report on it",
        description="Load TARGET (a Suite, a Check, or a zero-argument callable returning "
        "one), run it, print the text report and write the requested report files.",
        epilog="Exit codes: 0 passed, 1 a check failed or errored, 2 usage or import error. "
        "Example: mlchecks run tests/ml_checks.py:suite --junit report.xml",
    )
    run.add_argument(
        "target",
        metavar="TARGET",
        help="path/to/file.py:name or package.module:name; name may be dotted (a.b)",
    )
    run.add_argument(
        "--traceback",
        action="store_true",
        help="on an import error, print the full traceback too",
    )
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run every check on the embedded demo ML system",
        description="Run the seven checks on the embedded demo system and print the report "
        "and the ML Test Score. With --fault, inject a named fault that the matching "
        "check must catch.",
        epilog="Exit codes: 0 passed, 1 a check failed or errored (expected with --fault), "
        "2 usage error.",
    )
    demo.add_argument("--fault", metavar="NAME", help="inject the fault NAME (see --list-faults)")
    demo.add_argument(
        "--list-faults",
        action="store_true",
        help="list the faults (name, the check that must catch it, description) and exit",
    )
    demo.set_defaults(handler=_cmd_demo)

    score = commands.add_parser(
        "score",
        help="print the ML Test Score of a saved JSON report",
        description="Read a JSON report (written by 'mlchecks run --json') and print its "
        "ML Test Score: points per rubric test, the total and the paper's reading.",
        epilog="Exit codes: 0 printed, 2 the file cannot be read.",
    )
    score.add_argument("results", metavar="RESULTS", help="a JSON report ('-' reads stdin)")
    score.add_argument("--json", action="store_true", help="print the score as JSON")
    score.set_defaults(handler=_cmd_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mlchecks`` command with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: the arguments after the program name.

    Returns:
        The exit code: 0 passed, 1 a check failed or errored, 2 usage or import error.

    >>> main(["score", "missing.json"])
    2
    """
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- loading


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
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
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        hint = ""
    else:
        hint = " (rerun with --traceback for details)"
    return UsageError(f"{action} raised {_one_line(exc)}{hint}")


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
        return Suite([check], name=check.name)
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
    mlchecks.cli.UsageError: 'mlchecks.testing:StaticCheck' takes arguments; ...
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


# --------------------------------------------------------------------------- running


def _execute(suite: Suite, args: argparse.Namespace) -> SuiteResult:
    progress = not (args.no_progress or args.quiet) and sys.stderr.isatty()
    context = Context(seed=args.seed)
    if args.workers > 1:
        with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix=PROG) as pool:
            return suite.run(context, executor=pool, fail_fast=args.fail_fast, progress=progress)
    return suite.run(context, fail_fast=args.fail_fast, progress=progress)


def _write_reports(result: SuiteResult, args: argparse.Namespace) -> None:
    for option, method, _ in _REPORTS:
        path = getattr(args, option)
        if path is None:
            continue
        text: str = getattr(result, method)()
        if path == "-":
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the {option} report to {path!r}: {exc}") from None
        if not args.quiet:
            print(f"wrote {path}", file=sys.stderr)


def _report(result: SuiteResult, args: argparse.Namespace) -> bool:
    """Print the text report (or its first line) and write the report files.

    Returns True when the text went to stdout, False when a report file took stdout.
    """
    text_out = all(getattr(args, option) != "-" for option, _, _ in _REPORTS)
    if text_out:
        print(str(result).splitlines()[0] if args.quiet else result)
    _write_reports(result, args)
    return text_out


def _cmd_run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        suite = load_target(args.target, show_traceback=args.traceback, stack=stack)
        result = _execute(suite, args)
    _report(result, args)
    return EXIT_PASS if result.passed else EXIT_FAIL


# --------------------------------------------------------------------------- score


def _note(test: int, results: Sequence[Result], manual: Mapping[int, str]) -> str:
    ran = [r for r in results if r.rubric == test and r.status is not Status.SKIP]
    skipped = [r.check for r in results if r.rubric == test and r.status is Status.SKIP]
    notes: list[str] = []
    if ran:
        bad = [f"{r.check} ({r.status.label})" for r in ran if not r.passed]
        if bad:
            notes.append(f"did not pass: {', '.join(bad)}")
        else:
            notes.append(f"passed: {', '.join(r.check for r in ran)}")
    elif skipped:
        notes.append(f"skipped: {', '.join(skipped)}")
    if test in manual and not (ran and all(r.passed for r in ran)):
        notes.append(f"manual: {manual[test]}")
    return "; ".join(notes) or "no check ran"


def score_table(result: SuiteResult) -> str:
    """The ML Test Score of ``result`` as a table: test, title, points, note; then the total.

    >>> from mlchecks.testing import StaticCheck
    >>> suite = Suite([StaticCheck("repro", Status.PASS, rubric=1)], manual={7: "runbook"})
    >>> print(score_table(suite.run(progress=False)))  # doctest: +NORMALIZE_WHITESPACE
    ML Test Score (infrastructure) of 'mlchecks'
    #  test                                                                        points  note
    1  Training is reproducible                                                       1.0  passed: repro
    2  Model specification code is unit tested                                        0.0  no check ran
    3  The full ML pipeline is integration tested                                     0.0  no check ran
    4  Model quality is validated before attempting to serve it                       0.0  no check ran
    5  The model allows debugging by observing a single example or batch              0.0  no check ran
    6  Models are tested via a canary process before entering production serving      0.0  no check ran
    7  Models can be rolled back to a previous serving version                        0.5  manual: runbook
    Total: 1.5 / 7. There's been a first pass at basic productionization, but additional investment may be needed.
    """  # noqa: E501
    score = result.score
    width = max(len(title) for title in RUBRIC_TESTS.values())
    lines = [
        f"ML Test Score (infrastructure) of {result.name!r}",
        f"#  {'test':<{width}}  points  note",
    ]
    for test, title in RUBRIC_TESTS.items():
        note = _note(test, result.results, score.manual)
        lines.append(f"{test}  {title:<{width}}  {score.points[test]:>6.1f}  {note}")
    lines.append(f"Total: {score.total:g} / {score.maximum:g}. {score.reading}")
    return "\n".join(lines)


def _read_results(source: str) -> SuiteResult:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _one_line(exc)
        raise UsageError(f"cannot read {source!r}: {reason}") from None
    try:
        return SuiteResult.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{source!r} is not a mlchecks JSON report ({_one_line(exc)}); "
            "write one with 'mlchecks run TARGET --json PATH'"
        ) from None


def _cmd_score(args: argparse.Namespace) -> int:
    result = _read_results(args.results)
    if args.json:
        print(json.dumps(result.score.to_dict(), indent=2))
    else:
        print(score_table(result))
    return EXIT_PASS


# --------------------------------------------------------------------------- demo


def _load_demo() -> tuple[BuildSuite, Mapping[str, _Fault]]:
    """The demo's suite builder and its faults (a seam: tests replace it)."""
    from mlchecks.demo import FAULTS
    from mlchecks.demo.suite import build_suite

    return build_suite, FAULTS


def _fault_lines(faults: Mapping[str, _Fault]) -> list[str]:
    name_width = max((len(name) for name in faults), default=0)
    check_width = max((len(f.check) for f in faults.values()), default=0)
    return [
        f"{name:<{name_width}}  {fault.check:<{check_width}}  {fault.description}"
        for name, fault in faults.items()
    ]


def _caught_line(result: SuiteResult, fault: _Fault) -> str:
    try:
        verdict = result[fault.check]
    except KeyError:
        return f"Fault {fault.name!r}: the suite has no check named {fault.check!r}."
    if verdict.passed:
        return (
            f"Fault {fault.name!r} was NOT caught: {fault.check!r} returned {verdict.status.label}."
        )
    return f"Fault {fault.name!r} was caught: {fault.check!r} returned {verdict.status.label}."


def _cmd_demo(args: argparse.Namespace) -> int:
    build_suite, faults = _load_demo()
    if args.list_faults:
        for line in _fault_lines(faults):
            print(line)
        return EXIT_PASS
    fault = None
    if args.fault is not None:
        if args.fault not in faults:
            known = ", ".join(sorted(faults)) or "none"
            raise UsageError(f"unknown fault {args.fault!r} (known faults: {known})")
        fault = faults[args.fault]
    suite = build_suite(args.fault, args.seed)
    result = _execute(suite, args)
    if _report(result, args) and not args.quiet:
        print()
        print(score_table(result))
        if fault is not None:
            print(_caught_line(result, fault))
    return EXIT_PASS if result.passed else EXIT_FAIL
