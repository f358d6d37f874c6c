"""The chaos soak of `make soak`, for 30 seconds of `make test` (tests/soak.py; `make soak` runs 10 minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import run_soak

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

# Long enough for several faults of different kinds (one every 2-6 s) and their recoveries;
# CI's 10-minute budget is why it is not longer.
SOAK_SECONDS = 30


@pytest.mark.timeout(SOAK_SECONDS + 150)
async def test_random_faults_under_traffic_lose_nothing(tmp_path: Path) -> None:
    summary = await run_soak(tmp_path, seconds=SOAK_SECONDS)
    report = summary.table() + "".join(f"\nviolation: {v}" for v in summary.violations)
    print(report)
    assert summary.passed, report
    # A fault every 2-6 s, each followed by its recovery (up to ~4 s here): at worst one per
    # 10 s. Asking for more than the duration allows made a short run fail on a slow draw.
    assert sum(summary.faults.values()) >= SOAK_SECONDS // 10, report
    assert summary.acked > 0, report
