"""Arrangements the tests share, made through the public API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import re
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

import httpx
import pyotp
import uvicorn
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from campaigns.catalog import earliest_delivery
from campaigns.models import User
from service.devservices import EmbeddedStripe

PASSWORD = "correct horse battery"
# The month the tests' tiers promise delivery in: a year from today, after the deadline of any campaign (60 days at
# most) whenever the tests run. A fixed month stops being after the deadline one day and the tests fail.
DELIVERY = earliest_delivery(date.today() + timedelta(days=365))
# An address lock still to come whenever the tests run: a year from now, at noon UTC.
LOCK_AT = (datetime.now(UTC) + timedelta(days=365)).replace(hour=12, minute=0, second=0, microsecond=0)
SHENZHEN = timezone(timedelta(hours=8))
_counter = itertools.count(1)


@dataclass
class Actor:
    id: str
    email: str
    token: str
    # Set once the actor has two-factor on (operators and admins, through `enrol_two_factor`).
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(
    client: httpx.AsyncClient,
    name: str = "Ada",
    email: str | None = None,
    *,
    verified: bool = True,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> Actor:
    """A new user signed up through the API, with a token. `verified` (the default) marks their address confirmed
    in the database, as following the mailed link would (tests/test_email_verification.py follows it for real); the
    database is the app's behind an in-process `client`, else pass `sessions`."""
    email = email or f"{name.lower()}{next(_counter)}@example.com"
    created = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD, "name": name})
    assert created.status_code == 201, created.text
    if verified:
        await mark_verified(sessions or _sessions_behind(client), email)
    token = await client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    assert token.status_code == 201, token.text
    return Actor(created.json()["id"], email, token.json()["token"])


def month_in_english(month: str) -> str:
    """A "YYYY-MM" month as the English pages write it: "2027-03" is "March 2027"."""
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]} {year}"


def month_in_chinese(month: str) -> str:
    """A "YYYY-MM" month as the Chinese pages write it: "2027-03" is "2027年3月"."""
    year, number = month.split("-")
    return f"{year}年{int(number)}月"


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _sessions_behind(client: httpx.AsyncClient) -> async_sessionmaker[AsyncSession]:
    app = getattr(client, "app", None) or getattr(client._transport, "app", None)
    assert app is not None, "sign_up(verified=True) needs the app's database: pass sessions= for a remote server"
    sessions: async_sessionmaker[AsyncSession] = app.state.sessions
    return sessions


async def mark_verified(sessions: async_sessionmaker[AsyncSession], email: str) -> None:
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.email == email).values(email_verified_at=func.now()))


async def make_admin(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> Actor:
    """A platform admin with two-factor on, as every admin must have before acting as one."""
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.email == actor.email).values(is_admin=True))
    return await enrol_two_factor(sessions, actor)


async def enrol_two_factor(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> Actor:
    """Two-factor on for `actor`, as the set-up does it: a new secret, confirmed with the code an app computes from
    it. Keeps the secret and the recovery codes on the actor (log-ins in tests spend recovery codes, so that no TOTP
    code is needed twice within one 30-second step)."""
    from campaigns.two_factor import begin_two_factor, confirm_two_factor

    if actor.totp_secret is not None:
        return actor
    async with sessions.begin() as session:
        user = await session.get_one(User, uuid.UUID(actor.id))
        enrolment = await begin_two_factor(session, user)
        actor.recovery_codes = await confirm_two_factor(session, user, pyotp.TOTP(enrolment.secret).now())
    actor.totp_secret = enrolment.secret
    return actor


def spend_recovery_code(actor: Actor) -> str:
    assert actor.recovery_codes, f"{actor.email} has no recovery code left for a log-in"
    return actor.recovery_codes.pop()


LOGIN_CODE_FORM = 'action="/login/code"'


async def finish_page_log_in(client: httpx.AsyncClient, answer: httpx.Response, actor: Actor) -> httpx.Response:
    """After the password step of the log-in form: the code step, when the page asks for it (two-factor is on)."""
    if answer.status_code != 200 or LOGIN_CODE_FORM not in answer.text:
        return answer
    token = re.search(r'name="csrf_token" value="([^"]+)"', answer.text)
    assert token, answer.text
    return await client.post("/login/code", data={"csrf_token": token.group(1), "code": spend_recovery_code(actor)})


async def create_space(client: httpx.AsyncClient, admin: Actor, **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {
        "name": f"Chaihuo Makerspace {n}",
        "slug": f"chaihuo-{n}",
        "city": "Shenzhen",
        "country": "CN",
        "sponsor_fee_bps": 300,
        "description": "Where makers meet factories.",
    }
    body.update(fields)
    response = await client.post("/api/v1/spaces", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


# Stripe's test cards, as localstripe knows them.
CARD_OK = "4242424242424242"
CARD_DECLINED_AT_SETUP = "4000000000000002"
CARD_DECLINED_AT_CHARGE = "4000000000000341"
CARD_NEEDS_AUTHENTICATION = "4000002500003155"


def stripe_http(stripe: EmbeddedStripe, *, secret: bool = True, **kwargs: Any) -> httpx.AsyncClient:
    """A client of localstripe's API: with the secret key, as our server calls it, or without (`secret=False`), as
    Stripe.js in a browser does. Plain HTTP on loopback, so no TLS context is made for it (loading the CA bundle into
    one costs 20-30 ms of CPU a client, and the suite makes thousands)."""
    auth = (stripe.secret_key, "") if secret else None
    return httpx.AsyncClient(base_url=stripe.api_base, auth=auth, verify=False, **kwargs)


async def confirm_card_setup(stripe: EmbeddedStripe, client_secret: str, card_number: str = CARD_OK) -> httpx.Response:
    """What Stripe.js's confirmCardSetup does in the backer's browser: send the card to Stripe with the SetupIntent's
    client secret and the publishable key (our server never sees the card)."""
    setup_intent_id = client_secret.split("_secret_")[0]
    async with stripe_http(stripe, secret=False) as browser:
        return await browser.post(
            f"/v1/setup_intents/{setup_intent_id}/confirm",
            json={
                "key": stripe.publishable_key,
                "use_stripe_sdk": True,
                "client_secret": client_secret,
                "payment_method_data": {
                    "type": "card",
                    "card": {"number": card_number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
                },
            },
        )


async def complete_card_authentication(stripe: EmbeddedStripe, client_secret: str) -> httpx.Response:
    """The backer passing the bank's check (3-D Secure) that confirmCardSetup shows for some cards."""
    setup_intent_id = client_secret.split("_secret_")[0]
    async with stripe_http(stripe, secret=False) as browser:
        return await browser.post(
            f"/v1/setup_intents/{setup_intent_id}/confirm",
            json={"key": stripe.publishable_key, "use_stripe_sdk": True, "client_secret": client_secret},
        )


async def stripe_object(stripe: EmbeddedStripe, path: str) -> dict[str, Any]:
    """An object as localstripe holds it, e.g. `stripe_object(stripe, "/v1/payment_methods/pm_...")`."""
    async with stripe_http(stripe) as http:
        response = await http.get(path)
    response.raise_for_status()
    return dict(response.json())


def stripe_event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """A Stripe event envelope around a real object, as Stripe would deliver it."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def stripe_signature(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send with `payload`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Inbox:
    """What a real SMTP server (aiosmtpd, see the `smtp_inbox` fixture) accepted; `url` is its SMTP_URL."""

    def __init__(self) -> None:
        self.url = ""
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


# Campaigns (tests/test_campaigns_api.py shows each step on its own).

CHECKLIST_ALL_TRUE = {"prototype": True, "bill_of_materials": True, "manufacturing_quote": True, "certifications": True}
SHIPPING_CN_AND_WORLD = [{"country": "CN", "fee": 1000}, {"country": "*", "fee": 5000}]


async def make_operator(
    client: httpx.AsyncClient,
    admin: Actor,
    space: dict[str, Any],
    name: str = "Olu",
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> Actor:
    """A new (verified) user whom the admin names operator of `space`, with two-factor on (set up through the API)."""
    operator = await sign_up(client, name, sessions=sessions)
    response = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return await enrol_two_factor_by_api(client, operator)


async def enrol_two_factor_by_api(client: httpx.AsyncClient, actor: Actor) -> Actor:
    """What an operator does in their authenticator app and the API: start, scan the secret, confirm with a code."""
    started = await client.post("/api/v1/me/two-factor", headers=actor.headers)
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(
        "/api/v1/me/two-factor/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=actor.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    actor.totp_secret, actor.recovery_codes = secret, list(confirmed.json()["recovery_codes"])
    return actor


async def create_campaign(
    client: httpx.AsyncClient, maker: Actor, space: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A draft by `maker` in `space`: CNY 1,000.00 goal over 30 days unless `fields` say otherwise."""
    body: dict[str, Any] = {
        "title": f"Open Soil Sensor {next(_counter)}",
        "summary": "A soil moisture sensor for balcony gardens.",
        "description": "## The sensor\n\nIt tells you **when** to water.",
        "currency": "CNY",
        "goal": 100_000,
        "space_id": space["id"],
        "duration_days": 30,
    }
    body.update(fields)
    response = await client.post("/api/v1/campaigns", json=body, headers=maker.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add_product(
    client: httpx.AsyncClient, maker: Actor, campaign: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": "SKU-A",
        "name": "Sensor",
        "weight_grams": 120,
        "unit_cost": 3_000,
        "batch_size": 500,
    }
    body.update(fields)
    response = await client.post(f"/api/v1/campaigns/{campaign['id']}/products", json=body, headers=maker.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add_tier(client: httpx.AsyncClient, maker: Actor, campaign: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An unlimited tier of one SKU-A for 199.00, shipped to CN and the rest of the world, unless `fields` differ."""
    body: dict[str, Any] = {
        "title": "One sensor",
        "description": "One sensor, shipped.",
        "price": 19_900,
        "quantity_limit": None,
        "items": [{"sku": "SKU-A", "quantity": 1}],
        "shipping": SHIPPING_CN_AND_WORLD,
        "estimated_delivery": DELIVERY,
    }
    body.update(fields)
    response = await client.post(f"/api/v1/campaigns/{campaign['id']}/tiers", json=body, headers=maker.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def drafted_campaign(
    client: httpx.AsyncClient,
    maker: Actor,
    space: dict[str, Any],
    *,
    limited_quantity: int = 10,
    **fields: Any,
) -> dict[str, Any]:
    """A draft ready to submit: product SKU-A, a limited "Early bird" tier (one unit, `limited_quantity` slots) and an
    unlimited "Pair" tier (two units), both shipping to CN and "*"."""
    campaign = await create_campaign(client, maker, space, **fields)
    await add_product(client, maker, campaign)
    await add_tier(client, maker, campaign, title="Early bird", price=14_900, quantity_limit=limited_quantity)
    await add_tier(client, maker, campaign, title="Pair", price=34_900, items=[{"sku": "SKU-A", "quantity": 2}])
    response = await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def approve_campaign(client: httpx.AsyncClient, operator: Actor, campaign: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/review",
        json={"decision": "approve", "notes": "Prototype seen at the space.", "checklist": CHECKLIST_ALL_TRUE},
        headers=operator.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def launched_campaign(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    *,
    currency: str = "CNY",
    goal: int = 100_000,
    duration_days: int = 30,
    limited_quantity: int = 10,
    maker: Actor | None = None,
    space: dict[str, Any] | None = None,
    operator: Actor | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], Actor, Actor]:
    """A live campaign, taken draft -> submit -> approve (by an operator of its space) -> launch through the API.

    Returns (campaign json, maker, operator). Its tiers: `tiers[0]` "Early bird", 149.00 for one SKU-A, limited to
    `limited_quantity`; `tiers[1]` "Pair", 349.00 for two SKU-A, unlimited; both ship to CN for 10.00 and elsewhere
    ("*") for 50.00. Pass `space` together with its `operator` to reuse them; otherwise new ones are made.
    """
    if space is None or operator is None:
        admin = await make_admin(sessions, await sign_up(client, "Admin"))
        space = space or await create_space(client, admin)
        operator = operator or await make_operator(client, admin, space)
    maker = maker or await sign_up(client, "Maker")
    campaign = await drafted_campaign(
        client,
        maker,
        space,
        limited_quantity=limited_quantity,
        currency=currency,
        goal=goal,
        duration_days=duration_days,
        **fields,
    )
    submitted = await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    assert submitted.status_code == 200, submitted.text
    await approve_campaign(client, operator, campaign)
    launched = await client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=maker.headers)
    assert launched.status_code == 200, launched.text
    return dict(launched.json()), maker, operator


# How long a served app keeps an idle connection open: longer than a loaded machine can take between two requests.
# uvicorn's 5 s default let the server close one just as the client reused it (an httpx ReadError in a rush test,
# with the code right).
KEEP_ALIVE_SECONDS = 300


@asynccontextmanager
async def serving(app: ASGIApp, *, lifespan: Literal["on", "off"] = "on") -> AsyncIterator[str]:
    """`app` served by uvicorn on a free loopback port, for callers that need a real address (localstripe's
    webhooks, a stand-in for Stripe); yields its base URL."""
    sock = loopback_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, timeout_keep_alive=KEEP_ALIVE_SECONDS
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        server.should_exit = True
        await task
        sock.close()
        raise RuntimeError(f"uvicorn did not start on port {port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def loopback_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port, for uvicorn to serve on (`sockets=[...]`). Bound here and kept, the
    port cannot be taken by another process between being chosen and being listened on, as a port number found
    free and bound again later can (several test runs share the machine)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def many_backers(sessions: async_sessionmaker[AsyncSession], count: int, name: str = "Backer") -> list[Actor]:
    """`count` users with tokens, made through the account functions (sign-up through the API is throttled)."""
    from campaigns.accounts import issue_token, register_user

    actors = []
    async with sessions.begin() as session:
        for _ in range(count):
            email = f"{name.lower()}{next(_counter)}@example.com"
            user = await register_user(session, email=email, password=PASSWORD, name=name, verified=True)
            actors.append(Actor(str(user.id), email, await issue_token(session, user)))
    return actors


async def backers_in_bulk(sessions: async_sessionmaker[AsyncSession], count: int, name: str = "Backer") -> list[Actor]:
    """`count` users with tokens, written in one transaction with one password hash shared by all: what
    `many_backers` makes, in a fraction of the time. For tests that need hundreds of backers."""
    from sqlalchemy import insert

    from campaigns.accounts import hash_token
    from campaigns.models import ApiToken, new_id
    from campaigns.passwords import hash_password

    password_hash = hash_password(PASSWORD)
    now = datetime.now(UTC)
    actors = []
    users: list[dict[str, Any]] = []
    tokens: list[dict[str, Any]] = []
    for _ in range(count):
        user_id, email = new_id(), f"{name.lower()}{next(_counter)}@example.com"
        token = "kdl_" + secrets.token_urlsafe(32)
        users.append(
            {"id": user_id, "email": email, "name": name, "password_hash": password_hash, "email_verified_at": now}
        )
        tokens.append({"id": new_id(), "user_id": user_id, "token_hash": hash_token(token)})
        actors.append(Actor(str(user_id), email, token))
    async with sessions.begin() as session:
        await session.execute(insert(User), users)
        await session.execute(insert(ApiToken), tokens)
    return actors
