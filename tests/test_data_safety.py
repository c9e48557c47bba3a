"""Nothing that money depends on is deleted, and what it records never changes: PostgreSQL refuses it (0006).

The ledger's own append-only rule (0003) is proved in tests/test_ledger.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from payments.models import ChargeAttempt, ChargeTerms, Milestone, Payout, Refund, WebhookEvent
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import Actor, confirm_card_setup, launched_campaign, sign_up, stripe_event, stripe_signature

# table -> the columns an UPDATE may not change; a DELETE is refused outright
RULES = {
    "pledges": ("id", "campaign_id", "backer_id", "currency"),
    "webhook_events": ("id", "type", "object_id", "payload"),
    "charge_attempts": ("id", "pledge_id", "attempt", "idempotency_key", "amount", "currency", "payment_method_id"),
    "refunds": (
        "id",
        "campaign_id",
        "pledge_id",
        "reference",
        "amount",
        "currency",
        "payment_intent_id",
        "requested_by",
        "reason",
    ),
    "charge_terms": ("campaign_id", "platform_fee_bps", "sponsor_fee_bps", "fund_share_bps"),
    "payouts": ("id", "milestone_id", "campaign_id", "amount", "currency"),
}


async def active_pledge(
    client: httpx.AsyncClient, stripe: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, Any], Actor]:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Bea")
    created = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert created.status_code == 201, created.text
    assert (await confirm_card_setup(stripe, created.json()["payment"]["client_secret"])).status_code == 200
    confirmed = await client.post(f"/api/v1/pledges/{created.json()['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200, confirmed.text
    return dict(confirmed.json()), backer


async def refused(sessions: async_sessionmaker[AsyncSession], statement: Any, reason: str) -> None:
    with pytest.raises(DBAPIError, match=reason) as raised:
        async with sessions.begin() as session:
            await session.execute(statement)
    assert getattr(raised.value.orig, "sqlstate", None) == "23001"  # restrict_violation


async def test_a_pledge_is_never_deleted_but_its_status_moves(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pledge, backer = await active_pledge(stripe_client, stripe_server, sessions)
    ident = uuid.UUID(pledge["id"])
    never_deleted = "a row of pledges is never deleted"

    await refused(sessions, delete(Pledge).where(Pledge.id == ident), never_deleted)
    await refused(sessions, text("DELETE FROM pledges"), never_deleted)
    with pytest.raises(DBAPIError, match=never_deleted):
        async with sessions.begin() as session:
            await session.delete(await session.get_one(Pledge, ident))

    other = await sign_up(stripe_client, "Mallory")
    await refused(
        sessions, update(Pledge).where(Pledge.id == ident).values(backer_id=uuid.UUID(other.id)), "pledges.backer_id"
    )
    await refused(sessions, update(Pledge).where(Pledge.id == ident).values(currency="USD"), "pledges.currency")
    await refused(sessions, update(Pledge).where(Pledge.id == ident).values(id=uuid.uuid4()), "pledges.id")

    # What a pledge goes through is an update of its status (and tier, amount, address): those are fine.
    cancelled = await stripe_client.delete(f"/api/v1/pledges/{pledge['id']}", headers=backer.headers)
    assert cancelled.status_code == 200, cancelled.text
    async with sessions() as session:
        kept = await session.get_one(Pledge, ident)
    assert kept.status == "cancelled" and str(kept.backer_id) == pledge["backer_id"] and kept.currency == "CNY"


async def test_a_webhook_event_is_kept_as_stripe_sent_it(
    client: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    event = stripe_event("customer.created", {"id": "cus_kept", "object": "customer"})
    payload = json.dumps(event).encode()
    delivered = await client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={
            "Stripe-Signature": stripe_signature(payload, settings.stripe_webhook_secret),
            "Content-Type": "application/json",
        },
    )
    assert delivered.status_code == 200, delivered.text
    this_event = WebhookEvent.id == event["id"]

    await refused(sessions, delete(WebhookEvent).where(this_event), "a row of webhook_events is never deleted")
    await refused(
        sessions, update(WebhookEvent).where(this_event).values(payload={"forged": True}), "webhook_events.payload"
    )
    await refused(
        sessions, update(WebhookEvent).where(this_event).values(type="charge.refunded"), "webhook_events.type"
    )

    # Our own bookkeeping about the event moves.
    async with sessions.begin() as session:
        await session.execute(
            update(WebhookEvent)
            .where(this_event)
            .values(processed_at=func.now(), attempts=WebhookEvent.attempts + 1, last_error="retried")
        )
    async with sessions() as session:
        kept = await session.get_one(WebhookEvent, event["id"])
    assert kept.processed_at is not None and kept.payload == event and kept.type == "customer.created"


async def test_a_payout_is_never_deleted_and_its_amount_never_changes(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    campaign_id = uuid.UUID(campaign["id"])
    async with sessions.begin() as session:
        milestone = Milestone(
            campaign_id=campaign_id,
            position=1,
            name="On funding",
            share_bps=5000,
            unlocks_on="funded",
            status="released",
            amount=40_000,
            released_at=datetime.now(UTC),
        )
        session.add(milestone)
        await session.flush()
        payout = Payout(milestone_id=milestone.id, campaign_id=campaign_id, amount=40_000, currency="CNY")
        session.add(payout)
    this_payout = Payout.id == payout.id

    await refused(sessions, delete(Payout).where(this_payout), "a row of payouts is never deleted")
    await refused(sessions, update(Payout).where(this_payout).values(amount=90_000), "payouts.amount")
    await refused(sessions, update(Payout).where(this_payout).values(currency="USD"), "payouts.currency")

    async with sessions.begin() as session:
        await session.execute(
            update(Payout)
            .where(this_payout)
            .values(status="paid", paid_at=func.now(), bank_reference="ICBC 0042", paid_by=uuid.UUID(maker.id))
        )
    async with sessions() as session:
        kept = await session.get_one(Payout, payout.id)
    assert (kept.status, kept.amount, kept.currency) == ("paid", 40_000, "CNY")


async def test_a_charge_its_refund_and_the_terms_they_were_made_under_are_kept(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pledge, _backer = await active_pledge(stripe_client, stripe_server, sessions)
    pledge_id, campaign_id = uuid.UUID(pledge["id"]), uuid.UUID(pledge["campaign_id"])
    async with sessions.begin() as session:
        terms = ChargeTerms(campaign_id=campaign_id, platform_fee_bps=500, sponsor_fee_bps=300, retry_window_seconds=60)
        attempt = ChargeAttempt(
            pledge_id=pledge_id,
            attempt=1,
            idempotency_key=f"pledge:{pledge_id}:charge:1",
            amount=pledge["amount"],
            currency="CNY",
            payment_method_id="pm_kept",
        )
        refund = Refund(
            campaign_id=campaign_id,
            pledge_id=pledge_id,
            reference=f"refund:{pledge_id}:1",
            amount=1_000,
            currency="CNY",
            payment_intent_id="pi_kept",
        )
        session.add_all([terms, attempt, refund])

    await refused(sessions, delete(ChargeAttempt), "a row of charge_attempts is never deleted")
    await refused(sessions, delete(Refund), "a row of refunds is never deleted")
    await refused(sessions, delete(ChargeTerms), "a row of charge_terms is never deleted")
    await refused(sessions, update(ChargeAttempt).values(amount=1), "charge_attempts.amount")
    await refused(
        sessions, update(ChargeAttempt).values(payment_method_id="pm_other"), "charge_attempts.payment_method_id"
    )
    await refused(sessions, update(Refund).values(amount=99_999), "refunds.amount")
    await refused(sessions, update(Refund).values(pledge_id=uuid.uuid4()), "refunds.pledge_id")
    await refused(sessions, update(ChargeTerms).values(platform_fee_bps=0), "charge_terms.platform_fee_bps")
    await refused(sessions, update(ChargeTerms).values(fund_share_bps=10), "charge_terms.fund_share_bps")

    # How each of them ends is an update, and those are fine.
    async with sessions.begin() as session:
        await session.execute(
            update(ChargeAttempt).values(status="succeeded", payment_intent_id="pi_kept", finished_at=func.now())
        )
        await session.execute(update(Refund).values(status="succeeded", stripe_refund_id="re_kept"))
        await session.execute(update(ChargeTerms).values(retry_window_seconds=120))
    async with sessions() as session:
        kept = await session.get_one(ChargeAttempt, attempt.id)
        given_back = await session.get_one(Refund, refund.id)
    assert (kept.status, kept.amount) == ("succeeded", pledge["amount"])
    assert (given_back.status, given_back.amount) == ("succeeded", 1_000)


async def test_every_money_table_carries_its_rule(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        )
        triggers = {(table, name): definition for table, name, definition in rows}
    for table, facts in RULES.items():
        assert "BEFORE DELETE" in triggers[(table, f"{table}_never_deleted")]
        guard = triggers[(table, f"{table}_facts_never_change")]
        assert guard.endswith(f"money_facts_never_change({', '.join(repr(fact) for fact in facts)})"), guard


async def test_emptying_the_tables_with_truncate_still_works(sessions: async_sessionmaker[AsyncSession]) -> None:
    # Row triggers do not fire on TRUNCATE, which the test suite relies on between tests.
    async with sessions() as session:
        await session.execute(text(f"TRUNCATE {', '.join(RULES)} CASCADE"))
        await session.rollback()
