"""The authorisation matrix: every route of the app (JSON API and HTML pages) × every kind of caller → the status
the caller gets. The rows are checked against the app's own route table, so a new route without a row fails.

Roles, in the order of each row's statuses:
  anonymous       nobody logged in
  backer          backed the campaigns the row acts on (live: an active pledge; funded: a collected one, addressed)
  other_backer    a signed-in user with no part in them
  maker           made the campaigns the row acts on (all sponsored by space A)
  other_maker     made a campaign of their own, in space B
  operator        operates space A, the sponsor
  other_operator  operates space B
  admin           platform admin

A row is 8 statuses in that order. Requests that change state carry a body valid for the route, so where a role is
allowed the answer is the success status, not a validation error. Rows whose note says "fresh ... per cell" build
their objects anew for every cell (a success would otherwise change the world for the cells after it: a submit, a
delete, a release...); the others act on the one world, in ways that leave it as the later rows need it.

API: 401 without a token, 403 for who may see the object but not do this, 404 for who may not even see it.
Pages: a POST always carries the session's CSRF token (tests/test_web_security.py covers a missing one). Nobody
logged in gets 303 to /login on a member-only page and on the backer's forms, and 401 with the log-in page on the
maker's and operator's forms. The maker's workspace pages of a draft are 404 to everyone but its maker.
"""

from __future__ import annotations

import inspect
import io
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Mount, Route

from campaigns import account_links
from campaigns.accounts import issue_token, register_user
from campaigns.late_pledges import LateAddOn, LateReward
from campaigns.models import (
    AddOn,
    Campaign,
    CampaignUpdate,
    Mail,
    Pledge,
    ProductVariant,
    Space,
    SpaceOperator,
    Tier,
    User,
)
from campaigns.notification_settings import unsubscribe_token
from campaigns.notifications import SECRET_FACT
from campaigns.pledges.models import Match
from campaigns.sessions import start_session, token_id_of
from campaigns.talk.models import Conversation
from campaigns.transparency import log as design_log
from campaigns.two_factor import begin_two_factor
from fulfillment.models import Batch
from fulfillment.service import plan_campaign
from payments import ledger
from payments.milestones import create_milestones
from payments.models import ChargeAttempt
from service.devservices import EmbeddedStripe
from service.metadata import target_metadata
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier, insert_user
from tests.helpers import (
    CHECKLIST_ALL_TRUE,
    DELIVERY,
    PASSWORD,
    Actor,
    create_space,
    drafted_campaign,
    enrol_two_factor,
    launched_campaign,
    make_admin,
    many_backers,
    spend_recovery_code,
    stripe_event,
    stripe_signature,
)
from tests.money_helpers import pledge_with_card, save_card
from tests.pages import csrf_from, log_in, new_browser

ROLES = ("anonymous", "backer", "other_backer", "maker", "other_maker", "operator", "other_operator", "admin")
# The form field that confirms an irreversible step (service/pages/confirmation.py); without it the page only asks.
CONFIRMED = {"confirm": "yes"}

Params = dict[str, str]
Kwargs = dict[str, Any]
Target = Callable[["World", str], "Awaitable[tuple[Params, Kwargs]] | tuple[Params, Kwargs]"]


# The world


@dataclass
class Thing:
    """A campaign as the rows need it: its id and slug, and ids of what hangs off it."""

    id: str
    slug: str
    extra: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.extra[key]


@dataclass
class World:
    client: httpx.AsyncClient
    api: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    stripe: EmbeddedStripe
    actors: dict[str, Actor]
    browsers: dict[str, httpx.AsyncClient]
    csrf: dict[str, str]
    space_a: dict[str, Any]
    space_b: dict[str, Any]
    live: Thing = field(default_factory=lambda: Thing("", ""))
    draft: Thing = field(default_factory=lambda: Thing("", ""))
    in_review: Thing = field(default_factory=lambda: Thing("", ""))
    funded: Thing = field(default_factory=lambda: Thing("", ""))
    successful: Thing = field(default_factory=lambda: Thing("", ""))
    others: Thing = field(default_factory=lambda: Thing("", ""))
    suspended: Thing = field(default_factory=lambda: Thing("", ""))
    mail_id: str = ""
    media_path: str = ""

    def id_of(self, role: str) -> str:
        return self.actors[role].id


def png(width: int = 32, height: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


async def upload_image(w: World, campaign_id: str) -> dict[str, Any]:
    response = await w.api.post(
        f"/api/v1/campaigns/{campaign_id}/images",
        files={"file": ("cover.png", png(), "image/png")},
        data={"role": "gallery"},
        headers=w.actors["maker"].headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def insert_world_campaign(
    w: World, status: str, *, space: str = "a", maker: str = "maker", **values: Any
) -> Thing:
    """A campaign of `maker` in `status` with product SKU-A and a shipped tier, straight into the database."""
    space_id = (w.space_a if space == "a" else w.space_b)["id"]
    if status == "live":
        now = datetime.now(UTC)
        values = {"launched_at": now, "ends_at": now + timedelta(days=30)} | values
    async with w.sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=w.id_of(maker), space_id=space_id, status=status, **values)
        product = await insert_product(session, campaign, "SKU-A", batch_size=100, weight_grams=120)
        tier = await insert_tier(session, campaign, {"SKU-A": 1}, shipping=({"country": "*", "fee": 500},))
        return Thing(str(campaign.id), campaign.slug, {"product": str(product.id), "tier": str(tier.id)})


async def insert_funded(w: World, *, planned: bool = False, confirmed: bool = False) -> Thing:
    """A funded campaign: the backer's collected pledge (addressed) in the books, its milestones, and (`planned`) its
    manufacturing plan."""
    thing = await insert_world_campaign(w, "funded")
    async with w.sessions.begin() as session:
        campaign = await session.get_one(Campaign, uuid.UUID(thing.id))
        tier = await session.get_one(Tier, uuid.UUID(thing["tier"]))
        pledge = await insert_pledge(session, campaign, tier, backer_id=w.id_of("backer"), given_address=address())
        await ledger.record_collection(session, campaign, pledge.id, pledge.amount, "CNY", 500, 300, processor_fee=100)
        milestones = await create_milestones(session, campaign)
    thing.extra |= {"pledge": str(pledge.id), "milestone": str(milestones[0].id), "milestone2": str(milestones[1].id)}
    if planned:
        async with w.sessions.begin() as session:
            await plan_campaign(session, uuid.UUID(thing.id))
        async with w.sessions() as session:
            thing.extra["batch"] = str(await session.scalar(select(Batch.id).where(Batch.campaign_id == campaign.id)))
    if confirmed:
        confirm = await w.api.post(
            f"/api/v1/campaigns/{thing.id}/batches/{thing['batch']}/confirm", headers=w.actors["maker"].headers
        )
        assert confirm.status_code == 200, confirm.text
    return thing


async def log_in_browser(w: World, role: str, actor: Actor | None = None) -> tuple[httpx.AsyncClient, str]:
    """A browser of its own, logged in as `role` (or as `actor`): a session of its own on the server."""
    browser = new_browser(w.client)
    if role == "anonymous":
        return browser, await csrf_from(browser, "/login")
    return browser, await log_in(browser, actor or w.actors[role])


async def build_world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], stripe: EmbeddedStripe
) -> World:
    people = await many_backers(sessions, 7, "Person")
    admin, operator, other_operator, maker, other_maker, backer, other_backer = people
    await make_admin(sessions, admin)
    space_a = await create_space(client, admin)
    space_b = await create_space(client, admin)
    for space, person in ((space_a, operator), (space_b, other_operator)):
        added = await client.post(
            f"/api/v1/spaces/{space['id']}/operators", json={"email": person.email}, headers=admin.headers
        )
        assert added.status_code == 201, added.text
        await enrol_two_factor(sessions, person)
    actors = {
        "backer": backer,
        "other_backer": other_backer,
        "maker": maker,
        "other_maker": other_maker,
        "operator": operator,
        "other_operator": other_operator,
        "admin": admin,
    }
    api = new_browser(client)
    w = World(client, api, sessions, stripe, actors, {}, {}, space_a, space_b)

    live, _maker, _operator = await launched_campaign(client, sessions, maker=maker, space=space_a, operator=operator)
    pledge = await pledge_with_card(client, stripe, backer, live, tier=1)
    async with sessions.begin() as session:
        live_add_on = AddOn(
            campaign_id=uuid.UUID(live["id"]), product_id=uuid.UUID(live["products"][0]["id"]), price=1_500
        )
        session.add(live_add_on)
        await session.flush()
    image = await upload_image(w, live["id"])
    for visibility in ("public", "backers"):
        posted = await client.post(
            f"/api/v1/campaigns/{live['id']}/updates",
            json={"title": f"News for {visibility}", "body": "The **mould** is ready.", "visibility": visibility},
            headers=maker.headers,
        )
        assert posted.status_code == 201, posted.text
    update_id = posted.json()["id"]
    w.live = Thing(
        live["id"],
        live["slug"],
        {
            "pledge": pledge["id"],
            "tier": live["tiers"][1]["id"],
            "early": live["tiers"][0]["id"],
            "image": image["id"],
            "update": update_id,
            "add_on": str(live_add_on.id),
        },
    )
    w.media_path = image["url"]
    asked = await client.post(
        f"/api/v1/campaigns/{live['id']}/conversations", json={"body": "When?"}, headers=backer.headers
    )
    assert asked.status_code == 201, asked.text
    async with sessions() as session:
        conversation_id = await session.scalar(
            select(Conversation.id).where(Conversation.member_id == uuid.UUID(backer.id))
        )
    invited = await client.post(f"/api/v1/conversations/{conversation_id}/space", headers=backer.headers)
    assert invited.status_code == 200, invited.text
    commented = await client.post(
        f"/api/v1/campaigns/{live['id']}/comments", json={"body": "Rude words"}, headers=other_backer.headers
    )
    assert commented.status_code == 201, commented.text
    w.live.extra |= {"conversation": str(conversation_id), "comment": commented.json()["id"]}

    draft = await drafted_campaign(client, maker, space_a)
    draft_image = await upload_image(w, draft["id"])
    async with sessions.begin() as session:
        variant = ProductVariant(
            campaign_id=uuid.UUID(draft["id"]),
            product_id=uuid.UUID(draft["products"][0]["id"]),
            choice={"colour": "black"},
            sku="SKU-A-BLC",
        )
        session.add(variant)
        await session.flush()
        draft_add_on = AddOn(
            campaign_id=uuid.UUID(draft["id"]), product_id=uuid.UUID(draft["products"][0]["id"]), price=2_900
        )
        session.add(draft_add_on)
        await session.flush()
    w.draft = Thing(
        draft["id"],
        draft["slug"],
        {
            "product": draft["products"][0]["id"],
            "tier": draft["tiers"][0]["id"],
            "image": draft_image["id"],
            "variant": str(variant.id),
            "add_on": str(draft_add_on.id),
        },
    )
    w.in_review = await insert_world_campaign(w, "in_review")
    w.funded = await insert_funded(w, planned=True)
    w.successful = await insert_world_campaign(w, "successful")
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, uuid.UUID(w.successful.id))
        errored = await insert_pledge(session, campaign, None, backer_id=backer.id, status="errored")
    w.successful.extra["pledge"] = str(errored.id)
    w.others = await insert_world_campaign(w, "live", space="b", maker="other_maker")
    async with sessions.begin() as session:
        # As the worker leaves a mail once it has rendered it.
        w.mail_id = str(await session.scalar(select(Mail.id).limit(1)))
        await session.execute(update(Mail).where(Mail.id == uuid.UUID(w.mail_id)).values(html_body="<p>Hello</p>"))
    for role in ROLES:
        w.browsers[role], w.csrf[role] = await log_in_browser(w, role)
    return w


# Requests


def on(thing_name: str, *, json_body: Any = None, form: dict[str, str] | None = None, **keys: str) -> Target:
    """The path parameters from one of the world's campaigns: campaign_id / slug, and `keys` mapping a path parameter
    to one of its extras (e.g. product_id="product")."""

    def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing: Thing = getattr(w, thing_name)
        params = {"campaign_id": thing.id, "slug": thing.slug} | {name: thing[key] for name, key in keys.items()}
        kwargs: Kwargs = {}
        if json_body is not None:
            kwargs["json"] = json_body(w, role) if callable(json_body) else json_body
        if form is not None:
            kwargs["data"] = dict(form)
        return params, kwargs

    return target


def fixed(params: Params | None = None, **kwargs: Any) -> Target:
    def target(w: World, role: str) -> tuple[Params, Kwargs]:
        return dict(params or {}), dict(kwargs)

    return target


def quote_to_cn(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"pledge_id": w.funded["pledge"]}, {"params": {"country": "CN"}}


def n() -> str:
    return uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Row:
    expect: str
    target: Target
    note: str = ""
    page: bool = False
    fresh_browser: bool = False
    own_user: bool = False

    def statuses(self) -> tuple[int, ...]:
        found = tuple(int(s) for s in self.expect.split())
        assert len(found) == len(ROLES), self.expect
        return found


def api(expect: str, target: Target, note: str = "", *, own_user: bool = False) -> Row:
    return Row(expect, target, note, own_user=own_user)


def page(expect: str, target: Target, note: str = "", *, fresh_browser: bool = False, own_user: bool = False) -> Row:
    return Row(expect, target, note, page=True, fresh_browser=fresh_browser, own_user=own_user)


PUBLIC = "200 200 200 200 200 200 200 200"
ADMIN_PAGE = "303 403 403 403 403 403 403 200"
ADMIN_FORM = "303 403 403 403 403 403 403 303"


# Objects made anew for every cell of a row whose success changes them


async def fresh_draft(w: World, role: str) -> Thing:
    """A draft ready to submit, with an unused product SKU-Z and an image besides."""
    thing = await insert_world_campaign(w, "draft")
    async with w.sessions.begin() as session:
        campaign = await session.get_one(Campaign, uuid.UUID(thing.id))
        spare = await insert_product(session, campaign, "SKU-Z", batch_size=10)
        spare_tier = await insert_tier(session, campaign, {"SKU-A": 2}, title="Spare tier")
        spare_add_on = AddOn(campaign_id=campaign.id, product_id=spare.id, price=2_900)
        session.add(spare_add_on)
        await session.flush()
    thing.extra |= {"spare_product": str(spare.id), "spare_tier": str(spare_tier.id), "add_on": str(spare_add_on.id)}
    thing.extra["image"] = str((await upload_image(w, thing.id))["id"])
    return thing


async def fresh_pledge(w: World, role: str) -> Thing:
    """A live campaign with the backer's active pledge."""
    thing = await insert_world_campaign(w, "live")
    async with w.sessions.begin() as session:
        campaign = await session.get_one(Campaign, uuid.UUID(thing.id))
        tier = await session.get_one(Tier, uuid.UUID(thing["tier"]))
        pledge = await insert_pledge(session, campaign, tier, backer_id=w.id_of("backer"), status="active")
    thing.extra["pledge"] = str(pledge.id)
    return thing


async def card_change_saved(w: World, role: str) -> tuple[Params, Kwargs]:
    """The live pledge's backer began a card change and Stripe saved the new card, per cell."""
    pledge_id = w.live["pledge"]
    begun = await w.api.post(f"/api/v1/pledges/{pledge_id}/card-change", headers=w.actors["backer"].headers)
    assert begun.status_code == 200, begun.text
    await save_card(w.stripe, begun.json()["client_secret"])
    return {"pledge_id": pledge_id}, {}


async def add_on_line(w: World, role: str) -> tuple[Params, Kwargs]:
    """The live pledge's backer added the live campaign's add-on, per cell: the line to remove."""
    pledge_id = w.live["pledge"]
    added = await w.api.post(
        f"/api/v1/pledges/{pledge_id}/items", json={"add_on_id": w.live["add_on"]}, headers=w.actors["backer"].headers
    )
    assert added.status_code == 201, added.text
    return {"pledge_id": pledge_id, "item_id": added.json()["items"][-1]["id"]}, {}


async def add_on_line_form(w: World, role: str) -> tuple[Params, Kwargs]:
    params, _kwargs = await add_on_line(w, role)
    return params, {"data": {}}


async def milestone_asked(w: World, thing: Thing) -> None:
    asked = await w.api.post(
        f"/api/v1/campaigns/{thing.id}/milestones/{thing['milestone']}/request", headers=w.actors["maker"].headers
    )
    assert asked.status_code == 200, asked.text


async def pledge_charged(w: World, thing: Thing) -> None:
    """The charge that collected the funded campaign's pledge, as the charge job records it."""
    async with w.sessions.begin() as session:
        pledge = await session.get_one(Pledge, uuid.UUID(thing["pledge"]))
        session.add(
            ChargeAttempt(
                pledge_id=pledge.id,
                attempt=1,
                idempotency_key=f"pledge:{pledge.id}:charge:1",
                amount=pledge.amount,
                currency=pledge.currency,
                payment_method_id="pm_matrix",
                status="succeeded",
                payment_intent_id=f"pi_{pledge.id.hex[:24]}",
            )
        )


async def milestone_released(w: World, thing: Thing) -> None:
    await milestone_asked(w, thing)
    released = await w.api.post(
        f"/api/v1/campaigns/{thing.id}/milestones/{thing['milestone']}/release", headers=w.actors["operator"].headers
    )
    assert released.status_code == 200, released.text


async def fresh_match(w: World, role: str) -> Thing:
    """A live campaign of space A matched by its operator (the match's pledge active), straight into the database."""
    thing = await insert_world_campaign(w, "live")
    async with w.sessions.begin() as session:
        campaign = await session.get_one(Campaign, uuid.UUID(thing.id))
        pledge = Pledge(
            campaign_id=campaign.id, backer_id=uuid.UUID(w.id_of("operator")), is_match=True, amount=20_000,
            bonus=20_000, currency=campaign.currency, status="active",
        )  # fmt: skip
        session.add(pledge)
        await session.flush()
        session.add(
            Match(
                pledge_id=pledge.id, campaign_id=campaign.id, space_id=campaign.space_id, sponsor_name="Space A",
                cap=20_000, currency=campaign.currency, created_by=pledge.backer_id,
            )
        )  # fmt: skip
    return thing


def with_match(*, matched: bool, form: dict[str, str] | None = None) -> Target:
    """A live campaign of its own per cell: matched already (to read or withdraw), or not yet (to match)."""

    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing = await fresh_match(w, role) if matched else await insert_world_campaign(w, "live")
        params = {"campaign_id": thing.id, "slug": thing.slug}
        if form is not None:
            return params, {"data": dict(form)}
        return params, {} if matched else {"json": {"cap": 20_000, "sponsor_name": "Space A"}}

    return target


def with_status(status: str, **keys: str) -> Target:
    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing = await insert_world_campaign(w, status)
        return {"campaign_id": thing.id, "slug": thing.slug} | {k: thing[v] for k, v in keys.items()}, {}

    return target


def with_draft(body: Callable[[Thing], Kwargs] | None = None, **keys: str) -> Target:
    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing = await fresh_draft(w, role)
        params = {"campaign_id": thing.id, "slug": thing.slug} | {k: thing[v] for k, v in keys.items()}
        return params, body(thing) if body else {}

    return target


def with_funded(
    *, step: Callable[[World, Thing], Awaitable[None]] | None = None, planned: bool = False, confirmed: bool = False,
    body: Callable[[Thing], Kwargs] | None = None, **keys: str,
) -> Target:  # fmt: skip
    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing = await insert_funded(w, planned=planned or confirmed, confirmed=confirmed)
        if step is not None:
            await step(w, thing)
        params = {"campaign_id": thing.id, "slug": thing.slug} | {k: thing[v] for k, v in keys.items()}
        return params, body(thing) if body else {}

    return target


def with_pledge(body: Kwargs | None = None) -> Target:
    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing = await fresh_pledge(w, role)
        return {"pledge_id": thing["pledge"]}, dict(body or {})

    return target


async def fresh_token(w: World, role: str) -> tuple[Params, Kwargs]:
    if role == "anonymous":
        return {}, {}
    async with w.sessions.begin() as session:
        user = await session.get_one(User, uuid.UUID(w.id_of(role)))
        token = await issue_token(session, user)
    return {}, {"headers": {"Authorization": f"Bearer {token}"}}


async def new_operator(w: World, role: str) -> tuple[Params, Kwargs]:
    async with w.sessions.begin() as session:
        person = await insert_user(session, "Newop")
    return {"space_id": w.space_a["id"]}, {"json": {"email": person.email}}


def own_credentials(w: World, role: str) -> tuple[Params, Kwargs]:
    """Email and password, and for who has two-factor on (operators, admin) one of their recovery codes."""
    who = w.actors["other_backer" if role == "anonymous" else role]
    otp = {"otp": spend_recovery_code(who)} if who.recovery_codes else {}
    return {}, {"json": {"email": who.email, "password": PASSWORD} | otp}


async def wrong_first_code(w: World, role: str) -> tuple[Params, Kwargs]:
    """Set-up started anew for who has not two-factor yet, then a code that is not the app's."""
    if role != "anonymous" and not w.actors[role].recovery_codes:
        async with w.sessions.begin() as session:
            await begin_two_factor(session, await session.get_one(User, uuid.UUID(w.id_of(role))))
    return {}, {"json": {"code": "000000"}}


async def wrong_first_code_form(w: World, role: str) -> tuple[Params, Kwargs]:
    await wrong_first_code(w, role)
    return {}, {"data": {"code": "000000"}}


async def extra_operator(w: World, role: str) -> tuple[Params, Kwargs]:
    """A user newly made operator of space A, for removing again."""
    async with w.sessions.begin() as session:
        person = await insert_user(session, "Exop")
        session.add(SpaceOperator(space_id=uuid.UUID(w.space_a["id"]), user_id=person.id))
    return {"space_id": w.space_a["id"], "user_id": str(person.id)}, {}


async def extra_operator_confirmed(w: World, role: str) -> tuple[Params, Kwargs]:
    params, _kwargs = await extra_operator(w, role)
    return params, {"data": CONFIRMED}


def new_user(w: World, role: str) -> tuple[Params, Kwargs]:
    return {}, {"json": {"email": f"new-{n()}@example.com", "password": PASSWORD, "name": "Newcomer"}}


def new_space(w: World, role: str) -> tuple[Params, Kwargs]:
    slug = f"space-{n()}"
    body = {"name": slug, "slug": slug, "city": "Shenzhen", "country": "CN", "sponsor_fee_bps": 300}
    return {}, {"json": body}


def new_campaign(w: World, role: str) -> tuple[Params, Kwargs]:
    body = {
        "title": f"Campaign {n()}",
        "summary": "A summary.",
        "description": "A description.",
        "currency": "CNY",
        "goal": 100_000,
        "space_id": w.space_a["id"],
        "duration_days": 30,
    }
    return {}, {"json": body}


def webhook(w: World, role: str) -> tuple[Params, Kwargs]:
    payload = json.dumps(stripe_event("customer.created", {"id": f"cus_{n()}", "object": "customer"})).encode()
    signature = stripe_signature(payload, w.stripe.webhook_secret)
    return {}, {"content": payload, "headers": {"Stripe-Signature": signature, "Content-Type": "application/json"}}


def fresh_update(form: dict[str, str] | None = None) -> Target:
    """An update of its own on the live campaign, per cell (a deletion removes it)."""

    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        async with w.sessions.begin() as session:
            campaign = await session.get_one(Campaign, uuid.UUID(w.live.id))
            posted = CampaignUpdate(
                campaign_id=campaign.id, author_id=campaign.maker_id, title="Soon gone", body="x", body_html="<p>x</p>",
                visibility="public",
            )  # fmt: skip
            session.add(posted)
        params = {"campaign_id": w.live.id, "slug": w.live.slug, "update_id": str(posted.id)}
        return params, {"data": dict(form)} if form is not None else {}

    return target


async def new_live_campaign(w: World, role: str) -> tuple[Params, Kwargs]:
    thing = await insert_world_campaign(w, "live")
    body = {"tier_id": thing["tier"], "bonus": 0, "shipping_country": "CN"}
    return {"campaign_id": thing.id, "slug": thing.slug}, {"json": body}


async def back_form(w: World, role: str) -> tuple[Params, Kwargs]:
    thing = await insert_world_campaign(w, "live")
    form = {"tier": thing["tier"], "bonus": "", "shipping_country": "CN", "action": "pledge"}
    return {"slug": thing.slug}, {"data": form}


def product_body(w: World, role: str) -> dict[str, Any]:
    return {"sku": f"SKU-{n()}", "name": "Case", "weight_grams": 80, "unit_cost": 500, "batch_size": 100}


TIER_BODY = {
    "title": "Another tier",
    "description": "One sensor.",
    "price": 19_900,
    "quantity_limit": None,
    "items": [{"sku": "SKU-A", "quantity": 1}],
    "shipping": [{"country": "*", "fee": 500}],
    "estimated_delivery": DELIVERY,
}
TIER_FORM = {
    "title": "Another tier",
    "description": "One sensor.",
    "price": "199",
    "limit": "unlimited",
    "quantity_limit": "",
    "estimated_delivery": DELIVERY,
    "items-0-sku": "SKU-A",
    "items-0-quantity": "1",
    "shipping-0-country": "*",
    "shipping-0-fee": "5",
}
REVIEW_FORM = {
    "decision": "approve",
    "notes": "Seen at the space.",
    **{f"checklist-{item}": "yes" for item in CHECKLIST_ALL_TRUE},
}


def campaign_form(w: World, role: str) -> tuple[Params, Kwargs]:
    form = {
        "title": f"Lamp {n()}",
        "summary": "A warm lamp.",
        "description": "Warm.",
        "currency": "CNY",
        "goal": "500.00",
        "space_id": w.space_a["id"],
        "duration_days": "30",
    }
    return {}, {"data": form}


def product_form(w: World, role: str) -> tuple[Params, Kwargs]:
    form = {"sku": f"SKU-{n()}", "name": "Case", "weight_grams": "80", "unit_cost": "5", "batch_size": "100"}
    return {"slug": w.draft.slug}, {"data": form}


def image_upload(thing_name: str, *, page: bool = False) -> Target:
    def target(w: World, role: str) -> tuple[Params, Kwargs]:
        thing: Thing = getattr(w, thing_name)
        data = {"role": "gallery"}
        return {"campaign_id": thing.id, "slug": thing.slug}, {
            "files": {"file": ("g.png", png(), "image/png")},
            "data": data,
        }

    return target


def tracking_csv(thing: Thing) -> bytes:
    return f"pledge_id,carrier,tracking_number\n{thing['pledge']},SF Express,SF{n()}\n".encode()


def media(w: World, role: str) -> tuple[Params, Kwargs]:
    _, _, campaign_id, filename = w.media_path.split("/")
    return {"campaign_id": campaign_id, "filename": filename}, {}


def mail(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"mail_id": w.mail_id}, {}


def space_a(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"space_id": w.space_a["id"], "slug": w.space_a["slug"]}, {}


def maker_a(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"maker_id": w.id_of("maker")}, {}


def new_space_form(w: World, role: str) -> tuple[Params, Kwargs]:
    slug = f"space-{n()}"
    return {}, {"data": {"name": slug, "slug": slug, "city": "Shenzhen", "country": "CN", "sponsor_fee_bps": "300"}}


def space_b_edit(w: World, role: str) -> tuple[Params, Kwargs]:
    data = {"name": w.space_b["name"], "city": "Dongguan", "country": "CN", "sponsor_fee_bps": "300"}
    return {"space_id": w.space_b["id"]}, {"data": data}


def space_a_terms_form(w: World, role: str) -> tuple[Params, Kwargs]:
    """The operator's space form as it stands: space A keeps its name, fee and the default plan."""
    data = {"name": w.space_a["name"], "description": "", "sponsor_fee_bps": "300", "default_plan": "yes"}
    return {"space_id": w.space_a["id"]}, {"data": data}


async def new_operator_form(w: World, role: str) -> tuple[Params, Kwargs]:
    params, kwargs = await new_operator(w, role)
    return params, {"data": kwargs["json"]}


def a_user(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"user_id": w.id_of("other_backer")}, {}


def evidence_upload(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"campaign_id": w.draft.id}, {
        "files": {"file": ("bom.csv", b"part,quantity\n", "text/csv")},
        "data": {"kind": "bom"},
    }


def evidence_page_upload(w: World, role: str) -> tuple[Params, Kwargs]:
    return {"slug": w.draft.slug}, {
        "files": {"file": ("bom.csv", b"part,quantity\n", "text/csv")},
        "data": {"kind": "bom", "confirm": "yes"},
    }


async def evidence_file(w: World, role: str) -> tuple[Params, Kwargs]:
    """An evidence file the draft's maker attaches for this cell."""
    attached = await w.api.post(
        f"/api/v1/campaigns/{w.draft.id}/evidence",
        files={"file": ("bom.csv", b"part,quantity\n", "text/csv")},
        data={"kind": "bom"},
        headers=w.actors["maker"].headers,
    )
    assert attached.status_code == 201, attached.text
    return {"campaign_id": w.draft.id, "record_id": str(attached.json()["index"])}, {}


def consistency_sizes(w: World, role: str) -> tuple[Params, Kwargs]:
    return {}, {"params": {"first": "0", "second": "0"}}


async def design_record(w: World, role: str) -> tuple[Params, Kwargs]:
    async with w.sessions.begin() as session:
        campaign = await session.get(Campaign, uuid.UUID(w.draft.id))
        assert campaign is not None
        record = await design_log.append_record(
            session,
            sha256="0" * 64,
            file_name="bom.csv",
            size_bytes=0,
            kind="bom",
            maker_id=campaign.maker_id,
            campaign_id=campaign.id,
        )
    return {"record_id": str(record.id)}, {}


async def fresh_user(w: World, role: str) -> tuple[Params, Kwargs]:
    async with w.sessions.begin() as session:
        person = await insert_user(session, "Promoted")
    return {"user_id": str(person.id)}, {}


def login_form(w: World, role: str) -> tuple[Params, Kwargs]:
    who = w.actors["other_backer" if role == "anonymous" else role]
    return {}, {"data": {"email": who.email, "password": PASSWORD}}


def login_code(w: World, role: str) -> tuple[Params, Kwargs]:
    return {}, {"data": {"code": "123456"}}


def signup_form(w: World, role: str) -> tuple[Params, Kwargs]:
    return {}, {"data": {"name": "Newcomer", "email": f"new-{n()}@example.com", "password": PASSWORD}}


async def throwaway_user(w: World) -> Actor:
    """A new user with a token and the usual password, whose address is not confirmed yet."""
    async with w.sessions.begin() as session:
        email = f"throwaway-{n()}@example.com"
        user = await register_user(session, email=email, password=PASSWORD, name="Throwaway")
        return Actor(str(user.id), email, await issue_token(session, user))


async def mailed_token(w: World, email: str, kind: str) -> str:
    async with w.sessions() as session:
        mail = await session.scalar(
            select(Mail).where(Mail.to_address == email, Mail.kind == kind).order_by(Mail.created_at.desc()).limit(1)
        )
    assert mail is not None, (email, kind)
    return str(mail.facts[SECRET_FACT])


def mailed_link(kind: str, *, json_body: Any = None, form: dict[str, str] | None = None) -> Target:
    """A link mailed to a new user per cell (`kind`: verify_email, password_reset or email_change): {token}."""

    async def target(w: World, role: str) -> tuple[Params, Kwargs]:
        who = await throwaway_user(w)
        address = who.email
        async with w.sessions.begin() as session:
            user = await session.get_one(User, uuid.UUID(who.id))
            if kind == "password_reset":
                await account_links.request_password_reset(session, who.email)
            if kind == "email_change":
                address = f"moved-{n()}@example.com"
                await account_links.request_email_change(session, user, new_email=address, password=PASSWORD)
        kwargs: Kwargs = {"json": json_body} if json_body is not None else {}
        if form is not None:
            kwargs["data"] = dict(form)
        return {"token": await mailed_token(w, address, kind)}, kwargs

    return target


async def unsubscribe_link(w: World, role: str) -> tuple[Params, Kwargs]:
    """The one-click unsubscribe link of a new user per cell: {token}, signed with the app's secret."""
    who = await throwaway_user(w)
    secret = w.client.app.state.settings.secret_key  # type: ignore[attr-defined]
    return {"token": unsubscribe_token(secret, uuid.UUID(who.id), "updates")}, {}


async def own_session(w: World, role: str) -> tuple[Params, Kwargs]:
    """A session of the role's user (another_backer's for nobody), started for this cell."""
    async with w.sessions.begin() as session:
        user = await session.get_one(User, uuid.UUID(w.id_of("other_backer" if role == "anonymous" else role)))
        _key, session_id = await start_session(session, user, address="192.0.2.1", user_agent="Matrix")
    return {"session_id": str(session_id)}, {}


async def own_token(w: World, role: str) -> tuple[Params, Kwargs]:
    """An API token of the role's user (another_backer's for nobody), issued for this cell."""
    async with w.sessions.begin() as session:
        user = await session.get_one(User, uuid.UUID(w.id_of("other_backer" if role == "anonymous" else role)))
        token = await issue_token(session, user, name="Matrix")
        token_id = await token_id_of(session, token)
    return {"token_id": str(token_id)}, {}


async def own_token_confirmed(w: World, role: str) -> tuple[Params, Kwargs]:
    params, _kwargs = await own_token(w, role)
    return params, {"data": CONFIRMED}


def new_address(w: World, role: str) -> tuple[Params, Kwargs]:
    return {}, {"json": {"email": f"moved-{n()}@example.com", "password": PASSWORD}}


def new_address_form(w: World, role: str) -> tuple[Params, Kwargs]:
    return {}, {"data": {"email": f"moved-{n()}@example.com", "email_password": PASSWORD}}


NEW_PASSWORD = {"current_password": PASSWORD, "password": PASSWORD + " again"}
ADDRESS_FORM = {k: v for k, v in address().items()}


# The matrix. Roles: anonymous, backer, other_backer, maker, other_maker, operator, other_operator, admin.

A = "/api/v1"


async def late_reward_on(w: World, thing: Thing) -> None:
    """The fresh funded campaign's tier kept on sale after its deadline."""
    async with w.sessions.begin() as session:
        session.add(LateReward(tier_id=uuid.UUID(thing["tier"]), campaign_id=uuid.UUID(thing.id), price=20_000))


async def late_add_on_on(w: World, thing: Thing) -> None:
    """The fresh funded campaign's add-on of SKU-A kept on sale after its deadline."""
    async with w.sessions.begin() as session:
        add_on = AddOn(campaign_id=uuid.UUID(thing.id), product_id=uuid.UUID(thing["product"]), price=2_900)
        session.add(add_on)
        await session.flush()
        session.add(LateAddOn(add_on_id=add_on.id, campaign_id=add_on.campaign_id, price=2_500))
    thing.extra["add_on"] = str(add_on.id)


def batch_dates_form(w: World, role: str) -> tuple[Params, Kwargs]:
    """The batch-dates form of the funded campaign, for its planned batch."""
    params, _ = on("funded")(w, role)
    form = {"batch_id": w.funded["batch"], "production_on": "2027-02-01", "ship_on": "2027-03-01", "reason": "Plan"}
    return params, {"data": form}


MATRIX: dict[tuple[str, str], Row] = {
    # Health and the API's own description
    ("GET", "/healthz"): api(PUBLIC, fixed()),
    ("GET", f"{A}/openapi.json"): api(PUBLIC, fixed()),
    # The design log: public, checkable by anyone
    ("GET", f"{A}/design-records/tree-head"): api(PUBLIC, fixed()),
    ("GET", f"{A}/design-records/consistency"): api(PUBLIC, consistency_sizes),
    ("GET", f"{A}/design-records/{{record_id}}"): api(PUBLIC, design_record),
    # Users and tokens
    ("POST", f"{A}/users"): api("201 201 201 201 201 201 201 201", new_user),
    ("POST", f"{A}/tokens"): api("201 201 201 201 201 201 201 201", own_credentials, "anonymous: other_backer's"),
    ("DELETE", f"{A}/tokens/current"): api("401 204 204 204 204 204 204 204", fresh_token, "fresh token per cell"),
    ("GET", f"{A}/me"): api("401 200 200 200 200 200 200 200", fixed()),
    ("PATCH", f"{A}/me"): api("401 200 200 200 200 200 200 200", fixed(json={"language": "en", "time_zone": "UTC"})),
    ("GET", f"{A}/me/notification-settings"): api("401 200 200 200 200 200 200 200", fixed()),
    ("PATCH", f"{A}/me/notification-settings"): api(
        "401 200 200 200 200 200 200 200", fixed(json={"updates": True, "comments": True, "messages": True})
    ),
    ("POST", f"{A}/mail-suppressions"): api(
        "401 403 403 403 403 403 403 201", fixed(json={"address": "bounced@example.com", "reason": "bounce"})
    ),
    # The account's own security
    ("POST", f"{A}/password-resets"): api(
        "202 202 202 202 202 202 202 202", lambda w, r: ({}, {"json": {"email": f"who-{n()}@example.com"}})
    ),
    ("POST", f"{A}/password-resets/{{token}}"): api(
        "200 200 200 200 200 200 200 200",
        mailed_link("password_reset", json_body={"password": PASSWORD}),
        "a new user's link per cell",
    ),
    ("PUT", f"{A}/me/password"): api(
        "401 200 200 200 200 200 200 200", fixed(json=NEW_PASSWORD), "a user of its own per cell", own_user=True
    ),
    ("POST", f"{A}/me/email-changes"): api("401 202 202 202 202 202 202 202", new_address),
    ("POST", f"{A}/email-changes/{{token}}"): api(
        "200 200 200 200 200 200 200 200", mailed_link("email_change"), "a new user's link per cell"
    ),
    ("POST", f"{A}/email-verifications"): api(
        "401 202 202 202 202 202 202 202", fixed(), "an unconfirmed user of its own per cell", own_user=True
    ),
    ("POST", f"{A}/email-verifications/{{token}}"): api(
        "200 200 200 200 200 200 200 200", mailed_link("verify_email"), "a new user's link per cell"
    ),
    ("GET", f"{A}/me/sessions"): api("401 200 200 200 200 200 200 200", fixed()),
    ("DELETE", f"{A}/me/sessions/{{session_id}}"): api(
        "401 204 204 204 204 204 204 204", own_session, "a session of the role's own per cell"
    ),
    ("DELETE", f"{A}/me/sessions"): api(
        "401 204 204 204 204 204 204 204", fixed(), "a user of its own per cell", own_user=True
    ),
    ("GET", f"{A}/me/tokens"): api("401 200 200 200 200 200 200 200", fixed()),
    ("GET", f"{A}/me/export"): api("401 200 200 200 200 200 200 200", fixed()),
    ("POST", f"{A}/me/deletion"): api(
        "401 204 204 204 204 204 204 204",
        fixed(json={"password": PASSWORD}),
        "a user of its own per cell",
        own_user=True,
    ),
    ("DELETE", f"{A}/me/tokens/{{token_id}}"): api(
        "401 204 204 204 204 204 204 204", own_token, "a token of the role's own per cell"
    ),
    # Two-factor: who has it on already (operators, admin) cannot start it again
    ("POST", f"{A}/me/two-factor"): api("401 201 201 201 201 409 409 409", fixed()),
    ("POST", f"{A}/me/two-factor/confirm"): api(
        "401 422 422 422 422 409 409 409", wrong_first_code, "set-up started anew per cell"
    ),
    # The audit log: admins all of it, operators their spaces'
    ("GET", f"{A}/audit"): api("401 403 403 403 403 200 200 200", fixed()),
    # Spaces
    ("POST", f"{A}/spaces"): api("401 403 403 403 403 403 403 201", new_space),
    ("DELETE", f"{A}/spaces/{{space_id}}/operators/{{user_id}}"): api(
        "401 403 403 403 403 403 403 204", extra_operator, "a new operator per cell"
    ),
    ("GET", f"{A}/spaces"): api(PUBLIC, fixed()),
    ("GET", f"{A}/spaces/{{space_id}}"): api(PUBLIC, space_a),
    ("GET", f"{A}/makers/{{maker_id}}"): api(PUBLIC, maker_a),
    ("POST", f"{A}/spaces/{{space_id}}/operators"): api("401 403 403 403 403 403 403 201", new_operator),
    ("GET", f"{A}/spaces/{{space_id}}/milestone-plan"): api(PUBLIC, space_a),
    ("GET", f"{A}/spaces/{{space_id}}/fund"): api(PUBLIC, space_a),
    ("GET", f"{A}/regions"): api(PUBLIC, fixed()),
    ("PATCH", f"{A}/spaces/{{space_id}}"): api(
        "401 403 403 403 403 200 403 200",
        lambda w, r: ({"space_id": w.space_a["id"]}, {"json": {"sponsor_fee_bps": 300}}),
    ),
    ("PUT", f"{A}/spaces/{{space_id}}/milestone-plan"): api(
        "401 403 403 403 403 200 403 200",
        lambda w, r: ({"space_id": w.space_a["id"]}, {"json": {"milestones": None}}),
    ),
    # Campaigns (the draft: visible to its maker, its space's operators and admins only)
    ("POST", f"{A}/campaigns"): api("401 201 201 201 201 201 201 201", new_campaign),
    ("GET", f"{A}/campaigns"): api(PUBLIC, fixed()),
    ("GET", f"{A}/campaigns/{{campaign_id}}"): api("404 404 404 200 404 200 404 200", on("draft")),
    ("PATCH", f"{A}/campaigns/{{campaign_id}}"): api(
        "401 404 404 200 404 403 404 403", on("draft", json_body={"summary": "Still a sensor."})
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/submit"): api(
        "401 404 404 200 404 403 404 403", with_draft(), "fresh draft per cell"
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/review"): api(
        "401 404 404 403 404 200 404 403",
        lambda w, r: _with_json(
            with_status("in_review"), {"decision": "approve", "notes": "ok", "checklist": CHECKLIST_ALL_TRUE}
        )(w, r),
        "fresh campaign in review per cell",
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/reviews"): api("401 404 404 200 404 200 404 200", on("in_review")),
    ("POST", f"{A}/campaigns/{{campaign_id}}/launch"): api(
        "401 404 404 200 404 403 404 403", with_status("approved"), "fresh approved campaign per cell"
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/products"): api(
        "401 404 404 201 404 403 404 403", on("draft", json_body=product_body)
    ),
    ("PATCH", f"{A}/campaigns/{{campaign_id}}/products/{{product_id}}"): api(
        "401 404 404 200 404 403 404 403", on("draft", json_body={"name": "Sensor"}, product_id="product")
    ),
    ("DELETE", f"{A}/campaigns/{{campaign_id}}/products/{{product_id}}"): api(
        "401 404 404 204 404 403 404 403", with_draft(product_id="spare_product"), "fresh draft per cell"
    ),
    ("PUT", f"{A}/campaigns/{{campaign_id}}/products/{{product_id}}/options"): api(
        "401 404 404 200 404 403 404 403",
        on("draft", json_body={"options": [{"name": "colour", "values": ["black"]}]}, product_id="product"),
    ),
    ("PATCH", f"{A}/campaigns/{{campaign_id}}/products/{{product_id}}/variants/{{variant_id}}"): api(
        "401 404 404 200 404 403 404 403",
        on("draft", json_body={"limit": 40}, product_id="product", variant_id="variant"),
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/add-ons"): api(
        "401 404 404 201 404 403 404 403",
        on("draft", json_body=lambda w, r: {"product_id": w.draft["product"], "price": 2_900}),
    ),
    ("PATCH", f"{A}/campaigns/{{campaign_id}}/add-ons/{{add_on_id}}"): api(
        "401 404 404 200 404 403 404 403", on("draft", json_body={"price": 3_900}, add_on_id="add_on")
    ),
    ("DELETE", f"{A}/campaigns/{{campaign_id}}/add-ons/{{add_on_id}}"): api(
        "401 404 404 204 404 403 404 403", with_draft(add_on_id="add_on"), "fresh draft per cell"
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/late-pledges"): api("404 404 404 200 404 200 404 200", on("draft")),
    ("POST", f"{A}/campaigns/{{campaign_id}}/late-pledges/add-ons/{{add_on_id}}/end"): api(
        "401 403 403 200 403 403 403 403",
        with_funded(step=late_add_on_on, add_on_id="add_on"),
        "fresh funded campaign with a late add-on, per cell",
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/late-pledges/{{tier_id}}/end"): api(
        "401 403 403 200 403 403 403 403",
        with_funded(step=late_reward_on, tier_id="tier"),
        "fresh funded campaign with a late reward, per cell",
    ),
    ("PUT", f"{A}/campaigns/{{campaign_id}}/late-pledges"): api(
        "401 404 404 200 404 403 404 403", on("draft", json_body=lambda w, r: {"tiers": [{"tier_id": w.draft["tier"]}]})
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/shipping"): api("404 404 404 200 404 200 404 200", on("draft")),
    ("PUT", f"{A}/campaigns/{{campaign_id}}/shipping"): api(
        "401 404 404 200 404 403 404 403",
        on(
            "draft",
            json_body={
                "mode": "per_item",
                "table": [{"country": "*", "brackets": [{"up_to_grams": 5_000, "fee": 900}]}],
            },
        ),
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/tiers"): api(
        "401 404 404 201 404 403 404 403", on("draft", json_body=TIER_BODY)
    ),
    ("PATCH", f"{A}/campaigns/{{campaign_id}}/tiers/{{tier_id}}"): api(
        "401 404 404 200 404 403 404 403", on("draft", json_body={"description": "Be first."}, tier_id="tier")
    ),
    ("DELETE", f"{A}/campaigns/{{campaign_id}}/tiers/{{tier_id}}"): api(
        "401 404 404 204 404 403 404 403", with_draft(tier_id="spare_tier"), "fresh draft per cell"
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/images"): api("401 404 404 201 404 403 404 403", image_upload("draft")),
    ("DELETE", f"{A}/campaigns/{{campaign_id}}/images/{{image_id}}"): api(
        "401 404 404 204 404 403 404 403", with_draft(image_id="image"), "fresh draft per cell"
    ),
    # Evidence files: attached by the maker to a draft; seen only by the maker and the sponsoring space's operators
    ("POST", f"{A}/campaigns/{{campaign_id}}/evidence"): api("401 404 404 201 404 403 404 403", evidence_upload),
    ("GET", f"{A}/campaigns/{{campaign_id}}/evidence"): api("401 404 404 200 404 200 404 403", on("draft")),
    ("GET", f"{A}/campaigns/{{campaign_id}}/evidence/{{record_id}}"): api(
        "401 404 404 200 404 200 404 403", evidence_file, "a new file per cell"
    ),
    # Updates (the live campaign: anyone reads)
    ("POST", f"{A}/campaigns/{{campaign_id}}/updates"): api(
        "401 403 403 201 403 403 403 403",
        on("live", json_body={"title": "Tooling", "body": "Done.", "visibility": "public"}),
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/updates"): api(PUBLIC, on("live")),
    ("PATCH", f"{A}/campaigns/{{campaign_id}}/updates/{{update_id}}"): api(
        "401 403 403 200 403 403 403 403",
        on("live", json_body={"body": "The **mould** is ready."}, update_id="update"),
    ),
    ("DELETE", f"{A}/campaigns/{{campaign_id}}/updates/{{update_id}}"): api(
        "401 403 403 204 403 403 403 403", fresh_update(), "a new update per cell"
    ),
    # Conversations (the world's: the backer's with the maker of the live campaign, the space asked in)
    ("POST", f"{A}/campaigns/{{campaign_id}}/conversations"): api(
        "401 201 201 403 201 201 201 201", on("live", json_body={"body": "Does it ship to Macau?"})
    ),
    ("GET", f"{A}/me/conversations"): api("401 200 200 200 200 200 200 200", fixed()),
    ("GET", f"{A}/conversations/{{conversation_id}}"): api(
        "401 200 404 200 404 200 404 404", on("live", conversation_id="conversation")
    ),
    ("POST", f"{A}/conversations/{{conversation_id}}/messages"): api(
        "401 201 404 201 404 201 404 404", on("live", conversation_id="conversation", json_body={"body": "Noted."})
    ),
    ("POST", f"{A}/conversations/{{conversation_id}}/space"): api(
        "401 200 404 403 404 403 404 404", on("live", conversation_id="conversation")
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/broadcasts"): api(
        "401 403 403 202 403 403 403 403", on("live", json_body={"body": "Thank you all.", "audience": "all"})
    ),
    # Comments (the live campaign's, and its backers-only update's)
    ("GET", f"{A}/campaigns/{{campaign_id}}/comments"): api(PUBLIC, on("live")),
    ("POST", f"{A}/campaigns/{{campaign_id}}/comments"): api(
        "401 201 201 201 201 201 201 201", on("live", json_body={"body": "Lovely."})
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/updates/{{update_id}}/comments"): api(
        "404 200 404 200 404 200 404 200", on("live", update_id="update")
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/updates/{{update_id}}/comments"): api(
        "401 201 404 201 404 201 404 201", on("live", update_id="update", json_body={"body": "Great photos."})
    ),
    ("POST", f"{A}/comments/{{comment_id}}/hide"): api(
        "401 403 403 200 403 200 403 200", on("live", comment_id="comment")
    ),
    # Pledges
    ("POST", f"{A}/campaigns/{{campaign_id}}/pledges"): api(
        "401 201 201 403 201 201 201 201", new_live_campaign, "fresh live campaign per cell"
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/preorders"): api(
        "401 409 201 403 201 201 201 201",
        with_funded(step=late_reward_on, body=lambda t: {"json": {"tier_id": t["tier"], "shipping_country": "CN"}}),
        "fresh funded campaign with a late reward per cell; its backer has a pledge there already (409)",
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/pledges"): api("401 403 403 200 403 200 403 200", on("live")),
    ("GET", f"{A}/me/pledges"): api("401 200 200 200 200 200 200 200", fixed()),
    ("GET", f"{A}/pledges/{{pledge_id}}"): api("401 200 404 200 404 200 404 200", on("live", pledge_id="pledge")),
    ("POST", f"{A}/pledges/{{pledge_id}}/confirm"): api(
        "401 200 404 403 404 403 404 403", on("live", pledge_id="pledge")
    ),
    ("PATCH", f"{A}/pledges/{{pledge_id}}"): api(
        "401 200 404 403 404 403 404 403",
        on("live", pledge_id="pledge", json_body=lambda w, r: {"tier_id": w.live["tier"], "shipping_country": "CN"}),
    ),
    ("DELETE", f"{A}/pledges/{{pledge_id}}"): api(
        "401 200 404 403 404 403 404 403", with_pledge(), "fresh live campaign and pledge per cell"
    ),
    ("GET", f"{A}/pledges/{{pledge_id}}/shipping-quote"): api(
        "401 200 404 403 404 403 404 403", quote_to_cn, "the backer's own pledge only"
    ),
    ("PUT", f"{A}/pledges/{{pledge_id}}/address"): api(
        "401 200 404 403 404 403 404 403", on("funded", pledge_id="pledge", json_body=address())
    ),
    ("POST", f"{A}/pledges/{{pledge_id}}/payment-method"): api(
        "401 200 404 403 404 403 404 403", on("successful", pledge_id="pledge"), "the backer's errored pledge"
    ),
    ("GET", f"{A}/pledges/{{pledge_id}}/card"): api("401 200 404 403 404 403 404 403", on("live", pledge_id="pledge")),
    ("POST", f"{A}/pledges/{{pledge_id}}/items"): api(
        "401 201 404 403 404 403 404 403",
        on("live", pledge_id="pledge", json_body=lambda w, r: {"add_on_id": w.live["add_on"]}),
    ),
    ("DELETE", f"{A}/pledges/{{pledge_id}}/items/{{item_id}}"): api(
        "401 200 404 403 404 403 404 403", add_on_line, "a new add-on line per cell"
    ),
    ("PUT", f"{A}/pledges/{{pledge_id}}/variants"): api(
        "401 200 404 403 404 403 404 403", on("live", pledge_id="pledge", json_body={"choices": []})
    ),
    ("POST", f"{A}/pledges/{{pledge_id}}/card-change"): api(
        "401 200 404 403 404 403 404 403", on("live", pledge_id="pledge")
    ),
    ("POST", f"{A}/pledges/{{pledge_id}}/card-change/confirm"): api(
        "401 200 404 403 404 403 404 403", card_change_saved, "a new card saved at Stripe per cell"
    ),
    ("POST", f"{A}/webhooks/stripe"): api(PUBLIC, webhook, "signed by Stripe: the signature is the credential"),
    # Money (the funded campaign)
    ("GET", f"{A}/campaigns/{{campaign_id}}/ledger"): api("401 403 403 200 403 200 403 200", on("funded")),
    ("GET", f"{A}/campaigns/{{campaign_id}}/ledger/public"): api(PUBLIC, on("funded")),
    ("GET", f"{A}/campaigns/{{campaign_id}}/milestones"): api("401 403 403 200 403 200 403 200", on("funded")),
    ("POST", f"{A}/campaigns/{{campaign_id}}/milestones/{{milestone_id}}/request"): api(
        "401 403 403 200 403 403 403 403", with_funded(milestone_id="milestone"), "fresh funded campaign per cell"
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/milestones/{{milestone_id}}/release"): api(
        "401 403 403 403 403 200 403 403",
        with_funded(step=milestone_asked, milestone_id="milestone"),
        "fresh funded campaign with the milestone requested, per cell",
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/milestones/{{milestone_id}}/payout"): api(
        "401 403 403 403 403 200 403 200",
        with_funded(
            step=milestone_released, milestone_id="milestone", body=lambda t: {"json": {"bank_reference": "TX-1"}}
        ),
        "fresh funded campaign with the milestone released, per cell",
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/suspend"): api(
        "401 403 403 403 403 200 403 200",
        with_funded(body=lambda t: {"json": {"reason": "The factory closed."}}),
        "fresh funded campaign per cell",
    ),
    ("POST", f"{A}/pledges/{{pledge_id}}/refunds"): api(
        "401 403 404 403 404 201 404 201",
        with_funded(
            step=pledge_charged, pledge_id="pledge", body=lambda t: {"json": {"amount": 1_000, "reason": "Cracked."}}
        ),
        "fresh funded campaign with its pledge charged, per cell",
    ),
    # Matching (a live campaign of space A per cell)
    ("POST", f"{A}/campaigns/{{campaign_id}}/match"): api(
        "401 403 403 403 403 201 409 403", with_match(matched=False), "fresh live campaign per cell"
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/match"): api(PUBLIC, with_match(matched=True), "fresh match per cell"),
    ("DELETE", f"{A}/campaigns/{{campaign_id}}/match"): api(
        "401 403 403 403 403 200 409 403", with_match(matched=True), "fresh match per cell"
    ),
    # Fulfillment (the funded campaign, planned)
    ("GET", f"{A}/campaigns/{{campaign_id}}/batches"): api("401 403 403 200 403 200 403 200", on("funded")),
    ("POST", f"{A}/campaigns/{{campaign_id}}/batches/{{batch_id}}/confirm"): api(
        "401 403 403 200 403 403 403 403",
        with_funded(planned=True, batch_id="batch"),
        "fresh planned campaign per cell",
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/batches/{{batch_id}}/start-production"): api(
        "401 403 403 200 403 403 403 403",
        with_funded(confirmed=True, batch_id="batch"),
        "fresh campaign with its batch confirmed, per cell",
    ),
    ("PUT", f"{A}/campaigns/{{campaign_id}}/batches/{{batch_id}}/dates"): api(
        "401 403 403 200 403 403 403 403",
        on(
            "funded",
            batch_id="batch",
            json_body={"production_on": "2027-02-01", "ship_on": "2027-03-01", "reason": "Plan"},
        ),
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/batches/{{batch_id}}/shipping-list.csv"): api(
        "401 403 403 200 403 200 403 403", on("funded", batch_id="batch"), "it holds addresses: not for admins"
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/unaddressed"): api("401 403 403 200 403 200 403 200", on("funded")),
    ("GET", f"{A}/campaigns/{{campaign_id}}/backers"): api("401 403 403 200 403 200 403 200", on("funded")),
    ("GET", f"{A}/campaigns/{{campaign_id}}/backers.csv"): api("401 403 403 200 403 200 403 200", on("funded")),
    ("GET", f"{A}/campaigns/{{campaign_id}}/addresses.csv"): api(
        "401 403 403 200 403 200 403 403", on("funded"), "it holds addresses: not for admins"
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/ledger/transactions.csv"): api(
        "401 403 403 200 403 200 403 200", on("funded")
    ),
    ("POST", f"{A}/campaigns/{{campaign_id}}/shipments"): api(
        "401 403 403 200 403 403 403 403",
        with_funded(
            confirmed=True, body=lambda t: {"content": tracking_csv(t), "headers": {"Content-Type": "text/csv"}}
        ),
        "fresh campaign with its batch confirmed, per cell",
    ),
    ("PUT", f"{A}/campaigns/{{campaign_id}}/batches/{{batch_id}}/packages/{{pledge_id}}/tracking"): api(
        "401 403 403 200 403 403 403 403",
        with_funded(
            confirmed=True,
            batch_id="batch",
            pledge_id="pledge",
            body=lambda t: {"json": {"carrier": "SF Express", "tracking_number": f"SF{n()}"}},
        ),
        "fresh campaign with its batch confirmed, per cell",
    ),
    ("GET", f"{A}/campaigns/{{campaign_id}}/fulfillment-settings"): api(
        "401 403 403 200 403 200 403 200", on("funded")
    ),
    ("PUT", f"{A}/campaigns/{{campaign_id}}/fulfillment-settings"): api(
        "401 403 403 200 403 403 403 403",
        on("funded", json_body={"address_lock_at": None, "packaging_weight_grams": 0}),
    ),
    # Pages: public
    ("GET", "/"): page(PUBLIC, fixed()),
    ("GET", "/signup"): page("200 303 303 303 303 303 303 303", fixed()),
    ("POST", "/signup"): page(
        "303 303 303 303 303 303 303 303", signup_form, "a browser of its own", fresh_browser=True
    ),
    ("GET", "/login"): page("200 303 303 303 303 303 303 303", fixed()),
    ("POST", "/login"): page(
        "303 303 303 303 303 200 200 200", login_form, "operators and admin: 200, the code step", fresh_browser=True
    ),
    ("POST", "/login/code"): page(
        "401 401 401 401 401 401 401 401", login_code, "no password step before it", fresh_browser=True
    ),
    ("GET", "/me/two-factor"): page("303 200 200 200 200 200 200 200", fixed()),
    ("POST", "/me/two-factor/start"): page("303 303 303 303 303 303 303 303", fixed()),
    ("POST", "/me/two-factor/confirm"): page(
        "303 422 422 422 422 303 303 303", wrong_first_code_form, "who has it on is sent to its page"
    ),
    ("GET", "/audit"): page("303 403 403 403 403 200 200 200", fixed()),
    # Administration: the admin only
    ("GET", "/admin"): page(ADMIN_PAGE, fixed()),
    ("GET", "/admin/spaces/new"): page(ADMIN_PAGE, fixed()),
    ("POST", "/admin/spaces"): page(ADMIN_FORM, new_space_form, "a new slug per cell"),
    ("GET", "/admin/spaces/{space_id}"): page(ADMIN_PAGE, space_a),
    ("POST", "/admin/spaces/{space_id}"): page(ADMIN_FORM, space_b_edit),
    ("POST", "/admin/spaces/{space_id}/operators"): page(ADMIN_FORM, new_operator_form, "a new user per cell"),
    ("POST", "/admin/spaces/{space_id}/operators/{user_id}/remove"): page(
        ADMIN_FORM, extra_operator_confirmed, "a new operator per cell, confirmed"
    ),
    ("GET", "/admin/users"): page(ADMIN_PAGE, fixed()),
    ("GET", "/admin/users/{user_id}/promote"): page(ADMIN_PAGE, a_user),
    ("POST", "/admin/users/{user_id}/promote"): page(ADMIN_FORM, fresh_user, "a new user per cell"),
    ("POST", "/logout"): page("303 303 303 303 303 303 303 303", fixed(), "a browser of its own", fresh_browser=True),
    ("GET", "/forgot-password"): page(PUBLIC, fixed()),
    ("POST", "/forgot-password"): page(
        PUBLIC, lambda w, r: ({}, {"data": {"email": f"who-{n()}@example.com"}}), "the same answer for any address"
    ),
    ("GET", "/reset-password/{token}"): page(PUBLIC, mailed_link("password_reset"), "a new user's link per cell"),
    ("POST", "/reset-password/{token}"): page(
        "303 303 303 303 303 303 303 303",
        mailed_link("password_reset", form={"password": PASSWORD}),
        "a new user's link per cell, in a browser of its own (it is logged out after)",
        fresh_browser=True,
    ),
    ("GET", "/verify-email/{token}"): page(PUBLIC, mailed_link("verify_email"), "a new user's link per cell"),
    ("GET", "/confirm-email/{token}"): page(PUBLIC, mailed_link("email_change"), "a new user's link per cell"),
    ("POST", "/confirm-email/{token}"): page(PUBLIC, mailed_link("email_change"), "a new user's link per cell"),
    ("GET", "/account"): page("303 200 200 200 200 200 200 200", fixed()),
    ("GET", "/account/notifications"): page("303 200 200 200 200 200 200 200", fixed()),
    ("POST", "/account/notifications"): page(
        "303 303 303 303 303 303 303 303", fixed(data={"updates": "1", "comments": "1", "messages": "1"})
    ),
    ("GET", "/unsubscribe/{token}"): page(PUBLIC, unsubscribe_link, "a new user's link per cell"),
    ("POST", "/unsubscribe/{token}"): page(PUBLIC, unsubscribe_link, "a new user's link per cell; no log-in needed"),
    ("POST", "/account/password"): page(
        "303 303 303 303 303 303 303 303", fixed(data=NEW_PASSWORD), "a user of its own per cell", own_user=True
    ),
    ("POST", "/account/email"): page("303 303 303 303 303 303 303 303", new_address_form),
    ("POST", "/account/preferences"): page(
        "303 303 303 303 303 303 303 303", fixed(data={"language": "en", "time_zone": "UTC"})
    ),
    ("POST", "/account/verification"): page(
        "303 303 303 303 303 303 303 303", fixed(), "an unconfirmed user of its own per cell", own_user=True
    ),
    ("POST", "/account/sessions/{session_id}/end"): page(
        "303 303 303 303 303 303 303 303", own_session, "a session of the role's own per cell"
    ),
    ("POST", "/account/tokens/{token_id}/revoke"): page(
        "303 303 303 303 303 303 303 303", own_token_confirmed, "a token of the role's own per cell, confirmed"
    ),
    ("POST", "/account/log-out-everywhere"): page(
        "303 303 303 303 303 303 303 303", fixed(), "a user of its own per cell", own_user=True
    ),
    ("POST", "/account/delete"): page(
        "303 303 303 303 303 303 303 303",
        fixed(data={"delete_password": PASSWORD}),
        "a user of its own per cell",
        own_user=True,
    ),
    ("GET", "/spaces"): page(PUBLIC, fixed()),
    ("GET", "/spaces/{slug}"): page(PUBLIC, space_a),
    ("GET", "/makers/{maker_id}"): page(PUBLIC, maker_a),
    ("GET", "/dev/mail"): page(PUBLIC, fixed(), "dev only (KINDLING_DEV), loopback only: see test_dev_only.py"),
    ("GET", "/dev/mail/{mail_id}"): page(PUBLIC, mail, "dev only"),
    ("GET", "/dev/mail/{mail_id}/html"): page(PUBLIC, mail, "dev only"),
    ("GET", "/campaigns"): page(PUBLIC, fixed()),
    ("GET", "/campaigns/{slug}"): page("404 404 404 200 404 200 404 200", on("draft")),
    ("GET", "/campaigns/{slug}/escrow"): page(PUBLIC, on("funded")),
    ("GET", "/campaigns/{slug}/pictures/{number}"): page(
        PUBLIC, lambda w, r: ({"slug": w.live.slug, "number": "1"}, {}), "the live campaign's first gallery picture"
    ),
    ("GET", "/media/{campaign_id}/{filename}"): page(PUBLIC, media),
    # Pages: the maker's
    ("GET", "/maker"): page("303 200 200 200 200 200 200 200", fixed()),
    ("GET", "/maker/new"): page("303 200 200 200 200 200 200 200", fixed()),
    ("POST", "/maker/new"): page("401 303 303 303 303 303 303 303", campaign_form),
    ("GET", "/maker/campaigns/{slug}"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("GET", "/maker/campaigns/{slug}/edit"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("POST", "/maker/campaigns/{slug}/edit"): page(
        "401 404 404 303 404 403 404 403", lambda w, r: ({"slug": w.draft.slug}, campaign_form(w, r)[1])
    ),
    ("POST", "/maker/campaigns/{slug}/submit"): page("401 404 404 303 404 403 404 403", with_draft(), "fresh draft"),
    ("POST", "/maker/campaigns/{slug}/launch"): page(
        "401 404 404 303 404 403 404 403",
        lambda w, r: _with_form(with_status("approved"), CONFIRMED)(w, r),
        "fresh approved campaign, confirmed",
    ),
    ("POST", "/maker/campaigns/{slug}/updates"): page(
        "401 403 403 303 403 403 403 403", on("live", form={"title": "News", "body": "Done.", "visibility": "public"})
    ),
    ("GET", "/maker/campaigns/{slug}/updates/{update_id}/edit"): page(
        "303 403 403 200 403 403 403 403", on("live", update_id="update")
    ),
    ("POST", "/maker/campaigns/{slug}/updates/{update_id}/edit"): page(
        "401 403 403 303 403 403 403 403",
        on(
            "live",
            update_id="update",
            form={"title": "News for backers", "body": "The **mould** is ready.", "visibility": "backers"},
        ),
    ),
    ("POST", "/maker/campaigns/{slug}/updates/{update_id}/delete"): page(
        "401 403 403 303 403 403 403 403", fresh_update(CONFIRMED), "a new update per cell, confirmed"
    ),
    # Messages and comments as pages (the world's conversation and comment, as for the API)
    ("GET", "/messages"): page("303 200 200 200 200 200 200 200", fixed()),
    ("GET", "/messages/{conversation_id}"): page(
        "303 200 404 200 404 200 404 404", on("live", conversation_id="conversation")
    ),
    ("POST", "/messages/{conversation_id}"): page(
        "303 303 404 303 404 303 404 404", on("live", conversation_id="conversation", form={"body": "Noted."})
    ),
    ("POST", "/messages/{conversation_id}/space"): page(
        "303 303 404 403 404 403 404 404", on("live", conversation_id="conversation", form=CONFIRMED)
    ),
    ("GET", "/campaigns/{slug}/ask"): page("303 200 200 403 200 200 200 200", on("live")),
    ("POST", "/campaigns/{slug}/ask"): page(
        "303 303 303 403 303 303 303 303", on("live", form={"body": "Does it float?"})
    ),
    ("GET", "/maker/campaigns/{slug}/messages"): page("303 403 403 200 403 403 403 403", on("live")),
    ("POST", "/maker/campaigns/{slug}/messages"): page(
        "303 403 403 303 403 403 403 403", on("live", form={"audience": "all", "body": "Thank you."} | CONFIRMED)
    ),
    ("GET", "/campaigns/{slug}/comments"): page(PUBLIC, on("live")),
    ("POST", "/campaigns/{slug}/comments"): page(
        "303 303 303 303 303 303 303 303", on("live", form={"body": "Nice work."})
    ),
    ("GET", "/campaigns/{slug}/updates/{update_id}/comments"): page(
        "404 200 404 200 404 200 404 200", on("live", update_id="update")
    ),
    ("POST", "/campaigns/{slug}/updates/{update_id}/comments"): page(
        "303 303 404 303 404 303 404 303", on("live", update_id="update", form={"body": "Nice moulds."})
    ),
    ("POST", "/comments/{comment_id}/hide"): page(
        "303 403 403 303 403 303 403 303", on("live", comment_id="comment", form=CONFIRMED)
    ),
    ("POST", "/maker/campaigns/{slug}/images"): page("401 404 404 303 404 403 404 403", image_upload("draft")),
    ("POST", "/maker/campaigns/{slug}/evidence"): page("401 404 404 303 404 403 404 403", evidence_page_upload),
    ("POST", "/maker/campaigns/{slug}/images/{image_id}/remove"): page(
        "401 404 404 303 404 403 404 403",
        with_draft(lambda t: {"data": CONFIRMED}, image_id="image"),
        "fresh draft, confirmed",
    ),
    ("GET", "/maker/campaigns/{slug}/products/new"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("POST", "/maker/campaigns/{slug}/products/new"): page("401 404 404 303 404 404 404 404", product_form),
    ("GET", "/maker/campaigns/{slug}/products/{product_id}/edit"): page(
        "303 404 404 200 404 404 404 404", on("draft", product_id="product")
    ),
    ("POST", "/maker/campaigns/{slug}/products/{product_id}/edit"): page(
        "401 404 404 303 404 404 404 404",
        on(
            "draft",
            product_id="product",
            form={"sku": "SKU-A", "name": "Sensor", "weight_grams": "120", "unit_cost": "30", "batch_size": "500"},
        ),
    ),
    ("POST", "/maker/campaigns/{slug}/products/{product_id}/remove"): page(
        "401 404 404 303 404 403 404 403",
        with_draft(lambda t: {"data": CONFIRMED}, product_id="spare_product"),
        "fresh draft, confirmed",
    ),
    ("GET", "/maker/campaigns/{slug}/products/{product_id}/options"): page(
        "303 404 404 200 404 404 404 404", on("draft", product_id="product")
    ),
    ("POST", "/maker/campaigns/{slug}/products/{product_id}/options"): page(
        "401 404 404 303 404 403 404 403",
        on("draft", product_id="product", form={"options-0-name": "colour", "options-0-values": "black"}),
    ),
    ("POST", "/maker/campaigns/{slug}/products/{product_id}/variants"): page(
        "401 404 404 303 404 404 404 404",
        lambda w, r: (
            {"slug": w.draft.slug, "product_id": w.draft["product"]},
            {"data": {"variants-0-id": w.draft["variant"], "variants-0-sku": "SKU-A-BLC", "variants-0-limit": "9"}},
        ),
    ),
    ("GET", "/maker/campaigns/{slug}/add-ons/new"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("POST", "/maker/campaigns/{slug}/add-ons/new"): page(
        "401 404 404 303 404 404 404 404",
        lambda w, r: ({"slug": w.draft.slug}, {"data": {"offer": w.draft["product"], "price": "29"}}),
    ),
    ("GET", "/maker/campaigns/{slug}/add-ons/{add_on_id}/edit"): page(
        "303 404 404 200 404 404 404 404", on("draft", add_on_id="add_on")
    ),
    ("POST", "/maker/campaigns/{slug}/add-ons/{add_on_id}/edit"): page(
        "401 404 404 303 404 404 404 404",
        lambda w, r: (
            {"slug": w.draft.slug, "add_on_id": w.draft["add_on"]},
            {"data": {"offer": w.draft["product"], "price": "39"}},
        ),
    ),
    ("POST", "/maker/campaigns/{slug}/add-ons/{add_on_id}/remove"): page(
        "401 404 404 303 404 403 404 403",
        with_draft(lambda t: {"data": CONFIRMED}, add_on_id="add_on"),
        "fresh draft, confirmed",
    ),
    ("GET", "/maker/campaigns/{slug}/late-pledges"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("POST", "/maker/campaigns/{slug}/late-pledges"): page("401 404 404 303 404 404 404 404", on("draft", form={})),
    ("GET", "/maker/campaigns/{slug}/shipping"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("POST", "/maker/campaigns/{slug}/shipping"): page(
        "401 404 404 303 404 404 404 404", on("draft", form={"mode": "per_item"})
    ),
    ("GET", "/maker/campaigns/{slug}/tiers/new"): page("303 404 404 200 404 404 404 404", on("draft")),
    ("POST", "/maker/campaigns/{slug}/tiers/new"): page("401 404 404 303 404 404 404 404", on("draft", form=TIER_FORM)),
    ("GET", "/maker/campaigns/{slug}/tiers/{tier_id}/edit"): page(
        "303 404 404 200 404 404 404 404", on("draft", tier_id="tier")
    ),
    ("POST", "/maker/campaigns/{slug}/tiers/{tier_id}/edit"): page(
        "401 404 404 303 404 404 404 404", on("draft", tier_id="tier", form=TIER_FORM | {"title": "Early bird"})
    ),
    ("POST", "/maker/campaigns/{slug}/tiers/{tier_id}/remove"): page(
        "401 404 404 303 404 403 404 403",
        with_draft(lambda t: {"data": CONFIRMED}, tier_id="spare_tier"),
        "fresh draft, confirmed",
    ),
    # Escrow and fulfilment overviews: the operators and admins, who see the same through the API, see them too.
    ("GET", "/maker/campaigns/{slug}/funding"): page("303 403 403 200 403 200 403 200", on("funded")),
    ("POST", "/maker/campaigns/{slug}/milestones/{milestone_id}/request"): page(
        "401 403 403 303 403 403 403 403",
        with_funded(milestone_id="milestone", body=lambda t: {"data": CONFIRMED}),
        "fresh funded campaign, confirmed",
    ),
    ("GET", "/maker/campaigns/{slug}/fulfillment"): page("303 403 403 200 403 200 403 200", on("funded")),
    ("GET", "/maker/campaigns/{slug}/backers"): page("303 403 403 200 403 200 403 200", on("funded")),
    ("GET", "/operator/campaigns/{slug}/backers"): page("303 403 403 200 403 200 403 200", on("funded")),
    ("POST", "/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/confirm"): page(
        "401 403 403 303 403 403 403 403",
        with_funded(planned=True, batch_id="batch", body=lambda t: {"data": CONFIRMED}),
        "fresh planned campaign, confirmed",
    ),
    ("POST", "/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/start-production"): page(
        "401 403 403 303 403 403 403 403", with_funded(confirmed=True, batch_id="batch"), "fresh confirmed batch"
    ),
    ("POST", "/maker/campaigns/{slug}/fulfillment/batch-dates"): page(
        "401 403 403 303 403 403 403 403", batch_dates_form
    ),
    ("POST", "/maker/campaigns/{slug}/fulfillment/tracking"): page(
        "401 403 403 303 403 403 403 403",
        with_funded(confirmed=True, body=lambda t: {"files": {"file": ("t.csv", tracking_csv(t), "text/csv")}}),
        "fresh confirmed batch",
    ),
    ("GET", "/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/packages"): page(
        "303 403 403 200 403 200 403 403", on("funded", batch_id="batch"), "it holds addresses: not for admins"
    ),
    ("POST", "/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/packages/{pledge_id}/tracking"): page(
        "401 403 403 303 403 403 403 403",
        with_funded(
            confirmed=True,
            batch_id="batch",
            pledge_id="pledge",
            body=lambda t: {"data": {"carrier": "SF Express", "tracking_number": f"SF{n()}"}},
        ),
        "fresh confirmed batch",
    ),
    ("POST", "/maker/campaigns/{slug}/fulfillment/settings"): page(
        "401 403 403 303 403 403 403 403",
        on("funded", form={"address_lock_at": "", "packaging_weight_grams": "0"}),
    ),
    # Pages: the operator's
    # The queue and the escrow desk open for anyone signed in and list only what they operate (admins: all).
    ("GET", "/operator"): page("303 200 200 200 200 200 200 200", fixed()),
    ("GET", "/operator/campaigns/{slug}"): page(
        "303 404 404 200 404 200 404 200", on("in_review"), "the maker and admins see it; only the operator decides"
    ),
    ("POST", "/operator/campaigns/{slug}"): page(
        "401 404 404 403 404 303 404 403",
        lambda w, r: _with_form(with_status("in_review"), REVIEW_FORM)(w, r),
        "fresh campaign in review",
    ),
    ("GET", "/operator/spaces/{space_id}"): page("303 403 403 403 403 200 403 200", space_a),
    ("POST", "/operator/spaces/{space_id}"): page("401 403 403 403 403 303 403 303", space_a_terms_form),
    ("GET", "/operator/milestones"): page("303 200 200 200 200 200 200 200", fixed()),
    ("POST", "/operator/campaigns/{slug}/milestones/{milestone_id}/release"): page(
        "401 403 403 403 403 303 403 403",
        with_funded(step=milestone_asked, milestone_id="milestone", body=lambda t: {"data": CONFIRMED}),
        "fresh funded campaign, milestone requested, confirmed",
    ),
    ("POST", "/operator/campaigns/{slug}/milestones/{milestone_id}/payout"): page(
        "401 403 403 403 403 303 403 303",
        with_funded(
            step=milestone_released,
            milestone_id="milestone",
            body=lambda t: {"data": {"bank_reference": "TX"} | CONFIRMED},
        ),
        "fresh funded campaign, milestone released",
    ),
    ("POST", "/operator/campaigns/{slug}/suspend"): page(
        "401 403 403 403 403 303 403 303",
        with_funded(body=lambda t: {"data": {"reason": "The factory closed."} | CONFIRMED}),
        "fresh funded campaign per cell, confirmed",
    ),
    ("POST", "/operator/campaigns/{slug}/match"): page(
        "401 403 403 403 403 303 404 403",
        with_match(matched=False, form={"cap": "200.00", "sponsor_name": "Space A"}),
        "fresh live campaign per cell",
    ),
    ("POST", "/operator/campaigns/{slug}/match/withdraw"): page(
        "401 403 403 403 403 303 404 403", with_match(matched=True, form=CONFIRMED), "fresh match per cell, confirmed"
    ),
    ("GET", "/operator/campaigns/{slug}/fulfillment"): page("303 403 403 200 403 200 403 200", on("funded")),
    ("GET", "/operator/campaigns/{slug}/refunds"): page("303 403 403 403 403 200 403 200", on("funded")),
    ("GET", "/operator/campaigns/{slug}/pledges/{pledge_id}/refund"): page(
        "303 403 404 403 404 200 404 200", on("funded", pledge_id="pledge")
    ),
    ("POST", "/operator/campaigns/{slug}/pledges/{pledge_id}/refund"): page(
        "401 403 404 403 404 303 404 303",
        with_funded(
            step=pledge_charged,
            pledge_id="pledge",
            body=lambda t: {"data": {"amount": "10.00", "reason": "Cracked.", "confirmed": "yes"}},
        ),
        "fresh funded campaign with its pledge charged, the refund confirmed",
    ),
    # Pages: the backer's
    ("GET", "/campaigns/{slug}/back"): page("303 200 200 403 200 200 200 200", on("live")),
    ("POST", "/campaigns/{slug}/back"): page("303 303 303 403 303 303 303 303", back_form, "fresh live campaign"),
    ("GET", "/campaigns/{slug}/preorder"): page(
        "303 200 200 200 200 200 200 200", with_funded(step=late_reward_on), "fresh funded campaign with a late reward"
    ),
    ("POST", "/campaigns/{slug}/preorder"): page(
        "303 409 303 403 303 303 303 303",
        with_funded(step=late_reward_on, body=lambda t: {"data": {"tier": t["tier"], "shipping_country": "CN"}}),
        "fresh funded campaign with a late reward; its backer has a pledge there already (409)",
    ),
    ("GET", "/me/pledges/{pledge_id}/pay"): page("303 303 404 404 404 404 404 404", on("live", pledge_id="pledge")),
    ("POST", "/me/pledges/{pledge_id}/cancel-preorder"): page(
        "303 404 404 404 404 404 404 404", on("live", pledge_id="pledge", form={}), "a campaign pledge is no pre-order"
    ),
    ("GET", "/me/pledges"): page("303 200 200 200 200 200 200 200", fixed()),
    ("GET", "/me/pledges/{pledge_id}"): page("303 200 404 404 404 404 404 404", on("live", pledge_id="pledge")),
    ("GET", "/me/pledges/{pledge_id}/card"): page("303 303 404 404 404 404 404 404", on("live", pledge_id="pledge")),
    ("GET", "/me/pledges/{pledge_id}/card/change"): page(
        "303 200 404 404 404 404 404 404", on("live", pledge_id="pledge")
    ),
    ("GET", "/me/pledges/{pledge_id}/manage"): page("303 200 404 404 404 404 404 404", on("live", pledge_id="pledge")),
    ("POST", "/me/pledges/{pledge_id}/manage/add-ons"): page(
        "303 303 404 404 404 404 404 404",
        lambda w, r: ({"pledge_id": w.live["pledge"]}, {"data": {"add_on_id": w.live["add_on"], "quantity": "1"}}),
    ),
    ("POST", "/me/pledges/{pledge_id}/manage/variants"): page(
        "303 303 404 404 404 404 404 404", on("live", pledge_id="pledge", form={})
    ),
    ("POST", "/me/pledges/{pledge_id}/manage/items/{item_id}/remove"): page(
        "303 303 404 404 404 404 404 404", add_on_line_form, "a new add-on line per cell"
    ),
    ("POST", "/me/pledges/{pledge_id}/change"): page(
        "303 303 404 404 404 404 404 404",
        lambda w, r: (
            {"pledge_id": w.live["pledge"]},
            {"data": {"tier": w.live["tier"], "bonus": "", "shipping_country": "CN"}},
        ),
    ),
    ("POST", "/me/pledges/{pledge_id}/cancel"): page(
        "303 303 404 404 404 404 404 404", with_pledge({"data": CONFIRMED}), "fresh live campaign and pledge, confirmed"
    ),
    ("POST", "/me/pledges/{pledge_id}/address"): page(
        "303 303 404 403 404 403 404 403", on("funded", pledge_id="pledge", form=ADDRESS_FORM)
    ),
    ("GET", "/pledges/{pledge_id}/address"): page(
        "303 303 303 303 303 303 303 303",
        on("funded", pledge_id="pledge"),
        "a mail's link: redirects to the pledge page",
    ),
}


def _with_json(target: Target, body: dict[str, Any]) -> Target:
    async def wrapped(w: World, role: str) -> tuple[Params, Kwargs]:
        params, kwargs = await _resolve(target, w, role)
        return params, kwargs | {"json": body}

    return wrapped


def _with_form(target: Target, form: dict[str, str]) -> Target:
    async def wrapped(w: World, role: str) -> tuple[Params, Kwargs]:
        params, kwargs = await _resolve(target, w, role)
        return params, kwargs | {"data": dict(form)}

    return wrapped


async def _resolve(target: Target, w: World, role: str) -> tuple[Params, Kwargs]:
    found = target(w, role)
    if inspect.isawaitable(found):
        found = await found
    return found


# Running it


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app serves, static files aside; HEAD goes with GET."""
    found: set[tuple[str, str]] = set()
    for route in app.router.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", f"an unexpected mount {route.path}: give its routes rows"
            continue
        assert isinstance(route, Route), route
        for method in (route.methods or set()) - {"HEAD"}:
            found.add((method, route.path))
    return found


def fill(template: str, params: Params) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in params, f"{template}: no value for {name}"
        return params[name]

    return re.sub(r"\{([^}]+)\}", value, template)


async def send(
    w: World, method: str, template: str, row: Row, role: str, guessed: Params | None = None
) -> httpx.Response:
    """The row's request as `role`; `guessed` replaces path parameters with made-up values."""
    params, kwargs = await _resolve(row.target, w, role)
    url = fill(template, params | (guessed or {}))
    # A user of the cell's own, for a request that ends every session and token of whoever makes it.
    own = await throwaway_user(w) if row.own_user and role != "anonymous" else None
    if not row.page:
        w.api.cookies.clear()
        headers = dict(kwargs.pop("headers", {}))
        if role != "anonymous" and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {(own or w.actors[role]).token}"
        return await w.api.request(method, url, headers=headers, **kwargs)
    if row.fresh_browser or own is not None:
        # A browser of its own with a session of its own, so that what this cell does to it (log out, log in
        # anew, end every session) stays with it.
        browser, token = await log_in_browser(w, role, own)
    else:
        browser, token = w.browsers[role], w.csrf[role]
    try:
        if method == "POST":
            kwargs["data"] = {"csrf_token": token} | dict(kwargs.get("data") or {})
        return await browser.request(method, url, **kwargs)
    finally:
        if row.fresh_browser or own is not None:
            await browser.aclose()


@pytest.fixture
async def world(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], stripe_server: EmbeddedStripe
) -> AsyncIterator[World]:
    w = await build_world(stripe_client, sessions, stripe_server)
    yield w
    for browser in w.browsers.values():
        await browser.aclose()
    await w.api.aclose()


def test_every_route_of_the_app_has_a_row_and_every_row_a_route(stripe_client: httpx.AsyncClient) -> None:
    routes = app_routes(stripe_client.app)  # type: ignore[attr-defined]
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, "routes without a row in the authorisation matrix:\n" + "\n".join(map(str, missing))
    assert not stale, "rows for routes the app does not have:\n" + "\n".join(map(str, stale))


async def test_every_role_gets_the_status_the_matrix_says_on_every_route(world: World) -> None:
    wrong: list[str] = []
    cells = 0
    for (method, template), row in MATRIX.items():
        for role, expected in zip(ROLES, row.statuses(), strict=True):
            cells += 1
            response = await send(world, method, template, row, role)
            if response.status_code != expected:
                body = response.text[:160].replace("\n", " ")
                wrong.append(f"{method} {template} as {role}: expected {expected}, got {response.status_code} {body}")
    print(f"{cells} cells checked")
    assert not wrong, f"{len(wrong)} of {cells} cells differ:\n" + "\n".join(wrong)


# Fields: a backer's card set-up secret and address, only to whom they belong

# Who finds them in the answer, per route that shows a pledge. The world's pledges carry a marked secret and a marked
# address (`mark_secrets`): the backer's errored pledge of the successful campaign (secret and address), its pledge
# waiting for a card in space B (secret), its addressed pledges of the funded and of a suspended campaign.
BACKER = ("backer",)
SHIPPERS = ("backer", "maker", "operator")
NOBODY: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldRow:
    """A route shown to every role on one of the world's campaigns (`keys` as in `on`): who finds the marked
    secret and the marked address in the answer."""

    method: str
    template: str
    thing: str
    secret: tuple[str, ...]
    address: tuple[str, ...]
    page: bool = False
    keys: tuple[tuple[str, str], ...] = ()

    def row(self) -> Row:
        return Row(PUBLIC, on(self.thing, **dict(self.keys)), page=self.page)


def fields(
    method: str,
    template: str,
    thing: str,
    secret: tuple[str, ...],
    address: tuple[str, ...],
    *,
    page: bool = False,
    **keys: str,
) -> FieldRow:
    return FieldRow(method, template, thing, secret, address, page, tuple(keys.items()))


SHIPPING_LIST = f"{A}/campaigns/{{campaign_id}}/batches/{{batch_id}}/shipping-list.csv"
FIELD_MATRIX: list[FieldRow] = [
    fields("GET", f"{A}/pledges/{{pledge_id}}", "successful", BACKER, BACKER, pledge_id="pledge"),
    fields("GET", f"{A}/pledges/{{pledge_id}}", "others", BACKER, NOBODY, pledge_id="waiting"),
    fields("GET", f"{A}/pledges/{{pledge_id}}", "funded", NOBODY, SHIPPERS, pledge_id="pledge"),
    fields("GET", f"{A}/pledges/{{pledge_id}}", "suspended", NOBODY, BACKER, pledge_id="pledge"),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/pledges", "successful", NOBODY, NOBODY),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/pledges", "others", NOBODY, NOBODY),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/pledges", "funded", NOBODY, ("maker", "operator")),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/pledges", "suspended", NOBODY, NOBODY),
    fields("GET", f"{A}/me/pledges", "live", BACKER, BACKER),
    fields("GET", SHIPPING_LIST, "funded", NOBODY, ("maker", "operator"), batch_id="batch"),
    fields("GET", SHIPPING_LIST, "suspended", NOBODY, NOBODY, batch_id="batch"),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/unaddressed", "funded", NOBODY, NOBODY),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/backers", "funded", NOBODY, ("maker", "operator")),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/backers", "suspended", NOBODY, NOBODY),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/backers.csv", "funded", NOBODY, NOBODY),
    fields("GET", f"{A}/campaigns/{{campaign_id}}/addresses.csv", "funded", NOBODY, ("maker", "operator")),
    fields("GET", "/me/pledges", "live", NOBODY, NOBODY, page=True),
    # A pledge without a reward: its page has no address to show, even to its backer.
    fields("GET", "/me/pledges/{pledge_id}", "successful", NOBODY, NOBODY, page=True, pledge_id="pledge"),
    fields("GET", "/me/pledges/{pledge_id}", "funded", NOBODY, BACKER, page=True, pledge_id="pledge"),
    fields("GET", "/me/pledges/{pledge_id}", "suspended", NOBODY, NOBODY, page=True, pledge_id="pledge"),
    fields("GET", "/me/pledges/{pledge_id}/card", "others", BACKER, NOBODY, page=True, pledge_id="waiting"),
    fields("GET", "/maker/campaigns/{slug}/fulfillment", "funded", NOBODY, NOBODY, page=True),
    fields("GET", "/operator/campaigns/{slug}/fulfillment", "funded", NOBODY, NOBODY, page=True),
    fields("GET", "/maker/campaigns/{slug}/backers", "funded", NOBODY, ("maker", "operator"), page=True),
    fields("GET", "/operator/campaigns/{slug}/backers", "suspended", NOBODY, NOBODY, page=True),
]


async def mark_secrets(w: World) -> tuple[list[str], list[str]]:
    """Marked card set-up secrets and addresses on the backer's pledges (see FIELD_MATRIX); what marks each."""
    secrets = [f"seti_{n()}_secret_{n()}" for _ in range(2)]
    streets = [f"{n()} Secret Lane" for _ in range(3)]
    w.suspended = await insert_funded(w, planned=True)
    async with w.sessions.begin() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == uuid.UUID(w.suspended.id)).values(status="suspended")
        )
        marked = [
            (w.successful["pledge"], secrets[0], streets[0]),
            (w.funded["pledge"], None, streets[1]),
            (w.suspended["pledge"], None, streets[2]),
        ]
        for pledge_id, secret, street in marked:
            values: dict[str, Any] = {"address": address(line1=street)}
            if secret:
                values["setup_intent_client_secret"] = secret
            await session.execute(update(Pledge).where(Pledge.id == uuid.UUID(pledge_id)).values(**values))
        others = await session.get_one(Campaign, uuid.UUID(w.others.id))
        tier = await session.get_one(Tier, uuid.UUID(w.others["tier"]))
        waiting = await insert_pledge(
            session, others, tier, backer_id=w.id_of("backer"), status="requires_payment_method"
        )
        waiting.setup_intent_id = f"seti_{n()}"
        waiting.setup_intent_client_secret = secrets[1]
    w.others.extra["waiting"] = str(waiting.id)
    return secrets, streets


async def test_a_backers_card_secret_and_address_reach_only_those_the_matrix_names(world: World) -> None:
    secrets, streets = await mark_secrets(world)
    wrong: list[str] = []
    cells = 0
    for field_row in FIELD_MATRIX:
        for role in ROLES:
            response = await send(world, field_row.method, field_row.template, field_row.row(), role)
            seen = {
                "client_secret": any(secret in response.text for secret in secrets),
                "address": any(street in response.text for street in streets),
            }
            for name, allowed in (("client_secret", field_row.secret), ("address", field_row.address)):
                cells += 1
                if seen[name] != (role in allowed):
                    where = f"{field_row.method} {field_row.template} on {field_row.thing}"
                    wrong.append(f"{where} as {role}: {name} {'shown' if seen[name] else 'missing'}")
            if role in field_row.secret + field_row.address and response.status_code != 200:
                wrong.append(f"{field_row.method} {field_row.template} as {role}: {response.status_code}")
    print(f"{cells} field cells checked")
    assert not wrong, f"{len(wrong)} of {cells} field cells differ:\n" + "\n".join(wrong)


# Ids: random, so none is found by guessing

# Routes with an id that look nothing up: a mail's link to the address form only redirects to the pledge page.
NO_LOOKUP = {("GET", "/pledges/{pledge_id}/address")}


def path_parameters(template: str) -> list[str]:
    return [name.split(":")[0] for name in re.findall(r"\{([^}]+)\}", template)]


def guess(name: str) -> str:
    if name == "slug":
        return f"grove-{uuid.uuid4().hex[:10]}"  # shaped like the campaigns' own slugs
    if name == "filename":
        return f"{uuid.uuid4().hex}.png"
    return str(uuid.uuid4())


def first_allowed(row: Row) -> str:
    """The first signed-in role the row lets in: the one a guessed id must still not help."""
    for role, status in zip(ROLES, row.statuses(), strict=True):
        if role != "anonymous" and status < 400:
            return role
    return "admin"


async def test_ids_are_random_and_a_guessed_one_finds_nothing_on_any_route(world: World) -> None:
    async with world.sessions() as session:
        for table in target_metadata.sorted_tables:
            if "id" not in table.c:
                continue
            order = [table.c.created_at] if "created_at" in table.c else []
            ids = list(await session.scalars(select(table.c.id).order_by(*order)))
            assert all(isinstance(i, uuid.UUID) and i.version == 4 for i in ids), f"{table.name}: ids not UUIDv4"
            assert len(set(ids)) == len(ids)
            for earlier, later in itertools.pairwise(ids):
                assert abs(later.int - earlier.int) > 2**64, f"{table.name}: {earlier} and {later} look sequential"
        for model in (User, Space, Campaign, Pledge):
            count = await session.scalar(select(func.count()).select_from(model))
            assert count is not None and count >= 2, f"the world has fewer than two {model.__name__} rows"

    wrong: list[str] = []
    checked = 0
    for (method, template), row in MATRIX.items():
        if (method, template) in NO_LOOKUP:
            continue
        role = first_allowed(row)
        for name in path_parameters(template):
            checked += 1
            response = await send(world, method, template, row, role, guessed={name: guess(name)})
            if response.status_code != 404:
                wrong.append(f"{method} {template} as {role}, {name} guessed: got {response.status_code}")
    print(f"{checked} guessed ids tried")
    assert not wrong, "a guessed id was not 404:\n" + "\n".join(wrong)
