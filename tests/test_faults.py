"""When PostgreSQL or Redis goes away: clients get 503 problem+json (never a 500), nothing is lost, and the service
recovers by itself once they are back."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Mail, Space
from campaigns.notifications import DELIVER_MAIL
from service.app import create_app
from service.broker import DramatiqSender, ListSender, create_broker
from service.database import JobSender, create_engine, create_sessionmaker
from service.devservices import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe
from service.middleware import is_unavailable
from service.migrations import migrate
from service.settings import Settings, environment_of
from service.sweep import sweep_once
from tests.helpers import Actor, Inbox, confirm_card_setup, launched_campaign, make_admin, sign_up

pytestmark = pytest.mark.slow

KINDLING = str(Path(sys.executable).parent / "kindling")
# The request loops are bounded in count and time, and stop by themselves whatever happens.
CALLERS = 4
PAUSE = 0.02
MAX_REQUESTS = 5000
LOOP_LIMIT = 300.0
# Each phase (before, during and after the outage) lasts until the callers have had this many answers of its kind.
ANSWERS_A_PHASE = 3 * CALLERS
PHASE_WITHIN = 60.0
RECOVERY_WITHIN = 60.0


@dataclass
class Answer:
    sent_at: float
    request: str
    status: int
    content_type: str
    retry_after: str | None
    body: str


@asynccontextmanager
async def app_client(settings: Settings, sender: JobSender | None) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process on `settings`; with sender=None, jobs go to Redis as in production."""
    app = create_app(settings, sender=sender, engine_pool=5)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50100))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


# PostgreSQL restarted while requests run


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, to stop and start without disturbing the others."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("faults") / "pg", database="kindling")
    server.start()
    try:
        migrate(server.database_url())
        yield server
    finally:
        server.stop()


async def keep_asking(
    client: httpx.AsyncClient, admin: Actor, answers: list[Answer], stop: asyncio.Event, slugs: Iterator[int]
) -> None:
    """Reads and writes, one after the other, until told to stop (or a bound is reached)."""
    started = time.monotonic()
    for turn in itertools.count():
        if stop.is_set() or len(answers) >= MAX_REQUESTS or time.monotonic() - started > LOOP_LIMIT:
            return
        sent_at = time.monotonic()
        if turn % 3 == 0:
            request = "GET /api/v1/spaces"
            response = await client.get("/api/v1/spaces")
        elif turn % 3 == 1:
            request = "GET /api/v1/me"
            response = await client.get("/api/v1/me", headers=admin.headers)
        else:
            n = next(slugs)
            request = "POST /api/v1/spaces"
            body = {
                "name": f"Space {n}",
                "slug": f"space-{n}",
                "city": "Shenzhen",
                "country": "CN",
                "sponsor_fee_bps": 0,
            }
            response = await client.post("/api/v1/spaces", json=body, headers=admin.headers)
        answers.append(
            Answer(
                sent_at,
                request,
                response.status_code,
                response.headers.get("content-type", ""),
                response.headers.get("retry-after"),
                response.text,
            )
        )
        await asyncio.sleep(PAUSE)


async def test_postgresql_restarted_under_load_answers_503_never_500_and_recovers_by_itself(
    own_postgres: EmbeddedPostgres, settings: Settings
) -> None:
    database_url = own_postgres.database_url()
    engine = create_engine(database_url, pool_size=1)
    sessions = create_sessionmaker(engine)
    try:
        async with app_client(replace(settings, database_url=database_url), ListSender()) as client:
            admin = await make_admin(sessions, await sign_up(client, "Admin"))

            answers: list[Answer] = []
            stop = asyncio.Event()
            slugs = itertools.count(1)
            callers = [asyncio.create_task(keep_asking(client, admin, answers, stop, slugs)) for _ in range(CALLERS)]
            try:
                await answers_seen(answers, lambda answer: answer.status in (200, 201), "before the outage")
                await asyncio.to_thread(own_postgres.stop)
                stopped_at = time.monotonic()
                health = await client.get("/healthz")
                await answers_seen(answers, lambda answer: answer.sent_at > stopped_at, "during the outage")
                await asyncio.to_thread(own_postgres.start)
                restarted_at = time.monotonic()
                recovered_at = await first_success_after(answers, restarted_at)
                await answers_seen(answers, lambda answer: answer.sent_at > recovered_at, "after the recovery")
            finally:
                stop.set()
                await asyncio.gather(*callers)

            after = await client.post(
                "/api/v1/spaces",
                json={"name": "After", "slug": "after", "city": "Shenzhen", "country": "CN", "sponsor_fee_bps": 0},
                headers=admin.headers,
            )
            assert after.status_code == 201, after.text
            async with sessions() as session:
                spaces_saved = await session.scalar(select(func.count()).select_from(Space))
    finally:
        await engine.dispose()

    statuses = Counter(answer.status for answer in answers)
    unavailable = [answer for answer in answers if answer.status == 503]
    print(
        f"\nPostgreSQL restart: {len(answers)} requests from {CALLERS} callers, {dict(sorted(statuses.items()))}; "
        f"down {restarted_at - stopped_at:.1f}s, first success {recovered_at - restarted_at:.2f}s after the restart"
    )
    assert set(statuses) <= {200, 201, 503}, [a for a in answers if a.status not in (200, 201, 503)][:3]
    assert unavailable, "the outage was seen by the callers"
    for answer in unavailable:
        assert answer.content_type == "application/problem+json" and answer.retry_after == "5"
        problem = json.loads(answer.body)
        assert problem["status"] == 503 and "Traceback" not in answer.body
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "database": "failed", "broker": "ok"}
    # Recovered without restarting the app: everything asked after the first success succeeded.
    late = [answer for answer in answers if answer.sent_at > recovered_at]
    assert late and all(answer.status in (200, 201) for answer in late), Counter(a.status for a in late)
    # Every space the API said it created is there; a write the outage cut short may or may not have landed.
    created = sum(1 for answer in answers if answer.request.startswith("POST") and answer.status == 201)
    cut_short = sum(1 for answer in unavailable if answer.request.startswith("POST"))
    assert created + 1 <= (spaces_saved or 0) <= created + 1 + cut_short


async def answers_seen(answers: list[Answer], counted: Callable[[Answer], bool], phase: str) -> None:
    """Wait until the callers have had ANSWERS_A_PHASE answers that `counted` counts."""
    deadline = time.monotonic() + PHASE_WITHIN
    while sum(1 for answer in answers if counted(answer)) < ANSWERS_A_PHASE:
        assert time.monotonic() < deadline, f"fewer than {ANSWERS_A_PHASE} answers {phase} in {PHASE_WITHIN}s"
        await asyncio.sleep(0.02)


async def first_success_after(answers: list[Answer], moment: float) -> float:
    deadline = time.monotonic() + RECOVERY_WITHIN
    while time.monotonic() < deadline:
        for answer in answers:
            if answer.sent_at > moment and answer.status in (200, 201):
                return answer.sent_at
        await asyncio.sleep(0.05)
    raise AssertionError(f"no request succeeded within {RECOVERY_WITHIN}s of PostgreSQL's restart")


# Redis down


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, to stop and start without disturbing the others."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def queued_jobs(redis_url: str) -> list[tuple[str, list[Any]]]:
    """(actor, args) of every message waiting in Dramatiq's queues on `redis_url`."""
    client = redis.Redis.from_url(redis_url)
    try:
        found = []
        for key in client.scan_iter("dramatiq:*.msgs"):
            for data in client.hvals(key):
                message = json.loads(data)
                found.append((message["actor_name"], message["args"]))
        return found
    finally:
        client.close()


async def wait_until_sent(sessions: async_sessionmaker[AsyncSession], mail_ids: list[Any], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with sessions() as session:
            unsent = await session.scalar(
                select(func.count()).select_from(Mail).where(Mail.id.in_(mail_ids), Mail.sent_at.is_(None))
            )
        if unsent == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"mail not sent within {within}s")


@contextmanager
def running_worker(env: dict[str, str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kindling worker` as a real process."""
    with log_file.open("wb") as log:
        worker = subprocess.Popen(
            [KINDLING, "worker", "--processes", "1", "--threads", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def test_the_workers_pool_without_pre_ping_loses_one_job_to_a_restart_then_goes_on(
    own_postgres: EmbeddedPostgres,
) -> None:
    """The worker's engine skips the pre-ping (three round trips on every checkout, a fifth of a charge's): after a
    PostgreSQL restart the first job to use a dead connection fails as "unavailable" (its actor retries it, the sweep
    finds the work again), and the pool then replaces every connection that predates the failure."""
    engine = create_engine(own_postgres.database_url(), pool_size=3, max_overflow=0, pre_ping=False)
    try:

        async def ask() -> int:
            async with engine.connect() as connection:
                return int(await connection.scalar(text("SELECT 1")) or 0)

        assert await asyncio.gather(ask(), ask(), ask()) == [1, 1, 1]  # three pooled connections
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)

        with pytest.raises(DBAPIError) as failed:
            await ask()
        assert is_unavailable(failed.value)
        assert await asyncio.gather(ask(), ask(), ask()) == [1, 1, 1], "the other stale connections were replaced"
    finally:
        await engine.dispose()


async def test_with_redis_down_people_still_sign_up_and_pledge_and_the_sweep_sends_the_mail_later(
    own_redis: EmbeddedRedis,
    stripe_settings: Settings,
    stripe_server: EmbeddedStripe,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    smtp_inbox: Inbox,
    tmp_path: Path,
) -> None:
    settings = replace(stripe_settings, redis_url=own_redis.url)
    async with app_client(settings, None) as client:
        campaign, _maker, _operator = await launched_campaign(client, sessions)

        own_redis.stop()
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable", "database": "ok", "broker": "failed"}

        backer = await sign_up(client, "Bea")
        created = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/pledges",
            json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
            headers=backer.headers,
        )
        assert created.status_code == 201, created.text
        assert (await confirm_card_setup(stripe_server, created.json()["payment"]["client_secret"])).status_code == 200
        confirmed = await client.post(f"/api/v1/pledges/{created.json()['id']}/confirm", headers=backer.headers)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "active"

        async with sessions() as session:
            mails = (await session.execute(select(Mail.id, Mail.kind).where(Mail.to_address == backer.email))).all()
        assert {kind for _id, kind in mails} >= {"welcome", "pledge_confirmed"}
        waiting = [mail_id for mail_id, _kind in mails]

        own_redis.start()
        assert (await client.get("/healthz")).json() == {"status": "ok", "database": "ok", "broker": "ok"}

    # The sweep leaves a fresh mail to the job it expects in flight; these are a minute old.
    async with sessions.begin() as session:
        await session.execute(
            update(Mail).where(Mail.id.in_(waiting)).values(created_at=func.now() - timedelta(minutes=1))
        )
    broker = create_broker(own_redis.url)
    try:
        found = await sweep_once(sessions, DramatiqSender(broker), settings)
    finally:
        broker.close()
    assert found is not None and found["mail"] >= len(waiting)
    queued = await asyncio.to_thread(queued_jobs, own_redis.url)
    for mail_id in waiting:
        assert (DELIVER_MAIL, [str(mail_id)]) in queued

    # A real worker on that Redis delivers them.
    with running_worker(environment_of(settings, SMTP_URL=smtp_inbox.url), tmp_path / "worker.log"):
        await wait_until_sent(sessions, waiting, within=30.0)
    to_backer = [message for message in smtp_inbox.messages if message["To"] == backer.email]
    assert len(to_backer) == len(waiting)
