"""Benchmark 2, campaign close: a successful campaign of many active pledges closed and charged by the real worker.

    python -m bench.close --pledges 10000 --rate 100

The campaign, its backers and their active pledges are inserted in bulk; each backer has a Customer at localstripe
with a saved card (a PaymentMethod attached to it, made directly, many at once: what a confirmed SetupIntent leaves
behind, without the backer's browser). Then the campaign's deadline passes and `kindling worker --processes 2` (in
its own process group, KINDLING_STRIPE_RATE = `--rate`) does everything by itself: its sweep closes the campaign and
asks for the charges, its Dramatiq processes charge every pledge through the rate limit (one PaimentIntent each),
book the ledger and fund the campaign. Timed from the campaign's close to the last charge recorded.

The reference, in the same run: localstripe's own ceiling, bare PaymentIntent creations a second (the same call the
charging job makes, from many concurrent keep-alive clients, nothing else). The goal is 0.9 of the lower of the rate
limit and that ceiling. After the clock: every pledge charged exactly once (localstripe's PaymentIntents grouped by
their pledge, and our charge attempts), the ledger balanced (its entries sum to 0 per currency) and the campaign's
books equal to what was charged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import (
    BenchServices,
    CpuMeter,
    Latencies,
    Report,
    backer_id,
    embedded_services,
    insert_backers,
    insert_live_campaign,
    machine_description,
    profiled,
    ratio,
    say,
    verdict,
)
from service.database import create_engine

GOAL_RATIO = 0.9
CARD_OK = "4242424242424242"
PLEDGE_PRICE, SHIPPING_FEE = 14_900, 1_000  # the tier of bench.common.insert_live_campaign, shipped anywhere
PLEDGE_AMOUNT = PLEDGE_PRICE + SHIPPING_FEE
CEILING_METADATA = "kindling-bench-ceiling"


@dataclass(frozen=True)
class Options:
    pledges: int = 10_000
    rate: float = 100.0  # KINDLING_STRIPE_RATE of the worker
    processes: int = 2  # kindling worker --processes
    threads: int | None = None  # kindling worker --threads (None: the command's default)
    sweep_seconds: float | None = None  # KINDLING_SWEEP_SECONDS (None: the default)
    ceiling_seconds: float = 5.0  # how long localstripe's ceiling is measured
    clients: int = 16  # concurrent HTTP clients making the cards and measuring the ceiling
    timeout_seconds: float = 600.0  # for the campaign to be funded
    # Stock localstripe scans its whole store for every Charge it exports, so it slows down as it fills
    # (bench.common.IndexedLocalStripe); by default the bench runs it with its store indexed.
    stock_localstripe: bool = False
    keep: bool = False
    profile: Path | None = None  # py-spy's collapsed stacks of the worker while it charges


# Results


@dataclass
class Ceiling:
    created: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def per_second(self) -> float:
        return self.created / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Ceilings:
    """localstripe's ceiling before the charges (its store holding the cards) and after them (holding the charges
    too): stock localstripe slows down as its store grows, at a cost per PaymentIntent about linear in its size."""

    before: Ceiling
    after: Ceiling

    @property
    def over_the_run(self) -> float:
        """PaymentIntents a second localstripe could have made over the store sizes the run went through: with a cost
        linear in the store's size, the harmonic mean of the rates before and after."""
        if self.before.per_second <= 0 or self.after.per_second <= 0:
            return 0.0
        return 2 / (1 / self.before.per_second + 1 / self.after.per_second)


@dataclass
class Correctness:
    pledges: int
    collected: int  # pledges whose status is `collected`
    intents_per_pledge: Counter[int]  # how many pledges have 0, 1, 2... succeeded PaymentIntents at localstripe
    attempts_per_pledge: Counter[int]  # how many pledges have 0, 1, 2... succeeded charge attempts of ours
    intent_mismatches: int  # succeeded attempts whose PaymentIntent is not the one localstripe holds for the pledge
    other_intents: int  # PaymentIntents at localstripe for no pledge of the campaign (other than the ceiling's)
    ledger_sums: dict[str, int]  # currency -> sum of every ledger entry
    collected_booked: int  # pledge_collected into escrow, from the ledger
    charged_at_stripe: int  # the sum of the succeeded PaymentIntents' amounts
    campaign_status: str
    attempt_statuses: Counter[str]

    @property
    def charged_once(self) -> int:
        return self.intents_per_pledge[1]

    @property
    def charged_twice_or_more(self) -> int:
        return sum(n for times, n in self.intents_per_pledge.items() if times > 1)

    @property
    def never_charged(self) -> int:
        return self.intents_per_pledge[0]

    @property
    def exactly_once(self) -> bool:
        return (
            self.charged_once == self.pledges
            and self.attempts_per_pledge[1] == self.pledges
            and self.collected == self.pledges
            and self.intent_mismatches == 0
        )

    @property
    def ledger_balanced(self) -> bool:
        return bool(self.ledger_sums) and all(total == 0 for total in self.ledger_sums.values())


@dataclass
class CloseResult:
    options: Options
    setup_seconds: float
    cards_seconds: float
    ceiling: Ceilings
    worker_started_to_ready: float
    ready_to_closed: float  # the deadline passing until the sweep closed it
    closed_to_last_charge: float  # the measured window
    first_to_last_charge: float
    closed_to_funded: float
    wall_seconds: float  # from starting the worker to the campaign funded
    charged: int
    correctness: Correctness
    cpu: CpuMeter
    worker_log: Path
    per_second_timeline: list[int] = field(default_factory=list)  # charges recorded in each second after the close

    @property
    def charges_per_second(self) -> float:
        return self.charged / self.closed_to_last_charge if self.closed_to_last_charge > 0 else 0.0

    @property
    def limit(self) -> float:
        """What the charges could at best go at: the lower of the rate limit and localstripe's ceiling."""
        ceiling = self.ceiling.over_the_run
        return min(self.options.rate, ceiling) if ceiling > 0 else self.options.rate


# The run


def measure(options: Options) -> CloseResult:
    """Start the services, set up the data, measure localstripe, close and charge the campaign; the figures."""
    with embedded_services("close", keep=options.keep, indexed_stripe=not options.stock_localstripe) as services:
        return asyncio.run(_measure(services, options))


async def _measure(services: BenchServices, options: Options) -> CloseResult:
    engine = create_engine(services.settings.database_url, pool_size=2, max_overflow=0)
    try:
        started = time.perf_counter()
        campaign_id = await _insert_campaign(engine, options)
        cards_started = time.perf_counter()
        cards = await _make_cards(services, options)
        cards_seconds = time.perf_counter() - cards_started
        await _insert_pledges(engine, campaign_id, cards)
        setup_seconds = time.perf_counter() - started
        say(f"data ready in {setup_seconds:.1f}s (cards at localstripe: {cards_seconds:.1f}s)")
        before = await _measure_ceiling(services, options, cards[0])
        result = await _close_and_charge(services, engine, options, campaign_id, setup_seconds, cards_seconds, before)
        result.ceiling.after = await _measure_ceiling(services, options, cards[0])
        return result
    finally:
        await engine.dispose()


async def _insert_campaign(engine: AsyncEngine, options: Options) -> uuid.UUID:
    say(f"inserting {options.pledges} backers and a live campaign")
    async with engine.begin() as connection:
        await insert_backers(connection, options.pledges, tokens=False)
        campaign = await insert_live_campaign(connection, slots=options.pledges, label="close")
        # The goal is met with half the pledges; the deadline is far until the worker is ready.
        await connection.execute(
            text("UPDATE campaigns SET goal = :goal WHERE id = :id"),
            {"goal": max(1, options.pledges * PLEDGE_AMOUNT // 2), "id": campaign.id},
        )
    return campaign.id


@dataclass(frozen=True)
class Card:
    backer: int
    customer_id: str
    payment_method_id: str


async def _make_cards(services: BenchServices, options: Options) -> list[Card]:
    """A Customer with a saved card for each backer, made at localstripe by `clients` concurrent keep-alive clients:
    the card (a PaymentMethod), then the Customer it is attached to (`payment_method` on creation)."""
    say(f"saving {options.pledges} cards at localstripe ({options.clients} clients)")
    numbers = iter(range(1, options.pledges + 1))
    cards: list[Card] = []

    async def client() -> None:
        async with _stripe_http(services) as http:
            for n in numbers:
                method = await _post(
                    http,
                    "/v1/payment_methods",
                    {
                        "type": "card",
                        "card[number]": CARD_OK,
                        "card[exp_month]": "12",
                        "card[exp_year]": "2030",
                        "card[cvc]": "123",
                    },
                )
                customer = await _post(
                    http,
                    "/v1/customers",
                    {
                        "email": f"backer{n}@bench.example",
                        "name": f"Backer {n}",
                        "payment_method": method["id"],
                        "metadata[user_id]": str(backer_id(n)),
                    },
                )
                cards.append(Card(n, customer["id"], method["id"]))

    await asyncio.gather(*(client() for _ in range(options.clients)))
    return sorted(cards, key=lambda card: card.backer)


async def _insert_pledges(engine: AsyncEngine, campaign_id: uuid.UUID, cards: list[Card]) -> None:
    """The backers' Stripe customers and their active pledges (card saved and confirmed), in arrival order."""
    say(f"inserting {len(cards)} active pledges")
    backers = [backer_id(card.backer) for card in cards]
    async with engine.begin() as connection:
        await connection.execute(
            text(
                """
                INSERT INTO stripe_customers (user_id, customer_id)
                SELECT * FROM unnest(CAST(:users AS uuid[]), CAST(:customers AS text[]))
                """
            ),
            {"users": backers, "customers": [card.customer_id for card in cards]},
        )
        tier_id = await connection.scalar(text("SELECT id FROM tiers WHERE campaign_id = :id"), {"id": campaign_id})
        await connection.execute(
            text(
                """
                INSERT INTO pledges (id, campaign_id, backer_id, tier_id, status, amount, bonus, shipping_fee,
                                     currency, shipping_country, payment_method_id, confirmed_at)
                SELECT gen_random_uuid(), :campaign, backer, :tier, 'active', :amount, 0, :shipping, 'CNY', 'CN',
                       method, now()
                FROM unnest(CAST(:users AS uuid[]), CAST(:methods AS text[])) WITH ORDINALITY AS t(backer, method, n)
                ORDER BY n
                """
            ),
            {
                "campaign": campaign_id,
                "tier": tier_id,
                "amount": PLEDGE_AMOUNT,
                "shipping": SHIPPING_FEE,
                "users": backers,
                "methods": [card.payment_method_id for card in cards],
            },
        )
        await connection.execute(
            text("UPDATE tiers SET remaining = remaining - :n WHERE id = :tier"), {"n": len(cards), "tier": tier_id}
        )
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))


async def _measure_ceiling(services: BenchServices, options: Options, card: Card) -> Ceiling:
    """Bare PaymentIntent creations at localstripe, the very call the charging job makes (confirmed off-session, the
    balance transaction expanded), from `clients` concurrent keep-alive clients for `ceiling_seconds`."""
    say(f"localstripe's ceiling: PaymentIntents from {options.clients} clients for {options.ceiling_seconds:g}s")
    latencies: list[float] = []
    errors = 0
    ready = asyncio.Barrier(options.clients + 1)
    deadline = 0.0

    async def client() -> None:
        nonlocal errors
        async with _stripe_http(services) as http:
            await http.get("/v1/customers", params={"limit": 1})  # opens the connection
            await ready.wait()
            while True:  # one call at least, however late this client is let run
                began = time.perf_counter()
                response = await http.post(
                    "/v1/payment_intents",
                    data={
                        "amount": str(PLEDGE_AMOUNT),
                        "currency": "cny",
                        "customer": card.customer_id,
                        "payment_method": card.payment_method_id,
                        "confirm": "true",
                        "off_session": "true",
                        "metadata[purpose]": CEILING_METADATA,
                        "expand[]": "latest_charge.balance_transaction",
                    },
                )
                if response.status_code == 200 and response.json().get("status") == "succeeded":
                    latencies.append(time.perf_counter() - began)
                else:
                    errors += 1
                if time.perf_counter() >= deadline:
                    return

    tasks = [asyncio.create_task(client()) for _ in range(options.clients)]
    deadline = time.perf_counter() + 3600.0
    await ready.wait()
    started = time.perf_counter()
    deadline = started + options.ceiling_seconds
    await asyncio.gather(*tasks)
    return Ceiling(len(latencies), time.perf_counter() - started, latencies, errors)


async def _close_and_charge(
    services: BenchServices,
    engine: AsyncEngine,
    options: Options,
    campaign_id: uuid.UUID,
    setup_seconds: float,
    cards_seconds: float,
    ceiling: Ceiling,
) -> CloseResult:
    """Start the worker, let the deadline pass once it is ready, and wait for the campaign to be funded."""
    overrides = {"KINDLING_STRIPE_RATE": f"{options.rate:g}"}
    if options.sweep_seconds is not None:
        overrides["KINDLING_SWEEP_SECONDS"] = f"{options.sweep_seconds:g}"
    log_path = services.root / "worker.log"
    command = [sys.executable, "-m", "service.cli", "worker", "--processes", str(options.processes)]
    if options.threads is not None:
        command += ["--threads", str(options.threads)]
    say(f"starting `kindling worker --processes {options.processes}` at {overrides}")
    started = time.perf_counter()
    with _worker(services, command, log_path, overrides) as worker:
        await _wait_until_ready(worker, log_path, options.processes)
        ready = time.perf_counter()
        cpu = CpuMeter(
            {
                "kindling worker": worker.pid,
                "PostgreSQL": services.postgres.postmaster_pid,
                "localstripe": services.stripe.pid,
                "Redis": services.redis.pid,
            }
        )
        cpu.start()
        try:
            with profiled(worker.pid, options.profile):
                async with engine.begin() as connection:
                    await connection.execute(
                        text("UPDATE campaigns SET ends_at = now() WHERE id = :id"), {"id": campaign_id}
                    )
                say("the deadline has passed: waiting for the worker to close, charge and fund the campaign")
                status = await _wait_for_funding(engine, worker, log_path, campaign_id, options)
        finally:
            cpu.stop()
        funded = time.perf_counter()
    if status != "funded":
        raise RuntimeError(f"the campaign is {status}, not funded, after {options.timeout_seconds:g}s")
    times = await _charge_times(engine, campaign_id)
    correctness = await _check(services, engine, campaign_id, options.pledges)
    return CloseResult(
        options=options,
        setup_seconds=setup_seconds,
        cards_seconds=cards_seconds,
        ceiling=Ceilings(ceiling, ceiling),  # `after` is measured once the worker has stopped
        worker_started_to_ready=ready - started,
        ready_to_closed=times["ready_to_closed"],
        closed_to_last_charge=times["closed_to_last"],
        first_to_last_charge=times["first_to_last"],
        closed_to_funded=times["closed_to_funded"],
        wall_seconds=funded - started,
        charged=int(times["charged"]),
        correctness=correctness,
        cpu=cpu,
        worker_log=log_path,
        per_second_timeline=times["timeline"],
    )


@contextmanager
def _worker(
    services: BenchServices, command: list[str], log_path: Path, overrides: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`kindling worker` in its own process group (so that stopping it stops Dramatiq's processes too)."""
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parent.parent,
            env=services.environment(**overrides),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(30)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def _wait_until_ready(worker: subprocess.Popen[bytes], log_path: Path, processes: int) -> None:
    """Until every Dramatiq process has said it is ready for action (its actors imported, its broker connected)."""
    deadline = time.monotonic() + 120
    while True:
        if worker.poll() is not None:
            raise RuntimeError(f"kindling worker exited with {worker.returncode}:\n{_tail(log_path)}")
        log = await asyncio.to_thread(log_path.read_text, errors="replace")
        if log.count("ready for action") >= processes:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"kindling worker was not ready within 120s:\n{_tail(log_path)}")
        await asyncio.sleep(0.2)


async def _wait_for_funding(
    engine: AsyncEngine, worker: subprocess.Popen[bytes], log_path: Path, campaign_id: uuid.UUID, options: Options
) -> str:
    deadline = time.monotonic() + options.timeout_seconds
    status, last_said, collected = "live", 0.0, 0
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"kindling worker exited with {worker.returncode}:\n{_tail(log_path)}")
        async with engine.connect() as connection:
            found = await connection.scalar(text("SELECT status FROM campaigns WHERE id = :id"), {"id": campaign_id})
            status = str(found)
            if time.monotonic() - last_said > 10:
                collected = int(
                    await connection.scalar(
                        text("SELECT count(*) FROM pledges WHERE campaign_id = :id AND status = 'collected'"),
                        {"id": campaign_id},
                    )
                    or 0
                )
                say(f"campaign {status}, {collected} of {options.pledges} pledges collected")
                last_said = time.monotonic()
        if status == "funded":
            return status
        await asyncio.sleep(0.25)
    return status


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


async def _charge_times(engine: AsyncEngine, campaign_id: uuid.UUID) -> dict[str, Any]:
    """From the database's own clock: when the campaign closed, when its charges were recorded, when it was funded."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    """
                    SELECT c.closed_at, c.ends_at,
                           (SELECT min(e.created_at) FROM campaign_events e
                            WHERE e.campaign_id = c.id AND e.to_status = 'funded') AS funded_at,
                           min(a.created_at) AS first_started, max(a.finished_at) AS last_finished,
                           count(*) FILTER (WHERE a.status = 'succeeded') AS charged
                    FROM campaigns c
                    JOIN pledges p ON p.campaign_id = c.id
                    JOIN charge_attempts a ON a.pledge_id = p.id
                    WHERE c.id = :id
                    GROUP BY c.id
                    """
                ),
                {"id": campaign_id},
            )
        ).one()
        seconds = await connection.scalars(
            text(
                """
                SELECT floor(extract(epoch FROM a.finished_at - c.closed_at))::int
                FROM charge_attempts a JOIN pledges p ON p.id = a.pledge_id JOIN campaigns c ON c.id = p.campaign_id
                WHERE c.id = :id AND a.status = 'succeeded'
                """
            ),
            {"id": campaign_id},
        )
        per_second = Counter(seconds)
    timeline = [per_second.get(s, 0) for s in range(max(per_second, default=-1) + 1)]
    funded_at = row.funded_at or row.last_finished
    return {
        "ready_to_closed": (row.closed_at - row.ends_at).total_seconds(),
        "closed_to_last": (row.last_finished - row.closed_at).total_seconds(),
        "first_to_last": (row.last_finished - row.first_started).total_seconds(),
        "closed_to_funded": (funded_at - row.closed_at).total_seconds(),
        "charged": row.charged,
        "timeline": timeline,
    }


async def _check(services: BenchServices, engine: AsyncEngine, campaign_id: uuid.UUID, pledges: int) -> Correctness:
    """Every pledge charged exactly once, at localstripe and in our books; the ledger balanced."""
    say("checking: every PaymentIntent at localstripe, the charge attempts, the ledger")
    intents = await _all_payment_intents(services)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT id::text, status, amount FROM pledges WHERE campaign_id = :id"), {"id": campaign_id}
            )
        ).all()
        attempts = (
            await connection.execute(
                text(
                    """
                    SELECT a.pledge_id::text, a.status, a.payment_intent_id
                    FROM charge_attempts a JOIN pledges p ON p.id = a.pledge_id WHERE p.campaign_id = :id
                    """
                ),
                {"id": campaign_id},
            )
        ).all()
        ledger_sums = {
            row.currency: int(row.total)
            for row in await connection.execute(
                text("SELECT currency, sum(amount) AS total FROM ledger_entries GROUP BY currency")
            )
        }
        collected_booked = int(
            await connection.scalar(
                text(
                    """
                    SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e
                    JOIN ledger_transactions t ON t.id = e.transaction_id
                    JOIN ledger_accounts a ON a.id = e.account_id
                    WHERE t.campaign_id = :id AND t.kind = 'pledge_collected' AND a.kind = 'escrow'
                    """
                ),
                {"id": campaign_id},
            )
            or 0
        )
        status = str(await connection.scalar(text("SELECT status FROM campaigns WHERE id = :id"), {"id": campaign_id}))
    ours = {row.id for row in rows}
    succeeded_at_stripe: dict[str, list[dict[str, Any]]] = {pledge: [] for pledge in ours}
    other = 0
    for intent in intents:
        metadata = intent.get("metadata") or {}
        if metadata.get("purpose") == CEILING_METADATA:
            continue
        pledge = str(metadata.get("pledge_id"))
        if pledge not in ours:
            other += 1
        elif intent["status"] == "succeeded":
            succeeded_at_stripe[pledge].append(intent)
    succeeded_attempts: dict[str, list[str]] = {pledge: [] for pledge in ours}
    for attempt in attempts:
        if attempt.status == "succeeded":
            succeeded_attempts[attempt.pledge_id].append(str(attempt.payment_intent_id))
    mismatches = sum(
        1
        for pledge, ids in succeeded_attempts.items()
        if ids and sorted(ids) != sorted(str(intent["id"]) for intent in succeeded_at_stripe[pledge])
    )
    return Correctness(
        pledges=pledges,
        collected=sum(1 for row in rows if row.status == "collected"),
        intents_per_pledge=Counter(len(found) for found in succeeded_at_stripe.values()),
        attempts_per_pledge=Counter(len(ids) for ids in succeeded_attempts.values()),
        intent_mismatches=mismatches,
        other_intents=other,
        ledger_sums=ledger_sums,
        collected_booked=collected_booked,
        charged_at_stripe=sum(intent["amount"] for found in succeeded_at_stripe.values() for intent in found),
        campaign_status=status,
        attempt_statuses=Counter(attempt.status for attempt in attempts),
    )


async def _all_payment_intents(services: BenchServices) -> list[dict[str, Any]]:
    """Every PaymentIntent localstripe holds (its lists take no filters), page by page."""
    found: list[dict[str, Any]] = []
    async with _stripe_http(services) as http:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"starting_after": after} if after else {})
            response = await http.get("/v1/payment_intents", params=params)
            response.raise_for_status()
            page = response.json()
            found.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return found
            after = page["data"][-1]["id"]


def _stripe_http(services: BenchServices) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(
        base_url=services.stripe.api_base, auth=(services.stripe.secret_key, ""), limits=limits, timeout=60.0
    )


async def _post(http: httpx.AsyncClient, path: str, form: dict[str, str]) -> dict[str, Any]:
    response = await http.post(path, data=form)
    if response.status_code != 200:
        raise RuntimeError(f"localstripe answered {response.status_code} to POST {path}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


# The figures


def report(result: CloseResult) -> Report:
    options, ok, ceiling = result.options, result.correctness, result.ceiling
    out = Report(
        f"Campaign close: {options.pledges} active pledges charged by `kindling worker --processes "
        f"{options.processes}` at KINDLING_STRIPE_RATE={options.rate:g}"
    )
    out.section("Machine").append(("cpu", machine_description()))

    rows = out.section("Set-up (not timed against anything)")
    rows.append(("data (bulk inserts + cards)", f"{result.setup_seconds:.1f} s"))
    rows.append(("cards saved at localstripe", f"{result.cards_seconds:.1f} s  (a PaymentMethod and a Customer each)"))

    kind = "stock" if options.stock_localstripe else "store indexed by object type, bench.common.IndexedLocalStripe"
    rows = out.section(
        f"localstripe's ceiling, the same run ({kind}): bare PaymentIntent creations, confirmed off-session, "
        f"{options.clients} clients"
    )
    for label, measured in (("before the charges", ceiling.before), ("after the charges", ceiling.after)):
        rows.append(
            (
                label,
                f"{measured.per_second:,.1f}/s  ({measured.created} in {measured.seconds:.1f} s, {measured.errors} "
                f"errors; latency {Latencies.of(measured.latencies)})",
            )
        )
    rows.append(("over the run (harmonic mean)", f"{ceiling.over_the_run:,.1f}/s"))

    rows = out.section("Closing and charging (timed on PostgreSQL's clock)")
    rows.append(("worker start → ready", f"{result.worker_started_to_ready:.1f} s"))
    rows.append(("deadline → closed by the sweep", f"{result.ready_to_closed:.1f} s"))
    rows.append(("closed → last charge recorded", f"{result.closed_to_last_charge:.1f} s"))
    rows.append(("first → last charge", f"{result.first_to_last_charge:.1f} s"))
    rows.append(("closed → funded", f"{result.closed_to_funded:.1f} s"))
    rows.append(("wall time (worker start → funded)", f"{result.wall_seconds:.1f} s"))
    rows.append(("charges", str(result.charged)))
    rows.append(("charges/s (closed → last charge)", f"{result.charges_per_second:,.1f}/s"))
    rows.append(("ratio to the rate limit", ratio(result.charges_per_second, options.rate)))
    rows.append(("ratio to localstripe's ceiling", ratio(result.charges_per_second, ceiling.over_the_run)))
    met = result.charges_per_second >= GOAL_RATIO * result.limit
    lower = "the rate limit" if result.limit == options.rate else "localstripe's ceiling"
    rows.append(
        (
            f"ratio to the lower ({lower})",
            f"{ratio(result.charges_per_second, result.limit)}  (goal ≥ {GOAL_RATIO}: {verdict(met)})",
        )
    )
    if result.per_second_timeline:
        timeline = result.per_second_timeline
        steady = timeline[1:-1] or timeline
        rows.append(
            (
                "charges per second after the close",
                f"min {min(steady)}  median {sorted(steady)[len(steady) // 2]}  max {max(steady)}"
                f"  (first second {timeline[0]}, burst of the bucket included)",
            )
        )
    cores = os.cpu_count() or 1
    rows.append(("CPU used", f"{result.cpu}  (of {result.wall_seconds * cores:.1f} s on {cores} cores)"))
    worker_cpu = result.cpu.used.get("kindling worker", 0.0)
    rows.append(("worker CPU per charge", f"{worker_cpu / max(1, result.charged) * 1000:.1f} ms"))

    rows = out.section("Correctness")
    rows.append(("campaign status", ok.campaign_status))
    rows.append(
        (
            "charged exactly once (localstripe)",
            f"{ok.charged_once} of {ok.pledges}  (never: {ok.never_charged}, twice or more: "
            f"{ok.charged_twice_or_more}): {verdict(ok.exactly_once)}",
        )
    )
    rows.append(("collected pledges", f"{ok.collected} of {ok.pledges}"))
    rows.append(("charge attempts", str(dict(ok.attempt_statuses))))
    rows.append(("attempts ≠ localstripe's intent", str(ok.intent_mismatches)))
    if ok.other_intents:
        rows.append(("PaymentIntents for no pledge", str(ok.other_intents)))
    rows.append(
        (
            "ledger balanced (sum of entries 0)",
            f"{', '.join(f'{c} {t}' for c, t in sorted(ok.ledger_sums.items())) or 'no entries'}: "
            f"{verdict(ok.ledger_balanced)}",
        )
    )
    rows.append(
        (
            "collected in escrow = charged",
            f"{ok.collected_booked} = {ok.charged_at_stripe}: {verdict(ok.collected_booked == ok.charged_at_stripe)}",
        )
    )
    return out


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.close", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pledges", type=int, default=10_000, help="active pledges of the campaign")
    parser.add_argument("--rate", type=float, default=100.0, help="KINDLING_STRIPE_RATE, Stripe calls a second")
    parser.add_argument("--processes", type=int, default=2, help="kindling worker --processes")
    parser.add_argument("--threads", type=int, default=None, help="kindling worker --threads (default: its own)")
    parser.add_argument("--sweep-seconds", type=float, default=None, help="KINDLING_SWEEP_SECONDS (default: its own)")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0, help="how long localstripe's ceiling is measured")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for the cards and the ceiling")
    parser.add_argument(
        "--stock-localstripe", action="store_true", help="run localstripe as shipped (it slows down as it fills)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (worker log, localstripe log)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the worker while it charges into this file")
    # Each option's name is a field of Options.
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    result = measure(options)
    print(report(result).render())
    return 0 if result.correctness.exactly_once and result.correctness.ledger_balanced else 1


if __name__ == "__main__":
    sys.exit(main())
