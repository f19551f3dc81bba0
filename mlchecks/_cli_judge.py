"""``mlchecks judge serve``: the canary judge as an HTTP service for deployment controllers.

``mlchecks judge serve LOG --baseline V1 --candidate V2`` tails the request log ``LOG``
(``-`` for none: records only arrive over HTTP), judges the candidate against the
baseline with `mlchecks.checks.CanaryJudge`, and serves `mlchecks.serving.judge_service.
JudgeService` until interrupted (Ctrl-C or SIGTERM): ``/verdict`` for Argo Rollouts,
``/flagger/<hook>`` for Flagger, ``/metrics`` for Prometheus, ``POST /records`` and
``POST /events`` (KServe's payload logger). It prints the URL it serves on one line first.

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="mlchecks")
>>> register(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(["judge", "serve", "-", "--baseline", "v1", "--candidate", "v2"])
>>> args.port, args.host, args.format
(8080, '127.0.0.1', 'auto')
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from mlchecks._cli_canary import add_judge_options, judge_from, pairing
from mlchecks._cli_target import UsageError
from mlchecks.exceptions import InvalidInput

__all__ = ["register"]

_DESCRIPTION = (
    "Judge a canary the platform routes (KServe canaryTrafficPercent, Istio, Argo Rollouts, "
    "Flagger) from its record, and answer the deployment controller over HTTP: GET /verdict "
    "(Argo Rollouts' Web metric provider), POST /flagger/<hook> (Flagger's webhooks), "
    "GET /metrics (Prometheus), POST /records (JSON Lines), POST /events (KServe's "
    "payload logger), GET /healthz."
)
_EPILOG = (
    "Runs until interrupted (Ctrl-C, SIGTERM); exit code 0 then, 2 on a usage error. "
    "Example: mlchecks judge serve requests.jsonl --baseline v1 --candidate v2 --port 8080"
)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in [0, 65535] (got {value})")
    return value


def register(commands: Any) -> None:
    """Add ``judge serve`` to ``commands`` (the ``mlchecks`` argument parser's subparsers)."""
    judge = commands.add_parser(
        "judge",
        help="serve the canary judge to Argo Rollouts, Flagger and Prometheus",
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    actions = judge.add_subparsers(
        dest="judge_command", metavar="COMMAND", parser_class=type(judge)
    )
    actions.required = True
    serve = actions.add_parser(
        "serve", help="serve /verdict, /flagger/<hook>, /metrics", description=_DESCRIPTION
    )
    serve.add_argument(
        "log",
        metavar="LOG",
        help="the request log to tail (JSON Lines or CloudEvents); '-' for none: "
        "records are only POSTed to /records or /events",
    )
    add_judge_options(serve)
    serving = serve.add_argument_group("serving")
    serving.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serving.add_argument(
        "--port", type=_port, default=8080, help="port to bind; 0 picks a free one (default: 8080)"
    )
    serving.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (a Kubernetes pod: --host 0.0.0.0)",
    )
    serve.set_defaults(handler=_cmd_serve)


def _service(args: argparse.Namespace) -> Any:
    from mlchecks.serving.cloudevents import CloudEventPairer
    from mlchecks.serving.judge_service import JudgeService
    from mlchecks.serving.record_log import read_records

    if args.log != "-" and not Path(args.log).is_file():
        raise UsageError(f"LOG {args.log!r} is not a file ('-' for none)")
    judge = judge_from(args)
    try:
        records = None
        if args.log != "-":
            records = read_records(args.log, format=args.format, follow=True, **pairing(args))
        return JudgeService(
            judge,
            records=records,
            pairer=CloudEventPairer(**pairing(args)),
            host=args.host,
            port=args.port,
            allow_remote=args.allow_remote,
        )
    except InvalidInput as exc:
        hint = " (add --allow-remote)" if "allow_remote" in str(exc) else ""
        raise UsageError(f"{exc}{hint}") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    service = _service(args)
    done = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        try:
            service.start()
        except OSError as exc:
            raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
        print(
            f"mlchecks judge: serving {service.url} (baseline {args.baseline!r}, candidate "
            f"{args.candidate!r}); GET /verdict /metrics /healthz, POST /records /events "
            "/flagger/<hook>",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not done.wait(0.5):
                pass
        print(f"mlchecks judge: stopped; verdict {service.verdict()['verdict']}", file=sys.stderr)
    finally:
        service.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
