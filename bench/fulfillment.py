"""Benchmark 3, fulfillment: a funded campaign of many backers planned into manufacturing batches, every shipping list
exported.

    python -m bench.fulfillment --backers 100000

The campaign has several products (different batch sizes and overages) and tiers bundling them; most backers have
given an address, a few pledged without a reward, a few were refunded. The sensor board comes in black or white and
backers chose one or the other; one backer with a reward in three added two spare cables, one in seven a case
(add-ons), so the plan counts variant SKUs and add-on lines (`--no-extras`: the plain campaign of earlier runs).
Timed: `fulfillment.service.plan_campaign` (read the paid pledges, plan, write the batches and allocations, commit),
then `fulfillment.shipments.shipping_list_csv` for every batch, written to files. The reference, in the same run: the
bare aggregate a planner cannot do without, `SELECT sku, sum(quantity) ... GROUP BY sku` over the same pledges' lines
and tiers, each variant chosen counted under its own SKU. After the clock: the plan is checked (every paid pledge with
a reward in exactly one batch, units per SKU equal to the aggregate, no batch over its batch size, every addressed
package on exactly one list), planned again (nothing may change), and planned anew under tracemalloc for the peak of
Python's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import resource
import statistics
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bench.common import (
    BACKER_ID_SQL,
    BenchServices,
    Report,
    embedded_services,
    insert_backers,
    machine_description,
    ratio,
    say,
    verdict,
)
from campaigns.models import AddOn, Campaign, Product, ProductVariant, Space, Tier, User
from fulfillment.models import Batch
from fulfillment.service import PlanOutcome, plan_campaign
from fulfillment.shipments import shipping_list_csv
from fulfillment.shipping_csv import COLUMNS
from service.database import create_engine, create_sessionmaker

GOAL_SECONDS = 5.0
GOAL_RATIO = 3.0

# (sku, name, weight in grams, batch size, overage in basis points)
PRODUCTS = (
    ("SENSOR", "Sensor board", 120, 5_000, 200),
    ("CASE", "Aluminium case", 300, 2_000, 100),
    ("CABLE", "USB-C cable", 40, 20_000, 0),
)
# (title, price, items): the n-th pledge takes tier n % 4
TIERS = (
    ("Board", 9_900, [{"sku": "SENSOR", "quantity": 1}]),
    ("Board and case", 14_900, [{"sku": "SENSOR", "quantity": 1}, {"sku": "CASE", "quantity": 1}]),
    ("Two boards", 18_900, [{"sku": "SENSOR", "quantity": 2}, {"sku": "CABLE", "quantity": 3}]),
    ("Cable", 1_900, [{"sku": "CABLE", "quantity": 1}]),
)
COUNTRIES = ("CN", "US", "DE", "JP", "FR", "GB", "SG")
# The sensor board's option, and its variants' SKUs.
SENSOR_COLOURS = {"black": "SENSOR-BLK", "white": "SENSOR-WHT"}
# (product's sku, price, quantity, every n-th pledge with a reward takes it)
ADD_ONS = (("CABLE", 1_900, 2, 3), ("CASE", 4_900, 1, 7))
SHIPPABLE = "('collected', 'partially_refunded')"

# Each pledge's lines, as pricing writes them: its tier (the amount less the fee), and the fee. A pledge without a
# reward is all bonus. With `:sensor` (the sensor board's product id, as text), a tier line whose bundle holds the
# board names the colour chosen: black for odd pledge numbers, white for even.
PLEDGE_LINES_SQL = """
INSERT INTO pledge_items (id, pledge_id, position, kind, ref_id, quantity, unit_amount, variant)
SELECT gen_random_uuid(), p.id, line.position, line.kind, CASE WHEN line.kind = 'tier' THEN p.tier_id END, 1,
       CASE line.kind WHEN 'shipping' THEN p.shipping_fee WHEN 'tier' THEN p.amount - p.shipping_fee ELSE p.amount END,
       CASE WHEN line.kind = 'tier' AND CAST(:sensor AS text) IS NOT NULL
                 AND t.items @> '[{"sku": "SENSOR"}]'::jsonb
            THEN jsonb_build_object(
                CAST(:sensor AS text),
                jsonb_build_object('colour', CASE WHEN p.number % 2 = 1 THEN 'black' ELSE 'white' END))
            ELSE '{}'::jsonb END
FROM pledges p
LEFT JOIN tiers t ON t.id = p.tier_id
CROSS JOIN LATERAL (VALUES (0, CASE WHEN p.tier_id IS NULL THEN 'bonus' ELSE 'tier' END), (1, 'shipping'))
    AS line (position, kind)
WHERE p.campaign_id = :campaign AND (line.kind <> 'shipping' OR p.tier_id IS NOT NULL)
"""

# One add-on's lines, on every `:every`-th pledge with a reward (positions after the tier and the shipping), and the
# pledges' amounts grown by as much.
ADD_ON_LINES_SQL = """
WITH added AS (
    INSERT INTO pledge_items (id, pledge_id, position, kind, ref_id, add_on_id, sku, quantity, unit_amount)
    SELECT gen_random_uuid(), p.id, :position, 'addon', a.product_id, a.id, :sku, :quantity, a.price
    FROM pledges p JOIN add_ons a ON a.id = :add_on
    WHERE p.campaign_id = :campaign AND p.tier_id IS NOT NULL AND p.number % :every = 0
    RETURNING pledge_id, quantity * unit_amount AS amount
)
UPDATE pledges p SET amount = p.amount + added.amount FROM added WHERE p.id = added.pledge_id
"""

# Over the lines the planner reads: units per SKU of every paid pledge, a tier's bundle with the chosen variant's SKU
# in place of its product's, and each add-on line's SKU.
AGGREGATE_SQL = f"""
WITH goods AS (
    SELECT i.kind, i.ref_id, i.sku, i.variant, i.quantity
    FROM pledge_items i JOIN pledges p ON p.id = i.pledge_id
    WHERE p.campaign_id = :campaign AND p.status IN {SHIPPABLE} AND i.kind IN ('tier', 'addon')
)
SELECT sku, sum(units) AS units FROM (
    SELECT coalesce(v.sku, item->>'sku') AS sku, (item->>'quantity')::int * g.quantity AS units
    FROM goods g
    JOIN tiers t ON t.id = g.ref_id AND g.kind = 'tier'
    CROSS JOIN LATERAL jsonb_array_elements(t.items) AS item
    LEFT JOIN products pr ON pr.campaign_id = :campaign AND pr.sku = item->>'sku'
    LEFT JOIN product_variants v ON v.product_id = pr.id AND v.choice = g.variant -> pr.id::text
    UNION ALL
    SELECT g.sku, g.quantity FROM goods g WHERE g.kind = 'addon'
) AS lines
GROUP BY sku
"""


# The floors: what PostgreSQL alone takes to write the same allocations (all in one batch, rolled back) and to write
# the same packages out as CSV.
BARE_WRITE_SQL = f"""
INSERT INTO allocations (pledge_id, campaign_id, batch_id, list_batch_id)
SELECT p.id, p.campaign_id, :batch, CASE WHEN jsonb_typeof(p.address) = 'object' THEN CAST(:batch AS uuid) END
FROM pledges p JOIN tiers t ON t.id = p.tier_id
WHERE p.campaign_id = :campaign AND p.status IN {SHIPPABLE} AND jsonb_array_length(t.items) > 0
"""
BARE_EXPORT_SQL = f"""
SELECT p.id, p.address->>'name', p.address->>'line1', p.address->>'line2', p.address->>'city',
       p.address->>'region', p.address->>'postal_code', p.address->>'country', p.address->>'phone',
       t.items::text, 0
FROM pledges p JOIN allocations a ON a.pledge_id = p.id JOIN tiers t ON t.id = p.tier_id
WHERE a.list_batch_id = $1 AND p.status IN {SHIPPABLE}
ORDER BY p.address->>'country', p.number
"""


@dataclass(frozen=True)
class Options:
    backers: int = 100_000
    # every `unaddressed_every`-th pledge has no address, every `no_reward_every`-th no tier, every
    # `refunded_every`-th was refunded (0: none)
    unaddressed_every: int = 10
    no_reward_every: int = 50
    refunded_every: int = 97
    extras: bool = True  # the sensor's colours and the add-ons
    aggregate_runs: int = 5
    keep: bool = False


# Results


@dataclass
class Checks:
    """What must hold of the plan and the lists, whatever the speed."""

    paid_with_reward: int = 0  # pledges that must be in a batch
    allocated: int = 0  # allocations written
    allocated_twice: int = 0  # pledges in more than one batch (the primary key makes this 0)
    allocated_wrongly: int = 0  # allocations of pledges that must not be in a batch
    addressed: int = 0  # paid pledges with a reward and an address: one package each
    csv_rows: int = 0  # packages in all the shipping lists together
    csv_distinct: int = 0  # distinct pledges in them
    units_by_sku: dict[str, int] = field(default_factory=dict)  # summed over the batches
    aggregate_by_sku: dict[str, int] = field(default_factory=dict)  # the reference's answer
    over_batch_size: list[str] = field(default_factory=list)  # "batch 3: SENSOR 5012 > 5000"
    rerun: PlanOutcome | None = None  # planning again without a change

    @property
    def problems(self) -> list[str]:
        found: list[str] = []
        if self.allocated != self.paid_with_reward:
            found.append(f"{self.allocated} allocations for {self.paid_with_reward} paid pledges with a reward")
        if self.allocated_twice or self.allocated_wrongly:
            found.append(f"{self.allocated_twice} pledges in two batches, {self.allocated_wrongly} wrongly allocated")
        if self.csv_rows != self.addressed or self.csv_distinct != self.addressed:
            found.append(f"{self.csv_rows} CSV rows ({self.csv_distinct} distinct) for {self.addressed} addressed")
        if self.units_by_sku != self.aggregate_by_sku:
            found.append(f"batch units {self.units_by_sku} != aggregate {self.aggregate_by_sku}")
        found.extend(self.over_batch_size)
        if self.rerun is None or self.rerun.written:
            found.append(f"planning again changed the plan: {self.rerun}")
        return found


@dataclass
class FulfillmentResult:
    options: Options
    pledges: int  # rows in the campaign's pledges table
    batches: int
    plan_seconds: float
    export_seconds: float
    csv_bytes: int
    aggregate_seconds: list[float]
    bare_write_seconds: float  # INSERT ... SELECT of the same allocations, no Python
    bare_export_seconds: float  # COPY (SELECT the same packages) TO STDOUT CSV, per batch, no Python
    rss_before_kib: int
    rss_after_kib: int
    traced_peak_bytes: int  # Python's peak during a second plan-and-export under tracemalloc
    checks: Checks

    @property
    def total_seconds(self) -> float:
        return self.plan_seconds + self.export_seconds

    @property
    def aggregate_median(self) -> float:
        return statistics.median(self.aggregate_seconds)


# The run


def measure(options: Options) -> FulfillmentResult:
    """Start the services, set up the data, plan and export, run the reference; the figures, unprinted."""
    with embedded_services("fulfillment", keep=options.keep) as services:
        return asyncio.run(_measure(services, options))


async def _measure(services: BenchServices, options: Options) -> FulfillmentResult:
    engine = create_engine(services.settings.database_url, pool_size=2, max_overflow=0)
    sessions = create_sessionmaker(engine)
    out = services.root / "lists"
    out.mkdir()
    try:
        campaign_id, pledges = await _set_up(engine, options)
        aggregate = await _aggregate(engine, campaign_id, runs=1)  # warms the cache, as the planner's reads will be
        bare_write = await _bare_write(engine, campaign_id)
        rss_before = _rss_kib()
        say(f"planning {pledges} pledges")
        started = time.perf_counter()
        async with sessions.begin() as session:
            await plan_campaign(session, campaign_id)
        planned = time.perf_counter()
        say(f"planned in {planned - started:.2f}s; exporting the shipping lists")
        csv_bytes = await _export(sessions, campaign_id, out)
        exported = time.perf_counter()
        rss_after = _rss_kib()
        say(f"exported in {exported - planned:.2f}s; the reference aggregate, {options.aggregate_runs} runs")
        aggregate = await _aggregate(engine, campaign_id, runs=options.aggregate_runs)
        checks = await _check(engine, sessions, campaign_id, out, aggregate[1])
        (services.root / "bare").mkdir()
        bare_export = await _bare_export(engine, campaign_id, services.root / "bare")
        batches = len(list(out.iterdir()))
        say("planning anew under tracemalloc")
        (services.root / "traced").mkdir()
        traced_peak = await _traced_run(sessions, campaign_id, services.root / "traced")
    finally:
        await engine.dispose()
    return FulfillmentResult(
        options=options,
        pledges=pledges,
        batches=batches,
        plan_seconds=planned - started,
        export_seconds=exported - planned,
        csv_bytes=csv_bytes,
        aggregate_seconds=aggregate[0],
        bare_write_seconds=bare_write,
        bare_export_seconds=bare_export,
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        traced_peak_bytes=traced_peak,
        checks=checks,
    )


async def _set_up(engine: AsyncEngine, options: Options) -> tuple[uuid.UUID, int]:
    say(f"inserting {options.backers} backers and their pledges")
    started = time.perf_counter()
    async with engine.begin() as connection:
        await insert_backers(connection, options.backers, tokens=False)
        campaign_id = await insert_funded_campaign(connection, extras=options.extras)
        tier_ids = list(
            await connection.scalars(
                select(Tier.id).where(Tier.campaign_id == campaign_id).order_by(Tier.position, Tier.price)
            )
        )
        pledges = await insert_paid_pledges(connection, campaign_id, tier_ids, options)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
    say(f"data ready in {time.perf_counter() - started:.1f}s")
    return campaign_id, pledges


async def insert_funded_campaign(connection: AsyncConnection, *, extras: bool = True) -> uuid.UUID:
    """A space, its maker and a funded campaign with PRODUCTS and TIERS; with `extras`, the sensor board in
    SENSOR_COLOURS and ADD_ONS."""
    suffix = uuid.uuid4().hex[:8]
    space_id, maker_id, campaign_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await connection.execute(
        insert(Space).values(
            id=space_id,
            name=f"Bench Space {suffix}",
            slug=f"bench-{suffix}",
            city="Shenzhen",
            country="CN",
            sponsor_fee_bps=300,
        )
    )
    await connection.execute(
        insert(User).values(id=maker_id, email=f"maker-{suffix}@bench.example", name="Maker", password_hash="x")
    )
    await connection.execute(
        insert(Campaign).values(
            id=campaign_id,
            slug=f"bench-fulfillment-{suffix}",
            title="Bench fulfillment",
            summary="A funded campaign made by the benchmark.",
            currency="CNY",
            goal=1_000_000,
            status="funded",
            space_id=space_id,
            maker_id=maker_id,
            duration_days=30,
            launched_at=text("now() - interval '40 days'"),
            ends_at=text("now() - interval '10 days'"),
            closed_at=text("now() - interval '10 days'"),
            packaging_weight_grams=80,
        )
    )
    await connection.execute(
        insert(Product),
        [
            {"campaign_id": campaign_id, "sku": sku, "name": name, "weight_grams": grams, "batch_size": size,
             "overage_bps": bps}
            for sku, name, grams, size, bps in PRODUCTS
        ],
    )  # fmt: skip
    await connection.execute(
        insert(Tier),
        [
            {"campaign_id": campaign_id, "title": title, "price": price, "items": items, "position": position,
             "shipping": [{"country": "*", "fee": 1_000}], "estimated_delivery": "2027-03"}
            for position, (title, price, items) in enumerate(TIERS)
        ],
    )  # fmt: skip
    if extras:
        found = await connection.execute(select(Product.sku, Product.id).where(Product.campaign_id == campaign_id))
        products = {sku: product_id for sku, product_id in found}
        await connection.execute(
            update(Product)
            .where(Product.id == products["SENSOR"])
            .values(options=[{"name": "colour", "values": list(SENSOR_COLOURS)}])
        )
        await connection.execute(
            insert(ProductVariant),
            [
                {"campaign_id": campaign_id, "product_id": products["SENSOR"], "choice": {"colour": colour},
                 "sku": sku, "position": position}
                for position, (colour, sku) in enumerate(SENSOR_COLOURS.items())
            ],
        )  # fmt: skip
        await connection.execute(
            insert(AddOn),
            [
                {"campaign_id": campaign_id, "product_id": products[sku], "price": price, "position": position,
                 "shipping": [{"country": "*", "fee": 0}]}
                for position, (sku, price, _quantity, _every) in enumerate(ADD_ONS)
            ],
        )  # fmt: skip
    return campaign_id


async def insert_paid_pledges(
    connection: AsyncConnection, campaign_id: uuid.UUID, tier_ids: Sequence[uuid.UUID], options: Options
) -> int:
    """One pledge per backer 1..backers, in one INSERT ... SELECT, numbered in backer order."""
    await connection.execute(
        text(
            f"""
            INSERT INTO pledges (id, campaign_id, backer_id, tier_id, status, amount, shipping_fee, currency,
                                 shipping_country, address, charged_at)
            SELECT gen_random_uuid(), :campaign, {BACKER_ID_SQL.format(n="n")},
                   CASE WHEN :no_reward > 0 AND n % :no_reward = 0 THEN NULL
                        ELSE (CAST(:tiers AS uuid[]))[1 + n % :tier_count] END,
                   CASE WHEN :refunded > 0 AND n % :refunded = 0 THEN 'refunded' ELSE 'collected' END,
                   10000, 1000, 'CNY', (CAST(:countries AS text[]))[1 + n % :country_count],
                   CASE WHEN :unaddressed > 0 AND n % :unaddressed = 0 THEN NULL ELSE jsonb_build_object(
                       'name', 'Backer ' || n, 'line1', n || ' Bench Road', 'line2', 'Unit ' || (n % 40),
                       'city', 'Shenzhen', 'region', 'Guangdong', 'postal_code', lpad((n % 99999)::text, 5, '0'),
                       'country', (CAST(:countries AS text[]))[1 + n % :country_count], 'phone', '+86 755 ' || n)
                   END,
                   now() - interval '10 days'
            FROM generate_series(1, CAST(:count AS bigint)) AS n
            ORDER BY n
            """
        ),
        {
            "campaign": campaign_id,
            "tiers": [str(t) for t in tier_ids],
            "tier_count": len(tier_ids),
            "countries": list(COUNTRIES),
            "country_count": len(COUNTRIES),
            "no_reward": options.no_reward_every,
            "refunded": options.refunded_every,
            "unaddressed": options.unaddressed_every,
            "count": options.backers,
        },
    )
    sensor = await connection.scalar(
        select(Product.id).where(Product.campaign_id == campaign_id, Product.sku == "SENSOR", Product.options != [])
    )
    await connection.execute(
        text(PLEDGE_LINES_SQL), {"campaign": campaign_id, "sensor": str(sensor) if sensor else None}
    )
    offered = select(Product.sku, AddOn.id).join(Product, Product.id == AddOn.product_id)
    add_ons = {sku: add_on for sku, add_on in await connection.execute(offered.where(AddOn.campaign_id == campaign_id))}
    for position, (sku, _price, quantity, every) in enumerate(ADD_ONS, start=2):
        if sku in add_ons:
            await connection.execute(
                text(ADD_ON_LINES_SQL),
                {"campaign": campaign_id, "add_on": add_ons[sku], "position": position, "sku": sku,
                 "quantity": quantity, "every": every},
            )  # fmt: skip
    return options.backers


async def _export(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID, out: Path) -> int:
    """Every batch's shipping list into `out/batch-<n>.csv`, as the download streams it; the bytes written."""
    written = 0
    async with sessions() as session:
        batches = (await session.execute(select(Batch.id, Batch.number).where(Batch.campaign_id == campaign_id))).all()
        for batch_id, number in sorted(batches, key=lambda row: row[1]):
            with (out / f"batch-{number:04d}.csv").open("w", encoding="utf-8", newline="") as file:
                async for part in shipping_list_csv(session, batch_id):
                    file.write(part)
                    written += len(part)
    return written


async def _aggregate(engine: AsyncEngine, campaign_id: uuid.UUID, *, runs: int) -> tuple[list[float], dict[str, int]]:
    """The reference: its wall time per run (each in its own transaction, as the planner's), and its answer."""
    seconds: list[float] = []
    answer: dict[str, int] = {}
    for _ in range(runs):
        started = time.perf_counter()
        async with engine.begin() as connection:
            rows = (await connection.execute(text(AGGREGATE_SQL), {"campaign": campaign_id})).all()
        seconds.append(time.perf_counter() - started)
        answer = {str(sku): int(units) for sku, units in rows}
    return seconds, answer


async def _bare_write(engine: AsyncEngine, campaign_id: uuid.UUID) -> float:
    """Seconds PostgreSQL takes to write the allocations by itself (into one batch, then rolled back)."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        batch = await connection.scalar(insert(Batch).values(campaign_id=campaign_id, number=1).returning(Batch.id))
        started = time.perf_counter()
        await connection.execute(text(BARE_WRITE_SQL), {"campaign": campaign_id, "batch": batch})
        seconds = time.perf_counter() - started
        await transaction.rollback()
    async with engine.connect() as connection:
        # what the rollback left (dead rows and index entries) would slow the planner down
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE allocations, batches, pledges"))
    return seconds


async def _bare_export(engine: AsyncEngine, campaign_id: uuid.UUID, out: Path) -> float:
    """Seconds PostgreSQL takes to write every batch's packages as CSV by itself (COPY ... TO STDOUT)."""
    async with engine.connect() as connection:
        batches = list(await connection.scalars(select(Batch.id).where(Batch.campaign_id == campaign_id)))
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        started = time.perf_counter()
        for number, batch_id in enumerate(batches, 1):
            await driver.copy_from_query(
                BARE_EXPORT_SQL, batch_id, output=str(out / f"{number}.csv"), format="csv", header=True
            )
        return time.perf_counter() - started


async def _check(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    campaign_id: uuid.UUID,
    out: Path,
    aggregate: dict[str, int],
) -> Checks:
    checks = Checks(aggregate_by_sku=aggregate)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    f"""
                    SELECT
                      count(*) FILTER (WHERE p.status IN {SHIPPABLE} AND jsonb_array_length(t.items) > 0),
                      count(*) FILTER (WHERE p.status IN {SHIPPABLE} AND jsonb_array_length(t.items) > 0
                                         AND jsonb_typeof(p.address) = 'object'),
                      (SELECT count(*) FROM allocations a WHERE a.campaign_id = :campaign),
                      (SELECT count(*) - count(DISTINCT a.pledge_id) FROM allocations a
                       WHERE a.campaign_id = :campaign),
                      (SELECT count(*) FROM allocations a JOIN pledges q ON q.id = a.pledge_id
                       WHERE a.campaign_id = :campaign AND (q.status NOT IN {SHIPPABLE} OR q.tier_id IS NULL))
                    FROM pledges p LEFT JOIN tiers t ON t.id = p.tier_id
                    WHERE p.campaign_id = :campaign
                    """
                ),
                {"campaign": campaign_id},
            )
        ).one()
        checks.paid_with_reward, checks.addressed, checks.allocated, checks.allocated_twice = row[:4]
        checks.allocated_wrongly = row[4]
        sizes = {sku: size for sku, _name, _grams, size, _bps in PRODUCTS}
        sizes |= {variant: sizes["SENSOR"] for variant in SENSOR_COLOURS.values()}
        units: Counter[str] = Counter()
        for number, batch_units, spares in await connection.execute(
            select(Batch.number, Batch.units, Batch.spares).where(Batch.campaign_id == campaign_id)
        ):
            for sku, count in batch_units.items():
                units[sku] += count
                if count + spares.get(sku, 0) > sizes[sku]:
                    checks.over_batch_size.append(f"batch {number}: {sku} {count} + {spares[sku]} > {sizes[sku]}")
        checks.units_by_sku = dict(units)
    checks.csv_rows, checks.csv_distinct = _count_packages(out)
    async with sessions.begin() as session:
        checks.rerun = await plan_campaign(session, campaign_id)
    return checks


def _count_packages(out: Path) -> tuple[int, int]:
    """Rows in every shipping list written to `out`, and how many distinct pledges they name."""
    rows, seen = 0, set()
    for path in sorted(out.iterdir()):
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.reader(file)
            if next(reader) != list(COLUMNS):
                raise AssertionError(f"{path.name}: not the shipping list's header")
            for record in reader:
                rows += 1
                seen.add(record[0])
    return rows, len(seen)


async def _traced_run(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID, out: Path) -> int:
    """Plan from nothing again (the planned batches deleted) and export, under tracemalloc: Python's peak in bytes."""
    async with sessions.begin() as session:
        await session.execute(delete(Batch).where(Batch.campaign_id == campaign_id))
    tracemalloc.start()
    try:
        async with sessions.begin() as session:
            await plan_campaign(session, campaign_id)
        await _export(sessions, campaign_id, out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# The figures


def report(result: FulfillmentResult) -> Report:
    options, checks = result.options, result.checks
    out = Report(f"Fulfillment: {options.backers:,} backers, {result.batches} batches")
    out.section("Machine").append(("cpu", machine_description()))

    rows = out.section("Plan and export (plan_campaign, then shipping_list_csv of every batch)")
    rows.append(("pledges in the campaign", f"{result.pledges:,}"))
    rows.append(("allocations written", f"{checks.allocated:,}"))
    rows.append(("packages exported", f"{checks.csv_rows:,} in {result.batches} lists, {result.csv_bytes:,} chars"))
    rows.append(("plan (read, plan, write, commit)", f"{result.plan_seconds:.2f} s"))
    rows.append(("export (every shipping list)", f"{result.export_seconds:.2f} s"))
    total = result.total_seconds
    rows.append(("total", f"{total:.2f} s  (goal < {GOAL_SECONDS:g} s: {verdict(total < GOAL_SECONDS)})"))
    rows.append(("pledges/s, plan", _rate(result.pledges, result.plan_seconds)))
    rows.append(("packages/s, export", _rate(checks.csv_rows, result.export_seconds)))
    rows.append(("pledges/s, plan and export", _rate(result.pledges, total)))
    rows.append(
        (
            "peak RSS (resource)",
            f"{result.rss_after_kib / 1024:.0f} MiB  (before planning {result.rss_before_kib / 1024:.0f} MiB)",
        )
    )
    rows.append(("peak Python heap (tracemalloc)", f"{result.traced_peak_bytes / 2**20:.1f} MiB  (a second run)"))

    rows = out.section("Reference, the same run: SELECT sku, sum(quantity) ... GROUP BY sku over the same pledges")
    median = result.aggregate_median
    rows.append(("aggregate, median", f"{median * 1000:.1f} ms  (runs: {_runs(result.aggregate_seconds)})"))
    rows.append(("rows/s, aggregate", _rate(result.pledges, median)))
    met = total <= GOAL_RATIO * median
    rows.append(("plan and export vs aggregate", f"{ratio(total, median)}  (goal ≤ {GOAL_RATIO:g}×: {verdict(met)})"))
    rows.append(("plan alone vs aggregate", ratio(result.plan_seconds, median)))
    rows = out.section("Floors, the same run: the same rows written and exported by PostgreSQL alone, no Python")
    rows.append(
        ("INSERT ... SELECT of the allocations", f"{result.bare_write_seconds:.2f} s  (3 foreign keys checked per row)")
    )
    rows.append(("plan vs that write", ratio(result.plan_seconds, result.bare_write_seconds)))
    rows.append(("COPY (SELECT ...) TO STDOUT CSV, every batch", f"{result.bare_export_seconds:.2f} s"))
    rows.append(("export vs that COPY", ratio(result.export_seconds, result.bare_export_seconds)))

    rows = out.section("Correctness")
    rows.append(("paid pledges with a reward", f"{checks.paid_with_reward:,}, each in exactly one batch"))
    rows.append(("addressed packages = CSV rows", f"{checks.addressed:,} = {checks.csv_rows:,}"))
    rows.append(("units per SKU = aggregate", str(checks.units_by_sku == checks.aggregate_by_sku)))
    rows.append(("planning again", str(checks.rerun)))
    problems = checks.problems
    rows.append(("PROBLEMS" if problems else "problems", "; ".join(problems) or "none"))
    return out


def _rate(count: int, seconds: float) -> str:
    return "n/a" if seconds <= 0 else f"{count / seconds:,.0f}/s"


def _runs(seconds: Sequence[float]) -> str:
    return ", ".join(f"{s * 1000:.0f}" for s in seconds) + " ms"


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.fulfillment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backers", type=int, default=100_000, help="backers, one pledge each (default 100000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the shipping lists)")
    parser.add_argument(
        "--no-extras",
        dest="extras",
        action="store_false",
        help="no colours and no add-ons: the campaign of earlier runs",
    )
    # Each option's name is a field of Options.
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    result = measure(parse_options(argv))
    print(report(result).render())
    return 1 if result.checks.problems else 0


if __name__ == "__main__":
    sys.exit(main())
