from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.jobs import Job, enqueue_job
from campaigns.models import Mail
from campaigns.notifications import DELIVER_MAIL
from service.app import create_app
from service.broker import MAIL_QUEUE, QUEUE, ListSender, queue_of
from service.settings import Settings, environment_of
from service.sweep import run_sweep, sweep_once, sweep_steps
from tests.helpers import Inbox, sign_up

KINDLING = str(Path(sys.executable).parent / "kindling")


@pytest.fixture
async def dramatiq_client(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process with its real job sender: jobs go to Redis, for a real worker."""
    app = create_app(settings, engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def worker(settings: Settings, smtp_inbox: Inbox, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kindling worker` as a real process, sending mail to `smtp_inbox` and sweeping twice a second."""
    env = environment_of(settings, SMTP_URL=smtp_inbox.url, KINDLING_SWEEP_SECONDS="0.5")
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [KINDLING, "worker", "--processes", "1", "--threads", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def wait_until_sent(sessions: async_sessionmaker[AsyncSession], mail_id: object, within: float = 120.0) -> Mail:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with sessions() as session:
            mail = await session.get(Mail, mail_id)
            if mail is not None and mail.sent_at is not None:
                return mail
        await asyncio.sleep(0.1)
    raise AssertionError(f"mail {mail_id} was not sent within {within}s")


@pytest.mark.slow
def test_mail_has_a_queue_of_its_own_so_a_close_s_mail_never_waits_in_front_of_its_charges() -> None:
    from payments.charging import CHARGE_PLEDGE
    from service import tasks

    assert queue_of(DELIVER_MAIL) == MAIL_QUEUE and queue_of(CHARGE_PLEDGE) == QUEUE != MAIL_QUEUE
    assert tasks.deliver_mail_job.queue_name == MAIL_QUEUE  # the actor and the sender agree
    assert tasks.charge_pledges_actor.queue_name == QUEUE


async def test_a_real_worker_delivers_the_welcome_mail_and_whatever_the_sweep_finds(
    dramatiq_client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    worker: subprocess.Popen[bytes],
    smtp_inbox: Inbox,
    tmp_path: Path,
) -> None:
    ada = await sign_up(dramatiq_client, "Ada")
    async with sessions() as session:
        welcome = await session.scalar(select(Mail).where(Mail.to_address == ada.email, Mail.kind == "welcome"))
        verification = await session.scalar(select(Mail.id).where(Mail.kind == "verify_email"))
    assert welcome is not None and verification is not None

    sent = await wait_until_sent(sessions, welcome.id)
    await wait_until_sent(sessions, verification)

    assert sent.attempts == 1
    assert [message["To"] for message in smtp_inbox.messages] == [ada.email, ada.email]
    assert sorted(message["Subject"] for message in smtp_inbox.messages) == [
        "Confirm your email address for Kindling",
        "Welcome to Kindling, Ada",
    ]

    # A mail whose message never reached Redis: only the sweep can find it.
    async with sessions.begin() as session:
        lost = Mail(kind="welcome", to_address="lost@example.com", locale="en", facts={"name": "Lost"})
        session.add(lost)
        await session.flush()
        lost.created_at = (await session.execute(select(func.now() - timedelta(minutes=1)))).scalar_one()
    await wait_until_sent(sessions, lost.id)
    assert [message["To"] for message in smtp_inbox.messages] == [ada.email, ada.email, "lost@example.com"]

    descendants = psutil.Process(worker.pid).children(recursive=True)
    assert descendants, "the worker runs Dramatiq in child processes"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, (tmp_path / "worker.log").read_text()
    _gone, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []


async def test_only_one_sweep_runs_at_a_time(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as first, sessions() as second:
        async with first.begin():
            assert await run_sweep(first, settings, steps={}) == {}
            async with second.begin():
                assert await run_sweep(second, settings, steps={}) is None  # the first still holds the lock
        async with second.begin():
            assert await run_sweep(second, settings, steps={}) == {}  # released with the first's transaction


async def test_sweeps_started_together_run_one_of_them(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    started = 0
    finished = 0
    others_finished = asyncio.Event()

    async def slow_step(session: AsyncSession, settings: Settings) -> int:
        """Holds the sweep until the two others have come and gone (they would wait here too, were they let in)."""
        nonlocal started
        started += 1
        await asyncio.wait_for(others_finished.wait(), timeout=60)
        return 1

    async def one_sweep() -> dict[str, int] | None:
        nonlocal finished
        found = await sweep_once(sessions, ListSender(), settings, steps={"slow": slow_step})
        finished += 1
        if finished == 2:
            others_finished.set()
        return found

    results = await asyncio.gather(*(one_sweep() for _ in range(3)))

    assert started == 1
    assert sorted(results, key=lambda found: found is None) == [{"slow": 1}, None, None]


async def test_a_failing_step_is_undone_with_its_jobs_and_the_others_still_run(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async def broken(session: AsyncSession, settings: Settings) -> int:
        enqueue_job(session, "broken.job", "1")
        raise RuntimeError("a bug in one step")

    async def healthy(session: AsyncSession, settings: Settings) -> int:
        enqueue_job(session, "healthy.job", "2")
        return 1

    sender = ListSender()
    found = await sweep_once(sessions, sender, settings, steps={"broken": broken, "healthy": healthy})

    assert found == {"healthy": 1}
    assert sender.jobs == [Job("healthy.job", ("2",))]


async def test_the_sweep_resends_mail_whose_message_was_lost(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert "mail" in sweep_steps()
    async with sessions.begin() as session:
        fresh = Mail(kind="welcome", to_address="fresh@example.com", locale="en", facts={"name": "Fresh"})
        lost = Mail(kind="welcome", to_address="lost@example.com", locale="en", facts={"name": "Lost"})
        session.add_all([fresh, lost])
        await session.flush()
        lost.created_at = (await session.execute(select(func.now() - timedelta(minutes=1)))).scalar_one()

    sender = ListSender()
    found = await sweep_once(sessions, sender, settings)

    assert found is not None and found["mail"] == 1
    assert Job(DELIVER_MAIL, (str(lost.id),)) in sender.jobs
    assert Job(DELIVER_MAIL, (str(fresh.id),)) not in sender.jobs
