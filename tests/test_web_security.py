"""Web security: every form checks its CSRF token, headers keep the pages to our origin (and Stripe.js), sign-up is
throttled, uploads are judged by their bytes, and no secret or card number reaches a log line.

The session cookie's flags and each form's own CSRF refusal are in tests/test_pages_foundation.py; log-in throttles
in tests/test_accounts_api.py and there; refused non-images in tests/test_images.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Route

from campaigns.notifications import DELIVER_MAIL
from payments.gateway import StripeGateway
from payments.tasks import process_webhook
from payments.webhooks import PROCESS_WEBHOOK
from service.app import create_app
from service.broker import ListSender
from service.database import create_engine, unit_of_work
from service.devservices import EmbeddedStripe
from service.logs import configure_logging
from service.mail import deliver_mail
from service.metadata import target_metadata
from service.settings import Settings
from service.throttle import SIGNUPS_PER_ADDRESS_PER_HOUR
from tests.helpers import (
    CARD_OK,
    PASSWORD,
    confirm_card_setup,
    create_space,
    drafted_campaign,
    launched_campaign,
    make_admin,
    sign_up,
    stripe_event,
    stripe_object,
    stripe_signature,
)
from tests.pages import csrf_from, log_in

# RFC 8058's one-click unsubscribe is posted by the reader's mail provider, with no session and so no CSRF token.
SESSIONLESS_FORMS = {"/unsubscribe/{token}"}
PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
STRIPE_JS_ORIGIN = "https://js.stripe.com"


def picture(fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 20)).save(buffer, fmt)
    return buffer.getvalue()


async def database_digest(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """A digest of every row of every table: equal digests, nothing changed."""
    digests = {}
    async with sessions() as session:
        for table in target_metadata.sorted_tables:
            digests[table.name] = await session.scalar(
                text(f"SELECT md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), '')) FROM \"{table.name}\" t")
            )
    return digests


def form_routes(app: Starlette) -> list[Route]:
    """Every page route that takes a POST: the JSON API (bearer tokens, or X-CSRF-Token for cookies) aside."""
    return [
        route
        for route in app.routes
        if isinstance(route, Route) and "POST" in (route.methods or ()) and not route.path.startswith("/api/")
    ]


# CSRF on every form


async def test_every_form_refuses_a_post_without_this_sessions_csrf_token_and_changes_nothing(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = stripe_client
    live, _maker, _operator = await launched_campaign(client, sessions)
    # Pat makes a draft with a product, tiers and an image, and backs the live campaign: every kind of thing a form
    # may name exists and belongs to Pat, so a form that forgot the check would change something.
    pat = await sign_up(client, "Pat")
    draft = await drafted_campaign(client, pat, {"id": live["space_id"]})
    image = await client.post(
        f"/api/v1/campaigns/{draft['id']}/images",
        files={"file": ("cover.png", picture(), "image/png")},
        data={"role": "cover"},
        headers=pat.headers,
    )
    assert image.status_code == 201, image.text
    pledge = await client.post(
        f"/api/v1/campaigns/{live['id']}/pledges",
        json={"tier_id": live["tiers"][0]["id"], "shipping_country": "CN"},
        headers=pat.headers,
    )
    assert pledge.status_code == 201, pledge.text
    assert (await confirm_card_setup(stripe_server, pledge.json()["payment"]["client_secret"])).status_code == 200
    assert (await client.post(f"/api/v1/pledges/{pledge.json()['id']}/confirm", headers=pat.headers)).status_code == 200
    real_ids = {
        "slug": draft["slug"],
        "product_id": draft["products"][0]["id"],
        "tier_id": draft["tiers"][0]["id"],
        "image_id": image.json()["id"],
        "pledge_id": pledge.json()["id"],
    }
    await log_in(client, pat)
    before = await database_digest(sessions)

    routes = form_routes(client.app)  # type: ignore[attr-defined]
    paths = {route.path for route in routes}
    assert {"/signup", "/login", "/logout"} <= paths, paths
    refused: list[str] = []
    for route in routes:
        path = PATH_PARAM.sub(lambda m: str(real_ids.get(m.group(1), uuid.uuid4())), route.path)
        for form in ({}, {"csrf_token": "forged-" + uuid.uuid4().hex}):
            response = await client.post(path, data={**form, "email": pat.email, "password": PASSWORD, "x": "1"})
            if route.path in SESSIONLESS_FORMS:
                # No CSRF token by its standard: the signed token in the path is the proof, and a made-up one is
                # a 404 (tests/test_update_fanout.py unsubscribes with a real one).
                assert response.status_code == 404, f"POST {route.path} {form}: {response.status_code}"
                continue
            assert response.status_code == 403, f"POST {route.path} {form}: {response.status_code}"
            assert response.headers["content-type"].startswith("text/html")
        refused.append(route.path)
    # The pages' scripts call the API with the session cookie; without the X-CSRF-Token header that is refused too.
    for method, path in (("POST", "/api/v1/campaigns"), ("DELETE", f"/api/v1/pledges/{real_ids['pledge_id']}")):
        by_cookie = await client.request(method, path, json={"title": "Forged"})
        assert by_cookie.status_code == 403, f"{method} {path}: {by_cookie.status_code}"
        assert by_cookie.json()["type"].endswith("csrf-failed")

    assert await database_digest(sessions) == before
    # Not even the log-out went through: Pat is still logged in.
    me = await client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["email"] == pat.email
    assert len(refused) == len(routes) >= 3


# Headers


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, sender=ListSender(), engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50200))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def policy_of(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


@pytest.mark.parametrize("path", ["/", "/login", "/no-such-page", "/api/v1/spaces", "/api/v1/no-such", "/healthz"])
async def test_every_answer_allows_only_our_origin_and_stripe_js(
    settings: Settings, engine: AsyncEngine, path: str
) -> None:
    production_like = replace(settings, stripe_js_url=f"{STRIPE_JS_ORIGIN}/v3/")
    async with app_client(production_like) as client:
        response = await client.get(path)
    assert response.status_code < 500
    policy = policy_of(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", STRIPE_JS_ORIGIN]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    # Stripe.js calls Stripe's API and opens 3-D Secure in a frame from Stripe's hooks host; nothing else is allowed.
    assert policy["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert policy["frame-src"] == ["'self'", STRIPE_JS_ORIGIN, "https://hooks.stripe.com"]
    stripe_hosts = {STRIPE_JS_ORIGIN, "https://api.stripe.com", "https://hooks.stripe.com"}
    for directive, sources in policy.items():
        allowed = {"'self'", "'none'"} | (stripe_hosts if directive.endswith("-src") else set())
        allowed |= {"data:"} if directive == "img-src" else set()
        assert set(sources) <= allowed, f"{directive} allows {set(sources) - allowed}"
        if directive not in ("script-src", "connect-src", "frame-src"):
            assert not set(sources) & stripe_hosts, f"{directive} allows Stripe"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
    assert response.headers["x-frame-options"] == "DENY"


async def test_the_stripe_js_origin_in_the_policy_is_the_configured_one(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe
) -> None:
    policy = policy_of((await stripe_client.get("/")).headers["content-security-policy"])
    assert policy["script-src"] == ["'self'", stripe_server.api_base]
    assert policy["frame-src"] == ["'self'", stripe_server.api_base]
    assert policy["connect-src"] == ["'self'", stripe_server.api_base]


# Throttles


async def test_sign_up_is_throttled_per_address_through_the_api_and_the_form(client: httpx.AsyncClient) -> None:
    for n in range(SIGNUPS_PER_ADDRESS_PER_HOUR):
        await sign_up(client, "Spam", email=f"spam{n}@example.com")  # each also logs in: that is not throttled
    refused = await client.post(
        "/api/v1/users", json={"email": "one-more@example.com", "password": PASSWORD, "name": "Spam"}
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 3600

    token = await csrf_from(client, "/signup")
    form = {"csrf_token": token, "name": "Spam", "email": "by-form@example.com", "password": PASSWORD}
    by_form = await client.post("/signup", data=form)
    assert by_form.status_code == 429 and int(by_form.headers["retry-after"]) > 0
    taken = await client.post("/api/v1/tokens", json={"email": "by-form@example.com", "password": PASSWORD})
    assert taken.status_code == 401, "no account was made"


# Uploads are judged by their bytes


async def test_a_picture_is_taken_whatever_its_name_and_declared_type(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, await create_space(client, admin))
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/images",
        files={"file": ("notes.txt", picture("PNG"), "text/plain")},
        data={"role": "gallery"},
        headers=maker.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["url"].endswith(".png")
    served = await client.get(response.json()["url"])
    assert served.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(served.content)).format == "PNG"


# Logs


@contextmanager
def production_logging() -> Iterator[io.StringIO]:
    """Logging as `kindling serve` configures it (every Kindling logger down to DEBUG), written to a string."""
    root = logging.getLogger()
    names = ("httpx", "httpcore", "stripe", "asyncio", "pgserver", "kindling")
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in names})
    configure_logging()
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("kindling").setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


async def test_no_secret_password_token_or_card_number_reaches_the_logs_of_a_whole_pledge(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    client = stripe_client
    with production_logging() as logs:
        campaign, maker, operator = await launched_campaign(client, sessions)
        backer = await sign_up(client, "Bea")
        wrong = await client.post("/api/v1/tokens", json={"email": backer.email, "password": "a-wrong-password-42"})
        assert wrong.status_code == 401
        await log_in(client, backer)
        session_cookie = client.cookies["kindling_session"]

        created = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/pledges",
            json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
            headers=backer.headers,
        )
        assert created.status_code == 201, created.text
        client_secret = created.json()["payment"]["client_secret"]
        assert (await confirm_card_setup(stripe_server, client_secret, CARD_OK)).status_code == 200
        confirmed = await client.post(f"/api/v1/pledges/{created.json()['id']}/confirm", headers=backer.headers)
        assert confirmed.status_code == 200, confirmed.text

        # Stripe tells us about it too; the event carries the SetupIntent, client secret and all.
        intent = await stripe_object(stripe_server, f"/v1/setup_intents/{created.json()['payment']['setup_intent_id']}")
        payload = json.dumps(stripe_event("setup_intent.succeeded", intent)).encode()
        delivered = await client.post(
            "/api/v1/webhooks/stripe",
            content=payload,
            headers={
                "Stripe-Signature": stripe_signature(payload, stripe_settings.stripe_webhook_secret),
                "Content-Type": "application/json",
            },
        )
        assert delivered.status_code == 200, delivered.text

        # What the worker would do with the jobs: apply the event, deliver the mail.
        def transaction() -> Any:
            return unit_of_work(sessions, jobs)

        for job in list(jobs.jobs):
            if job.actor_name == PROCESS_WEBHOOK:
                await process_webhook(transaction, gateway, str(job.args[0]))
            elif job.actor_name == DELIVER_MAIL:
                await deliver_mail(sessions, stripe_settings, str(job.args[0]))

    written = logs.getvalue()
    assert "kindling.mail" in written and "kept for /dev/mail" in written, "the flow was logged"
    secrets = {
        "the password": PASSWORD,
        "a wrong password": "a-wrong-password-42",
        "the maker's token": maker.token,
        "the operator's token": operator.token,
        "the backer's token": backer.token,
        "the session cookie": session_cookie,
        "the Stripe secret key": stripe_settings.stripe_secret_key,
        "the webhook secret": stripe_settings.stripe_webhook_secret,
        "Kindling's secret key": stripe_settings.secret_key,
        "a client secret": "_secret_",
        "the card number": CARD_OK,
    }
    leaked = [what for what, value in secrets.items() if value in written]
    assert leaked == [], f"{leaked} in the logs"


async def test_a_database_error_names_the_statement_but_never_the_values_sent(settings: Settings) -> None:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError) as failed:
            async with engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO users (id, email, name, password_hash) VALUES (:id, :email, :name, :hash)"),
                    {"id": uuid.uuid4(), "email": "leak@example.com", "name": "x" * 500, "hash": "sk_live_not_in_logs"},
                )
    finally:
        await engine.dispose()
    assert "INSERT INTO users" in str(failed.value)
    assert "sk_live_not_in_logs" not in str(failed.value) and "leak@example.com" not in str(failed.value)
