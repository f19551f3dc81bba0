"""`RollbackCheck`'s reference predictions: how each version answers the probes.

The check tells the known-good version's responses from the candidate's by version label
*and* outputs, so before the first deploy it records both versions' outputs for every
probe: offline ones the user gives (`given_references`) or answers asked of the endpoint
by version name (`references`), and, with offline known-good predictions, confirms that
the live version gives them (`check_live_known_good`). A step that cannot be done raises
`StepFailed`, which the check turns into a FAIL finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlchecks._deadline import Deadline
from mlchecks.checks._rollback_repeat import Attribution, short
from mlchecks.checks._session import Session

__all__ = ["StepFailed", "check_live_known_good", "given_references", "references"]


class StepFailed(Exception):
    """A step of the procedure failed; carries the finding's name and message."""

    def __init__(
        self, name: str, message: str, observed: float | None = None, limit: str = ""
    ) -> None:
        super().__init__(message)
        self.name, self.message, self.observed, self.limit = name, message, observed, limit


def references(
    session: Session, probes: Sequence[Any], version: str, *, required: bool = True
) -> list[Any]:
    """``version``'s outputs for every probe, asked for by name (bypassing live routing).

    The known-good version must answer every probe. The candidate may fail some (a buggy
    candidate is the canary's business, not the rollback's): those probes get ``None``
    and are recognised by the version label alone.
    """
    refs = []
    for i, probe in enumerate(probes):
        response = session.send(probe, version)
        if not response.ok and required:
            raise StepFailed(
                "references",
                f"version {version!r} could not answer probe {i} to record its "
                f"predictions: {response.error}",
            )
        refs.append(response.outputs if response.ok else None)
    return refs


def given_references(
    source: Any, name: str, probes: Sequence[Any], deadline: Deadline
) -> list[Any] | None:
    """Offline references, one per probe (None: not given); a callable runs per probe."""
    if source is None:
        return None
    if not callable(source):
        return list(source)
    refs = []
    for i, probe in enumerate(probes):
        try:
            refs.append(deadline.call(source, probe, doing=f"{name} on probe {i}"))
        except Exception as exc:
            raise StepFailed(
                "references", f"{name} raised {type(exc).__name__} on probe {i}: {exc}"
            ) from exc
    return refs


def check_live_known_good(session: Session, probes: Sequence[Any], who: Attribution) -> None:
    """The live known-good version answers its offline predictions on every probe."""
    for i, probe in enumerate(probes):
        response = session.send(probe)
        if not who.is_good(response, i):
            got = response.error or (
                f"outputs {short(response.outputs)} from version {response.version!r}"
            )
            raise StepFailed(
                "references",
                f"the live version {who.known_good!r} does not answer "
                f"known_good_predictions on probe {i} (got {got}; expected "
                f"{short(who.good_refs[i])}): the offline predictions or the "
                "version live before the rollback are not the known-good ones",
            )
