from __future__ import annotations

import pytest

from mlchecks import Status
from mlchecks.demo import FAULTS
from mlchecks.demo.suite import build_suite


@pytest.fixture(scope="module")
def healthy() -> dict[str, Status]:
    result = build_suite(fault=None, seed=0).run(progress=False)
    return {r.check: r.status for r in result}


def wired_faults() -> list[str]:
    checks = {c.name for c in build_suite(fault=None, seed=0).checks}
    return sorted(name for name, fault in FAULTS.items() if fault.check in checks)


class TestDemoSuite:
    def test_healthy_system_passes_every_check(self, healthy: dict[str, Status]) -> None:
        """Without a fault every check of the demo suite passes."""
        assert dict.fromkeys(healthy, Status.PASS) == healthy

    def test_unknown_fault_is_rejected(self) -> None:
        """A typo in the fault name lists the known ones."""
        with pytest.raises(ValueError, match="nondeterministic_training"):
            build_suite(fault="no_such_fault")

    @pytest.mark.parametrize("fault", wired_faults())
    def test_fault_fails_its_check_only(self, fault: str, healthy: dict[str, Status]) -> None:
        """Each planted fault makes its intended check FAIL and leaves the others as they were."""
        result = build_suite(fault=fault, seed=0).run(progress=False)
        statuses = {r.check: r.status for r in result}
        target = FAULTS[fault].check
        assert Status.FAIL == statuses[target], str(result[target])
        others = {k: v for k, v in statuses.items() if k != target}
        assert {k: healthy[k] for k in others} == others
