"""A space's risk-compensation fund: a share of its sponsor fee paid in at each collection, topping up the refunds of
a sponsored campaign suspended after funding, up to the space's cap per campaign and never more than it holds; public
on the space's page and in its API, read from the ledger."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Space
from payments.gateway import StripeGateway
from payments.ledger import LedgerSummary, campaign_ledger, paid_by_pledge
from payments.models import LedgerEntry, Refund
from payments.money import fee, fund_contribution
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.i18n import money, use_locale
from service.settings import Settings
from tests.helpers import CARD_OK, Actor, create_space, launched_campaign, make_admin, make_operator, sign_up
from tests.money_helpers import back_campaign, pass_deadline, run_jobs, stripe_work, sweep
from tests.pages import logged_in, post_form

PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN


def balanced(summary: LedgerSummary) -> bool:
    """The books' identity, extended by what the fund added to the refunds."""
    out = summary.refunded + summary.fees + summary.released + summary.disputed + summary.dispute_lost
    return summary.collected + summary.fund_topped_up - out == summary.escrow_held


async def funded(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
    space: dict[str, Any],
    operator: Actor,
    bonuses: list[int],
) -> dict[str, Any]:
    campaign, _maker, _operator = await launched_campaign(client, sessions, goal=PAIR, space=space, operator=operator)
    await back_campaign(client, stripe, sessions, campaign, [CARD_OK] * len(bonuses), bonuses=bonuses)
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, settings, jobs)
    async with stripe_work(sessions, engine, gateway, settings, jobs) as work:
        await run_jobs(work, jobs)
    assert (await client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["status"] == "funded"
    return campaign


async def suspended(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
    operator: Actor,
    campaign_id: str,
) -> tuple[LedgerSummary, LedgerSummary, dict[uuid.UUID, int], list[Refund]]:
    """Suspend the campaign and run its refunds: its books before and after, what each backer paid, the refunds."""
    async with sessions() as session:
        before = await campaign_ledger(session, uuid.UUID(campaign_id))
        paid = await paid_by_pledge(session, uuid.UUID(campaign_id))
    response = await client.post(
        f"/api/v1/campaigns/{campaign_id}/suspend", json={"reason": "The factory closed."}, headers=operator.headers
    )
    assert response.status_code == 200, response.text
    async with stripe_work(sessions, engine, gateway, settings, jobs) as work:
        await run_jobs(work, jobs)
    async with sessions() as session:
        after = await campaign_ledger(session, uuid.UUID(campaign_id))
        refunds = list(await session.scalars(select(Refund).where(Refund.campaign_id == uuid.UUID(campaign_id))))
    return before, after, paid, refunds


async def test_the_fund_tops_up_refunds_up_to_the_cap_and_a_short_fund_pays_what_it_has(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    client = stripe_client
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin, sponsor_fee_bps=500)
    operator = await make_operator(client, admin, space, sessions=sessions)
    terms = {"fund_share_bps": 5000, "fund_cap": 500}
    edited = await client.patch(f"/api/v1/spaces/{space['id']}", json=terms, headers=operator.headers)
    assert edited.status_code == 200, edited.text
    assert edited.json() | terms == edited.json() and edited.json()["fund_currency"] == "CNY"

    first = await funded(client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, space, operator, [0])
    second = await funded(
        client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, space, operator, [0, 7, 1_001]
    )
    paid_in = {c["id"]: 0 for c in (first, second)}
    for campaign, amounts in ((first, [PAIR]), (second, [PAIR, PAIR + 7, PAIR + 1_001])):
        paid_in[campaign["id"]] = sum(fund_contribution(fee(amount, 500), 5000) for amount in amounts)
        async with sessions() as session:
            books = await campaign_ledger(session, uuid.UUID(campaign["id"]))
        # The fund's share is part of the sponsor's fee: the books' identity of API.md holds as written.
        assert books.fund_contributed == paid_in[campaign["id"]] > 0
        assert books.sponsor_fee == sum(fee(amount, 500) for amount in amounts)
        assert books.collected - books.refunded - books.fees - books.released == books.escrow_held
    fund = (await client.get(f"/api/v1/spaces/{space['id']}/fund")).json()
    assert (fund["contributed"], fund["paid_out"], fund["balance"]) == (sum(paid_in.values()), 0, sum(paid_in.values()))

    # The cap binds: the fund holds more than 500 and the backers lost more (the fees), yet it pays 500.
    before, after, paid, refunds = await suspended(
        client, sessions, stripe_settings, engine, gateway, jobs, operator, first["id"]
    )
    assert after.fund_topped_up == 500
    assert sum(r.amount for r in refunds) == before.escrow_held + 500 <= sum(paid.values())
    assert after.escrow_held == 0 and balanced(after)

    # A short fund pays what it has: the cap is far above what is left in it.
    raised = await client.patch(f"/api/v1/spaces/{space['id']}", json={"fund_cap": 1_000_000}, headers=operator.headers)
    assert raised.status_code == 200, raised.text
    left = sum(paid_in.values()) - 500
    # The operator is told, before confirming, what the fund adds.
    page = f"/operator/campaigns/{second['slug']}"
    async with logged_in(client, operator) as browser:
        asked = await post_form(browser, f"{page}/suspend", {"reason": "The factory closed."}, form_page=page)
    assert asked.status_code == 200, asked.text
    with use_locale("en"):
        assert f"fund adds {money(left, 'CNY')} to these refunds" in asked.text
    before, after, paid, refunds = await suspended(
        client, sessions, stripe_settings, engine, gateway, jobs, operator, second["id"]
    )
    assert 0 < left < sum(paid.values()) - before.escrow_held
    assert after.fund_topped_up == left
    assert sum(r.amount for r in refunds) == before.escrow_held + left
    assert after.escrow_held == 0 and balanced(after)
    # Pro rata by largest remainder: each within one fen of its exact share, nobody back more than they paid.
    total = before.escrow_held + left
    for refund in refunds:
        assert abs(refund.amount - total * paid[refund.pledge_id] / sum(paid.values())) < 1
        assert refund.amount <= paid[refund.pledge_id]
    async with sessions() as session:
        # Every transaction sums to zero, so the whole ledger does.
        assert await session.scalar(select(func.sum(LedgerEntry.amount))) == 0

    fund = (await client.get(f"/api/v1/spaces/{space['id']}/fund")).json()
    assert (fund["contributed"], fund["paid_out"], fund["balance"]) == (sum(paid_in.values()), sum(paid_in.values()), 0)
    by_campaign = {c["campaign_id"]: c for c in fund["campaigns"]}
    assert by_campaign[first["id"]]["paid_out"] == 500 and by_campaign[second["id"]]["paid_out"] == left
    assert by_campaign[first["id"]]["paid_out_at"].endswith("Z")

    english = (await client.get(f"/spaces/{space['slug']}", headers={"Accept-Language": "en"})).text
    assert "Risk-compensation fund" in english and "50% of the sponsor fee" in english
    assert "its backers received" in english and second["title"] in english
    chinese = (await client.get(f"/spaces/{space['slug']}?lang=zh_CN")).text
    assert "风险补偿基金" in chinese


async def test_the_operator_sets_the_fund_share_and_cap_on_the_space_form_and_bad_values_are_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space, sessions=sessions)
    form_page = f"/operator/spaces/{space['id']}"
    good = {
        "name": space["name"],
        "description": space["description"],
        "sponsor_fee_bps": "300",
        "default_plan": "yes",
        "fund_share_bps": "2500",
        "fund_cap": "2,000.50",
    }
    async with logged_in(client, operator) as browser:
        shown = (await browser.get(form_page)).text
        assert 'name="fund_share_bps"' in shown and "Most paid to one campaign's backers, in CNY" in shown
        for wrong, message in (
            ({"fund_share_bps": "10001"}, "Enter basis points from 0 to 10000"),
            ({"fund_share_bps": "²"}, "Enter basis points from 0 to 10000"),
            ({"fund_cap": "12.345"}, "CNY amounts have at most 2 decimal places."),
            ({"fund_cap": "-5"}, "This cannot be negative"),
            ({"fund_cap": "9" * 40}, "This number is too large."),
        ):
            refused = await post_form(browser, form_page, good | wrong, form_page=form_page)
            assert refused.status_code == 422, (wrong, refused.text[:300])
            assert message in refused.text
        await browser.get("/?lang=zh_CN")
        chinese = await post_form(browser, form_page, good | {"fund_share_bps": "10001"}, form_page=form_page)
        assert chinese.status_code == 422 and "风险补偿基金" in chinese.text
        async with sessions() as session:
            unchanged = await session.get_one(Space, uuid.UUID(space["id"]))
            assert (unchanged.fund_share_bps, unchanged.fund_cap) == (0, 0)

        saved = await post_form(browser, form_page, good, form_page=form_page)
        assert saved.status_code == 303, saved.text
    async with sessions() as session:
        stored = await session.get_one(Space, uuid.UUID(space["id"]))
        assert (stored.fund_share_bps, stored.fund_cap, stored.fund_currency) == (2500, 200_050, "CNY")

    for body, field in (
        ({"fund_share_bps": 10_001}, "fund_share_bps"),
        ({"fund_cap": -1}, "fund_cap"),
        ({"fund_currency": "XXX"}, "fund_currency"),
    ):
        refused = await client.patch(f"/api/v1/spaces/{space['id']}", json=body, headers=operator.headers)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    outsider = await sign_up(client, "Outsider")
    denied = await client.patch(f"/api/v1/spaces/{space['id']}", json={"fund_cap": 5}, headers=outsider.headers)
    assert denied.status_code == 403
    assert (await client.get(f"/api/v1/spaces/{uuid.uuid4()}/fund")).status_code == 404
