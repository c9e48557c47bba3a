"""Money that never gets stuck: a charge Stripe refuses outright fails at once, and a charge left in doubt too long
is settled as failed; either way the backer may give a new card, and the campaign is funded without them."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail, Pledge
from payments.charging import next_charge_call
from payments.gateway import StripeGateway
from payments.models import ChargeAttempt, StripeCustomer
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.i18n import money, use_locale
from service.mail import mail_templates, render_mail
from service.settings import Settings
from tests.helpers import CARD_OK, launched_campaign, make_admin, sign_up, stripe_http
from tests.money_helpers import (
    back_campaign,
    mail_kinds,
    mails_of,
    pass_deadline,
    payment_intents,
    pledge_row,
    run_jobs,
    save_card,
    stripe_work,
    sweep,
)
from tests.pages import logged_in

PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN


async def campaign_status(sessions: async_sessionmaker[AsyncSession], campaign_id: str) -> str:
    async with sessions() as session:
        return str(await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


async def attempts_of(sessions: async_sessionmaker[AsyncSession], pledge_id: str) -> list[tuple[int, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(ChargeAttempt.attempt, ChargeAttempt.status)
            .where(ChargeAttempt.pledge_id == pledge_id)
            .order_by(ChargeAttempt.attempt)
        )
        return [(attempt, status) for attempt, status in rows]


async def delete_customer_at_stripe(
    stripe: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession], backer_id: str
) -> None:
    async with sessions() as session:
        customer_id = await session.scalar(
            select(StripeCustomer.customer_id).where(StripeCustomer.user_id == backer_id)
        )
    async with stripe_http(stripe) as http:
        assert (await http.delete(f"/v1/customers/{customer_id}")).status_code == 200


async def waiting_since_long_ago(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Every pledge's last job was asked for long ago: the sweep asks again for whatever is still due."""
    async with sessions.begin() as session:
        await session.execute(update(Pledge).values(payment_job_requested_at=None))


async def test_a_charge_stripe_refuses_outright_errors_the_pledge_once_and_the_campaign_still_funds(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, _operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    good, customer_gone, card_gone, never_back = await back_campaign(
        stripe_client, stripe_server, sessions, campaign, [CARD_OK] * 4
    )
    # Stripe no longer has one backer's Customer, nor two other backers' cards: each charge is a 404 at Stripe.
    await delete_customer_at_stripe(stripe_server, sessions, customer_gone.backer.id)
    async with sessions.begin() as session:
        for gone in (card_gone, never_back):
            await session.execute(
                update(Pledge).where(Pledge.id == gone.id).values(payment_method_id=f"pm_gone{uuid.uuid4().hex[:12]}")
            )
    await pass_deadline(sessions, campaign["id"])
    assert (await sweep(sessions, stripe_settings, jobs))["close-campaigns"] == 1

    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        answers = await run_jobs(work, jobs)
        assert sorted(answer for _actor, answer in answers if isinstance(answer, str)) == [
            "failed",
            "failed",
            "failed",
            "succeeded",
        ]
        assert (await pledge_row(sessions, good.id)).status == "collected"
        for refused in (customer_gone, card_gone, never_back):
            pledge = await pledge_row(sessions, refused.id)
            assert pledge.status == "errored" and pledge.retry_until is not None
            assert await attempts_of(sessions, refused.id) == [(1, "failed")], "settled, not in doubt"
            assert "charge_failed" in await mail_kinds(sessions, refused.backer.email)
        assert await campaign_status(sessions, campaign["id"]) == "successful", "it waits on the errored pledges"

        # Nothing is sent again: a refusal is final for that attempt.
        await waiting_since_long_ago(sessions)
        found = await sweep(sessions, stripe_settings, jobs)
        assert found["charges"] == 0
        assert await attempts_of(sessions, card_gone.id) == [(1, "failed")]

        # The backer whose card was gone gives a new one, which is charged at once.
        [mail] = [m for m in await mails_of(sessions, "charge_failed") if m.to_address == card_gone.backer.email]
        assert mail.facts["path"] == f"/me/pledges/{card_gone.id}"
        assert mail.facts["reason"].startswith("refused:")
        assert "could not charge the card saved" in render_mail(mail_templates(dev=True), mail, base_url="").text
        asked = await stripe_client.post(
            f"/api/v1/pledges/{card_gone.id}/payment-method", headers=card_gone.backer.headers
        )
        assert asked.status_code == 200, asked.text
        await save_card(stripe_server, asked.json()["payment"]["client_secret"], CARD_OK)
        confirmed = await stripe_client.post(
            f"/api/v1/pledges/{card_gone.id}/confirm", headers=card_gone.backer.headers
        )
        assert confirmed.status_code == 200, confirmed.text
        await run_jobs(work, jobs)
        assert (await pledge_row(sessions, card_gone.id)).status == "collected"
        assert await attempts_of(sessions, card_gone.id) == [(1, "failed"), (2, "succeeded")]
        assert await campaign_status(sessions, campaign["id"]) == "successful", "one backer still has time"

        # The other backers' window passes without a new card: dropped, and the campaign is funded.
        async with sessions.begin() as session:
            await session.execute(
                update(Pledge)
                .where(Pledge.id.in_([customer_gone.id, never_back.id]))
                .values(retry_until=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
            )
        found = await sweep(sessions, stripe_settings, jobs)
        assert found["dropped-pledges"] == 2 and found["funded-campaigns"] == 1
        await run_jobs(work, jobs)  # their cards are removed, the one Stripe never had as well
        assert (await sweep(sessions, stripe_settings, jobs))["card-removals"] == 0

    for dropped in (customer_gone, never_back):
        pledge = await pledge_row(sessions, dropped.id)
        assert pledge.status == "dropped" and pledge.payment_method_id is None
        assert "pledge_dropped" in await mail_kinds(sessions, dropped.backer.email)
        assert await payment_intents(stripe_server, pledge_id=dropped.id) == []
    assert await campaign_status(sessions, campaign["id"]) == "funded"
    ledger: dict[str, Any] = (
        await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}/ledger", headers=maker.headers)
    ).json()
    assert ledger["collected"] == 2 * PAIR


async def test_a_charge_in_doubt_for_longer_than_the_limit_and_never_seen_at_stripe_is_settled_as_failed(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    campaign, maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    reached, lost = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK, CARD_OK])
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, stripe_settings, jobs)
    jobs.jobs.clear()  # the messages died with the worker
    # A worker recorded both attempts, reached Stripe for one only, and died; nobody looked for a whole day.
    async with sessions.begin() as session:
        sent = await next_charge_call(session, uuid.UUID(reached.id))
        assert await next_charge_call(session, uuid.UUID(lost.id)) is not None
    assert sent is not None
    await gateway.charge_off_session(
        pledge_id=sent.pledge_id,
        attempt=sent.attempt,
        amount=sent.amount,
        currency=sent.currency,
        customer_id=sent.customer_id,
        payment_method_id=sent.payment_method_id,
    )
    hours = stripe_settings.charge_doubt_hours
    async with sessions.begin() as session:
        await session.execute(
            update(ChargeAttempt).values(created_at=func.now() - func.make_interval(0, 0, 0, hours, 0, 1))
        )
    await waiting_since_long_ago(sessions)

    with caplog.at_level(logging.ERROR, logger="kindling.payments"):
        assert (await sweep(sessions, stripe_settings, jobs))["charges"] == 2
        async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
            await run_jobs(work, jobs)

    # The one Stripe has is recorded as it went; the one it never saw is settled as failed, not sent a day late.
    assert (await pledge_row(sessions, reached.id)).status == "collected"
    assert await attempts_of(sessions, lost.id) == [(1, "failed")]
    assert await payment_intents(stripe_server, pledge_id=lost.id) == []
    settled = await pledge_row(sessions, lost.id)
    assert settled.status == "errored" and settled.retry_until is not None
    [mail] = [m for m in await mails_of(sessions, "charge_failed") if m.to_address == lost.backer.email]
    assert mail.facts["reason"] == "doubt_expired"
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR and lost.id in r.getMessage()]
    assert f"in doubt for over {hours} hours" in logged.getMessage()

    # The space's operators and the admins see it on the escrow desk, in both languages; the maker sees no desk row.
    async with logged_in(stripe_client, operator) as browser:
        english = (await browser.get("/operator/milestones")).text
        chinese = (await browser.get("/operator/milestones?lang=zh_CN")).text
    assert f"Charges settled as failed after {hours} hours of doubt" in english
    assert lost.id in english and reached.id not in english
    with use_locale("en"):
        assert money(PAIR, "CNY") in english
    assert f"悬而未决 {hours} 小时后按失败处理的扣款" in chinese and lost.id in chinese
    admin = await make_admin(sessions, await sign_up(stripe_client, "Root"))
    async with logged_in(stripe_client, admin) as browser:
        assert lost.id in (await browser.get("/operator/milestones")).text
    async with logged_in(stripe_client, maker) as browser:
        assert lost.id not in (await browser.get("/operator/milestones")).text


@pytest.mark.parametrize(
    ("reason", "locale", "said"),
    [
        ("refused:resource_missing", "en", "Our payment provider could not charge the card saved for this pledge."),
        ("doubt_expired", "zh_CN", "我们的支付服务商无法从这笔支持所保存的卡上扣款。"),
        ("card_declined", "en", "Your bank declined the card."),
    ],
)
def test_the_new_card_mail_blames_the_bank_only_when_the_bank_said_no(reason: str, locale: str, said: str) -> None:
    facts = {
        "name": "Mei",
        "campaign_title": "Open Soil Sensor",
        "pledge_id": "p1",
        "path": "/me/pledges/p1",
        "amount": 35_900,
        "currency": "CNY",
        "reason": reason,
        "retry_until": "2026-12-14T12:00:00+00:00",
    }
    mail = Mail(kind="charge_failed", to_address="mei@example.com", locale=locale, facts=facts)

    rendered = render_mail(mail_templates(dev=True), mail, base_url="https://kindling.example")

    assert said in rendered.text and said in rendered.html
    assert "https://kindling.example/me/pledges/p1" in rendered.text
