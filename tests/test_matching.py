"""Matching: the sponsoring space matches backers 1:1 up to a cap; the match counts toward the goal, is fixed at the
close, charged to the sponsor's saved card off-session, and kept in the ledger's own account."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge, Tier
from campaigns.pledges.models import Match, PledgeItem
from campaigns.update_mail import fan_out_update
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger, record_collection
from payments.milestones import create_milestones
from payments.models import ChargeAttempt, Refund
from payments.money import backers_shortfall, pro_rata_refunds, refunds_with_match
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.factories import insert_pledge
from tests.helpers import (
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    Actor,
    create_space,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
)
from tests.money_helpers import (
    back_campaign,
    mail_kinds,
    mails_of,
    pass_deadline,
    payment_intents,
    pledge_row,
    pledge_with_card,
    run_jobs,
    save_card,
    stripe_work,
    sweep,
)
from tests.pages import logged_in

PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN
SPONSOR = "Chaihuo Makerspace"


async def set_up_match(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    operator: Actor,
    campaign: dict[str, Any],
    cap: int,
    card: str = CARD_OK,
) -> dict[str, Any]:
    """The operator's match through the API, its card saved at localstripe and its pledge confirmed: `active`."""
    made = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/match",
        json={"cap": cap, "sponsor_name": SPONSOR},
        headers=operator.headers,
    )
    assert made.status_code == 201, made.text
    match = made.json()
    assert match["pledge"]["payment"]["client_secret"]
    await save_card(stripe, match["pledge"]["payment"]["client_secret"], card)
    confirmed = await client.post(f"/api/v1/pledges/{match['pledge_id']}/confirm", headers=operator.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"
    return dict(match)


async def figures(client: httpx.AsyncClient, campaign: dict[str, Any]) -> tuple[int, int, int]:
    """(pledged, backers, matched) as anyone reads them."""
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    match = await client.get(f"/api/v1/campaigns/{campaign['id']}/match")
    assert match.status_code == 200, match.text
    assert match.json()["pledge"] is None, "the card set-up is the owner's alone"
    return shown["pledged"], shown["backers"], match.json()["matched"]


def books_balance(books: dict[str, Any]) -> bool:
    spent = books["refunded"] + books["platform_fee"] + books["sponsor_fee"] + books["processor_fee"]
    return bool(books["collected"] - spent - books["released"] == books["escrow_held"])


async def test_a_campaign_reaching_its_goal_only_with_the_match_is_funded_and_the_sponsors_card_charged_for_it(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    client = stripe_client
    campaign, maker, operator = await launched_campaign(client, sessions, goal=100_000)
    match = await set_up_match(client, stripe_server, operator, campaign, cap=50_000)
    assert (match["sponsor_name"], match["cap"], match["currency"], match["matched"]) == (SPONSOR, 50_000, "CNY", 0)
    assert await figures(client, campaign) == (0, 0, 0), "a match alone matches nothing"

    [first] = await back_campaign(client, stripe_server, sessions, campaign, [CARD_OK])
    assert await figures(client, campaign) == (2 * PAIR, 1, PAIR), "below its cap it gives what the backers gave"
    [second] = await back_campaign(client, stripe_server, sessions, campaign, [CARD_OK])
    assert await figures(client, campaign) == (2 * PAIR + 50_000, 2, 50_000), "above it, the cap"
    assert 2 * PAIR < 100_000 <= 2 * PAIR + 50_000, "the backers alone fall short of the goal"
    english = (await client.get(f"/campaigns/{campaign['slug']}")).text
    assert f"Matched 1:1 by {SPONSOR} up to" in english and "of the pledged sum is the match" in english
    chinese = (await client.get(f"/campaigns/{campaign['slug']}?lang=zh_CN")).text
    assert f"{SPONSOR} 按 1:1 配捐，上限" in chinese and "来自配捐" in chinese
    listed = await client.get(f"/api/v1/campaigns/{campaign['id']}/backers", headers=maker.headers)
    assert [b["pledge_id"] for b in listed.json()["items"]] == [first.id, second.id], "the match is no backer"

    await pass_deadline(sessions, campaign["id"])
    assert (await sweep(sessions, stripe_settings, jobs))["close-campaigns"] == 1
    fixed = await pledge_row(sessions, match["pledge_id"])
    assert (fixed.status, fixed.amount, fixed.tier_id) == ("active", 50_000, None)
    assert "campaign_successful" not in await mail_kinds(sessions, operator.email), "the backers are told, not it"
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    assert (await pledge_row(sessions, match["pledge_id"])).status == "collected"
    [charge] = await payment_intents(stripe_server, pledge_id=match["pledge_id"])
    assert (charge["amount"], charge["status"]) == (50_000, "succeeded")
    assert charge["customer"] and charge["payment_method"], "charged to the sponsor's saved card, off-session"
    async with sessions() as session:
        assert await session.scalar(select(Campaign.status).where(Campaign.id == campaign["id"])) == "funded"
        line = await session.scalar(select(PledgeItem).where(PledgeItem.pledge_id == fixed.id))
        assert line is not None and line.unit_amount == 50_000
    books = (await client.get(f"/api/v1/campaigns/{campaign['id']}/ledger", headers=maker.headers)).json()
    assert (books["collected"], books["matched"], books["pledged"]) == (2 * PAIR + 50_000, 50_000, 2 * PAIR + 50_000)
    assert books_balance(books)
    public = (await client.get(f"/api/v1/campaigns/{campaign['id']}/ledger/public")).json()
    assert public["collected"] == 2 * PAIR + 50_000
    escrow_page = (await client.get(f"/campaigns/{campaign['slug']}/escrow?lang=en")).text
    assert "came from the sponsoring space" in escrow_page
    async with logged_in(client, maker) as browser:
        dashboard = (await browser.get(f"/maker/campaigns/{campaign['slug']}/funding?lang=en")).text
    assert "Of it, from the match" in dashboard
    assert (await figures(client, campaign))[1] == 2
    posted = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/updates",
        json={"title": "Tooling", "body": "The moulds are cut.", "visibility": "backers"},
        headers=maker.headers,
    )
    assert posted.status_code == 201, posted.text
    async with sessions.begin() as session:
        written = await fan_out_update(session, posted.json()["id"], base_url="http://kindling.test")
    assert written == 2, "the update goes to the two backers, not to the sponsor's match"


async def test_a_match_above_what_the_backers_gave_is_fixed_at_it_and_a_refused_match_card_leaves_the_backers_charged(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    client = stripe_client
    funded, maker, operator = await launched_campaign(client, sessions, goal=2 * PAIR)
    space = {"id": funded["space_id"]}
    failing, _maker, _operator = await launched_campaign(
        client, sessions, goal=10 * PAIR, space=space, operator=operator
    )
    match = await set_up_match(client, stripe_server, operator, funded, cap=100_000, card=CARD_DECLINED_AT_CHARGE)
    unmatched = await set_up_match(client, stripe_server, operator, failing, cap=100_000)
    [backing] = await back_campaign(client, stripe_server, sessions, funded, [CARD_OK])
    other = await pledge_with_card(client, stripe_server, backing.backer, failing)

    for campaign in (funded, failing):
        await pass_deadline(sessions, campaign["id"])
    assert (await sweep(sessions, stripe_settings, jobs))["close-campaigns"] == 2
    assert (await pledge_row(sessions, match["pledge_id"])).amount == PAIR, "1:1: never more than the backers gave"
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    # The campaign that failed (PAIR + PAIR matched, of 10 PAIR) charges nobody, the match included.
    async with sessions() as session:
        assert await session.scalar(select(Campaign.status).where(Campaign.id == failing["id"])) == "unsuccessful"
    assert (await pledge_row(sessions, unmatched["pledge_id"])).status == "cancelled"
    assert (await pledge_row(sessions, other["id"])).status == "cancelled"
    assert await payment_intents(stripe_server, pledge_id=unmatched["pledge_id"]) == []

    # The refused match card errors the match alone, as any pledge: its owner is told and may give another card
    # within the retry window; the backer is charged and the campaign waits for the match as for any backer.
    assert (await pledge_row(sessions, backing.id)).status == "collected"
    errored = await pledge_row(sessions, match["pledge_id"])
    assert errored.status == "errored" and errored.retry_until is not None
    assert [m.to_address for m in await mails_of(sessions, "charge_failed")] == [operator.email]
    async with sessions() as session:
        assert await session.scalar(select(Campaign.status).where(Campaign.id == funded["id"])) == "successful"
    books = (await client.get(f"/api/v1/campaigns/{funded['id']}/ledger", headers=maker.headers)).json()
    assert (books["collected"], books["matched"]) == (PAIR, 0)
    assert books_balance(books)
    late = await client.post(
        f"/api/v1/campaigns/{funded['id']}/match",
        json={"cap": 1_000, "sponsor_name": SPONSOR},
        headers=operator.headers,
    )
    assert (late.status_code, late.json()["type"].rsplit("/", 1)[-1]) == (409, "not-live")


async def test_only_the_sponsoring_spaces_operator_matches_with_valid_terms_once_and_may_withdraw_it(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = stripe_client
    campaign, maker, operator = await launched_campaign(client, sessions)
    path = f"/api/v1/campaigns/{campaign['id']}/match"
    admin = await make_admin(sessions, await sign_up(client, "Overseer"))
    stranger_space = await create_space(client, admin)
    stranger = await make_operator(client, admin, stranger_space, "Stranger")
    colleague = await make_operator(client, admin, {"id": campaign["space_id"]}, "Colleague")
    backer = await sign_up(client, "Backer")
    terms = {"cap": 20_000, "sponsor_name": SPONSOR}

    for bad, field in (
        ({"cap": 0, "sponsor_name": SPONSOR}, "cap"),
        ({"cap": "20000", "sponsor_name": SPONSOR}, "cap"),
        ({"cap": 20_000, "sponsor_name": "  "}, "sponsor_name"),
        ({"cap": 20_000, "sponsor_name": "x" * 121}, "sponsor_name"),
    ):
        refused = await client.post(path, json=bad, headers=operator.headers)
        assert refused.status_code == 422, bad
        assert field in [e["field"] for e in refused.json()["errors"]], refused.text
    assert (await client.post(path, json=terms, headers=stranger.headers)).status_code == 409
    assert (await client.post(path, json=terms, headers=maker.headers)).status_code == 403
    assert (await client.post(path, json=terms, headers=backer.headers)).status_code == 403
    assert (await client.get(path)).status_code == 404, "no match yet"

    # Two operators of the space at once: one match, the other told so.
    made, raced = await asyncio.gather(
        client.post(path, json=terms, headers=operator.headers),
        client.post(path, json=terms, headers=colleague.headers),
    )
    assert sorted([made.status_code, raced.status_code]) == [201, 409], (made.text, raced.text)
    if made.status_code != 201:
        made, raced = raced, made
        operator, colleague = colleague, operator
    assert raced.json()["type"].rsplit("/", 1)[-1] == "already-matched"
    again = await client.post(path, json=terms, headers=operator.headers)
    assert (again.status_code, again.json()["type"].rsplit("/", 1)[-1]) == (409, "already-matched")
    pledge_id = made.json()["pledge_id"]
    changed = await client.patch(
        f"/api/v1/pledges/{pledge_id}", json={"tier_id": None, "bonus": 1}, headers=operator.headers
    )
    assert changed.status_code == 409, "a match is not changed as a backer's pledge is"
    assert (await client.delete(path, headers=stranger.headers)).status_code == 409
    withdrawn = await client.delete(path, headers=operator.headers)
    assert (withdrawn.status_code, withdrawn.json()["status"]) == (200, "cancelled")
    assert (await client.get(path)).status_code == 404
    assert (await client.delete(path, headers=operator.headers)).status_code == 404
    assert (await client.post(path, json=terms, headers=operator.headers)).status_code == 201, "a new one may follow"
    mine = await client.get(path, headers=operator.headers)
    assert mine.json()["pledge"]["payment"]["client_secret"], "its owner reads its card set-up"

    document = (await client.get("/api/v1/openapi.json")).json()
    operations = document["paths"]["/api/v1/campaigns/{campaign_id}/match"]
    assert {"403", "409", "422", "401", "404"} <= set(operations["post"]["responses"])
    assert {"403", "409", "404"} <= set(operations["delete"]["responses"])
    assert "404" in operations["get"]["responses"] and "security" not in operations["get"]
    assert "matched" in document["components"]["schemas"]["LedgerOut"]["properties"]


@given(
    paid=st.lists(st.integers(min_value=1, max_value=10**7), min_size=2, max_size=8),
    escrow_share=st.floats(min_value=0, max_value=1),
    topped_up=st.integers(min_value=0, max_value=10**7),
)
def test_a_suspended_matched_campaign_refunds_the_match_its_share_of_escrow_and_the_fund_only_the_backers(
    paid: list[int], escrow_share: float, topped_up: int
) -> None:
    payers = {f"p{i}": amount for i, amount in enumerate(paid)}
    escrow = int(sum(paid) * escrow_share)
    topped_up = min(topped_up, backers_shortfall(escrow, payers, {"p0"}))
    due = refunds_with_match(escrow, topped_up, payers, {"p0"})
    assert sum(due.values()) == escrow + topped_up
    assert all(0 <= due[key] <= payers[key] for key in payers)
    assert due["p0"] == pro_rata_refunds(escrow, payers)["p0"], "the match draws nothing from its own space's fund"
    assert backers_shortfall(escrow, payers, set()) == sum(paid) - escrow


async def test_the_fund_tops_up_a_suspended_matched_campaign_for_its_backers_alone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, operator = await launched_campaign(client, sessions)
    terms = {"fund_share_bps": 5000, "fund_cap": 1_000_000}
    space_id = campaign["space_id"]
    assert (await client.patch(f"/api/v1/spaces/{space_id}", json=terms, headers=operator.headers)).status_code == 200
    async with sessions.begin() as session:
        funded = await session.get_one(Campaign, uuid.UUID(campaign["id"]))
        funded.status = "funded"
        tier = await session.get_one(Tier, uuid.UUID(campaign["tiers"][1]["id"]))
        backer = await insert_pledge(session, funded, tier)
        match = Pledge(
            campaign_id=funded.id, backer_id=uuid.UUID(operator.id), is_match=True, amount=20_000, bonus=20_000,
            currency="CNY", status="collected",
        )  # fmt: skip
        session.add(match)
        await session.flush()
        session.add(
            Match(
                pledge_id=match.id, campaign_id=funded.id, space_id=funded.space_id, sponsor_name=SPONSOR,
                cap=20_000, currency="CNY", created_by=match.backer_id,
            )
        )  # fmt: skip
        for pledge, clearing in ((backer, "stripe_clearing"), (match, "match_clearing")):
            await record_collection(
                session, funded, pledge.id, pledge.amount, "CNY", 500, 1000, 300, fund_share_bps=5000, clearing=clearing
            )
            session.add(
                ChargeAttempt(
                    pledge_id=pledge.id, attempt=1, idempotency_key=f"pledge:{pledge.id}:charge:1",
                    amount=pledge.amount, currency="CNY", payment_method_id="pm_test", status="succeeded",
                    payment_intent_id=f"pi_{pledge.id.hex[:24]}",
                )
            )  # fmt: skip
        await create_milestones(session, funded)
    async with sessions() as session:
        before = await campaign_ledger(session, funded.id)
    paid = {backer.id: backer.amount, match.id: 20_000}
    suspended = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/suspend", json={"reason": "The factory closed."}, headers=operator.headers
    )
    assert suspended.status_code == 200, suspended.text
    async with sessions() as session:
        after = await campaign_ledger(session, funded.id)
        refunds = {r.pledge_id: r.amount for r in await session.scalars(select(Refund))}
    own = pro_rata_refunds(before.escrow_held, paid)
    # The fund pays what the backer lost (its fund holds less: the share of two sponsor fees), never the match's loss.
    assert 0 < after.fund_topped_up == min(paid[backer.id] - own[backer.id], before.fund_contributed)
    assert refunds == {match.id: own[match.id], backer.id: own[backer.id] + after.fund_topped_up}
    assert "campaign_suspended" not in await mail_kinds(sessions, operator.email)
