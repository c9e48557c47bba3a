"""Suspension: the sponsoring space stops a campaign, and what escrow still holds goes back to the backers pro rata,
to the last fen, once, whatever crashes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from payments.charging import CHARGE_PLEDGE, charge_pledges, next_charge_call
from payments.gateway import ChargeResult, StripeGateway
from payments.ledger import campaign_ledger, paid_by_pledge
from payments.models import Milestone, Refund
from payments.refunds import REFUND, make_refund
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import (
    CARD_OK,
    Actor,
    create_space,
    drafted_campaign,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
    stripe_object,
)
from tests.money_helpers import (
    Backing,
    GatewayAfterCharge,
    amount_refunded_at_stripe,
    back_campaign,
    mail_kinds,
    mails_of,
    pass_deadline,
    payment_intents,
    pledge_row,
    run_jobs,
    stripe_work,
    sweep,
)

PAIR = 34_900 + 1_000


async def suspend(client: httpx.AsyncClient, actor: Actor | None, campaign_id: str, body: Any) -> httpx.Response:
    headers = actor.headers if actor else {}
    return await client.post(f"/api/v1/campaigns/{campaign_id}/suspend", json=body, headers=headers)


async def funded_campaign(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
    bonuses: list[int],
) -> tuple[dict[str, Any], Actor, Actor, list[Backing]]:
    campaign, maker, operator = await launched_campaign(client, sessions, goal=PAIR)
    backings = await back_campaign(client, stripe, sessions, campaign, [CARD_OK] * len(bonuses), bonuses=bonuses)
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, settings, jobs)
    async with stripe_work(sessions, engine, gateway, settings, jobs) as work:
        await run_jobs(work, jobs)
    assert (await client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["status"] == "funded"
    return campaign, maker, operator, backings


async def test_suspending_a_funded_campaign_refunds_what_escrow_holds_pro_rata_to_the_last_fen(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 1, 7, 333, 9_999]
    )
    cid = campaign["id"]
    # Half of escrow has gone to the maker already.
    [first, *_rest] = (await stripe_client.get(f"/api/v1/campaigns/{cid}/milestones", headers=maker.headers)).json()
    requested = await stripe_client.post(
        f"/api/v1/campaigns/{cid}/milestones/{first['id']}/request", headers=maker.headers
    )
    assert requested.status_code == 200, requested.text
    released = await stripe_client.post(
        f"/api/v1/campaigns/{cid}/milestones/{first['id']}/release", headers=operator.headers
    )
    assert released.status_code == 200, released.text
    async with sessions() as session:
        before = await campaign_ledger(session, uuid.UUID(cid))
        paid = await paid_by_pledge(session, uuid.UUID(cid))
    assert before.released > 0 and before.escrow_held > 0

    response = await suspend(stripe_client, operator, cid, {"reason": "The factory closed and the maker vanished."})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "suspended"
    async with sessions() as session:
        refunds = list(await session.scalars(select(Refund).where(Refund.campaign_id == cid)))
        milestones = list(await session.scalars(select(Milestone).where(Milestone.campaign_id == cid)))
    assert sum(r.amount for r in refunds) == before.escrow_held
    assert all(0 < r.amount <= paid[r.pledge_id] for r in refunds)
    assert [m.status for m in sorted(milestones, key=lambda m: m.position)] == ["released", "cancelled", "cancelled"]
    # Pro rata: nobody's share is off by more than the one fen largest remainder hands out.
    total_paid = sum(paid.values())
    for refund in refunds:
        exact = before.escrow_held * paid[refund.pledge_id] / total_paid
        assert abs(refund.amount - exact) < 1
    assert [job.actor_name for job in jobs.jobs].count(REFUND) == len(backings)

    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs, twice_at_once=True)

    async with sessions() as session:
        after = await campaign_ledger(session, uuid.UUID(cid))
        refunds = list(await session.scalars(select(Refund).where(Refund.campaign_id == cid)))
    assert after.escrow_held == 0
    assert after.refunded == before.escrow_held
    assert after.collected - after.refunded - after.fees - after.released == after.escrow_held
    assert {r.status for r in refunds} == {"succeeded"}
    for refund in refunds:
        at_stripe = await amount_refunded_at_stripe(stripe_server, str(refund.pledge_id))
        assert at_stripe == refund.amount, "refunded once at Stripe, however often the job ran"
        assert (await pledge_row(sessions, str(refund.pledge_id))).status == "partially_refunded"
    for backing in backings:
        kinds = await mail_kinds(sessions, backing.backer.email)
        assert "campaign_suspended" in kinds and kinds.count("refund_issued") == 1
    assert "campaign_suspended" in await mail_kinds(sessions, maker.email)
    books = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    assert books["escrow_held"] == 0 and books["refunded"] == before.escrow_held

    again = await suspend(stripe_client, operator, cid, {"reason": "Again."})
    assert again.status_code == 409 and again.json()["type"] == "not-suspendable"


async def test_only_an_operator_of_the_space_or_an_admin_suspends_and_only_what_can_be(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(stripe_client, "Root"))
    space = await create_space(stripe_client, admin)
    operator = await make_operator(stripe_client, admin, space)
    campaign, maker, _ = await launched_campaign(stripe_client, sessions, space=space, operator=operator)
    cid = campaign["id"]
    [backing] = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK])
    other_space = await create_space(stripe_client, admin)
    other_operator = await make_operator(stripe_client, admin, other_space, "Ona")
    reason = {"reason": "Certification failed."}

    assert (await suspend(stripe_client, None, cid, reason)).status_code == 401
    for outsider in (maker, backing.backer, other_operator):
        refused = await suspend(stripe_client, outsider, cid, reason)
        assert refused.status_code == 403, refused.text
    assert (await suspend(stripe_client, operator, str(uuid.uuid4()), reason)).status_code == 404
    for bad in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x", "refund": "all"}, {"reason": "x" * 2001}):
        invalid = await suspend(stripe_client, operator, cid, bad)
        assert invalid.status_code == 422, bad
        assert invalid.json()["errors"]
    draft = await drafted_campaign(stripe_client, maker, space)
    assert (await suspend(stripe_client, other_operator, draft["id"], reason)).status_code == 404
    not_yet = await suspend(stripe_client, operator, draft["id"], reason)
    assert not_yet.status_code == 409 and not_yet.json()["type"] == "not-suspendable"
    assert (await stripe_client.get(f"/api/v1/campaigns/{cid}")).json()["status"] == "live"

    done = await suspend(stripe_client, admin, cid, reason)
    assert done.status_code == 200 and done.json()["status"] == "suspended"


async def test_suspending_a_live_campaign_cancels_its_pledges_and_charges_nobody(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    backings = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK, CARD_OK])
    cards = [(await pledge_row(sessions, b.id)).payment_method_id for b in backings]

    response = await suspend(stripe_client, operator, campaign["id"], {"reason": "No prototype after all."})
    assert response.status_code == 200, response.text
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    await pass_deadline(sessions, campaign["id"])
    found = await sweep(sessions, stripe_settings, jobs)

    assert found["close-campaigns"] == 0 and found["charges"] == 0
    for backing, card in zip(backings, cards, strict=True):
        pledge = await pledge_row(sessions, backing.id)
        assert pledge.status == "cancelled" and pledge.payment_method_id is None
        assert (await stripe_object(stripe_server, f"/v1/payment_methods/{card}"))["customer"] is None
        assert await payment_intents(stripe_server, pledge_id=backing.id) == []
        [mail] = [m for m in await mails_of(sessions, "campaign_suspended") if m.to_address == backing.backer.email]
        assert mail.facts["cancelled"] is True and mail.facts["refund"] == 0
    assert "campaign_suspended" in await mail_kinds(sessions, maker.email)
    async with sessions() as session:
        assert list(await session.scalars(select(Refund))) == []


async def test_a_refund_job_that_died_after_stripe_refunded_does_not_refund_twice(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, [backing] = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0]
    )
    assert (await suspend(stripe_client, operator, campaign["id"], {"reason": "Gone."})).status_code == 200
    jobs.jobs.clear()  # the job's message died with the worker, which had got this far:
    async with sessions.begin() as session:
        refund = await session.scalar(select(Refund))
        assert refund is not None
        refund.attempted_at = refund.created_at
    await gateway.refund(reference=refund.reference, payment_intent_id=refund.payment_intent_id, amount=refund.amount)

    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        assert await make_refund(work, str(refund.id)) == "succeeded"
        assert await make_refund(work, str(refund.id)) == "done"

    assert await amount_refunded_at_stripe(stripe_server, backing.id) == refund.amount
    async with sessions() as session:
        books = await campaign_ledger(session, uuid.UUID(campaign["id"]))
    assert books.escrow_held == 0 and books.refunded == refund.amount


async def test_a_charge_that_was_on_its_way_when_the_campaign_was_suspended_is_given_back(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    [on_its_way, not_sent] = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK, CARD_OK])
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, stripe_settings, jobs)
    jobs.jobs.clear()
    # A worker recorded both attempts and reached Stripe for one; then the operator suspends the campaign.
    async with sessions.begin() as session:
        call = await next_charge_call(session, uuid.UUID(on_its_way.id))
        assert await next_charge_call(session, uuid.UUID(not_sent.id)) is not None
    assert call is not None
    await gateway.charge_off_session(
        pledge_id=call.pledge_id,
        attempt=call.attempt,
        amount=call.amount,
        currency=call.currency,
        customer_id=call.customer_id,
        payment_method_id=call.payment_method_id,
    )
    response = await suspend(stripe_client, operator, campaign["id"], {"reason": "Recall."})
    assert response.status_code == 200
    assert (await pledge_row(sessions, on_its_way.id)).status == "active", "its charge is in doubt: it waits"

    async with sessions.begin() as session:  # the charges in doubt are looked after by the sweep
        await session.execute(
            Pledge.__table__.update().values(payment_job_requested_at=None)  # type: ignore[attr-defined]
        )
    assert (await sweep(sessions, stripe_settings, jobs))["charges"] == 2
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    assert (await pledge_row(sessions, on_its_way.id)).status == "refunded"
    assert (await pledge_row(sessions, not_sent.id)).status == "cancelled"
    assert await payment_intents(stripe_server, pledge_id=not_sent.id) == []
    assert await amount_refunded_at_stripe(stripe_server, on_its_way.id) == PAIR
    async with sessions() as session:
        books = await campaign_ledger(session, uuid.UUID(campaign["id"]))
    assert (books.collected, books.refunded, books.escrow_held, books.fees) == (PAIR, PAIR, 0, 0)


async def test_a_batch_sends_no_more_charges_once_its_campaign_is_suspended(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    backings = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK, CARD_OK, CARD_OK])
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, stripe_settings, jobs)
    [batch] = [job.args for job in jobs.jobs if job.actor_name == CHARGE_PLEDGE]
    jobs.jobs.clear()
    charged = 0

    async def suspended_after_the_first(call: dict[str, Any], charge: ChargeResult) -> ChargeResult:
        # The job is between its calls, holding no lock: the campaign's space suspends the campaign.
        nonlocal charged
        charged += 1
        if charged == 1:
            assert (await suspend(stripe_client, operator, campaign["id"], {"reason": "Recall."})).status_code == 200
        return charge

    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        answers = await charge_pledges(
            replace(work, gateway=GatewayAfterCharge(gateway, suspended_after_the_first)), *batch
        )
        assert sorted(answers) == ["nothing", "nothing", "succeeded"]
        assert charged == 1

        # The two attempts never sent are in doubt until the sweep's next look finds them unsent at Stripe.
        async with sessions.begin() as session:
            await session.execute(
                Pledge.__table__.update().values(payment_job_requested_at=None)  # type: ignore[attr-defined]
            )
        await sweep(sessions, stripe_settings, jobs)
        await run_jobs(work, jobs)

    statuses = sorted([(await pledge_row(sessions, b.id)).status for b in backings])
    assert statuses == ["cancelled", "cancelled", "refunded"]
    intents = [intent for b in backings for intent in await payment_intents(stripe_server, pledge_id=b.id)]
    assert len(intents) == 1
    async with sessions() as session:
        books = await campaign_ledger(session, uuid.UUID(campaign["id"]))
    assert (books.collected, books.refunded, books.escrow_held) == (PAIR, PAIR, 0)
