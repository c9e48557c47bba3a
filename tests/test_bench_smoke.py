"""The benchmarks work: each runs at a small size and its figures are correct. Speed is never asserted here; the
benchmarks print it (`make bench`)."""

from __future__ import annotations

import pytest

from bench import launch_rush


@pytest.mark.slow
def test_launch_rush_runs_small() -> None:
    options = launch_rush.Options(clients=10, slots=20, attempts=40, seconds=1, reference_backers=2_000)

    result = launch_rush.measure(options)

    rushed = result.rush
    assert rushed.oversold == 0
    assert rushed.created_count == options.slots, rushed.problem_types
    assert rushed.refused_count == options.total_attempts - options.slots
    assert set(rushed.problem_types) == {"409 sold-out"}
    assert rushed.stripe_idle.customer and rushed.stripe_idle.setup_intent
    assert result.pgbench.clean and result.pgbench_at_pool.clean
    for reservation in (result.reservation, result.reservation_unpooled):
        assert reservation.reservations > 0 and reservation.oversold == 0 and reservation.timed_out == 0
    printed = launch_rush.report(result).render()
    assert "oversold (must be 0)" in printed and "pgbench" in printed
