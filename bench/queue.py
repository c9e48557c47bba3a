"""Benchmark 5, the delivery queue: every waiting backer's place in line and estimated ship month recomputed after a
batch's dates change.

    python -m bench.queue --backers 100000

The campaign is bench/fulfillment.py's (several products and tiers, a few pledges refunded or without a reward),
planned into batches by `plan_campaign`, every batch given dates; a few hundred packages have shipped and one pledge
in 211 was refunded after the plan. Timed: the maker moving one batch's ship date (`set_batch_dates`, committed; a
small move, so no mail), then `fulfillment.queue.delivery_queue` for the whole campaign, the figure the goal is about
(< 2 s for 100,000 backers), and `queue_place` of the last pledge in line, what a pledge page pays. The reference, in
the same run: the same rows read with no window and no order (`SELECT pledge_id, batch_id FROM allocations WHERE
campaign_id = ...`). After the clock: positions are 1..n with no gap, batches and estimates never go backwards along
the queue, every waiting pledge is in it once, and some 200 places asked alone (`queue_places`) equal the queue's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import BenchServices, Report, embedded_services, machine_description, ratio, say, verdict
from bench.fulfillment import Options as FulfillmentOptions
from bench.fulfillment import _set_up
from campaigns.models import Campaign, User
from fulfillment.batch_dates import set_batch_dates
from fulfillment.models import Batch, BatchSchedule
from fulfillment.queue import WHOLE_QUEUE_SQL, QueuePlace, delivery_queue, queue_place, queue_places
from fulfillment.service import plan_campaign
from service.database import create_engine, create_sessionmaker

GOAL_SECONDS = 2.0
FIRST_SHIP = date(2027, 3, 1)

WAITING_SQL = """
SELECT count(*) FROM allocations a JOIN pledges p ON p.id = a.pledge_id
WHERE a.campaign_id = :campaign AND p.status IN ('collected', 'partially_refunded')
  AND NOT EXISTS (SELECT FROM shipments s WHERE s.pledge_id = a.pledge_id)
"""
BARE_SQL = "SELECT pledge_id, batch_id FROM allocations WHERE campaign_id = :campaign"


@dataclass(frozen=True)
class Options:
    backers: int = 100_000
    shipped: int = 300  # packages of the first batch already shipped
    runs: int = 5


@dataclass
class Checks:
    waiting: int = 0  # pledges that must be in the queue
    queued: int = 0
    gaps: int = 0  # positions not 1..n in order
    batch_backwards: int = 0
    month_backwards: int = 0
    moved_month: str | None = None  # the moved batch's estimate after the change
    expected_month: str = ""
    places_checked: int = 0  # pledges whose place was also asked one by one (queue_places)
    places_differing: int = 0  # ... and came out different from the whole queue's

    @property
    def problems(self) -> list[str]:
        found: list[str] = []
        if self.queued != self.waiting:
            found.append(f"{self.queued} in the queue for {self.waiting} waiting pledges")
        if self.gaps or self.batch_backwards or self.month_backwards:
            found.append(f"{self.gaps} gaps, {self.batch_backwards} batch and {self.month_backwards} month reversals")
        if self.places_differing:
            found.append(f"{self.places_differing} of {self.places_checked} places asked alone differ from the queue's")
        if self.moved_month != self.expected_month:
            found.append(f"the moved batch shows {self.moved_month}, not {self.expected_month}")
        return found


@dataclass
class QueueResult:
    options: Options
    batches: int
    change_seconds: float
    queue_seconds: list[float]  # delivery_queue: computed, fetched, made into QueuePlace objects
    server_seconds: list[float]  # the same statement counted in the server: PostgreSQL's part alone
    bare_seconds: list[float]
    one_seconds: list[float]  # queue_place of the last pledge in line: what a pledge page or GET /pledges/{id} pays
    checks: Checks = field(default_factory=Checks)

    @property
    def queue_median(self) -> float:
        return statistics.median(self.queue_seconds)

    @property
    def bare_median(self) -> float:
        return statistics.median(self.bare_seconds)


def measure(options: Options) -> QueueResult:
    with embedded_services("queue") as services:
        return asyncio.run(_measure(services, options))


async def _measure(services: BenchServices, options: Options) -> QueueResult:
    engine = create_engine(services.settings.database_url, pool_size=2, max_overflow=0)
    sessions = create_sessionmaker(engine)
    try:
        campaign_id, _ = await _set_up(engine, FulfillmentOptions(backers=options.backers))
        say("planning")
        async with sessions.begin() as session:
            await plan_campaign(session, campaign_id)
        batches = await _dates_and_shipments(engine, campaign_id, options)
        async with engine.connect() as connection:
            # What autovacuum does after planning writes the allocations: without it PostgreSQL plans for a handful.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))
        async with sessions() as session:
            await delivery_queue(session, campaign_id)  # warms the cache, as the pages' reads will have
        say(f"moving batch {batches} by a week, then the queue of every backer, {options.runs} runs")
        started = time.perf_counter()
        async with sessions.begin() as session:
            maker = await session.scalar(
                select(User).join(Campaign, Campaign.maker_id == User.id).where(Campaign.id == campaign_id)
            )
            assert maker is not None
            last = await session.scalar(
                select(Batch.id).where(Batch.campaign_id == campaign_id, Batch.number == batches)
            )
            assert last is not None
            moved_to = _ship_on(batches) + timedelta(days=7)
            await set_batch_dates(
                session,
                campaign_id,
                last,
                maker,
                production_on=moved_to - timedelta(days=30),
                ship_on=moved_to,
                reason="The benchmark moves it",
            )
        change_seconds = time.perf_counter() - started
        queue_seconds, server_seconds, bare_seconds, queue = [], [], [], []
        for _ in range(options.runs):
            started = time.perf_counter()
            async with sessions() as session:
                queue = await delivery_queue(session, campaign_id)
            queue_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with engine.connect() as connection:
                counted = text(f"SELECT count(*) FROM ({WHOLE_QUEUE_SQL}) AS q")
                await connection.execute(counted, {"campaign_id": campaign_id})
            server_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with engine.connect() as connection:
                (await connection.execute(text(BARE_SQL), {"campaign": campaign_id})).all()
            bare_seconds.append(time.perf_counter() - started)
        one_seconds = []
        for _ in range(options.runs):
            started = time.perf_counter()
            async with sessions() as session:
                await queue_place(session, campaign_id, queue[-1].pledge_id)
            one_seconds.append(time.perf_counter() - started)
        checks = await _check(engine, campaign_id, queue, batches, moved_to)
        async with sessions() as session:
            sample = queue[:: max(1, len(queue) // 200)] + queue[-1:]
            places = await queue_places(session, campaign_id, [place.pledge_id for place in sample])
        checks.places_checked = len(sample)
        checks.places_differing = sum(places.get(place.pledge_id) != place for place in sample)
    finally:
        await engine.dispose()
    return QueueResult(
        options, batches, change_seconds, queue_seconds, server_seconds, bare_seconds, one_seconds, checks
    )


def _ship_on(number: int) -> date:
    return FIRST_SHIP + timedelta(days=45 * (number - 1))


async def _dates_and_shipments(engine: AsyncEngine, campaign_id: uuid.UUID, options: Options) -> int:
    """Dates for every batch, 45 days apart; the first `shipped` packages of batch 1 shipped; one pledge in 211
    refunded after the plan."""
    async with engine.begin() as connection:
        numbers = list(
            await connection.scalars(
                select(Batch.number).where(Batch.campaign_id == campaign_id).order_by(Batch.number)
            )
        )
        await connection.execute(
            insert(BatchSchedule),
            [
                {"campaign_id": campaign_id, "number": n, "production_on": _ship_on(n) - timedelta(days=30),
                 "ship_on": _ship_on(n), "announced_ship_on": _ship_on(n)}
                for n in numbers
            ],
        )  # fmt: skip
        await connection.execute(
            text(
                """
                INSERT INTO shipments (pledge_id, campaign_id, carrier, tracking_number)
                SELECT a.pledge_id, a.campaign_id, 'SF', 'SF' || row_number() OVER ()
                FROM allocations a JOIN batches b ON b.id = a.batch_id
                WHERE a.campaign_id = :campaign AND b.number = 1
                LIMIT :shipped
                """
            ),
            {"campaign": campaign_id, "shipped": options.shipped},
        )
        # Refunds after the plan: their packages leave the queue but keep their allocations.
        await connection.execute(
            text(
                """
                UPDATE pledges p SET status = 'refunded' FROM allocations a
                WHERE a.pledge_id = p.id AND a.campaign_id = :campaign AND p.number % 211 = 0
                """
            ),
            {"campaign": campaign_id},
        )
    return len(numbers)


async def _check(
    engine: AsyncEngine, campaign_id: uuid.UUID, queue: Sequence[QueuePlace], moved: int, moved_to: date
) -> Checks:
    checks = Checks(expected_month=moved_to.strftime("%Y-%m"))
    async with engine.connect() as connection:
        checks.waiting = (await connection.execute(text(WAITING_SQL), {"campaign": campaign_id})).scalar_one()
    checks.queued = len({place.pledge_id for place in queue})
    previous: QueuePlace | None = None
    for index, place in enumerate(queue, start=1):
        checks.gaps += place.position != index
        if previous is not None:
            checks.batch_backwards += place.batch < previous.batch
            checks.month_backwards += (place.estimated_ship_month or "") < (previous.estimated_ship_month or "")
        if place.batch == moved:
            checks.moved_month = place.estimated_ship_month
        previous = place
    return checks


def report(result: QueueResult) -> Report:
    options, checks = result.options, result.checks
    out = Report(f"Delivery queue: {options.backers:,} backers, {result.batches} batches")
    out.section("Machine").append(("cpu", machine_description()))
    rows = out.section("A batch's ship date moves, then every backer's place and estimate (delivery_queue)")
    rows.append(("waiting pledges in the queue", f"{checks.queued:,}  ({options.shipped} already shipped)"))
    rows.append(("set_batch_dates, committed", f"{result.change_seconds * 1000:.1f} ms"))
    median = result.queue_median
    runs = ", ".join(f"{s * 1000:.0f}" for s in result.queue_seconds)
    rows.append(("queue recomputed, median", f"{median * 1000:.1f} ms  (runs: {runs} ms)"))
    total = result.change_seconds + median
    rows.append(("change + recompute", f"{total:.2f} s  (goal < {GOAL_SECONDS:g} s: {verdict(total < GOAL_SECONDS)})"))
    server = statistics.median(result.server_seconds)
    rows.append(("the same, computed in PostgreSQL only, median", f"{server * 1000:.1f} ms"))
    rows.append(
        ("one pledge's place (its page, its JSON), median", f"{statistics.median(result.one_seconds) * 1000:.1f} ms")
    )
    rows.append(("places/s", f"{checks.queued / median:,.0f}/s" if median > 0 else "n/a"))
    rows = out.section("Reference, the same run: the same allocations read with no window and no order")
    rows.append(("bare read, median", f"{result.bare_median * 1000:.1f} ms"))
    rows.append(("queue vs bare read", ratio(median, result.bare_median)))
    rows = out.section("Correctness")
    rows.append(("positions 1..n, batches and months in order", f"{checks.gaps} gaps, {checks.batch_backwards} + "
                 f"{checks.month_backwards} reversals"))  # fmt: skip
    agreeing = checks.places_checked - checks.places_differing
    rows.append(("places asked alone, as the whole queue gives them", f"{agreeing} of {checks.places_checked}"))
    rows.append(("moved batch's estimate", f"{checks.moved_month} (expected {checks.expected_month})"))
    problems = checks.problems
    rows.append(("PROBLEMS" if problems else "problems", "; ".join(problems) or "none"))
    return out


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.queue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backers", type=int, default=100_000, help="backers, one pledge each (default 100000)")
    parser.add_argument("--shipped", type=int, default=300, help="packages of batch 1 already shipped (default 300)")
    parser.add_argument("--runs", type=int, default=5, help="timed recomputations (default 5)")
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    result = measure(parse_options(argv))
    print(report(result).render())
    return 1 if result.checks.problems else 0


if __name__ == "__main__":
    sys.exit(main())
