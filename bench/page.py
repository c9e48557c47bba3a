"""Benchmark 4, the campaign page: what a visitor who follows a link to a popular live campaign gets, and how fast.

    python -m bench.page --seconds 20

A live campaign with six tiers (one limited), three products, a long story, updates and thousands of backers is
served by the product's app under uvicorn (`bench.page_app`, which is `kindling serve` plus one bare route). Keep-alive
clients, anonymous as most visitors are, ask for one address each for `--seconds`, one address after another:
the bare Starlette JSON endpoint of the same server (the reference), `GET /api/v1/campaigns/{id}`, and the public
campaign page `/campaigns/{slug}`. Printed: requests/s and latency percentiles of each, and each against the bare
endpoint. The clients are a small raw HTTP/1.1 client, not httpx, so that the load generator (on the same cores)
costs little next to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.common import (
    BACKER_ID_SQL,
    BenchServices,
    CpuMeter,
    Latencies,
    Report,
    embedded_services,
    insert_backers,
    insert_live_campaign,
    machine_description,
    ms,
    profiled,
    ratio,
    say,
    served,
    verdict,
)
from bench.page_app import BARE_PATH
from campaigns.models import Campaign, CampaignUpdate, Product, Tier
from service.database import create_engine

GOAL_RATIO = 0.3
TITLE = "Kindling bench: a solar weather station"
STORY_PARAGRAPH = (
    "<p>Our station measures temperature, humidity, pressure and wind, runs a year on its solar cell and sends its "
    "readings over LoRa to a gateway on your roof. We built forty prototypes at the makerspace and tested them "
    "through a Shenzhen summer; the factory has quoted the first batch.</p>"
)
# (title, price, quantity limit or None, items)
EXTRA_TIERS = (
    ("Station", 39_900, None, [{"sku": "STATION", "quantity": 1}]),
    ("Station and gateway", 59_900, None, [{"sku": "STATION", "quantity": 1}, {"sku": "GATEWAY", "quantity": 1}]),
    ("Three stations", 99_900, None, [{"sku": "STATION", "quantity": 3}]),
    ("Gateway", 24_900, None, [{"sku": "GATEWAY", "quantity": 1}]),
    ("School kit", 199_900, 50, [{"sku": "STATION", "quantity": 5}, {"sku": "GATEWAY", "quantity": 1}]),
)


@dataclass(frozen=True)
class Options:
    seconds: float = 20.0  # per address
    clients: int = 32
    workers: int = 2
    backers: int = 5_000
    warm_up_seconds: float = 2.0
    keep: bool = False
    profile: Path | None = None  # py-spy's collapsed stacks of the server while the campaign page is asked for


@dataclass(frozen=True)
class PageData:
    campaign_id: uuid.UUID
    slug: str
    title: str
    tiers: int
    backers: int


@dataclass
class Target:
    """One address under load: what came back and how long each request took."""

    label: str
    path: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    body: bytes = b""  # one response body, to check what was served
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0


@dataclass
class PageResult:
    options: Options
    data: PageData
    bare: Target
    api: Target
    page: Target

    def problems(self) -> list[str]:
        found = [
            f"{target.label}: statuses {dict(target.statuses)}"
            for target in (self.bare, self.api, self.page)
            if set(target.statuses) != {200}
        ]
        if self.data.title.encode() not in self.page.body:
            found.append("the page does not show the campaign's title")
        try:
            answered = json.loads(self.api.body)
        except ValueError:
            answered = {}
        if answered.get("id") != str(self.data.campaign_id) or len(answered.get("tiers", ())) != self.data.tiers:
            found.append("the API did not answer with the campaign and its tiers")
        return found


# The run


def measure(options: Options) -> PageResult:
    with embedded_services("page", keep=options.keep) as services:
        return asyncio.run(_measure(services, options))


async def _measure(services: BenchServices, options: Options) -> PageResult:
    engine = create_engine(services.settings.database_url, pool_size=2, max_overflow=0)
    try:
        data = await _set_up(engine, options)
    finally:
        await engine.dispose()
    targets = [
        Target("bare Starlette JSON endpoint", BARE_PATH),
        Target("GET /api/v1/campaigns/{id}", f"/api/v1/campaigns/{data.campaign_id}"),
        Target("campaign page /campaigns/{slug}", f"/campaigns/{data.slug}"),
    ]
    async with served(services, workers=options.workers, module="bench.page_app") as server:
        host, port = server.url.removeprefix("http://").split(":")
        for target in targets:
            say(f"{target.label}: {options.clients} clients, {options.seconds:g}s after {options.warm_up_seconds:g}s")
            await _load(host, int(port), target, clients=options.clients, seconds=options.warm_up_seconds)
            cpu = CpuMeter({"server": server.pid, "PostgreSQL": services.postgres.postmaster_pid})
            cpu.start()
            measured = Target(target.label, target.path)
            with profiled(server.pid, options.profile if target is targets[-1] else None):
                await _load(host, int(port), measured, clients=options.clients, seconds=options.seconds)
            used = cpu.stop()
            measured.server_cpu, measured.postgres_cpu = used["server"], used.get("PostgreSQL", 0.0)
            target.__dict__.update(measured.__dict__)
    return PageResult(options, data, *targets)


async def _set_up(engine: AsyncEngine, options: Options) -> PageData:
    say(f"inserting a live campaign with {len(EXTRA_TIERS) + 1} tiers and {options.backers} backers")
    async with engine.begin() as connection:
        live = await insert_live_campaign(connection, slots=2 * options.backers, label="page")
        slug = await _dress_up(connection, live.id, live.maker_id)
        backers = await insert_backers(connection, options.backers, tokens=False)
        await _pledge(connection, live.id, backers.first, backers.count)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
    return PageData(live.id, slug, TITLE, len(EXTRA_TIERS) + 1, options.backers)


async def _dress_up(connection: AsyncConnection, campaign_id: uuid.UUID, maker_id: uuid.UUID) -> str:
    """The title, the story, more products and tiers and three updates; returns the campaign's slug."""
    story = "\n".join(STORY_PARAGRAPH for _ in range(12))
    slug = str(
        await connection.scalar(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(title=TITLE, description=story, description_html=story)
            .returning(Campaign.slug)
        )
    )
    await connection.execute(
        insert(Product),
        [
            {"campaign_id": campaign_id, "sku": "STATION", "name": "Weather station", "weight_grams": 640,
             "batch_size": 1_000, "overage_bps": 200},
            {"campaign_id": campaign_id, "sku": "GATEWAY", "name": "LoRa gateway", "weight_grams": 300,
             "batch_size": 500, "overage_bps": 100},
        ],
    )  # fmt: skip
    await connection.execute(
        insert(Tier),
        [
            {"campaign_id": campaign_id, "title": title, "price": price, "quantity_limit": limit, "remaining": limit,
             "items": items, "position": position + 1, "description": f"**{title}**, shipped worldwide.",
             "shipping": [{"country": "CN", "fee": 1_000}, {"country": "*", "fee": 6_000}],
             "estimated_delivery": "2027-05"}
            for position, (title, price, limit, items) in enumerate(EXTRA_TIERS)
        ],
    )  # fmt: skip
    await connection.execute(
        insert(CampaignUpdate),
        [
            {"campaign_id": campaign_id, "author_id": maker_id, "title": f"Update {n}", "body": STORY_PARAGRAPH,
             "body_html": STORY_PARAGRAPH, "visibility": "public" if n != 2 else "backers"}
            for n in range(1, 4)
        ],
    )  # fmt: skip
    return slug


async def _pledge(connection: AsyncConnection, campaign_id: uuid.UUID, first: int, count: int) -> None:
    """One active pledge per backer, on the campaign's first (limited) tier, its slots taken accordingly."""
    await connection.execute(
        text(
            f"""
            WITH tier AS (
                UPDATE tiers SET remaining = remaining - CAST(:count AS int)
                WHERE campaign_id = :campaign AND position = 0 RETURNING id
            )
            INSERT INTO pledges (id, campaign_id, backer_id, tier_id, status, amount, shipping_fee, currency,
                                 shipping_country, confirmed_at)
            SELECT gen_random_uuid(), :campaign, {BACKER_ID_SQL.format(n="n")}, tier.id, 'active', 15900, 1000,
                   'CNY', 'CN', now()
            FROM tier, generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
            """
        ),
        {"campaign": campaign_id, "count": count, "first": first, "last": first + count - 1},
    )


# The clients: raw HTTP/1.1 over keep-alive connections


async def _load(host: str, port: int, target: Target, *, clients: int, seconds: float) -> None:
    request = f"GET {target.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode()
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                writer.write(request)
                status, body = await _response(reader)
                target.latencies.append(time.perf_counter() - began)
                target.statuses[status] += 1
                if not target.body and status == 200:
                    target.body = body
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    target.seconds = time.perf_counter() - started


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("a chunked response: the bench's client reads Content-Length bodies only")
    return status, await reader.readexactly(length or 0)


# The figures


def report(result: PageResult) -> Report:
    options, data = result.options, result.data
    out = Report(
        f"Campaign page: {options.clients} clients, {options.seconds:g} s per address, "
        f"server with {options.workers} workers; {data.tiers} tiers, {data.backers:,} backers"
    )
    out.section("Machine").append(("cpu", machine_description()))
    cores = os.cpu_count() or 1
    reference = result.bare.per_second
    for target in (result.bare, result.api, result.page):
        rows = out.section(f"{target.label}  (GET {target.path})")
        rows.append(
            ("requests/s", f"{target.per_second:,.0f}/s  ({len(target.latencies):,} in {target.seconds:.1f} s)")
        )
        rows.append(("latency", str(Latencies.of(target.latencies))))
        rows.append(("statuses", str(dict(target.statuses))))
        rows.append(("response size", f"{len(target.body):,} bytes"))
        rows.append(
            (
                "server CPU per request",
                f"{ms(target.server_cpu / max(1, len(target.latencies)))}  "
                f"({target.server_cpu:.1f} s of {target.seconds * cores:.1f} s on {cores} cores)",
            )
        )
        rows.append(("PostgreSQL CPU per request", ms(target.postgres_cpu / max(1, len(target.latencies)))))
        if target is not result.bare:
            rows.append(("vs the bare endpoint", ratio(target.per_second, reference)))
    rows = out.section("Goal")
    met = result.page.per_second >= GOAL_RATIO * reference
    rows.append(
        (
            "page vs bare endpoint",
            f"{ratio(result.page.per_second, reference)}  (goal ≥ {GOAL_RATIO:g}×: {verdict(met)})",
        )
    )
    rows.append(("API vs bare endpoint", ratio(result.api.per_second, reference)))
    problems = result.problems()
    rows.append(("PROBLEMS" if problems else "problems", "; ".join(problems) or "none"))
    return out


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each address is asked for (default 20)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--backers", type=int, default=5_000, help="backers of the campaign (default 5000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the server's log)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server during the page into this file")
    # Each option's name is a field of Options.
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    result = measure(parse_options(argv))
    print(report(result).render())
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
