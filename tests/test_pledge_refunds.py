"""Refunding one pledge: an operator of the sponsoring space or an admin gives a backer back part or all of what is
left of their pledge, with a reason; refunded at Stripe, booked from escrow, mailed to the backer, and never more
than what is left, however many ask at once."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import User
from payments.gateway import StripeGateway
from payments.models import Refund
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import Actor, make_admin, sign_up, stripe_event, stripe_http
from tests.money_helpers import (
    amount_refunded_at_stripe,
    mails_of,
    payment_intents,
    pledge_row,
    run_jobs,
    stripe_work,
)
from tests.test_audit import audit_rows
from tests.test_disputes import deliver, dispute
from tests.test_suspension import PAIR, funded_campaign


async def refund(
    client: httpx.AsyncClient, actor: Actor, pledge_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(f"/api/v1/pledges/{pledge_id}/refunds", json=body, headers=actor.headers | headers)


async def refunds_at_stripe(stripe: EmbeddedStripe, pledge_id: str) -> list[dict[str, Any]]:
    """The Refunds localstripe made of the pledge's charge."""
    [intent] = await payment_intents(stripe, pledge_id=pledge_id)
    charge = intent["latest_charge"]
    charge_id = charge if isinstance(charge, str) else charge["id"]
    async with stripe_http(stripe) as http:
        listed = (await http.get("/v1/refunds", params={"limit": 100})).raise_for_status().json()
    assert not listed["has_more"]
    return [made for made in listed["data"] if made["charge"] == charge_id]


async def test_an_operator_refunds_part_then_the_rest_of_a_pledge_and_the_backer_is_told_each_time(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0, 0]
    )
    cid, backing = campaign["id"], backings[0]
    before = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()

    part = await refund(stripe_client, operator, backing.id, {"amount": 5_000, "reason": "One cup arrived cracked."})

    assert part.status_code == 201, part.text
    assert part.json() | {"id": None, "created_at": None} == {
        "id": None,
        "pledge_id": backing.id,
        "campaign_id": cid,
        "amount": 5_000,
        "currency": "CNY",
        "status": "pending",
        "reason": "One cup arrived cracked.",
        "requested_by": operator.id,
        "created_at": None,
        "finished_at": None,
    }
    [audited] = await audit_rows(stripe_client, operator, action="pledge.refund")
    assert audited["actor_id"] == operator.id and audited["object_id"] == backing.id
    assert audited["space_id"] == campaign["space_id"] and audited["client_address"] == "127.0.0.1"
    assert audited["details"] | {"refund_id": None} == {
        "campaign_id": cid,
        "refund_id": None,
        "amount": 5_000,
        "currency": "CNY",
        "reason": "One cup arrived cracked.",
    }
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert await amount_refunded_at_stripe(stripe_server, backing.id) == 5_000
    assert (await pledge_row(sessions, backing.id)).status == "partially_refunded"
    books = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    assert books["refunded"] == before["refunded"] + 5_000
    assert books["escrow_held"] == before["escrow_held"] - 5_000
    [mail] = await mails_of(sessions, "refund_issued")
    assert mail.to_address == backing.backer.email
    assert mail.facts["refund"] == 5_000 and mail.facts["note"] == "One cup arrived cracked."

    too_much = await refund(stripe_client, operator, backing.id, {"amount": PAIR - 4_999, "reason": "All of it."})
    assert too_much.status_code == 422, too_much.text
    assert [e["field"] for e in too_much.json()["errors"]] == ["amount"]
    nothing = await refund(stripe_client, operator, backing.id, {"amount": 0, "reason": "Nothing."})
    assert nothing.status_code == 422 and [e["field"] for e in nothing.json()["errors"]] == ["amount"]

    rest = await refund(stripe_client, operator, backing.id, {"reason": "The maker cannot ship to Tibet after all."})
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == PAIR - 5_000
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert await amount_refunded_at_stripe(stripe_server, backing.id) == PAIR
    assert (await pledge_row(sessions, backing.id)).status == "refunded"
    assert len(await mails_of(sessions, "refund_issued")) == 2

    again = await refund(stripe_client, operator, backing.id, {"reason": "Once more."})
    assert again.status_code == 409, again.text
    assert again.json()["type"] == "nothing-to-refund"
    after = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    assert after["refunded"] == before["refunded"] + PAIR
    assert (
        after["collected"] - after["refunded"] - after["platform_fee"] - after["sponsor_fee"] - after["processor_fee"]
        - after["released"] - after["disputed"] - after["dispute_lost"] == after["escrow_held"]
    )  # fmt: skip


async def test_many_refunds_of_one_pledge_at_once_refund_it_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0]
    )
    admin = await make_admin(sessions, await sign_up(stripe_client, "Ada"))
    backing = backings[1]
    callers = [operator, admin] * 8

    answers = await asyncio.gather(
        *(refund(stripe_client, who, backing.id, {"reason": f"Request {i}"}) for i, who in enumerate(callers))
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (len(callers) - 1), [a.text for a in answers]
    assert {a.json()["type"] for a in answers if a.status_code == 409} == {"nothing-to-refund"}
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs, twice_at_once=True)
    made = await refunds_at_stripe(stripe_server, backing.id)
    assert [r["amount"] for r in made] == [PAIR], "one refund at Stripe"
    async with sessions() as session:
        rows = list(await session.scalars(select(Refund).where(Refund.pledge_id == uuid.UUID(backing.id))))
    assert [(r.amount, r.status) for r in rows] == [(PAIR, "succeeded")]
    books = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}/ledger", headers=operator.headers)).json()
    assert books["refunded"] == PAIR
    assert (await pledge_row(sessions, backing.id)).status == "refunded"


async def test_a_refund_sent_twice_with_one_idempotency_key_is_made_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    _campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0]
    )
    key = secrets.token_hex(8)
    body = {"amount": 1_000, "reason": "Late delivery."}
    first = await refund(stripe_client, operator, backings[0].id, body, **{"Idempotency-Key": key})
    second = await refund(stripe_client, operator, backings[0].id, body, **{"Idempotency-Key": key})

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    async with sessions() as session:
        rows = list(await session.scalars(select(Refund).where(Refund.pledge_id == uuid.UUID(backings[0].id))))
    assert [r.amount for r in rows] == [1_000]


async def test_only_the_sponsoring_space_and_admins_refund_and_a_disputed_pledge_has_nothing_to_refund(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    _campaign, maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0]
    )
    stranger = await sign_up(stripe_client, "Sam")
    body = {"reason": "Because I can."}
    assert (await refund(stripe_client, backings[0].backer, backings[0].id, body)).status_code == 403
    assert (await refund(stripe_client, maker, backings[0].id, body)).status_code == 403
    assert (await refund(stripe_client, stranger, backings[0].id, body)).status_code == 404
    assert (await refund(stripe_client, operator, str(uuid.uuid4()), body)).status_code == 404
    # An admin acts on money only with two-factor on, as every operator action does.
    bare_admin = await sign_up(stripe_client, "Ada")
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.id == uuid.UUID(bare_admin.id)).values(is_admin=True))
    without_code = await refund(stripe_client, bare_admin, backings[0].id, body)
    assert without_code.status_code == 403 and without_code.json()["type"] == "two-factor-setup-required"
    no_reason = await refund(stripe_client, operator, backings[0].id, {"amount": 100})
    assert no_reason.status_code == 422 and [e["field"] for e in no_reason.json()["errors"]] == ["reason"]

    [intent] = await payment_intents(stripe_server, pledge_id=backings[1].id)
    opened = dispute(intent, "needs_response", dispute_id="dp_" + secrets.token_hex(12), amount=PAIR)
    await deliver(stripe_client, stripe_settings.stripe_webhook_secret, stripe_event("charge.dispute.created", opened))
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    disputed = await refund(stripe_client, operator, backings[1].id, body)
    assert disputed.status_code == 409 and disputed.json()["type"] == "nothing-to-refund"
    async with sessions() as session:
        assert list(await session.scalars(select(Refund))) == []


async def test_the_refund_route_and_the_dispute_fields_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    operation = document["paths"]["/api/v1/pledges/{pledge_id}/refunds"]["post"]
    assert {"201", "401", "403", "404", "409", "422"} <= set(operation["responses"])
    assert any(p["name"].lower() == "idempotency-key" for p in operation.get("parameters", []))
    schemas = document["components"]["schemas"]
    assert {"disputed", "dispute_lost"} <= set(schemas["LedgerOut"]["properties"])
    assert {"disputed", "dispute_lost"} <= set(schemas["PublicLedgerOut"]["properties"])
