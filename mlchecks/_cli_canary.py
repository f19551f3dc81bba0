"""``mlchecks canary watch``: judge a canary from the traffic's record, in a shell or CI job.

``mlchecks canary watch LOG --baseline V1 --candidate V2`` reads the request log ``LOG``
(JSON Lines, or CloudEvents from KServe's or MLServer's payload logger; with ``--follow``
it tails it as it grows), feeds each record to `mlchecks.checks.CanaryJudge`'s watch and
stops at the verdict. On a terminal, stderr shows one line updated in place: the records
read, the candidate's requests, each test's e-value against the threshold and the bad
lines. The report is the text report of `mlchecks run`, and ``--json``, ``--junit``,
``--html`` and ``--markdown`` write the same files.

Exit codes: 0 the candidate passed, 1 it failed, 3 no verdict (inconclusive: the log
ended or went idle first; or insufficient data: none of the candidate's requests
succeeded), 2 usage error.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="mlchecks")
>>> register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["canary", "watch", "log.jsonl", "--baseline", "v1",
...                           "--candidate", "v2", "--follow"])
>>> args.follow, args.format, args.mode, args.idle_timeout
(True, 'auto', 'split', 300.0)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from mlchecks._cli_target import UsageError
from mlchecks._text import fmt, printable
from mlchecks.exceptions import InvalidInput

__all__ = ["EXIT_CODES", "add_judge_options", "judge_from", "number", "pairing", "register"]

#: The exit code of each verdict.
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3, "insufficient data": 3}

_DESCRIPTION = (
    "Judge a canary the platform routed (KServe canaryTrafficPercent, Istio, Argo Rollouts, "
    "Flagger) from its record: read or tail LOG, a request log (JSON Lines) or a payload "
    "log (CloudEvents), and run the anytime-valid canary tests (errors, latency, tail "
    "latency, prediction shift; disagreement in shadow mode; accuracy on late labels) until "
    "the verdict."
)
_EPILOG = (
    "Exit codes: 0 the candidate passed, 1 it failed, 3 no verdict yet (inconclusive or "
    "insufficient data), 2 usage error. Example: mlchecks canary watch requests.jsonl "
    "--baseline v1 --candidate v2 --follow --junit canary.xml"
)


def number(kind: type, *, positive: bool = False) -> Any:
    """An argparse ``type``: ``kind(text)``, > 0 when ``positive``, else a usage error."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
        return value

    return convert


def add_judge_options(parser: argparse.ArgumentParser) -> Any:
    """The options ``canary watch`` and ``judge serve`` share: the versions, how the record
    is read, and the judge's settings; returns the "reading" group for more options."""
    versions = parser.add_argument_group("the versions (as the record names them)")
    versions.add_argument("--baseline", required=True, help="the version serving now")
    versions.add_argument("--candidate", required=True, help="the version under test")
    reading = parser.add_argument_group("reading")
    reading.add_argument(
        "--format",
        choices=("auto", "jsonl", "cloudevents"),
        default="auto",
        help="the log's format (default: auto, from its first line)",
    )
    reading.add_argument(
        "--version-from",
        metavar="NAMES",
        help="CloudEvents: the attributes naming the version, comma-separated, first present "
        "wins (default: endpoint,modelid,revision,inferenceservicename)",
    )
    reading.add_argument(
        "--pair-timeout",
        type=number(float, positive=True),
        default=30.0,
        metavar="S",
        help="CloudEvents: a request with no response S seconds later (log time) failed "
        "(default: 30)",
    )
    judging = parser.add_argument_group("judging")
    judging.add_argument(
        "--mode",
        choices=("split", "shadow"),
        default="split",
        help="split: each request went to one version; shadow: mirrored to both (default: split)",
    )
    judging.add_argument(
        "--n-candidate-requests",
        type=number(int, positive=True),
        default=500,
        metavar="N",
        help="candidate requests that make a PASS with no regression detected (default: 500)",
    )
    judging.add_argument(
        "--alpha",
        type=number(float),
        default=0.05,
        metavar="A",
        help="the false-FAIL rate bound of the whole verdict (default: 0.05)",
    )
    return reading


def pairing(args: argparse.Namespace) -> dict[str, Any]:
    """How CloudEvents are paired into records (`CloudEventPairer`'s arguments)."""
    options: dict[str, Any] = {"pair_timeout_s": args.pair_timeout}
    if args.version_from:
        names = (n.strip() for n in args.version_from.split(","))
        options["version_from"] = tuple(n for n in names if n)
    return options


def judge_from(args: argparse.Namespace) -> Any:
    """The `CanaryJudge` the options ask for (a usage error names a bad value)."""
    from mlchecks.checks import CanaryJudge

    try:
        return CanaryJudge(
            baseline=args.baseline,
            candidate=args.candidate,
            mode=args.mode,
            alpha=args.alpha,
            n_candidate_requests=args.n_candidate_requests,
        )
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None


def register(commands: Any) -> None:
    """Add ``canary watch`` to ``commands`` (the ``mlchecks`` argument parser's subparsers)."""
    from mlchecks.cli import _REPORTS

    canary = commands.add_parser(
        "canary", help="judge a canary from its request log", description=_DESCRIPTION
    )
    actions = canary.add_subparsers(
        dest="canary_command", metavar="COMMAND", parser_class=type(canary)
    )
    actions.required = True
    watch = actions.add_parser(
        "watch",
        help="read or tail a request log until the canary's verdict",
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    watch.add_argument(
        "log", metavar="LOG", help="the log: JSON Lines request log or CloudEvents (one a line)"
    )
    reading = add_judge_options(watch)
    reading.add_argument(
        "--follow",
        action="store_true",
        help="tail LOG as it grows (tail -f) until the verdict or --idle-timeout",
    )
    reading.add_argument(
        "--idle-timeout",
        type=number(float, positive=True),
        default=300.0,
        metavar="S",
        help="with --follow: stop after S seconds without new lines (default: 300)",
    )
    reports = watch.add_argument_group("report files (each also accepts '-' for stdout)")
    for option, _, what in _REPORTS:
        reports.add_argument(f"--{option}", metavar="PATH", help=f"write {what} to PATH")
    watch.add_argument(
        "-q", "--quiet", action="store_true", help="print the report's first line only; no progress"
    )
    watch.set_defaults(handler=_cmd_watch)


class _Progress:
    """One line on a terminal's stderr, rewritten at most every ``every_s`` seconds."""

    def __init__(self, stream: TextIO, enabled: bool, every_s: float = 0.2) -> None:
        self.stream, self.enabled, self.every_s = stream, enabled, every_s
        self._last = 0.0
        self._shown = False

    def show(self, line: Callable[[], str], *, force: bool = False) -> None:
        """Show ``line()`` (called only when the line is due)."""
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every_s):
            return
        text = printable(line())  # version names come from the log
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r\033[K" + (text if len(text) <= width else text[: width - 3] + "..."))
        self.stream.flush()
        self._last, self._shown = now, True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


def _status(watch: Any, stats: Any) -> str:
    """The progress line: verdict, records and bad lines, candidate requests, e-values."""
    evidence = watch.evidence()
    evalues = " ".join(f"{name} {fmt(value, 3)}" for name, value in evidence["evalues"].items())
    return (
        f"{evidence['verdict']} | {stats.records:,} records, {stats.bad_lines:,} bad lines | "
        f"{evidence['candidate']} {evidence['candidate_requests']:,}/"
        f"{evidence['n_candidate_requests']:,} | e-values {evalues} "
        f"(fail at {fmt(evidence['evalue_threshold'], 3)})"
    )


def _watch_parts(args: argparse.Namespace) -> tuple[Any, Any]:
    """The judge's watch and the log reader, from the arguments (usage errors named)."""
    from mlchecks.serving.record_log import read_records

    path = Path(args.log)
    if not path.is_file():
        raise UsageError(f"LOG {args.log!r} {'is not a file' if path.exists() else 'not found'}")
    judge = judge_from(args)
    try:
        log = read_records(
            path,
            format=args.format,
            follow=args.follow,
            idle_timeout_s=args.idle_timeout if args.follow else None,
            **pairing(args),
        )
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    return judge.start(), log


def _cmd_watch(args: argparse.Namespace) -> int:
    from mlchecks import cli
    from mlchecks.suite import SuiteResult

    watch, log = _watch_parts(args)
    progress = _Progress(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    started = time.monotonic()

    try:
        for item in log:
            decision = watch.observe(item)
            progress.show(lambda: _status(watch, log.stats), force=decision != "continue")
            if decision != "continue":
                break
    except KeyboardInterrupt:
        progress.close()
        print("mlchecks canary: interrupted; the verdict so far:", file=sys.stderr)
    except OSError as exc:
        raise UsageError(f"cannot read LOG {args.log!r}: {exc.strerror or exc}") from None
    finally:
        progress.close()
    if not args.quiet:
        cli._emit(f"read {log.stats.summary()}", sys.stderr)
    result = watch.result(source=log.stats)
    suite = SuiteResult(
        (result,), name=f"canary {args.candidate}", duration_s=time.monotonic() - started
    )
    if all(getattr(args, option) != "-" for option, _, _ in cli._REPORTS):
        if args.quiet:
            cli._emit(result.summary)
        else:  # one check: no ML Test Score
            cli._emit(str(result), report=True)
    cli._write_reports(suite, args)
    return EXIT_CODES.get(watch.verdict, 3)
