"""The ``mlchecks`` command: ``mlchecks run | demo | score``.

``mlchecks run TARGET`` loads a `Suite`, a `Check`, or a zero-argument callable returning
one, runs it, prints the text report and writes the requested report files. The exit code
is 0 when the suite passed, 1 when a check failed or errored, and 2 for a usage or import
error (one line on stderr, no traceback unless ``--traceback``).

Text from checks and servers never drives the terminal: every line the command prints is
passed through `mlchecks._text.printable` (escape sequences and control characters
removed) and `mlchecks._text.redact` (URL passwords hidden) in `_emit`, and report files
are written atomically.

>>> main(["run", "no-colon-here"])
2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, Protocol, TextIO

from mlchecks import _cli_canary, _cli_judge
from mlchecks._cli_target import UsageError, load_target, one_line, split_target
from mlchecks._text import printable, redact
from mlchecks._version import package_version
from mlchecks.check import Context
from mlchecks.report._files import write_atomic
from mlchecks.report._format import scrubbed_suite
from mlchecks.score import RUBRIC_TESTS, score_rows
from mlchecks.suite import Suite, SuiteResult

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


def _emit(text: str, stream: TextIO | None = None, *, report: bool = False) -> None:
    """Print ``text`` and a newline: the one way this command writes to a terminal.

    Untrusted text (names, summaries, server errors) loses its escape sequences, control
    characters and URL passwords; a ``report`` (rendered by `mlchecks.report`, which
    scrubs it) is written as is. Characters the stream cannot encode are escaped rather
    than failing the command.
    """
    out = sys.stdout if stream is None else stream
    if not report:
        text = printable(redact(text))
    if not text.endswith("\n"):
        text += "\n"
    try:
        out.write(text)
    except UnicodeEncodeError:
        encoding = getattr(out, "encoding", None) or "ascii"
        out.write(text.encode(encoding, "backslashreplace").decode(encoding))


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


def _flag(parser: argparse._ActionsContainer, *options: str, help: str) -> None:
    """An on/off option (``store_true``)."""
    parser.add_argument(*options, action="store_true", help=help)


def _count(parser: argparse._ActionsContainer, option: str, default: int, help: str) -> None:
    """An integer option ``N``: >= 0 when its default is 0, else >= 1."""
    check = _non_negative_int if default == 0 else _positive_int
    parser.add_argument(option, type=check, default=default, metavar="N", help=help)


_EXIT_CODES = "Exit codes: 0 passed, 1 a check failed or errored, 2 usage or import error."


def _run_options() -> _Parser:
    """The options `run` and `demo` share: report files and how to run the suite."""
    common = _Parser(add_help=False)
    reports = common.add_argument_group("report files (each also accepts '-' for stdout)")
    for option, _, what in _REPORTS:
        reports.add_argument(f"--{option}", metavar="PATH", help=f"write {what} to PATH")
    running = common.add_argument_group("running")
    _count(
        running,
        "--seed",
        0,
        "root seed shared by the checks through the Context (default: 0)",
    )
    _count(
        running,
        "--workers",
        1,
        "run up to N checks at once on a thread pool (default: 1, in order)",
    )
    _flag(
        running,
        "--fail-fast",
        help="stop at the first FAIL or ERROR; the checks not run are reported as SKIP",
    )
    _flag(
        running,
        "--no-progress",
        help="no progress on stderr (progress shows only when stderr is a terminal)",
    )
    _flag(
        running,
        "-q",
        "--quiet",
        help="print one summary line instead of the full report; no progress",
    )
    return common


#: The subcommands: (name, one-line help, description, epilog).
_COMMANDS: tuple[tuple[str, str, str, str], ...] = (
    (
        "run",
        "run a suite or check and report on it",
        "Load TARGET (a Suite, a Check, or a zero-argument callable returning one), run it, "
        "print the text report and write the requested report files.",
        f"{_EXIT_CODES} Example: mlchecks run tests/ml_checks.py:suite --junit report.xml",
    ),
    (
        "demo",
        "run every check on the embedded demo ML system",
        "Run the eight checks of the seven rubric tests (test 2 has two: loss_decreases and "
        "checkpoint_restore) on the embedded demo system and print the report and the ML "
        "Test Score. With --fault, inject a named fault that the matching check must catch.",
        "Exit codes: 0 passed, 1 a check failed or errored (expected with --fault), 2 usage error.",
    ),
    (
        "score",
        "print the ML Test Score of a saved JSON report",
        "Read a JSON report (written by 'mlchecks run --json') and print its ML Test Score: "
        "points per rubric test, the total and the paper's reading.",
        "Exit codes: 0 printed, 2 the file cannot be read.",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``mlchecks`` argument parser (exposed for documentation tools and tests).

    >>> build_parser().parse_args(["run", "checks.py:suite", "--seed", "3"]).seed
    3
    """
    parser = _Parser(
        prog=PROG,
        description="Run ML Test Score infrastructure checks and report on them.",
        epilog=_EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    common = _run_options()
    handlers = {"run": _cmd_run, "demo": _cmd_demo, "score": _cmd_score}
    sub: dict[str, argparse.ArgumentParser] = {}
    for name, summary, description, epilog in _COMMANDS:
        sub[name] = commands.add_parser(
            name,
            parents=[] if name == "score" else [common],
            help=summary,
            description=description,
            epilog=epilog,
        )
        sub[name].set_defaults(handler=handlers[name])
    _cli_judge.register(commands)
    _cli_canary.register(commands)

    sub["run"].add_argument(
        "target",
        metavar="TARGET",
        help="path/to/file.py:name or package.module:name; name may be dotted (a.b)",
    )
    _flag(sub["run"], "--traceback", help="on an import error, print the full traceback too")
    sub["demo"].add_argument(
        "--fault", metavar="NAME", help="inject the fault NAME (see --list-faults)"
    )
    _flag(
        sub["demo"],
        "--list-faults",
        help="list the faults (name, the check that must catch it, description) and exit",
    )
    sub["score"].add_argument("results", metavar="RESULTS", help="a JSON report ('-' reads stdin)")
    _flag(sub["score"], "--json", help="print the score as JSON")
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
        _emit(f"{PROG}: error: {exc}", sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        _emit(f"{PROG}: interrupted", sys.stderr)
        return 130


# --------------------------------------------------------------------------- running


def _execute(suite: Suite, args: argparse.Namespace) -> SuiteResult:
    progress = not (args.no_progress or args.quiet) and sys.stderr.isatty()
    context = Context(seed=args.seed)
    if args.workers > 1:
        with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix=PROG) as pool:
            return suite.run(context, executor=pool, fail_fast=args.fail_fast, progress=progress)
    return suite.run(context, fail_fast=args.fail_fast, progress=progress)


#: Said on stderr when the HTML report went without its figures (matplotlib is missing).
_PLOT_WARNING = 'figures need matplotlib: pip install "mlchecks-infra[plot]"'


def _warn_without_figures(html: str) -> None:
    """One line on stderr when ``html`` shows the install note in place of its figures."""
    from mlchecks.report.figures import PLOT_NOTE

    if PLOT_NOTE in html:
        _emit(f"{PROG}: warning: {_PLOT_WARNING}", sys.stderr)


def _write_reports(result: SuiteResult, args: argparse.Namespace) -> None:
    for option, method, _ in _REPORTS:
        path = getattr(args, option)
        if path is None:
            continue
        text: str = getattr(result, method)()
        if option == "html":
            _warn_without_figures(text)
        if path == "-":
            _emit(text, report=True)
            continue
        try:
            write_atomic(Path(path), text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write the {option} report to {path!r}: {exc}") from None
        if not args.quiet:
            _emit(f"wrote {path}", sys.stderr)


def _report(result: SuiteResult, args: argparse.Namespace) -> bool:
    """Print the text report (or its first line) and write the report files.

    Returns True when the text went to stdout, False when a report file took stdout.
    """
    text_out = all(getattr(args, option) != "-" for option, _, _ in _REPORTS)
    if text_out:
        text = str(result)
        _emit(text.splitlines()[0] if args.quiet else text)
    _write_reports(result, args)
    return text_out


def _cmd_run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        suite = load_target(args.target, show_traceback=args.traceback, stack=stack)
        result = _execute(suite, args)
    _report(result, args)
    return EXIT_PASS if result.passed else EXIT_FAIL


# --------------------------------------------------------------------------- score


def score_table(result: SuiteResult) -> str:
    """The ML Test Score of ``result`` as a table: test, title, points, how; then the total.

    The rows are `mlchecks.score.score_rows`, the table every report shows.

    >>> from mlchecks import Status
    >>> from mlchecks.testing import StaticCheck
    >>> suite = Suite([StaticCheck("repro", Status.PASS, rubric=1)], manual={7: "runbook"})
    >>> print(score_table(suite.run(progress=False)))  # doctest: +NORMALIZE_WHITESPACE
    ML Test Score (infrastructure) of 'mlchecks'
    #  test                                                                        points  how
    1  Training is reproducible                                                       1.0  automated: repro (PASS)
    2  Model specification code is unit tested                                        0.0  not covered
    3  The full ML pipeline is integration tested                                     0.0  not covered
    4  Model quality is validated before attempting to serve it                       0.0  not covered
    5  The model allows debugging by observing a single example or batch              0.0  not covered
    6  Models are tested via a canary process before entering production serving      0.0  not covered
    7  Models can be rolled back to a previous serving version                        0.5  done by hand: runbook
    Total: 1.5 / 7 rubric tests. There's been a first pass at basic productionization, but additional investment may be needed.
    """  # noqa: E501
    result = scrubbed_suite(result, terminal=True)  # names and notes on one line each
    score = result.score
    width = max(len(title) for title in RUBRIC_TESTS.values())
    lines = [
        f"ML Test Score (infrastructure) of {result.name!r}",
        f"#  {'test':<{width}}  points  how",
    ]
    for row in score_rows(result.results, score):
        lines.append(f"{row.test}  {row.title:<{width}}  {row.points:>6.1f}  {row.how}")
    lines.append(f"Total: {score.total:g} / {score.maximum:g} rubric tests. {score.reading}")
    return "\n".join(lines)


def _read_results(source: str) -> SuiteResult:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        raise UsageError(f"cannot read {source!r}: {reason}") from None
    try:
        return SuiteResult.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise UsageError(
            f"{source!r} is not a mlchecks JSON report ({one_line(exc)}); "
            "write one with 'mlchecks run TARGET --json PATH'"
        ) from None


def _cmd_score(args: argparse.Namespace) -> int:
    result = _read_results(args.results)
    if args.json:
        _emit(json.dumps(scrubbed_suite(result, terminal=False).score.to_dict(), indent=2))
    else:
        _emit(score_table(result))
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
            _emit(line)
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
        _emit("")
        _emit(score_table(result))
        if fault is not None:
            _emit(_caught_line(result, fault))
    return EXIT_PASS if result.passed else EXIT_FAIL
