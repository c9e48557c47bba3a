"""The benchmarks work: each runs at a small size and its figures are correct. Speed is never asserted here; the
benchmarks print it (`make bench`)."""

from __future__ import annotations

import pytest

from bench import close, fulfillment, launch_rush, page


@pytest.mark.slow
def test_launch_rush_runs_small() -> None:
    options = launch_rush.Options(
        clients=8, slots=12, attempts=24, workers=1, seconds=0.5, rounds=1, reference_backers=300, stripe_probes=3
    )

    result = launch_rush.measure(options)

    # one round of each kind, plain first; with lines each pledge is a tier plus a limited add-on whose units run
    # out with the slots
    assert [(each.number, each.lines) for each in result.rounds] == [(1, False), (1, True)]
    for each in result.rounds:
        rushed = each.rush
        assert rushed.oversold == 0
        assert rushed.created_count == options.slots, rushed.problem_types
        assert rushed.refused_count == options.total_attempts - options.slots
        assert set(rushed.problem_types) == {"409 sold-out"}
        assert rushed.stripe_idle.customer and rushed.stripe_idle.setup_intent
        reservation = each.reservation
        assert reservation.reservations > 0 and reservation.oversold == 0 and reservation.timed_out == 0
    unpooled = result.reservation_unpooled
    assert unpooled.reservations > 0 and unpooled.oversold == 0 and unpooled.timed_out == 0
    assert result.pgbench.clean and result.pgbench_at_pool.clean
    printed = launch_rush.report(result).render()
    assert "oversold (must be 0)" in printed and "pgbench" in printed
    assert "round 1, line items / plain" in printed and "median, line items" in printed
    assert "reservations with line items vs plain" in printed


@pytest.mark.slow
def test_fulfillment_bench_plans_every_pledge_once_and_lists_every_addressed_package() -> None:
    result = fulfillment.measure(fulfillment.Options(backers=12_000, aggregate_runs=1))

    checks = result.checks
    assert checks.problems == []
    assert result.batches >= 2  # the benchmark's products close batches
    assert checks.allocated == checks.paid_with_reward > 0
    assert checks.allocated_twice == 0 and checks.allocated_wrongly == 0
    assert checks.csv_rows == checks.csv_distinct == checks.addressed > 0
    assert checks.units_by_sku == checks.aggregate_by_sku
    assert {"SENSOR-BLK", "SENSOR-WHT", "CABLE", "CASE"} <= set(checks.units_by_sku)  # colours chosen, add-ons added
    assert "SENSOR" not in checks.units_by_sku
    assert checks.rerun is not None and checks.rerun.written == 0 and checks.rerun.kept == result.batches
    printed = fulfillment.report(result).render()
    assert "vs aggregate" in printed and "problems" in printed


@pytest.mark.slow
def test_page_bench_serves_the_campaign_page_and_the_api_and_the_bare_endpoint() -> None:
    options = page.Options(seconds=1, clients=4, workers=1, backers=200, warm_up_seconds=0.5)

    result = page.measure(options)

    assert result.problems() == []
    for target in (result.bare, result.api, result.page):
        assert target.latencies and set(target.statuses) == {200}
    assert f"<h1>{result.data.title}</h1>".encode() in result.page.body
    printed = page.report(result).render()
    assert "page vs bare endpoint" in printed


@pytest.mark.slow
def test_campaign_close_runs_small() -> None:
    options = close.Options(pledges=30, rate=20, sweep_seconds=1, ceiling_seconds=0.5, clients=4, timeout_seconds=120)

    result = close.measure(options)

    checked = result.correctness
    assert checked.campaign_status == "funded"
    assert checked.charged_once == options.pledges and checked.never_charged == checked.charged_twice_or_more == 0
    assert checked.attempts_per_pledge == {1: options.pledges} and checked.intent_mismatches == 0
    assert checked.collected == options.pledges and checked.exactly_once
    assert checked.ledger_balanced, checked.ledger_sums
    assert checked.collected_booked == checked.charged_at_stripe == options.pledges * close.PLEDGE_AMOUNT
    assert result.charged == options.pledges
    assert result.ceiling.before.created > 0 and result.ceiling.after.created > 0
    printed = close.report(result).render()
    assert "charged exactly once" in printed and "ledger balanced" in printed
