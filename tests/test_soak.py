"""The chaos soak of `make soak`, for one minute (tests/soak.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import run_soak

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

SOAK_SECONDS = 60


@pytest.mark.timeout(SOAK_SECONDS + 150)
async def test_a_minute_of_random_faults_under_traffic_loses_nothing(tmp_path: Path) -> None:
    summary = await run_soak(tmp_path, seconds=SOAK_SECONDS)
    report = summary.table() + "".join(f"\nviolation: {v}" for v in summary.violations)
    print(report)
    assert summary.passed, report
    assert sum(summary.faults.values()) >= 5, report
    assert summary.acked > 0, report
