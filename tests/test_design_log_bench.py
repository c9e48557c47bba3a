"""The design log benchmark works at a small size: every proof it times verifies. Speed is printed, never asserted."""

from __future__ import annotations

import pytest

from bench import design_log


@pytest.mark.slow
def test_design_log_bench_proves_every_random_record_it_times() -> None:
    result = design_log.measure(design_log.Options(records=1_000, proofs=30))

    assert result.records == 1_020 and result.failed_proofs == 0
    assert result.inclusion.count == result.published.count == 30
    printed = design_log.report(result).render()
    assert "hashing the leaf" in printed and "under 10 ms" in printed
