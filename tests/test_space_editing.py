"""A space's operators edit it, from a page and by PATCH /spaces/{id}: name, description, sponsor fee and milestone
plan, checked as a whole, audited; campaigns launched before keep the fee and the plan they launched with."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import AuditEntry, Campaign, Space
from payments.gateway import StripeGateway
from payments.models import ChargeTerms
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import CARD_OK, Actor, create_space, launched_campaign, make_admin, make_operator, sign_up
from tests.money_helpers import back_campaign, pass_deadline, run_jobs, stripe_work, sweep
from tests.pages import logged_in, post_form

PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN
OWN_PLAN = [
    {"name": "Tooling paid", "share_bps": 2500, "unlocks_on": "funded"},
    {"name": "Delivered", "share_bps": 7500, "unlocks_on": "shipping_done"},
]


async def space_with_operator(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, Any], Actor, Actor]:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin, sponsor_fee_bps=300)
    operator = await make_operator(client, admin, space, sessions=sessions)
    return space, operator, admin


async def audit_rows(sessions: async_sessionmaker[AsyncSession], space_id: str) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "space.update", AuditEntry.space_id == uuid.UUID(space_id))
        )
        return [dict(row.details or {}) for row in rows]


async def space_as_created(client: httpx.AsyncClient, space: dict[str, Any]) -> dict[str, Any]:
    """The space as the API shows it now, less the delivery record that creating it does not answer."""
    shown = (await client.get(f"/api/v1/spaces/{space['id']}")).json()
    shown.pop("delivery_record")
    return dict(shown)


async def test_an_operator_edits_the_space_name_description_fee_and_plan_through_the_api(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await space_with_operator(client, sessions)
    body = {
        "name": "Chaihuo x.factory",
        "description": "Open every day.",
        "sponsor_fee_bps": 450,
        "milestones": OWN_PLAN,
    }
    edited = await client.patch(f"/api/v1/spaces/{space['id']}", json=body, headers=operator.headers)
    assert edited.status_code == 200, edited.text
    assert edited.json() | {} == space | {
        "name": "Chaihuo x.factory",
        "description": "Open every day.",
        "sponsor_fee_bps": 450,
    }
    plan = (await client.get(f"/api/v1/spaces/{space['id']}/milestone-plan")).json()
    assert plan["custom"] is True
    assert [(m["name"], m["share_bps"]) for m in plan["milestones"]] == [("Tooling paid", 2500), ("Delivered", 7500)]
    assert await audit_rows(sessions, space["id"]) == [
        {"name": "Chaihuo x.factory", "description": "Open every day.", "sponsor_fee_bps": 450, "milestones": OWN_PLAN}
    ]

    # A field left out stays; `milestones: null` goes back to Kindling's default plan.
    again = await client.patch(f"/api/v1/spaces/{space['id']}", json={"milestones": None}, headers=operator.headers)
    assert again.status_code == 200, again.text
    assert again.json()["name"] == "Chaihuo x.factory" and again.json()["sponsor_fee_bps"] == 450
    assert (await client.get(f"/api/v1/spaces/{space['id']}/milestone-plan")).json()["custom"] is False


async def test_a_plan_whose_shares_miss_100_percent_or_a_fee_out_of_bounds_is_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await space_with_operator(client, sessions)
    short = [OWN_PLAN[0], {**OWN_PLAN[1], "share_bps": 7000}]
    refused = await client.patch(
        f"/api/v1/spaces/{space['id']}", json={"name": "Renamed", "milestones": short}, headers=operator.headers
    )
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["milestones"]
    too_dear = await client.patch(
        f"/api/v1/spaces/{space['id']}", json={"sponsor_fee_bps": 2001}, headers=operator.headers
    )
    assert too_dear.status_code == 422, too_dear.text
    assert "sponsor_fee_bps" in {error["field"] for error in too_dear.json()["errors"]}
    assert await space_as_created(client, space) == space
    assert await audit_rows(sessions, space["id"]) == []


async def test_only_the_space_operators_and_admins_edit_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, admin = await space_with_operator(client, sessions)
    other_space = await create_space(client, admin)
    other_operator = await make_operator(client, admin, other_space, "Oda", sessions=sessions)
    maker = await sign_up(client, "Maker")
    for outsider in (other_operator, maker):
        refused = await client.patch(
            f"/api/v1/spaces/{space['id']}", json={"sponsor_fee_bps": 0}, headers=outsider.headers
        )
        assert refused.status_code == 403, refused.text
        async with logged_in(client, outsider) as browser:
            assert (await browser.get(f"/operator/spaces/{space['id']}")).status_code == 403
    by_admin = await client.patch(f"/api/v1/spaces/{space['id']}", json={"sponsor_fee_bps": 0}, headers=admin.headers)
    assert by_admin.status_code == 200, by_admin.text


async def test_the_operator_edits_the_space_from_its_page_and_a_bad_plan_is_shown_again_with_the_message(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await space_with_operator(client, sessions)
    form_page = f"/operator/spaces/{space['id']}"
    async with logged_in(client, operator) as browser:
        assert f'href="{form_page}"' in (await browser.get("/operator")).text
        shown = (await browser.get(form_page)).text
        assert "campaigns launched from now on" in shown
        assert 'value="Funding"' in shown and 'value="50"' in shown

        bad = {
            "name": "Chaihuo x.factory",
            "description": "Open every day.",
            "sponsor_fee_bps": "450",
            "default_plan": "no",
            "m0_name": "Tooling paid",
            "m0_share": "25",
            "m0_unlocks_on": "funded",
            "m1_name": "Delivered",
            "m1_share": "70",
            "m1_unlocks_on": "shipping_done",
        }
        refused = await post_form(browser, form_page, bad, form_page=form_page)
        assert refused.status_code == 422
        assert "The shares must add up to 100 %; they add up to 95%." in refused.text
        assert 'value="Tooling paid"' in refused.text and 'value="70"' in refused.text
        assert await space_as_created(client, space) == space

        fee_refused = await post_form(
            browser, form_page, bad | {"m1_share": "75", "sponsor_fee_bps": "2500"}, form_page=form_page
        )
        assert fee_refused.status_code == 422
        assert "Enter basis points from 0 to 2000" in fee_refused.text
        for share, fee in (("Infinity", "450"), ("NaN", "450"), ("9" * 5_000, "9" * 5_000), ("75", "²")):
            beyond = await post_form(
                browser, form_page, bad | {"m1_share": share, "sponsor_fee_bps": fee}, form_page=form_page
            )
            assert beyond.status_code == 422, (share[:10], beyond.text[:200])

        saved = await post_form(browser, form_page, bad | {"m1_share": "75"}, form_page=form_page)
        assert saved.status_code == 303, saved.text
        assert "The space is saved." in (await browser.get(saved.headers["location"])).text

        await browser.get("/?lang=zh_CN")  # signed in, the switch sets the account's language
        chinese = await post_form(browser, form_page, bad, form_page=form_page)
        assert chinese.status_code == 422
        assert "各阶段比例之和须为 100 %" in chinese.text
    async with sessions() as session:
        stored = await session.get_one(Space, uuid.UUID(space["id"]))
        assert (stored.name, stored.description, stored.sponsor_fee_bps) == (
            "Chaihuo x.factory",
            "Open every day.",
            450,
        )
        assert stored.milestone_plan == OWN_PLAN
    assert len(await audit_rows(sessions, space["id"])) == 1


async def test_a_campaign_keeps_the_sponsor_fee_it_launched_with_when_its_space_changes_it(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    launched_fee = (await stripe_client.get(f"/api/v1/spaces/{campaign['space_id']}")).json()["sponsor_fee_bps"]
    changed = await stripe_client.patch(
        f"/api/v1/spaces/{campaign['space_id']}", json={"sponsor_fee_bps": 2000}, headers=operator.headers
    )
    assert changed.status_code == 200, changed.text
    assert launched_fee != 2000

    await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK])
    await pass_deadline(sessions, campaign["id"])
    assert (await sweep(sessions, stripe_settings, jobs))["close-campaigns"] == 1
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    async with sessions() as session:
        terms = await session.get_one(ChargeTerms, uuid.UUID(campaign["id"]))
        stored = await session.get_one(Campaign, uuid.UUID(campaign["id"]))
    assert terms.sponsor_fee_bps == stored.sponsor_fee_bps == launched_fee
    async with logged_in(stripe_client, maker) as browser:
        escrow = (await browser.get(f"/campaigns/{campaign['slug']}/escrow")).text
        assert "the sponsoring space's 3%" in escrow
