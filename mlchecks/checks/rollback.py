"""Rubric test 7: a model can be rolled back quickly and safely to the previous version.

"Test how quickly and safely a model can be rolled back to a previous serving version"
(Breck et al., ML Test Score).

`RollbackCheck` drives a `Deployment` (the live pointer) and an `Endpoint` (live traffic):

1. record the known-good version's predictions on the probe inputs;
2. deploy the candidate (``set_live(candidate)``) and confirm it serves live traffic;
3. start a background load generator sending the probe inputs as live requests, and roll
   back with ``set_live(known_good)`` while it runs;
4. from the responses, measure the time from the command to the first response from the
   known-good version, and to the point after which *every* response comes from it
   (``settle_requests`` in a row), the requests that failed during the switch, and the
   longest gap without a successful response;
5. after the rollback, the served predictions must equal the known-good ones (bitwise by
   default), which catches caches and replicas that keep serving the candidate.

Each response is attributed by its version label *and* its outputs: it counts as the
known-good version's only when it carries that label and the known-good outputs for its
input. The whole procedure runs ``repeats`` times (sequentially: the repeats share the
one live pointer); p50 and p99 over the repeats are judged against ``max_rollback_s``,
and the worst repeat's failures against ``max_failed_requests``. The live version is
restored at the end.

The load generator is bounded (``rate_per_s``, ``max_requests`` and ``max_duration_s``
per repeat), stops by itself, and sends only to 127.0.0.1 unless ``allow_remote=True``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.checks._load import (
    LoadGenerator,
    Record,
    ensure_local,
    error_class,
    outputs_equal,
    probe_inputs,
)
from mlchecks.checks._series import priority_indices
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, Endpoint, Response
from mlchecks.result import Finding, Result, Status
from mlchecks._validate import (
    describe,
    int_at_least,
    non_empty_string,
    number_in,
    optional,
)

__all__ = ["RollbackCheck"]

_POSITIVE = number_in(0.0, low_open=True)


def _deployment(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Deployment):
        raise InvalidInput(
            f"'deployment' must be a Deployment (live_version, set_live) (got {describe(value)})"
        )


def _endpoint(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Endpoint):
        raise InvalidInput(f"'endpoint' must be an Endpoint with infer() (got {describe(value)})")


@attrs.frozen
class _Repeat:
    """The measurements of one deploy-and-roll-back cycle."""

    command_s: float  # how long set_live(known_good) took to return
    first_s: float  # command start -> first response from the known-good version
    all_s: float  # command start -> from here on every response is known-good (inf: never)
    failed: int  # failed requests answered from the rollback command on, not by the candidate
    gap_s: float  # longest stretch without a successful response
    requests: int
    candidate_after: int  # responses sent after the command that still came from the candidate
    errors: Mapping[str, int]
    first_error: str | None
    settled: bool
    # Responses around the switch, for report figures: "t_s" (arrival, s after the command)
    # and "outcome" ("candidate", "known_good", "failed" or "other"), at most MAX_POINTS.
    timeline: Mapping[str, list[Any]] = attrs.field(factory=dict)

    def row(self, index: int) -> dict[str, Any]:
        return {
            "repeat": index,
            **attrs.asdict(self, filter=lambda attribute, _: attribute.name != "timeline"),
        }


class _Failure(Exception):
    """A step of the procedure failed; carries the finding that says how."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@attrs.frozen
class RollbackCheck:
    """Deploy a candidate, roll back under live traffic, and judge speed and safety.

    Args:
        deployment: the `Deployment` whose ``set_live`` deploys and rolls back.
        endpoint: the `Endpoint` live traffic goes to (often the same object).
        candidate: the version to deploy and roll back from.
        probe_inputs: request inputs; the load generator cycles through them and the
            predictions are compared on them.
        known_good: the version to roll back to; None: the live version at the start.
        repeats: deploy-and-roll-back cycles; p50 and p99 are over these.
        max_rollback_s: the p99 time from the rollback command until every response
            comes from the known-good version must not exceed this.
        max_failed_requests: failed requests allowed during a switch (worst repeat).
        max_gap_s: an optional limit on the longest gap without a successful response.
        exact: after the rollback, served predictions must equal the known-good ones
            bitwise; False compares within ``atol`` and ``rtol``.
        atol, rtol: the tolerance when ``exact`` is False.
        rate_per_s: the load generator's request rate.
        warmup_requests: responses from the candidate before rolling back.
        settle_requests: consecutive known-good responses that end a repeat's observation.
        max_requests: the load generator's bound per repeat.
        max_duration_s: the load generator's time bound per repeat.
        deploy_timeout_s: the longest the candidate may take to serve after
            ``set_live(candidate)``.
        allow_remote: allow an endpoint that is not on 127.0.0.1.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value.

    An `mlchecks.serving.InProcessServer` is both the deployment and the endpoint; its
    switch is atomic, so the rollback loses no request:

    >>> from mlchecks.serving import InProcessServer
    >>> server = InProcessServer().add("1", lambda x: [v * 1.0 for v in x])
    >>> server = server.add("2", lambda x: [v * 2.0 for v in x])
    >>> server.set_live("1")
    >>> check = RollbackCheck(server, server, "2", probe_inputs=[[1.0], [2.0]], repeats=2)
    >>> result = check.run()
    >>> result.status, result.metrics["failed_requests_total"], server.live_version()
    (<Status.PASS: 'pass'>, 0.0, '1')
    """

    deployment: Deployment = attrs.field(validator=_deployment)
    endpoint: Endpoint = attrs.field(validator=_endpoint)
    candidate: str = attrs.field(validator=optional(non_empty_string))
    probe_inputs: tuple[Any, ...] = attrs.field(converter=probe_inputs)
    known_good: str | None = attrs.field(default=None, validator=optional(non_empty_string))
    repeats: int = attrs.field(default=3, validator=int_at_least(1))
    max_rollback_s: float = attrs.field(default=1.0, validator=_POSITIVE)
    max_failed_requests: int = attrs.field(default=0, validator=int_at_least(0))
    max_gap_s: float | None = attrs.field(default=None, validator=optional(_POSITIVE))
    exact: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    atol: float = attrs.field(default=0.0, validator=number_in(0.0))
    rtol: float = attrs.field(default=0.0, validator=number_in(0.0))
    rate_per_s: float = attrs.field(default=1000.0, validator=_POSITIVE)
    warmup_requests: int = attrs.field(default=20, validator=int_at_least(1))
    settle_requests: int = attrs.field(default=50, validator=int_at_least(1))
    max_requests: int = attrs.field(default=5000, validator=int_at_least(1))
    max_duration_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    deploy_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    allow_remote: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    name: str = attrs.field(default="rollback", validator=attrs.validators.instance_of(str))
    rubric: int | None = 7

    def __attrs_post_init__(self) -> None:
        if self.known_good is not None and self.known_good == self.candidate:
            raise InvalidInput(
                f"'known_good' and 'candidate' must differ (both are {self.candidate!r})"
            )
        if self.warmup_requests + self.settle_requests > self.max_requests:
            raise InvalidInput(
                f"'max_requests' ({self.max_requests}) must allow warmup_requests + "
                f"settle_requests ({self.warmup_requests + self.settle_requests})"
            )
        ensure_local(self.endpoint, "endpoint", allow_remote=self.allow_remote)

    # ------------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Deploy and roll back ``repeats`` times; a slow or lossy rollback fails, never raises."""
        ctx = context if context is not None else Context()
        deployment: Any = self.deployment
        findings: list[Finding] = []
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {"candidate": self.candidate}
        original = deployment.live_version()
        known_good = self.known_good if self.known_good is not None else original
        if known_good is None:
            finding = Finding(
                "known_good",
                Status.FAIL,
                message="nothing is live and no known_good version was given, so there is "
                "nothing to roll back to",
            )
            return Result.from_findings(self.name, [finding], rubric=self.rubric)
        if known_good == self.candidate:
            finding = Finding(
                "known_good",
                Status.FAIL,
                message=f"the candidate {self.candidate!r} is already live; pass the version "
                "to roll back to as known_good=...",
            )
            return Result.from_findings(self.name, [finding], rubric=self.rubric)
        details["known_good"] = known_good
        repeats: list[_Repeat] = []
        after: tuple[int, int, int] | None = None
        try:
            if original != known_good:
                deployment.set_live(known_good)
            good_refs = self._references(known_good)
            cand_refs = self._references(self.candidate, required=False)
            for i in range(self.repeats):
                ctx.report(f"rollback: repeat {i + 1} of {self.repeats}")
                repeats.append(self._cycle(known_good, good_refs, cand_refs))
                if not repeats[-1].settled:
                    details["stopped_early"] = (
                        f"repeat {i + 1} never settled on version {known_good!r}; "
                        "further repeats would only repeat that"
                    )
                    break
            after = self._after(known_good, good_refs, cand_refs, details)
        except _Failure as failure:
            findings.append(failure.finding)
        finally:
            restored = self._restore(original, details)
        if repeats:
            findings += self._judge(repeats, known_good, metrics, details)
        if after is not None:
            findings.append(self._judge_after(after, known_good))
        if restored is not None:
            findings.append(restored)
        return Result.from_findings(
            self.name,
            findings,
            summary=self._summary(findings, repeats, known_good),
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    # ----------------------------------------------------------------- procedure

    def _infer(self, inputs: Any, version: str | None = None) -> Response:
        try:
            response: Any = self.endpoint.infer(inputs, version)
        except Exception as exc:
            return Response(error=f"{type(exc).__name__}: {exc}", error_kind="connection")
        if not isinstance(response, Response):
            return Response(error=f"infer() returned {describe(response)}", error_kind="server")
        return response

    def _references(self, version: str, *, required: bool = True) -> list[Any]:
        """``version``'s outputs for every probe, asked for by name (bypassing live routing).

        The known-good version must answer every probe. The candidate may fail some (a buggy
        candidate is the canary's business, not the rollback's): those probes get ``None``
        and are recognised by the version label alone.
        """
        refs = []
        for i, probe in enumerate(self.probe_inputs):
            response = self._infer(probe, version)
            if not response.ok and required:
                raise _Failure(
                    Finding(
                        "references",
                        Status.FAIL,
                        message=f"version {version!r} could not answer probe {i} to record its "
                        f"predictions: {response.error}",
                    )
                )
            refs.append(response.outputs if response.ok else None)
        return refs

    def _is(self, response: Response, version: str, ref: Any) -> bool:
        """True when ``response`` is ``version``'s: its label (if any) and its outputs."""
        return (
            response.ok
            and response.version in (None, version)
            and outputs_equal(
                response.outputs, ref, exact=self.exact, atol=self.atol, rtol=self.rtol
            )
        )

    def _serves_candidate(self, response: Response, ref: Any) -> bool:
        """True when live traffic reached the candidate (by label; by outputs without one)."""
        if response.version is not None and (response.ok or ref is None):
            return response.version == self.candidate
        if not response.ok:
            return False
        return outputs_equal(
            response.outputs, ref, exact=self.exact, atol=self.atol, rtol=self.rtol
        )

    def _set_live(self, version: str, what: str) -> float:
        start = time.perf_counter()
        try:
            self.deployment.set_live(version)
        except Exception as exc:
            raise _Failure(
                Finding(
                    what,
                    Status.FAIL,
                    message=f"set_live({version!r}) raised {type(exc).__name__}: {exc}",
                )
            ) from exc
        return time.perf_counter() - start

    def _cycle(self, known_good: str, good_refs: list[Any], cand_refs: list[Any]) -> _Repeat:
        self._set_live(self.candidate, "deploy")
        self._confirm_candidate(cand_refs)
        generator = LoadGenerator(
            self.endpoint,
            self.probe_inputs,
            rate_per_s=self.rate_per_s,
            max_requests=self.max_requests,
            max_duration_s=self.max_duration_s,
        ).start()
        try:
            generator.wait_for(
                lambda records: len(records) >= self.warmup_requests, self.max_duration_s
            )
            t0 = time.perf_counter()
            command_s = self._set_live(known_good, "rollback")

            def settled(records: list[Record]) -> bool:
                for run, record in enumerate(reversed(records), start=1):
                    if record.sent < t0:
                        break
                    if not self._is(record.response, known_good, good_refs[record.index]):
                        return False
                    if run >= self.settle_requests:
                        return True
                return False

            is_settled = generator.wait_for(settled, self.max_duration_s)
        finally:
            generator.stop()
            records = generator.join(timeout_s=self.max_duration_s + 1.0)
        return self._measure(records, t0, command_s, known_good, good_refs, cand_refs, is_settled)

    def _confirm_candidate(self, cand_refs: list[Any]) -> None:
        deadline = time.perf_counter() + self.deploy_timeout_s
        live = self.deployment.live_version()
        last = ""
        while True:
            live = self.deployment.live_version()
            if live == self.candidate:
                served = [self._infer(p) for p in self.probe_inputs]
                good = [self._serves_candidate(r, cand_refs[i]) for i, r in enumerate(served)]
                if all(good):
                    return
                bad = served[good.index(False)]
                last = (
                    f"live traffic still got {bad.error or f'outputs from version {bad.version!r}'}"
                )
            else:
                last = f"live_version() is {live!r}"
            if time.perf_counter() >= deadline:
                break
            time.sleep(0.005)
        raise _Failure(
            Finding(
                "deploy",
                Status.FAIL,
                self.deploy_timeout_s,
                f"<= {self.deploy_timeout_s:g} s",
                f"the candidate {self.candidate!r} was not serving live traffic "
                f"{self.deploy_timeout_s:g} s after set_live({self.candidate!r}): {last}",
            )
        )

    def _measure(
        self,
        records: list[Record],
        t0: float,
        command_s: float,
        known_good: str,
        good_refs: list[Any],
        cand_refs: list[Any],
        settled: bool,
    ) -> _Repeat:
        errors: dict[str, int] = {}
        first_error: str | None = None
        first_s = math.inf
        last_other = -math.inf
        candidate_after = 0
        successes = []
        for record in records:
            response = record.response
            if response.ok:
                successes.append(record.done)
            elif record.done >= t0 and response.version != self.candidate:
                # A failure of the switch: answered after the rollback command, and not the
                # candidate's own error (a buggy candidate is the canary's business; the
                # rollback is judged on what happens from the command on).
                kind = error_class(response)
                errors[kind] = errors.get(kind, 0) + 1
                first_error = first_error or response.error
            if record.sent < t0:
                continue
            if self._is(response, known_good, good_refs[record.index]):
                first_s = min(first_s, record.done - t0)
            else:
                last_other = max(last_other, record.done - t0)
                if response.ok and (
                    response.version == self.candidate
                    or outputs_equal(response.outputs, cand_refs[record.index], exact=True)
                ):
                    candidate_after += 1
        if not settled or not math.isfinite(first_s):
            all_s = math.inf
        else:
            all_s = max(first_s, last_other)
        start = records[0].sent if records else t0
        end = records[-1].done if records else t0
        marks = np.array([start, *successes, end])
        gap = float(np.max(np.diff(np.sort(marks)))) if marks.size > 1 else 0.0
        return _Repeat(
            command_s=command_s,
            first_s=first_s,
            all_s=all_s,
            failed=sum(errors.values()),
            gap_s=gap,
            requests=len(records),
            candidate_after=candidate_after,
            errors=errors,
            first_error=first_error,
            settled=settled,
            timeline=self._timeline(records, t0, known_good, good_refs, cand_refs),
        )

    def _timeline(
        self,
        records: list[Record],
        t0: float,
        known_good: str,
        good_refs: list[Any],
        cand_refs: list[Any],
    ) -> dict[str, list[Any]]:
        """Which version answered each request, by arrival time; changes and failures kept."""
        outcomes = []
        for record in records:
            response = record.response
            if self._is(response, known_good, good_refs[record.index]):
                outcomes.append("known_good")
            elif not response.ok:
                outcomes.append("failed")
            elif response.version == self.candidate or outputs_equal(
                response.outputs, cand_refs[record.index], exact=True
            ):
                outcomes.append("candidate")
            else:
                outcomes.append("other")
        labels = np.array(outcomes, dtype=object)
        changed = np.zeros(labels.size, dtype=bool)
        changed[1:] = labels[1:] != labels[:-1]
        changed[:-1] |= changed[1:]  # both sides of a change
        important = changed | (labels == "failed") | (labels == "other")
        kept = priority_indices(important)
        return {
            "t_s": [round(records[i].done - t0, 6) for i in kept],
            "outcome": [outcomes[i] for i in kept],
        }

    def _after(
        self, known_good: str, good_refs: list[Any], cand_refs: list[Any], details: dict[str, Any]
    ) -> tuple[int, int, int]:
        """Live predictions after the last rollback: (matching, carrying candidate outputs, n)."""
        match = stale = 0
        examples: list[dict[str, Any]] = []
        for i, probe in enumerate(self.probe_inputs):
            response = self._infer(probe)
            if self._is(response, known_good, good_refs[i]):
                match += 1
                continue
            is_candidate = response.ok and outputs_equal(response.outputs, cand_refs[i], exact=True)
            stale += is_candidate
            if len(examples) < 5:
                examples.append(
                    {
                        "probe": i,
                        "version": response.version,
                        "error": response.error,
                        "carries_candidate_outputs": is_candidate,
                    }
                )
        details["mismatches_after_rollback"] = examples
        return match, stale, len(self.probe_inputs)

    def _restore(self, original: str | None, details: dict[str, Any]) -> Finding | None:
        if original is None:
            return None
        try:
            if self.deployment.live_version() != original:
                self.deployment.set_live(original)
                details["restored_live_version"] = original
        except Exception as exc:
            return Finding(
                "restore",
                Status.FAIL,
                message=f"could not restore the live version {original!r}: "
                f"{type(exc).__name__}: {exc}",
            )
        return None

    # ------------------------------------------------------------------- judging

    def _judge(
        self,
        repeats: Sequence[_Repeat],
        known_good: str,
        metrics: dict[str, float],
        details: dict[str, Any],
    ) -> list[Finding]:
        details["repeats"] = [r.row(i + 1) for i, r in enumerate(repeats)]
        shown = max(
            range(len(repeats)),
            key=lambda i: (repeats[i].failed, repeats[i].candidate_after, repeats[i].all_s),
        )
        details["timeline"] = {"repeat": shown + 1, **repeats[shown].timeline}
        n = len(repeats)

        def quantiles(values: Sequence[float]) -> tuple[float, float]:
            array = np.asarray(values, dtype=np.float64)
            if not np.isfinite(array).all():
                finite = array[np.isfinite(array)]
                p50 = float(np.quantile(array, 0.5)) if finite.size * 2 > n else math.inf
                return p50, math.inf
            p50, p99 = np.quantile(array, [0.5, 0.99])
            return float(p50), float(p99)

        all_p50, all_p99 = quantiles([r.all_s for r in repeats])
        first_p50, first_p99 = quantiles([r.first_s for r in repeats])
        cmd_p50, cmd_p99 = quantiles([r.command_s for r in repeats])
        failed = [r.failed for r in repeats]
        gaps = [r.gap_s for r in repeats]
        metrics.update(
            {
                "rollback_p50_s": all_p50,
                "rollback_p99_s": all_p99,
                "first_response_p50_s": first_p50,
                "first_response_p99_s": first_p99,
                "command_p50_s": cmd_p50,
                "command_p99_s": cmd_p99,
                "failed_requests_max": float(max(failed)),
                "failed_requests_total": float(sum(failed)),
                "longest_gap_s": max(gaps),
                "requests": float(sum(r.requests for r in repeats)),
                "repeats": float(n),
            }
        )
        findings = []
        limit = AtMost(self.max_rollback_s)
        stuck = [r for r in repeats if not math.isfinite(r.all_s)]
        if stuck:
            worst = max(stuck, key=lambda r: r.candidate_after)
            why = (
                f"{worst.candidate_after} responses after the command still carried the "
                f"outputs of the candidate {self.candidate!r}"
                if worst.candidate_after
                else "responses did not settle on the known-good outputs"
            )
            findings.append(
                Finding(
                    "rollback_time",
                    Status.FAIL,
                    all_p99,
                    limit.describe(),
                    f"in {len(stuck)} of {n} rollbacks live traffic never came only from version "
                    f"{known_good!r} (observed for up to max_duration_s="
                    f"{self.max_duration_s:g} s): {why}",
                )
            )
        else:
            ok = limit.holds(all_p99)
            verb = "within" if ok else "exceeding"
            findings.append(
                Finding(
                    "rollback_time",
                    Status.PASS if ok else Status.FAIL,
                    all_p99,
                    limit.describe(),
                    f"after set_live({known_good!r}) every response came from version "
                    f"{known_good!r} within p50 {_ms(all_p50)} / p99 {_ms(all_p99)} over {n} "
                    f"rollbacks ({verb} max_rollback_s {self.max_rollback_s:g} s; first response "
                    f"from it after p50 {_ms(first_p50)})",
                )
            )
        worst_failed = max(failed)
        if worst_failed > self.max_failed_requests:
            worst = repeats[failed.index(worst_failed)]
            kinds = ", ".join(f"{v} {k}" for k, v in sorted(worst.errors.items()))
            findings.append(
                Finding(
                    "failed_requests",
                    Status.FAIL,
                    float(worst_failed),
                    f"<= {self.max_failed_requests}",
                    f"{worst_failed} requests failed during a rollback ({kinds}; per repeat: "
                    f"{', '.join(map(str, failed))}), more than max_failed_requests "
                    f"{self.max_failed_requests}; e.g. {worst.first_error}",
                )
            )
        else:
            findings.append(
                Finding(
                    "failed_requests",
                    Status.PASS,
                    float(worst_failed),
                    f"<= {self.max_failed_requests}",
                    f"{sum(failed)} of {int(metrics['requests'])} requests failed across {n} "
                    f"rollbacks under load (at most {worst_failed} per rollback)",
                )
            )
        if self.max_gap_s is not None:
            findings.append(
                AtMost(self.max_gap_s).judge(
                    "longest_gap_s",
                    max(gaps),
                    context=" (the longest time without a successful response, s)",
                )
            )
        return findings

    def _judge_after(self, after: tuple[int, int, int], known_good: str) -> Finding:
        match, stale, n = after
        how = "bitwise" if self.exact else f"within atol={self.atol:g}, rtol={self.rtol:g}"
        if match == n:
            return Finding(
                "predictions_after_rollback",
                Status.PASS,
                0.0,
                "== 0 mismatches",
                f"after the rollback all {n} probe responses equal the known-good predictions "
                f"of version {known_good!r} ({how})",
            )
        cause = (
            f"; {stale} carry the outputs of the candidate {self.candidate!r} (a cache or "
            "replica still serves the candidate)"
            if stale
            else ""
        )
        return Finding(
            "predictions_after_rollback",
            Status.FAIL,
            float(n - match),
            "== 0 mismatches",
            f"after the rollback {n - match} of {n} probe responses differ from the "
            f"known-good predictions of version {known_good!r} ({how}){cause}",
        )

    def _summary(self, findings: Sequence[Finding], repeats: Sequence[_Repeat], good: str) -> str:
        bad = [f for f in findings if f.status >= Status.FAIL]
        if bad:
            more = f" (and {len(bad) - 1} more failed conditions)" if len(bad) > 1 else ""
            return bad[0].message + more
        failed = sum(r.failed for r in repeats)
        worst = max((r.all_s for r in repeats), default=math.nan)
        return (
            f"rolled back to version {good!r} {len(repeats)} times under load with {failed} "
            f"failed requests; every response came from {good!r} within {_ms(worst)} of the "
            "command in the slowest rollback"
        )


def _ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    return f"{seconds * 1e3:.3g} ms"
