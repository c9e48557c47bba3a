"""The delivery-queue benchmark works at a small size and its checks hold; its speed is printed, never asserted."""

from __future__ import annotations

import pytest

from bench import queue


@pytest.mark.slow
def test_queue_bench_puts_every_waiting_backer_in_line_once_and_shows_the_moved_batchs_month() -> None:
    result = queue.measure(queue.Options(backers=3_000, shipped=50, runs=1))

    checks = result.checks
    assert checks.problems == []
    assert checks.queued == checks.waiting > 0 and result.batches >= 1
    assert checks.moved_month == checks.expected_month
    printed = queue.report(result).render()
    assert "change + recompute" in printed and "problems" in printed
