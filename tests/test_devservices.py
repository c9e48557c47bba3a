from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
import redis
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.devservices import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe, free_port, postgres_bin_dir

pytestmark = pytest.mark.slow


def is_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_postgres_bin_dir_has_the_client_tools() -> None:
    for tool in ("pg_dump", "pg_restore", "pgbench", "psql"):
        assert os.access(postgres_bin_dir() / tool, os.X_OK), tool


def test_postgres_serves_the_sqlalchemy_url_and_keeps_data_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    postgres = EmbeddedPostgres(data_dir, database="kindling_test")
    url = postgres.start()
    assert url == f"postgresql+asyncpg://postgres@/kindling_test?host={postgres.socket_dir}"

    async def write_through_sqlalchemy() -> str:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE pledges (amount integer)"))
                await connection.execute(text("INSERT INTO pledges VALUES (4200)"))
                database: str = (await connection.execute(text("SELECT current_database()"))).scalar_one()
                return database
        finally:
            await engine.dispose()

    assert asyncio.run(write_through_sqlalchemy()) == "kindling_test"
    postgres.create_database("kindling_test")  # already there: no error

    postmaster = psutil.Process(postgres.postmaster_pid)
    server_pids = [postmaster.pid, *(child.pid for child in postmaster.children(recursive=True))]
    assert len(server_pids) > 1
    postgres.stop()
    assert all(is_gone(pid) for pid in server_pids)
    assert not (data_dir / "postmaster.pid").exists()

    with EmbeddedPostgres(data_dir, database="kindling_test") as restarted:

        async def read_back() -> tuple[int, int]:
            connection = await asyncpg.connect(restarted.dsn())
            try:
                return await connection.fetchval("SELECT 1"), await connection.fetchval("SELECT amount FROM pledges")
            finally:
                await connection.close()

        assert asyncio.run(read_back()) == (1, 4200)
        restarted_pid = restarted.postmaster_pid
    assert is_gone(restarted_pid)


def test_postgres_creates_and_drops_databases_by_name(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg", database="postgres") as postgres:
        postgres.create_database("kindling")
        postgres.create_database("kindling")

        async def database_names() -> set[str]:
            connection = await asyncpg.connect(postgres.dsn("postgres"))
            try:
                return {row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")}
            finally:
                await connection.close()

        assert "kindling" in asyncio.run(database_names())
        postgres.drop_database("kindling")
        assert "kindling" not in asyncio.run(database_names())


def test_redis_answers_ping_and_keeps_data_across_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = EmbeddedRedis(tmp_path / "redis")
    with caplog.at_level(logging.INFO, logger="kindling.dev"):
        url = first.start()
    assert url == f"redis://127.0.0.1:{first.port}/0"
    assert [record.getMessage() for record in caplog.records] == [f"Redis (embedded) at {url}"]
    client = redis.Redis.from_url(url)
    assert client.ping()
    client.set("campaign:1:backers", 12)
    client.close()
    pid = first.pid
    assert pid is not None
    first.stop()
    assert is_gone(pid)

    with EmbeddedRedis(tmp_path / "redis") as second:
        client = redis.Redis.from_url(second.url)
        assert client.get("campaign:1:backers") == b"12"
        client.close()
        second_pid = second.pid
    assert second_pid is not None and is_gone(second_pid)


def test_stripe_stand_in_serves_the_api_and_stripe_js(tmp_path: Path) -> None:
    with EmbeddedStripe() as fake_stripe:
        assert fake_stripe.secret_key.startswith("sk_test_")
        assert fake_stripe.publishable_key.startswith("pk_test_")
        assert fake_stripe.webhook_secret.startswith("whsec_")
        client = stripe.StripeClient(fake_stripe.secret_key, base_addresses={"api": fake_stripe.api_base})
        customer = client.v1.customers.create(params={"email": "maker@example.org"})
        assert customer.id.startswith("cus_")
        assert client.v1.customers.retrieve(customer.id).email == "maker@example.org"

        js = httpx.get(fake_stripe.js_url)
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]

        fake_stripe.reset()
        assert client.v1.customers.list().data == []
        pid = fake_stripe.pid
    assert pid is not None and is_gone(pid)


def test_stripe_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "localstripe.pickle"
    with EmbeddedStripe(state_file=state_file) as fake_stripe:
        client = stripe.StripeClient(fake_stripe.secret_key, base_addresses={"api": fake_stripe.api_base})
        customer_id = client.v1.customers.create(params={"email": "maker@example.org"}).id
    assert state_file.exists()

    with EmbeddedStripe(state_file=state_file, log_file=tmp_path / "localstripe.log") as fake_stripe:
        client = stripe.StripeClient(fake_stripe.secret_key, base_addresses={"api": fake_stripe.api_base})
        assert client.v1.customers.retrieve(customer_id).email == "maker@example.org"


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, queue.Queue[tuple[bytes, str]]]]:
    deliveries: queue.Queue[tuple[bytes, str]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.put((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook", deliveries
    server.shutdown()
    server.server_close()
    thread.join()


def test_stripe_delivers_signed_webhooks_to_the_registered_endpoint(
    webhook_receiver: tuple[str, queue.Queue[tuple[bytes, str]]],
) -> None:
    url, deliveries = webhook_receiver
    with EmbeddedStripe() as fake_stripe:
        fake_stripe.register_webhook(url, fake_stripe.webhook_secret, events=["customer.created"])
        client = stripe.StripeClient(fake_stripe.secret_key, base_addresses={"api": fake_stripe.api_base})
        customer = client.v1.customers.create(params={"email": "maker@example.org"})

        payload, signature = deliveries.get(timeout=60)
        event = stripe.Webhook.construct_event(payload, signature, fake_stripe.webhook_secret)
        assert event.type == "customer.created"
        assert event.data.object.id == customer.id
