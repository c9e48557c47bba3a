"""Benchmark 1, the launch rush: many backers pledging at once for the few slots of a limited tier.

    python -m bench.launch_rush --clients 200 --slots 500 --rounds 3

`--clients` keep-alive HTTP clients pledge through `kindling serve --workers N` (embedded PostgreSQL, localstripe),
more attempts than slots, so both 201 and 409 appear. Two kinds of round, interleaved (plain, line items, plain, line
items, ...) so that a machine whose load drifts slows both alike: plain pledges (a tier), and pledges with line items
(a tier plus one unit of an add-on limited like the tier, taken in the reservation's one statement). Each round rushes
a fresh campaign with fresh backers over HTTP, then runs the reservation alone on a fresh campaign; the report gives
each round, each kind's median and spread, and line items against plain as the ratio of the medians (goal: within
20 %). The reference, in the same run: pgbench running the reservation transaction (the conditional UPDATE plus the
pledge INSERT) with as many clients, and the reservation alone (the service function, no HTTP, no Stripe) against it.
Stripe's own time is measured beside the rush, so that it can be taken out of the request latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import event, insert, text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.common import (
    BACKER_ID_SQL,
    Backers,
    BenchServices,
    Call,
    CpuMeter,
    Latencies,
    LiveCampaign,
    PgbenchResult,
    Report,
    Server,
    backer_id,
    embedded_services,
    insert_backers,
    insert_live_campaign,
    machine_description,
    ms,
    oversold_slots,
    profiled,
    ratio,
    run_pgbench,
    rush,
    say,
    served,
    verdict,
)
from campaigns.jobs import Job
from campaigns.models import AddOn, Product, User
from campaigns.pledges.checkout import Checkout, reserve_pledge
from campaigns.pledges.pricing import AddOnChoice, PledgeChoice
from payments.gateway import StripeGateway
from service.database import JobSender, create_engine, create_sessionmaker, unit_of_work

GOAL_RESERVATION_RATIO = 0.5
GOAL_P99_SECONDS = 0.250
# Reservations with line items (a tier plus an add-on) against plain ones, in the same run.
GOAL_LINE_ITEMS_RATIO = 0.8
# What one `kindling serve` worker may open: service.app's engine, a pool of 10 plus 10 overflow.
APP_POOL_SIZE, APP_POOL_OVERFLOW = 10, 10
# The slots of the references' tiers (and their add-on's units): more than any run takes, so they never sell out.
NEVER_SOLD_OUT = 10_000_000

RESERVATION_SCRIPT = f"""
\\set n :base + ((:client_id + :clients * :i) % :pool)
\\set i :i + 1
BEGIN;
UPDATE tiers SET remaining = remaining - 1 WHERE id = :tier AND remaining > 0 RETURNING remaining;
INSERT INTO pledges (id, campaign_id, backer_id, tier_id, amount, bonus, shipping_fee, currency, shipping_country)
VALUES (gen_random_uuid(), :campaign, {BACKER_ID_SQL.format(n=":n")}, :tier, 15900, 0, 1000, 'CNY', 'CN')
ON CONFLICT (campaign_id, backer_id) WHERE status NOT IN ('cancelled', 'dropped') DO NOTHING
RETURNING id;
COMMIT;
"""


@dataclass(frozen=True)
class Options:
    clients: int = 200
    slots: int = 500
    workers: int = 2
    attempts: int | None = None  # default: slots + 2 × clients
    seconds: float = 10.0  # how long each reference runs
    rounds: int = 3  # of each kind, interleaved: plain, line items, plain, line items, ...
    reference_backers: int = 60_000
    stripe_probes: int = 20  # Customer and SetupIntent pairs timed before the rush, one at a time
    keep: bool = False
    profile: Path | None = None  # py-spy's collapsed stacks of the server during the rushes

    @property
    def total_attempts(self) -> int:
        return self.attempts if self.attempts is not None else self.slots + 2 * self.clients

    @property
    def app_pool(self) -> int:
        return min(self.clients, APP_POOL_SIZE + APP_POOL_OVERFLOW)


# Results


@dataclass
class StripeTimes:
    customer: list[float] = field(default_factory=list)
    setup_intent: list[float] = field(default_factory=list)

    @property
    def median_pair(self) -> float:
        if not self.customer or not self.setup_intent:
            return 0.0
        return statistics.median(self.customer) + statistics.median(self.setup_intent)


@dataclass
class RushResult:
    wall_seconds: float
    statuses: Counter[int]
    latencies: list[float]
    created: list[float]  # latencies of the 201s
    refused: list[float]  # latencies of the 409s
    last_created_at: float  # seconds from the start of the rush to the end of the last 201
    problem_types: Counter[str]
    oversold: int
    stripe_idle: StripeTimes
    stripe_loaded: StripeTimes
    cpu: CpuMeter

    @property
    def created_count(self) -> int:
        return self.statuses[201]

    @property
    def refused_count(self) -> int:
        return self.statuses[409]

    @property
    def other_statuses(self) -> dict[int, int]:
        return {status: n for status, n in self.statuses.items() if status not in (201, 409)}

    @property
    def attempts_per_second(self) -> float:
        return len(self.latencies) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def pledges_per_second(self) -> float:
        return self.created_count / self.last_created_at if self.last_created_at > 0 else 0.0


@dataclass
class ReservationResult:
    connections: int
    reservations: int
    seconds: float
    connection_held: list[float]
    oversold: int
    timed_out: int  # callers that waited longer than the pool's timeout for a connection

    @property
    def per_second(self) -> float:
        return self.reservations / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Round:
    """One round of one kind: the rush over HTTP on a fresh campaign, then the reservation alone on another."""

    number: int  # 1, 2, ... counted per kind
    lines: bool  # each pledge a tier plus one unit of a limited add-on
    rush: RushResult
    reservation: ReservationResult  # through the app's pool

    @property
    def kind(self) -> str:
        return "line items" if self.lines else "plain"


@dataclass
class LaunchRushResult:
    options: Options
    rounds: list[Round]  # in the order run: plain, line items, plain, line items, ...
    load: tuple[float, float]  # the 1-minute load average when the rounds began and when the run ended
    pgbench: PgbenchResult  # `clients` clients
    pgbench_at_pool: PgbenchResult  # as many clients as one server worker has connections
    reservation_unpooled: ReservationResult  # plain, one connection per caller, as pgbench

    @property
    def plain(self) -> list[Round]:
        return [each for each in self.rounds if not each.lines]

    @property
    def with_lines(self) -> list[Round]:
        return [each for each in self.rounds if each.lines]


# The run


def measure(options: Options) -> LaunchRushResult:
    """Start the services, set up the data, run the rounds and the references; the figures, unprinted."""
    if options.rounds < 1:
        raise ValueError("at least one round of each kind")
    server_connections = options.workers * (APP_POOL_SIZE + APP_POOL_OVERFLOW)
    with embedded_services(
        "launch_rush", max_connections=max(100, options.clients + server_connections + 20), keep=options.keep
    ) as services:
        return asyncio.run(_measure(services, options))


async def _measure(services: BenchServices, options: Options) -> LaunchRushResult:
    engine = create_engine(services.settings.database_url, pool_size=2, max_overflow=0)
    try:
        # The data goes in while the server starts: one server for every round, so that no kind of round pays for a
        # cold start the other does not.
        setting_up = asyncio.create_task(_set_up(engine, options))
        try:
            async with served(services, workers=options.workers) as server:
                data = await setting_up
                idle = await _time_stripe(services, count=options.stripe_probes)
                load_before = os.getloadavg()[0]
                rounds = await _rounds(services, server, engine, data, idle)
        finally:
            if not setting_up.done():
                setting_up.cancel()
        pgbench = await _pgbench(services, engine, data, data.pgbench_campaigns[0], clients=options.clients)
        pgbench_at_pool = pgbench
        if options.app_pool != options.clients:
            pgbench_at_pool = await _pgbench(
                services, engine, data, data.pgbench_campaigns[1], clients=options.app_pool
            )
        unpooled = await _reservation_alone(
            services, engine, data, data.pgbench_campaigns[2], connections=options.clients
        )
    finally:
        await engine.dispose()
    load = (load_before, os.getloadavg()[0])
    return LaunchRushResult(options, rounds, load, pgbench, pgbench_at_pool, unpooled)


async def _rounds(
    services: BenchServices, server: Server, engine: AsyncEngine, data: BenchData, idle: StripeTimes
) -> list[Round]:
    """Each round in turn: its rush over HTTP, then its reservation alone."""
    options, rounds = data.options, []
    with profiled(server.pid, options.profile):
        for each in data.rounds:
            rush_result = await _rush(services, server, engine, options, data, each.campaign, each.backers, idle)
            reservation = await _reservation_alone(services, engine, data, each.reference, connections=None)
            rounds.append(Round(each.number, each.lines, rush_result, reservation))
            say(
                f"round {each.number}, {'line items' if each.lines else 'plain'}: "
                f"{rush_result.attempts_per_second:,.0f} attempts/s over HTTP, "
                f"{reservation.per_second:,.0f} reservations/s alone"
            )
    return rounds


@dataclass(frozen=True)
class RoundData:
    number: int
    lines: bool
    backers: Backers  # who rushes, each once
    campaign: LiveCampaign  # the limited tier they rush for (and its add-on, with lines)
    reference: LiveCampaign  # a tier that never sells out (and its add-on), for the reservation alone


@dataclass(frozen=True)
class BenchData:
    options: Options
    rounds: tuple[RoundData, ...]  # in the order run
    reference_backers: Backers  # who reserves in the references
    pgbench_campaigns: tuple[LiveCampaign, ...]  # pgbench at clients and at the app's pool, unpooled reservation
    add_ons: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # campaign -> its add-on (line items)

    def choice(self, campaign: LiveCampaign) -> PledgeChoice:
        add_on = self.add_ons.get(campaign.id)
        return PledgeChoice(
            campaign.tier_id,
            0,
            campaign.shipping_country,
            add_ons=(AddOnChoice(add_on, 1),) if add_on is not None else (),
        )

    def body(self, campaign: LiveCampaign) -> dict[str, object]:
        body: dict[str, object] = {
            "tier_id": str(campaign.tier_id),
            "bonus": 0,
            "shipping_country": campaign.shipping_country,
        }
        add_on = self.add_ons.get(campaign.id)
        if add_on is not None:
            body["add_ons"] = [{"add_on_id": str(add_on), "quantity": 1}]
        return body


async def _set_up(engine: AsyncEngine, options: Options) -> BenchData:
    kinds = 2 * options.rounds
    say(
        f"inserting {kinds} × {options.total_attempts} rush backers, {options.reference_backers} reference backers "
        f"and {2 * kinds + 3} campaigns"
    )
    started = time.perf_counter()
    rounds: list[RoundData] = []
    add_ons: dict[uuid.UUID, uuid.UUID] = {}
    first = 1
    async with engine.begin() as connection:
        for number in range(1, options.rounds + 1):
            for lines in (False, True):
                # Fresh backers each round: a backer's Stripe Customer, made by the first pledge, is not reused.
                backers = await insert_backers(connection, options.total_attempts, first=first)
                first += backers.count
                label = "lines" if lines else "plain"
                campaign = await insert_live_campaign(connection, slots=options.slots, label=f"rush-{label}-{number}")
                reference = await insert_live_campaign(
                    connection, slots=NEVER_SOLD_OUT, label=f"reference-{label}-{number}"
                )
                if lines:
                    # As limited as the tier: the rush's add-on runs out with its slots; the reference's never does.
                    for each in (campaign, reference):
                        add_ons[each.id] = await _insert_add_on(connection, each)
                rounds.append(RoundData(number, lines, backers, campaign, reference))
        reference_backers = await insert_backers(connection, options.reference_backers, first=first, tokens=False)
        pgbench_campaigns = tuple(
            [await insert_live_campaign(connection, slots=NEVER_SOLD_OUT, label=f"pgbench-{i}") for i in range(3)]
        )
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
    say(f"data ready in {time.perf_counter() - started:.1f}s")
    return BenchData(options, tuple(rounds), reference_backers, pgbench_campaigns, add_ons)


async def _insert_add_on(connection: AsyncConnection, campaign: LiveCampaign) -> uuid.UUID:
    """A spare cable offered beside the campaign's tier at 29.00, limited to the tier's slots, 5.00 to ship."""
    product_id, add_on_id = uuid.uuid4(), uuid.uuid4()
    await connection.execute(
        insert(Product).values(
            id=product_id, campaign_id=campaign.id, sku="CABLE", name="Spare cable", weight_grams=40, batch_size=500
        )
    )
    await connection.execute(
        insert(AddOn).values(
            id=add_on_id,
            campaign_id=campaign.id,
            product_id=product_id,
            price=2_900,
            quantity_limit=campaign.slots,
            remaining=campaign.slots,
            shipping=[{"country": "*", "fee": 500}],
        )
    )
    return add_on_id


async def oversold_add_on_units(connection: AsyncConnection, add_on_id: uuid.UUID) -> int:
    """How many more units the open pledges' lines hold of the add-on than its limit allows (must be 0), also
    checking that `remaining` is the limit less what they hold."""
    held, remaining, limit = (
        await connection.execute(
            text(
                "SELECT (SELECT coalesce(sum(i.quantity), 0) FROM pledge_items i JOIN pledges p ON p.id = i.pledge_id "
                "WHERE i.add_on_id = a.id AND p.status NOT IN ('cancelled', 'dropped')), a.remaining, a.quantity_limit "
                "FROM add_ons a WHERE a.id = :add_on"
            ),
            {"add_on": add_on_id},
        )
    ).one()
    if remaining != limit - held:
        raise AssertionError(f"add-on {add_on_id}: {held} units held, {remaining} of {limit} left")
    return max(0, int(held) - int(limit))


async def _time_stripe(
    services: BenchServices, *, count: int, stop: asyncio.Event | None = None, pause: float = 0.0
) -> StripeTimes:
    """Time Customer and SetupIntent creation through our gateway, one call at a time: `count` pairs, or pairs until
    `stop` is set, `pause` seconds apart (so that measuring Stripe during the rush adds little load of its own)."""
    times = StripeTimes()
    gateway = StripeGateway.from_settings(services.settings)
    try:
        done = 0
        while (stop is None and done < count) or (stop is not None and not stop.is_set()):
            started = time.perf_counter()
            customer = await gateway.create_customer(user_id=uuid.uuid4(), email="probe@bench.example", name="Probe")
            between = time.perf_counter()
            await gateway.create_setup_intent(customer_id=customer, pledge_id=uuid.uuid4(), attempt=1)
            times.customer.append(between - started)
            times.setup_intent.append(time.perf_counter() - between)
            done += 1
            if pause:
                await asyncio.sleep(pause)
    finally:
        await gateway.aclose()
    return times


async def _rush(
    services: BenchServices,
    server: Server,
    engine: AsyncEngine,
    options: Options,
    data: BenchData,
    campaign: LiveCampaign,
    backers: Backers,
    idle: StripeTimes,
) -> RushResult:
    body = data.body(campaign)
    path = f"/api/v1/campaigns/{campaign.id}/pledges"
    plans: list[list[Call]] = [[] for _ in range(options.clients)]
    for index, n in enumerate(backers.numbers()):
        plans[index % options.clients].append(Call("POST", path, backers.headers(n), body))
    lines = " (a tier plus an add-on)" if campaign.id in data.add_ons else ""
    say(f"rush{lines}: {options.clients} clients, {backers.count} attempts on {options.slots} slots at {server.url}")
    cpu = CpuMeter(
        {
            "kindling serve": server.pid,
            "PostgreSQL": services.postgres.postmaster_pid,
            "localstripe": services.stripe.pid,
            "Redis": services.redis.pid,
            "HTTP clients": os.getpid(),
        },
        alone=["HTTP clients"],
    )
    stop = asyncio.Event()
    prober = asyncio.create_task(_time_stripe(services, count=0, stop=stop, pause=0.1))
    try:
        # each client first reads the campaign, as a backer's app would, which also warms the server's pools
        samples, wall = await rush(
            server.url,
            plans,
            warm_up=Call("GET", f"/api/v1/campaigns/{campaign.id}"),
            keep_body=True,
            on_start=cpu.start,
        )
    finally:
        cpu.stop()
        stop.set()
        loaded = await prober
    async with engine.connect() as connection:
        oversold = await oversold_slots(connection, campaign.tier_id)
        if campaign.id in data.add_ons:
            oversold += await oversold_add_on_units(connection, data.add_ons[campaign.id])
    problem_types: Counter[str] = Counter()
    for sample in samples:
        if sample.status != 201:
            try:
                problem_types[f"{sample.status} {json.loads(sample.body).get('type', '?')}"] += 1
            except ValueError:
                problem_types[f"{sample.status} {sample.body[:80]!r}"] += 1
    created = [s for s in samples if s.status == 201]
    return RushResult(
        wall_seconds=wall,
        statuses=Counter(sample.status for sample in samples),
        latencies=[s.seconds for s in samples],
        created=[s.seconds for s in created],
        refused=[s.seconds for s in samples if s.status == 409],
        last_created_at=max((s.started + s.seconds for s in created), default=0.0),
        problem_types=problem_types,
        oversold=oversold,
        stripe_idle=idle,
        stripe_loaded=loaded,
        cpu=cpu,
    )


async def _pgbench(
    services: BenchServices, engine: AsyncEngine, data: BenchData, campaign: LiveCampaign, *, clients: int
) -> PgbenchResult:
    seconds = data.options.seconds
    say(f"pgbench: the reservation transaction, {clients} clients, {seconds:g}s")
    result = await asyncio.to_thread(
        run_pgbench,
        services.dsn,
        RESERVATION_SCRIPT,
        clients=clients,
        seconds=seconds,
        variables={
            "i": 0,
            "base": data.reference_backers.first,
            "clients": clients,
            "pool": data.reference_backers.count,
            "tier": campaign.tier_id,
            "campaign": campaign.id,
        },
        workdir=services.root,
    )
    async with engine.connect() as connection:
        inserted, remaining, limit = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM pledges WHERE tier_id = t.id), t.remaining, t.quantity_limit "
                    "FROM tiers t WHERE t.id = :tier"
                ),
                {"tier": campaign.tier_id},
            )
        ).one()
    # Every transaction took a slot (this tier never sells out); one whose backer already had a pledge (the pool of
    # backers wrapped) inserted nothing, so only the slots are checked against pgbench's own count.
    if remaining != limit - result.transactions or inserted > result.transactions:
        raise AssertionError(
            f"pgbench: {result.transactions} transactions, {inserted} pledges, {remaining} of {limit} slots left"
        )
    if inserted != result.transactions:
        say(f"pgbench: {result.transactions - (inserted or 0)} transactions met an existing pledge (pool wrapped)")
    return result


class _NoJobs(JobSender):
    def send(self, jobs: list[Job]) -> None:
        raise AssertionError(f"reserving a pledge enqueued jobs: {jobs}")


async def _reservation_alone(
    services: BenchServices,
    engine: AsyncEngine,
    data: BenchData,
    campaign: LiveCampaign,
    *,
    connections: int | None,
) -> ReservationResult:
    """The reservation as pledging makes it (`pledges.checkout.reserve_pledge`: `pledges.service.create_pledge` and
    the backer's Customer looked up, no HTTP, no Stripe), `clients` callers at once, for `seconds`: over the pool one
    server worker has (`connections=None`), or over that many connections."""
    options = data.options
    pool_size, overflow = (APP_POOL_SIZE, APP_POOL_OVERFLOW) if connections is None else (connections, 0)
    say(f"reservation alone: reserve_pledge, {options.clients} callers over {pool_size + overflow} connections")
    service_engine = create_engine(services.settings.database_url, pool_size=pool_size, max_overflow=overflow)
    # the gateway is never called: reserving comes before any call to Stripe
    checkout = Checkout(
        partial(unit_of_work, create_sessionmaker(service_engine), _NoJobs()),
        StripeGateway.from_settings(services.settings),
    )
    held: list[float] = []
    checked_out: dict[int, float] = {}

    def on_checkout(dbapi_connection: object, record: object, proxy: object) -> None:
        checked_out[id(dbapi_connection)] = time.perf_counter()

    def on_checkin(dbapi_connection: object, record: object) -> None:
        began = checked_out.pop(id(dbapi_connection), None)
        if began is not None:
            held.append(time.perf_counter() - began)

    event.listen(service_engine.sync_engine.pool, "checkout", on_checkout)
    event.listen(service_engine.sync_engine.pool, "checkin", on_checkin)
    next_backer = iter(data.reference_backers.numbers())
    done = timed_out = 0
    deadline = 0.0

    async def reserve_one() -> bool:
        n = next(next_backer, None)
        if n is None:
            return False
        await reserve_pledge(checkout, User(id=backer_id(n)), campaign_id=campaign.id, choice=data.choice(campaign))
        return True

    async def reserve_until_deadline() -> None:
        nonlocal done, timed_out
        while time.perf_counter() < deadline:
            try:
                if not await reserve_one():
                    return
            except PoolTimeout:  # what the web app answers 503 for
                timed_out += 1
            else:
                done += 1

    try:
        # Open every connection the callers can use at once and warm the statement caches first, as pgbench
        # connects before it starts the clock.
        usable = min(pool_size + overflow, options.clients)
        opened = [await service_engine.connect() for _ in range(usable)]
        for each in opened:
            await each.close()
        await asyncio.gather(*(reserve_one() for _ in range(2 * usable)))
        held.clear()
        started = time.perf_counter()
        deadline = started + options.seconds
        await asyncio.gather(*(reserve_until_deadline() for _ in range(options.clients)))
        elapsed = time.perf_counter() - started
    finally:
        await service_engine.dispose()
        await checkout.gateway.aclose()  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        oversold = await oversold_slots(connection, campaign.tier_id)
        if campaign.id in data.add_ons:
            oversold += await oversold_add_on_units(connection, data.add_ons[campaign.id])
    return ReservationResult(pool_size + overflow, done, elapsed, held, oversold, timed_out)


# The figures


def report(result: LaunchRushResult) -> Report:
    options = result.options
    out = Report(
        f"Launch rush: {options.clients} clients, {options.slots} slots, {options.total_attempts} attempts, "
        f"kindling serve --workers {options.workers}; {options.rounds} rounds of each kind, interleaved: plain, "
        f"then each pledge a tier plus a limited add-on"
    )
    rows = out.section("Machine")
    rows.append(("cpu", machine_description()))
    before, after = result.load
    rows.append(("load average (1 min)", f"{before:.2f} at the start, {after:.2f} at the end"))

    rows = out.section("Pledging over HTTP (POST /api/v1/campaigns/{id}/pledges, keep-alive), each round")
    for each in result.rounds:
        rushed = each.rush
        server_cpu = rushed.cpu.used.get("kindling serve", 0.0) / max(1, len(rushed.latencies))
        rows.append(
            (
                f"round {each.number}, {each.kind}",
                f"{rushed.attempts_per_second:,.0f} attempts/s, {rushed.pledges_per_second:,.0f} pledges/s, "
                f"201/409 {rushed.created_count}/{rushed.refused_count}, "
                f"p99 of 201 {ms(Latencies.of(rushed.created).p99)}, "
                f"server CPU {ms(server_cpu)} an attempt, wall {rushed.wall_seconds:.1f} s",
            )
        )
        if set(rushed.problem_types) != {"409 sold-out"}:
            rows.append(("  answers other than 201", str(dict(rushed.problem_types))))
        rows.append(("  oversold (must be 0)", str(rushed.oversold)))
    plain = [each.rush for each in result.plain]
    rows.append(("latency, all (plain rounds)", str(Latencies.of([s for r in plain for s in r.latencies]))))
    rows.append(("latency, 201 (plain rounds)", str(Latencies.of([s for r in plain for s in r.created]))))
    rows.append(("latency, 409 (plain rounds)", str(Latencies.of([s for r in plain for s in r.refused]))))
    cores = os.cpu_count() or 1
    first = plain[0]
    rows.append(("CPU used, round 1 plain", f"{first.cpu}  (of {first.wall_seconds * cores:.1f} s on {cores} cores)"))

    rows = out.section("Stripe's own time (localstripe, through our gateway, one call at a time)")
    loaded = StripeTimes(
        [t for r in plain for t in r.stripe_loaded.customer], [t for r in plain for t in r.stripe_loaded.setup_intent]
    )
    for label, times in (("idle", first.stripe_idle), ("during the plain rushes", loaded)):
        rows.append(
            (
                f"median, {label}",
                f"Customer {ms(_median(times.customer))}, SetupIntent {ms(_median(times.setup_intent))}"
                f"  (n={len(times.customer)})",
            )
        )
    stripe_time = loaded.median_pair or first.stripe_idle.median_pair
    p99_created = statistics.median(Latencies.of(r.created).p99 for r in plain)
    p99_without_stripe = p99_created - stripe_time
    rows.append(("p99 of 201, raw (median round)", ms(p99_created)))
    met = p99_without_stripe < GOAL_P99_SECONDS
    goal = f"goal < {ms(GOAL_P99_SECONDS)}: {verdict(met)}"
    rows.append(("p99 of 201 − Stripe's medians", f"{ms(p99_without_stripe)}  ({goal})"))

    reference, at_pool = result.pgbench, result.pgbench_at_pool
    rows = out.section("Reservations per second, the same run (tiers that never sell out)")
    rows.append(
        (
            f"pgbench, {options.clients} clients",
            f"{reference.tps:,.0f} tps  (latency avg {reference.latency_ms:.1f} ms)",
        )
    )
    if at_pool is not reference:
        rows.append(
            (
                f"pgbench, {options.app_pool} clients",
                f"{at_pool.tps:,.0f} tps  (latency avg {at_pool.latency_ms:.1f} ms)",
            )
        )
    ours = _median_rate([each.reservation for each in result.plain])
    unpooled = result.reservation_unpooled
    for label, per_second, connections in (
        (f"reserve_pledge, {options.clients} callers, app pool (median)", ours, APP_POOL_SIZE + APP_POOL_OVERFLOW),
        (f"reserve_pledge, {options.clients} callers, 1 conn each", unpooled.per_second, unpooled.connections),
    ):
        rows.append(
            (
                label,
                f"{per_second:,.0f}/s over {connections} connections = {ratio(per_second, reference.tps)} pgbench "
                f"at {options.clients}, {ratio(per_second, at_pool.tps)} pgbench at {options.app_pool}",
            )
        )
    rows.append(("  connection held, 1 conn each", str(Latencies.of(unpooled.connection_held))))
    if unpooled.timed_out:
        rows.append(("  TIMED OUT waiting for a connection", str(unpooled.timed_out)))
    rows.append(("  oversold, 1 conn each (must be 0)", str(unpooled.oversold)))
    rows.append(
        (
            "reservation path vs pgbench",
            f"{ratio(ours, reference.tps)} (goal ≥ {GOAL_RESERVATION_RATIO}×: "
            f"{verdict(ours >= GOAL_RESERVATION_RATIO * reference.tps)})",
        )
    )
    http = statistics.median(r.attempts_per_second for r in plain)
    rows.append(("HTTP attempts/s vs pgbench (median)", ratio(http, reference.tps)))
    rows.append(
        (
            "HTTP pledges/s vs pgbench (median)",
            ratio(statistics.median(r.pledges_per_second for r in plain), reference.tps),
        )
    )
    _line_items(out, result)
    return out


def _line_items(out: Report, result: LaunchRushResult) -> None:
    """Pledges of a tier plus an add-on against plain ones: each round, each kind's median and spread, the ratio."""
    rows = out.section(
        f"Line items against plain: reserve_pledge, {result.options.clients} callers over the app's pool, each round"
    )
    for each in result.rounds:
        reservation = each.reservation
        rows.append(
            (
                f"round {each.number}, {each.kind}",
                f"{reservation.per_second:,.0f}/s  (connection held {Latencies.of(reservation.connection_held)})",
            )
        )
        if reservation.timed_out:
            rows.append(("  TIMED OUT waiting for a connection", str(reservation.timed_out)))
        rows.append(("  oversold (must be 0)", str(reservation.oversold)))
    for plain, lines in zip(result.plain, result.with_lines, strict=True):
        rows.append(
            (
                f"round {plain.number}, line items / plain",
                f"{ratio(lines.reservation.per_second, plain.reservation.per_second)} reservations, "
                f"{ratio(lines.rush.attempts_per_second, plain.rush.attempts_per_second)} HTTP attempts",
            )
        )
    for label, rounds in (("plain", result.plain), ("line items", result.with_lines)):
        rows.append((f"median, {label}", _spread([each.reservation.per_second for each in rounds])))
    for label, rounds in (("plain", result.plain), ("line items", result.with_lines)):
        rows.append((f"HTTP attempts/s, median, {label}", _spread([each.rush.attempts_per_second for each in rounds])))
    http_lines = statistics.median(each.rush.attempts_per_second for each in result.with_lines)
    http_plain = statistics.median(each.rush.attempts_per_second for each in result.plain)
    rows.append(("HTTP attempts/s with line items vs plain", f"{ratio(http_lines, http_plain)} (ratio of the medians)"))
    ours = _median_rate([each.reservation for each in result.with_lines])
    theirs = _median_rate([each.reservation for each in result.plain])
    met = verdict(ours >= GOAL_LINE_ITEMS_RATIO * theirs)
    rows.append(
        (
            "reservations with line items vs plain",
            f"{ratio(ours, theirs)} (ratio of the medians; goal ≥ {GOAL_LINE_ITEMS_RATIO}×: {met})",
        )
    )


def _median_rate(reservations: Sequence[ReservationResult]) -> float:
    return statistics.median(each.per_second for each in reservations)


def _spread(rates: Sequence[float]) -> str:
    """`120/s (105–131/s, spread 24 %)`: the median, the lowest and highest, and their gap against the median."""
    middle, low, high = statistics.median(rates), min(rates), max(rates)
    gap = f"{(high - low) / middle:.0%}" if middle > 0 else "n/a"
    return f"{middle:,.0f}/s  ({low:,.0f}–{high:,.0f}/s over {len(rates)} rounds, spread {gap} of the median)"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.launch_rush", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent HTTP clients and pgbench clients")
    parser.add_argument("--slots", type=int, default=500, help="slots of the limited tier")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of kindling serve")
    parser.add_argument("--attempts", type=int, default=None, help="pledge attempts (default slots + 2 × clients)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each reference runs (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind, interleaved (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, localstripe log)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server during the rushes into this file")
    # Each option's name is a field of Options.
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    result = measure(options)
    print(report(result).render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
