"""The deadline: a live campaign closes by itself, successful or not, exactly once, and everybody is told."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Campaign, CampaignEvent, Mail, Tier
from payments.charging import CHARGE_PLEDGE, request_due_charges
from payments.closing import REMOVE_CARD, close_due_campaigns
from payments.gateway import StripeGateway
from payments.models import ChargeAttempt, ChargeTerms
from service.broker import ListSender
from service.database import unit_of_work
from service.devservices import EmbeddedStripe
from service.mail import mail_templates, render_mail
from service.settings import Settings
from tests.helpers import CARD_OK, launched_campaign, sign_up, stripe_object
from tests.money_helpers import (
    back_campaign,
    mail_kinds,
    pass_deadline,
    payment_intents,
    pledge_row,
    run_jobs,
    stripe_work,
    sweep,
)

GOAL = 70_000  # two "Pair" pledges (349.00 + 10.00 shipping each) reach it; one does not


async def status_of(client: httpx.AsyncClient, campaign: dict[str, Any]) -> str:
    return str((await client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["status"])


async def test_a_campaign_that_reaches_its_goal_closes_successful_and_tells_maker_and_backers(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: ListSender,
) -> None:
    campaign, maker, _operator = await launched_campaign(stripe_client, sessions, goal=GOAL, limited_quantity=3)
    backings = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK, CARD_OK])
    # A pledge whose card was never saved: it ends with the campaign, and its early-bird slot comes back.
    late = await sign_up(stripe_client, "Late")
    unsaved = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
        headers=late.headers,
    )
    assert unsaved.status_code == 201

    assert await status_of(stripe_client, campaign) == "live"
    await sweep(sessions, stripe_settings, jobs)
    assert await status_of(stripe_client, campaign) == "live", "nothing closes before its deadline"

    await pass_deadline(sessions, campaign["id"])
    found = await sweep(sessions, stripe_settings, jobs)

    assert found["close-campaigns"] == 1 and found["charges"] == 2
    assert await status_of(stripe_client, campaign) == "successful"
    async with sessions() as session:
        events = list(await session.scalars(select(CampaignEvent).where(CampaignEvent.campaign_id == campaign["id"])))
        terms = await session.get_one(ChargeTerms, uuid.UUID(campaign["id"]))
        tier = await session.get_one(Tier, uuid.UUID(campaign["tiers"][0]["id"]))
        closed_at = await session.scalar(select(Campaign.closed_at).where(Campaign.id == campaign["id"]))
    [closing] = [e for e in events if e.action == "succeed"]
    assert (closing.from_status, closing.to_status, closing.actor_id) == ("live", "successful", None)
    assert closed_at is not None
    assert (terms.platform_fee_bps, terms.sponsor_fee_bps) == (stripe_settings.platform_fee_bps, 300)
    assert terms.retry_window_seconds == 7 * stripe_settings.day_seconds
    assert (await pledge_row(sessions, unsaved.json()["id"])).status == "cancelled"
    assert tier.remaining == 3
    asked = [pledge_id for job in jobs.jobs if job.actor_name == CHARGE_PLEDGE for pledge_id in job.args]
    assert sorted(asked) == sorted(b.id for b in backings)  # in batches, each pledge once

    assert "campaign_successful" in await mail_kinds(sessions, maker.email)
    for backing in backings:
        assert "campaign_successful" in await mail_kinds(sessions, backing.backer.email)
    assert "campaign_successful" not in await mail_kinds(sessions, late.email)

    # A second sweep finds nothing more to close, nor charges to ask for again so soon.
    again = await sweep(sessions, stripe_settings, jobs)
    assert again["close-campaigns"] == 0 and again["charges"] == 0


async def test_a_campaign_that_misses_its_goal_charges_nobody_cancels_its_pledges_and_removes_their_cards(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, _operator = await launched_campaign(stripe_client, sessions, goal=GOAL)
    [backing] = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK])
    card = (await pledge_row(sessions, backing.id)).payment_method_id
    assert card is not None
    await pass_deadline(sessions, campaign["id"])

    found = await sweep(sessions, stripe_settings, jobs)
    assert found["close-campaigns"] == 1 and found["charges"] == 0
    assert [job.actor_name for job in jobs.jobs if job.actor_name == REMOVE_CARD] == [REMOVE_CARD]
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    assert await status_of(stripe_client, campaign) == "unsuccessful"
    pledge = await pledge_row(sessions, backing.id)
    assert pledge.status == "cancelled" and pledge.payment_method_id is None
    assert (await stripe_object(stripe_server, f"/v1/payment_methods/{card}"))["customer"] is None
    assert await payment_intents(stripe_server, pledge_id=backing.id) == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChargeAttempt)) == 0
    assert "campaign_unsuccessful" in await mail_kinds(sessions, maker.email)
    assert "campaign_unsuccessful" in await mail_kinds(sessions, backing.backer.email)
    shown = (await stripe_client.get(f"/api/v1/pledges/{backing.id}", headers=backing.backer.headers)).json()
    assert shown["status"] == "cancelled" and shown["charged_at"] is None

    # Nothing is left for the sweep: no charge, no card.
    again = await sweep(sessions, stripe_settings, jobs)
    assert again["charges"] == 0 and again["card-removals"] == 0


async def test_two_sweeps_at_once_close_a_campaign_once_and_charge_each_pledge_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, goal=GOAL)
    backings = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK] * 3)
    await pass_deadline(sessions, campaign["id"])

    # Two sweeps' steps in two transactions at once, without the sweep's own lock to keep them apart.
    senders = [ListSender(), ListSender()]

    async def one_sweep(sender: ListSender) -> tuple[int, int]:
        async with unit_of_work(sessions, sender) as session:
            closed = await close_due_campaigns(
                session, platform_fee_bps=stripe_settings.platform_fee_bps, day_seconds=stripe_settings.day_seconds
            )
            await asyncio.sleep(0.2)  # hold the lock while the other sweep arrives
            return closed, await request_due_charges(session, limit=100)

    outcomes = await asyncio.gather(*(one_sweep(sender) for sender in senders))
    assert sorted(closed for closed, _charges in outcomes) == [0, 1]

    # Both sweeps' charge jobs, each run twice at once, as duplicated messages would be.
    merged = ListSender()
    merged.jobs = [job for sender in senders for job in sender.jobs]
    async with stripe_work(sessions, engine, gateway, stripe_settings, merged) as work:
        await run_jobs(work, merged, twice_at_once=True)

    async with sessions() as session:
        closings = await session.scalar(
            select(func.count())
            .select_from(CampaignEvent)
            .where(CampaignEvent.campaign_id == campaign["id"], CampaignEvent.action == "succeed")
        )
    assert closings == 1
    for backing in backings:
        intents = await payment_intents(stripe_server, pledge_id=backing.id)
        assert [pi["status"] for pi in intents] == ["succeeded"]
        assert (await pledge_row(sessions, backing.id)).status == "collected"
    assert await status_of(stripe_client, campaign) == "funded"


FACTS: dict[str, dict[str, Any]] = {
    "campaign_successful": {"pledged": 72_000, "goal": 70_000, "backers": 2, "amount": 36_000},
    "campaign_unsuccessful": {"pledged": 36_000, "goal": 70_000, "backers": 1, "amount": 36_000},
    "pledge_charged": {"amount": 36_000, "tier_title": "Pair"},
    "charge_failed": {"amount": 36_000, "reason": "card_declined", "retry_until": "2026-12-08T12:00:00+00:00"},
    "charge_retry_reminder": {"amount": 36_000, "retry_until": "2026-12-08T12:00:00+00:00"},
    "pledge_dropped": {"amount": 36_000},
    "campaign_suspended": {"reason": "The factory closed.", "refund": 12_345, "refunded": 99_000, "cancelled": False},
    "refund_issued": {"refund": 12_345, "paid": 36_000, "refunded": 12_345},
}


# The mails that go to the maker as well as to the backers; the others go to a backer only.
TO_THE_MAKER_TOO = ("campaign_successful", "campaign_suspended", "campaign_unsuccessful")
CASES = [(kind, "backer") for kind in sorted(FACTS)] + [(kind, "maker") for kind in TO_THE_MAKER_TOO]


@pytest.mark.parametrize(("kind", "role"), CASES)
@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_every_money_mail_renders_with_its_link_in_both_languages(kind: str, role: str, locale: str) -> None:
    facts = {
        "role": role,
        "name": "Mei",
        "campaign_title": "Open Soil Sensor",
        "campaign_path": "/campaigns/open-soil-sensor",
        "pledge_id": "p1",
        "path": "/me/pledges/p1",
        "currency": "CNY",
        **FACTS[kind],
    }
    mail = Mail(kind=kind, to_address="mei@example.com", locale=locale, facts=facts)

    rendered = render_mail(mail_templates(dev=True), mail, base_url="https://kindling.example")

    assert rendered.subject and "{" not in rendered.subject + rendered.text
    link = "https://kindling.example" + ("/campaigns/open-soil-sensor" if role == "maker" else "/me/pledges/p1")
    assert link in rendered.text and link in rendered.html
    if locale == "zh_CN":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rendered.subject + rendered.text)
