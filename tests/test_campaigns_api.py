from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, Pledge, Tier, User
from service.settings import Settings
from tests.helpers import (
    CHECKLIST_ALL_TRUE,
    DELIVERY,
    Actor,
    add_product,
    add_tier,
    approve_campaign,
    create_campaign,
    create_space,
    drafted_campaign,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
)


@dataclass
class World:
    admin: Actor
    space: dict[str, Any]
    operator: Actor
    maker: Actor
    stranger: Actor


async def arrange(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> World:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    return World(admin, space, operator, await sign_up(client, "Maker"), await sign_up(client, "Stranger"))


def problem(response: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if type_ is not None:
        assert body["type"] == type_, body
    return body


def fields_of(response: httpx.Response) -> set[str]:
    return {error["field"] for error in problem(response, 422)["errors"]}


async def mails(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Mail]:
    async with sessions() as session:
        return list(await session.scalars(select(Mail).where(Mail.kind == kind).order_by(Mail.created_at)))


def url(campaign: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/campaigns/{campaign['id']}{tail}"


# Drafting


async def test_a_maker_drafts_a_campaign(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await arrange(client, sessions)
    campaign = await create_campaign(
        client,
        w.maker,
        w.space,
        title="Open Soil Sensor",
        description="# Story\n\nWater **less**.\n\n<script>x()</script>",
    )
    assert uuid.UUID(campaign["id"])
    assert campaign["status"] == "draft"
    assert campaign["slug"] == "open-soil-sensor"
    assert campaign["maker_id"] == w.maker.id and campaign["space_id"] == w.space["id"]
    assert campaign["description_html"] == "<h1>Story</h1>\n<p>Water <strong>less</strong>.</p>\n"
    assert (campaign["currency"], campaign["currency_digits"], campaign["goal"]) == ("CNY", 2, 100_000)
    assert (campaign["pledged"], campaign["backers"], campaign["tiers"], campaign["products"]) == (0, 0, [], [])
    assert campaign["launched_at"] is None and campaign["ends_at"] is None
    assert campaign["review"] is None and campaign["cover"] is None and campaign["images"] == []
    assert campaign["actions"] == ["edit", "submit", "add_image"]


async def test_drafting_needs_a_login(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await arrange(client, sessions)
    body = {"title": "t", "summary": "s", "currency": "CNY", "goal": 1, "space_id": w.space["id"], "duration_days": 1}
    problem(await client.post("/api/v1/campaigns", json=body), 401)
    problem(await client.post("/api/v1/campaigns", json=body, headers={"Authorization": "Bearer nope"}), 401)


async def test_a_draft_names_every_bad_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    bad = {
        "title": "",
        "summary": "s",
        "currency": "DEM",
        "goal": 0,
        "space_id": "not-an-id",
        "duration_days": 61,
        "colour": "red",
    }
    response = await client.post("/api/v1/campaigns", json=bad, headers=w.maker.headers)
    assert fields_of(response) == {"title", "currency", "goal", "space_id", "duration_days", "colour"}
    for goal in (10.5, "1000", -5, True, 10**13):
        body = {"title": "t", "summary": "s", "currency": "CNY", "goal": goal, "space_id": w.space["id"]}
        response = await client.post("/api/v1/campaigns", json=body | {"duration_days": 10}, headers=w.maker.headers)
        assert fields_of(response) == {"goal"}, goal
    unknown_space = {"title": "t", "summary": "s", "currency": "CNY", "goal": 1, "duration_days": 1}
    response = await client.post(
        "/api/v1/campaigns", json=unknown_space | {"space_id": str(uuid.uuid4())}, headers=w.maker.headers
    )
    assert fields_of(response) == {"space_id"}


async def test_currencies_are_those_stripe_charges_with_stripes_minor_units(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    yen = await create_campaign(client, w.maker, w.space, currency="jpy", goal=500_000)
    assert (yen["currency"], yen["currency_digits"], yen["goal"]) == ("JPY", 0, 500_000)
    forint = await create_campaign(client, w.maker, w.space, currency="HUF")
    assert forint["currency_digits"] == 2  # Stripe's hundredths, where Babel says 0
    for code in ("XYZ", "US", "DEM", "usd1", "KWD"):
        response = await client.post(
            "/api/v1/campaigns",
            json={
                "title": "t",
                "summary": "s",
                "currency": code,
                "goal": 1,
                "space_id": w.space["id"],
                "duration_days": 1,
            },
            headers=w.maker.headers,
        )
        assert fields_of(response) == {"currency"}, code


async def test_slugs_are_ascii_unique_and_survive_chinese_titles(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    first = await create_campaign(client, w.maker, w.space, title="Café Lamp — v2!")
    second = await create_campaign(client, w.maker, w.space, title="Cafe Lamp v2")
    chinese = await create_campaign(client, w.maker, w.space, title="智能花盆")
    mixed = await create_campaign(client, w.maker, w.space, title="柴火 Lamp 灯")
    assert first["slug"] == "cafe-lamp-v2"
    assert second["slug"].startswith("cafe-lamp-v2-") and second["slug"] != first["slug"]
    assert chinese["slug"].startswith("campaign-") and chinese["slug"].isascii()
    assert mixed["slug"] == "lamp"
    by_slug = await client.get(f"/api/v1/campaigns/{chinese['slug']}", headers=w.maker.headers)
    assert by_slug.status_code == 200 and by_slug.json()["title"] == "智能花盆"


async def test_only_the_maker_edits_and_only_a_draft(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space)
    edited = await client.patch(
        url(campaign), json={"title": "Better title", "description": "*new*", "goal": 250_000}, headers=w.maker.headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "Better title"
    assert edited.json()["description_html"] == "<p><em>new</em></p>\n"
    assert edited.json()["slug"] == campaign["slug"]
    assert edited.json()["goal"] == 250_000

    problem(await client.patch(url(campaign), json={"title": "x"}), 401)
    problem(await client.patch(url(campaign), json={"title": "x"}, headers=w.stranger.headers), 404)
    problem(await client.patch(url(campaign), json={"title": "x"}, headers=w.operator.headers), 403)
    problem(await client.patch(url(campaign), json={"title": "x"}, headers=w.admin.headers), 403)
    assert fields_of(await client.patch(url(campaign), json={"title": None, "goal": 0}, headers=w.maker.headers)) == {
        "title",
        "goal",
    }
    assert fields_of(
        await client.patch(url(campaign), json={"space_id": str(uuid.uuid4())}, headers=w.maker.headers)
    ) == {"space_id"}
    problem(await client.patch("/api/v1/campaigns/" + str(uuid.uuid4()), json={}, headers=w.maker.headers), 404)

    await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    problem(await client.patch(url(campaign), json={"title": "x"}, headers=w.maker.headers), 409, "not-draft")


# Products and tiers


async def test_a_maker_adds_changes_and_removes_products(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await create_campaign(client, w.maker, w.space)
    product = await add_product(client, w.maker, campaign, overage_bps=300)
    assert product["sku"] == "SKU-A" and product["overage_bps"] == 300 and product["unit_cost"] == 3_000
    other = await add_product(client, w.maker, campaign, sku="SKU-B", unit_cost=None)
    assert other["unit_cost"] is None and other["overage_bps"] == 0

    again = await client.post(
        url(campaign, "/products"),
        json={"sku": "SKU-A", "name": "Twin", "weight_grams": 1, "batch_size": 1},
        headers=w.maker.headers,
    )
    problem(again, 409, "sku-taken")
    clash = await client.patch(
        url(campaign, f"/products/{other['id']}"), json={"sku": "SKU-A"}, headers=w.maker.headers
    )
    problem(clash, 409, "sku-taken")

    changed = await client.patch(
        url(campaign, f"/products/{product['id']}"),
        json={"name": "Sensor v2", "batch_size": 1000, "unit_cost": None},
        headers=w.maker.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["batch_size"], changed.json()["unit_cost"]) == (
        "Sensor v2",
        1000,
        None,
    )

    bad = await client.post(
        url(campaign, "/products"),
        json={"sku": "a b", "name": "", "weight_grams": -1, "batch_size": 0, "overage_bps": 10_001, "unit_cost": -1},
        headers=w.maker.headers,
    )
    assert fields_of(bad) == {"sku", "name", "weight_grams", "batch_size", "overage_bps", "unit_cost"}
    assert fields_of(
        await client.patch(url(campaign, f"/products/{product['id']}"), json={"name": None}, headers=w.maker.headers)
    ) == {"name"}

    problem(await client.patch(url(campaign, f"/products/{uuid.uuid4()}"), json={}, headers=w.maker.headers), 404)
    problem(await client.delete(url(campaign, "/products/nonsense"), headers=w.maker.headers), 404)
    problem(await client.delete(url(campaign, f"/products/{other['id']}"), headers=w.stranger.headers), 404)
    problem(await client.delete(url(campaign, f"/products/{other['id']}"), headers=w.operator.headers), 403)
    problem(await client.delete(url(campaign, f"/products/{other['id']}")), 401)
    removed = await client.delete(url(campaign, f"/products/{other['id']}"), headers=w.maker.headers)
    assert removed.status_code == 204
    shown = (await client.get(url(campaign), headers=w.maker.headers)).json()
    assert [p["sku"] for p in shown["products"]] == ["SKU-A"]


async def test_a_product_of_another_campaign_is_not_found(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    mine = await create_campaign(client, w.maker, w.space)
    theirs = await create_campaign(client, w.stranger, w.space)
    product = await add_product(client, w.stranger, theirs)
    problem(await client.delete(url(mine, f"/products/{product['id']}"), headers=w.maker.headers), 404)


async def test_a_maker_builds_tiers_from_skus_with_a_shipping_table(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await create_campaign(client, w.maker, w.space)
    await add_product(client, w.maker, campaign)
    limited = await add_tier(
        client,
        w.maker,
        campaign,
        quantity_limit=50,
        shipping=[{"country": "cn", "fee": 0}, {"country": "*", "fee": 4500}],
    )
    assert (limited["quantity_limit"], limited["remaining"]) == (50, 50)
    assert limited["items"] == [{"sku": "SKU-A", "quantity": 1}]
    assert limited["shipping"] == [{"country": "CN", "fee": 0}, {"country": "*", "fee": 4500}]
    assert limited["estimated_delivery"] == DELIVERY
    unlimited = await add_tier(client, w.maker, campaign, title="Unlimited")
    assert (unlimited["quantity_limit"], unlimited["remaining"]) == (None, None)
    assert unlimited["position"] == limited["position"] + 1

    relimited = await client.patch(
        url(campaign, f"/tiers/{limited['id']}"), json={"quantity_limit": 20}, headers=w.maker.headers
    )
    assert (relimited.json()["quantity_limit"], relimited.json()["remaining"]) == (20, 20)
    freed = await client.patch(
        url(campaign, f"/tiers/{limited['id']}"), json={"quantity_limit": None}, headers=w.maker.headers
    )
    assert (freed.json()["quantity_limit"], freed.json()["remaining"]) == (None, None)
    retitled = await client.patch(
        url(campaign, f"/tiers/{unlimited['id']}"),
        json={"title": "Two sensors", "items": [{"sku": "SKU-A", "quantity": 2}], "price": 30_000},
        headers=w.maker.headers,
    )
    assert retitled.status_code == 200, retitled.text
    assert retitled.json()["items"] == [{"sku": "SKU-A", "quantity": 2}] and retitled.json()["price"] == 30_000

    shown = (await client.get(url(campaign), headers=w.maker.headers)).json()
    assert [t["title"] for t in shown["tiers"]] == ["One sensor", "Two sensors"]
    assert shown["tiers"][0]["remaining"] is None

    removed = await client.delete(url(campaign, f"/tiers/{limited['id']}"), headers=w.maker.headers)
    assert removed.status_code == 204
    problem(await client.delete(url(campaign, f"/tiers/{limited['id']}"), headers=w.maker.headers), 404)


async def test_a_tier_names_every_bad_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await create_campaign(client, w.maker, w.space)
    bad = {
        "title": "Tier",
        "price": 0,
        "quantity_limit": 0,
        "items": [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-A", "quantity": 2}],
        "shipping": [{"country": "XX", "fee": 1}],
        "estimated_delivery": "2027-13",
    }
    response = await client.post(url(campaign, "/tiers"), json=bad, headers=w.maker.headers)
    assert fields_of(response) == {"price", "quantity_limit", "items", "shipping.0.country", "estimated_delivery"}
    twice = {
        "title": "Tier",
        "price": 100,
        "shipping": [{"country": "CN", "fee": 1}, {"country": "cn", "fee": 2}, {"country": "*", "fee": 0}],
        "estimated_delivery": "March",
        "items": [{"sku": "SKU-A", "quantity": 0}],
    }
    response = await client.post(url(campaign, "/tiers"), json=twice, headers=w.maker.headers)
    assert fields_of(response) == {"shipping", "estimated_delivery", "items.0.quantity"}
    negative = {
        "title": "Tier",
        "price": 100,
        "items": [{"sku": "SKU-A", "quantity": 1}],
        "shipping": [{"country": "*", "fee": -1}],
        "estimated_delivery": DELIVERY,
    }
    assert fields_of(await client.post(url(campaign, "/tiers"), json=negative, headers=w.maker.headers)) == {
        "shipping.0.fee"
    }


async def test_products_and_tiers_freeze_once_submitted(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space)
    product, tier = campaign["products"][0], campaign["tiers"][0]
    assert (await client.post(url(campaign, "/submit"), headers=w.maker.headers)).status_code == 200
    body = {"sku": "SKU-Z", "name": "Z", "weight_grams": 1, "batch_size": 1}
    problem(await client.post(url(campaign, "/products"), json=body, headers=w.maker.headers), 409, "not-draft")
    problem(
        await client.patch(url(campaign, f"/products/{product['id']}"), json={"name": "n"}, headers=w.maker.headers),
        409,
    )
    problem(await client.delete(url(campaign, f"/products/{product['id']}"), headers=w.maker.headers), 409)
    tier_body = {"title": "t", "price": 1, "items": [{"sku": "SKU-A", "quantity": 1}], "estimated_delivery": DELIVERY}
    problem(await client.post(url(campaign, "/tiers"), json=tier_body, headers=w.maker.headers), 409, "not-draft")
    problem(await client.patch(url(campaign, f"/tiers/{tier['id']}"), json={"price": 5}, headers=w.maker.headers), 409)
    problem(await client.delete(url(campaign, f"/tiers/{tier['id']}"), headers=w.maker.headers), 409)
    # The operator, who can see it now, is refused for who they are, whatever the status.
    problem(await client.post(url(campaign, "/tiers"), json=tier_body, headers=w.operator.headers), 403)


# Submit, review, launch


async def test_submitting_needs_a_tier_and_known_skus(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await create_campaign(client, w.maker, w.space)
    problem(await client.post(url(campaign, "/submit"), headers=w.maker.headers), 409, "no-tiers")
    await add_tier(client, w.maker, campaign, items=[{"sku": "SKU-GHOST", "quantity": 1}])
    missing = problem(await client.post(url(campaign, "/submit"), headers=w.maker.headers), 409, "unknown-sku")
    assert "SKU-GHOST" in missing["detail"]
    # Nothing of a refused submit sticks.
    assert (await client.get(url(campaign), headers=w.maker.headers)).json()["status"] == "draft"
    assert await mails(sessions, "campaign_submitted") == []
    await add_product(client, w.maker, campaign, sku="SKU-GHOST")
    submitted = await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"


async def test_a_tier_that_needs_more_than_one_batch_makes_is_refused_at_submit(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A pledge is never split across manufacturing batches, so a reward bigger than a batch could never be made."""
    w = await arrange(client, sessions)
    campaign = await create_campaign(client, w.maker, w.space)
    # 100 a batch with 5 % spares: at most 95 for backers (95 + 5 spares = 100).
    await add_product(client, w.maker, campaign, sku="BOARD", batch_size=100, overage_bps=500)
    tier = await add_tier(client, w.maker, campaign, items=[{"sku": "BOARD", "quantity": 96}])
    refused = problem(
        await client.post(url(campaign, "/submit"), headers=w.maker.headers), 409, "tier-larger-than-batch"
    )
    assert "96 × BOARD" in refused["detail"] and "at most 95" in refused["detail"]
    assert (await client.get(url(campaign), headers=w.maker.headers)).json()["status"] == "draft"

    changed = await client.patch(
        url(campaign, f"/tiers/{tier['id']}"),
        json={"items": [{"sku": "BOARD", "quantity": 95}]},
        headers=w.maker.headers,
    )
    assert changed.status_code == 200, changed.text
    submitted = await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    assert submitted.status_code == 200, submitted.text


async def test_submitting_tells_the_spaces_operators(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    second_operator = await make_operator(client, w.admin, w.space, "Second")
    campaign = await drafted_campaign(client, w.maker, w.space, title="Soil Sensor")
    problem(await client.post(url(campaign, "/submit")), 401)
    problem(await client.post(url(campaign, "/submit"), headers=w.stranger.headers), 404)
    problem(await client.post(url(campaign, "/submit"), headers=w.operator.headers), 403)
    submitted = await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "in_review"
    assert submitted.json()["actions"] == []
    problem(await client.post(url(campaign, "/submit"), headers=w.maker.headers), 409, "not-draft")

    sent = await mails(sessions, "campaign_submitted")
    assert sorted(m.to_address for m in sent) == sorted([w.operator.email, second_operator.email])
    assert sent[0].facts["campaign_title"] == "Soil Sensor"
    assert sent[0].facts["campaign_url"].startswith("http")


async def test_an_operator_approves_with_the_checklist_filled_in(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space)
    await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    as_operator = (await client.get(url(campaign), headers=w.operator.headers)).json()
    assert as_operator["actions"] == ["approve", "request_changes", "reject"]

    partial = {"decision": "approve", "notes": "", "checklist": {"prototype": True, "bill_of_materials": True}}
    response = await client.post(url(campaign, "/review"), json=partial, headers=w.operator.headers)
    assert fields_of(response) == {"checklist.manufacturing_quote", "checklist.certifications"}
    unexplained = {"decision": "approve", "notes": " ", "checklist": CHECKLIST_ALL_TRUE | {"certifications": False}}
    response = await client.post(url(campaign, "/review"), json=unexplained, headers=w.operator.headers)
    assert fields_of(response) == {"notes"}
    bad = {"decision": "maybe", "checklist": {"prototype": "yes", "extra": True}}
    response = await client.post(url(campaign, "/review"), json=bad, headers=w.operator.headers)
    assert fields_of(response) == {"decision", "checklist.prototype", "checklist.extra"}

    explained = unexplained | {"notes": "CCC is booked for March; approved on that plan."}
    approved = await client.post(url(campaign, "/review"), json=explained, headers=w.operator.headers)
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    assert body["review"]["decision"] == "approve"
    assert body["review"]["checklist"] == CHECKLIST_ALL_TRUE | {"certifications": False}
    assert body["review"]["reviewer_id"] == w.operator.id
    assert body["review"]["notes"].startswith("CCC")

    told = await mails(sessions, "campaign_approved")
    assert [m.to_address for m in told] == [w.maker.email]
    assert told[0].facts["checklist"]["certifications"] is False
    problem(
        await client.post(url(campaign, "/review"), json=explained, headers=w.operator.headers), 409, "not-in-review"
    )


async def test_who_may_review(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await arrange(client, sessions)
    other_space = await create_space(client, w.admin)
    outsider = await make_operator(client, w.admin, other_space, "Outsider")
    # A maker who also operates the sponsoring space still may not judge their own campaign.
    operator_maker = await make_operator(client, w.admin, w.space, "Both")
    own = await drafted_campaign(client, operator_maker, w.space)
    campaign = await drafted_campaign(client, w.maker, w.space)
    for c, maker in ((own, operator_maker), (campaign, w.maker)):
        assert (await client.post(url(c, "/submit"), headers=maker.headers)).status_code == 200
    decision = {"decision": "approve", "notes": "", "checklist": CHECKLIST_ALL_TRUE}

    problem(await client.post(url(own, "/review"), json=decision, headers=operator_maker.headers), 403, "own-campaign")
    problem(await client.post(url(campaign, "/review"), json=decision), 401)
    problem(await client.post(url(campaign, "/review"), json=decision, headers=w.maker.headers), 403, "own-campaign")
    problem(await client.post(url(campaign, "/review"), json=decision, headers=w.stranger.headers), 404)
    problem(await client.post(url(campaign, "/review"), json=decision, headers=outsider.headers), 404)
    problem(await client.post(url(campaign, "/review"), json=decision, headers=w.admin.headers), 403)
    approved = await client.post(url(own, "/review"), json=decision, headers=w.operator.headers)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"


async def test_changes_requested_send_it_back_to_draft_and_every_review_is_kept(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space)
    await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    changes = {"decision": "request_changes", "notes": "Show us the BOM costs.", "checklist": {"prototype": True}}
    sent_back = await client.post(url(campaign, "/review"), json=changes, headers=w.operator.headers)
    assert sent_back.status_code == 200 and sent_back.json()["status"] == "draft"
    assert sent_back.json()["review"]["checklist"]["bill_of_materials"] is None

    fixed = await client.patch(url(campaign), json={"summary": "Now with costs."}, headers=w.maker.headers)
    assert fixed.status_code == 200
    assert (await client.post(url(campaign, "/submit"), headers=w.maker.headers)).status_code == 200
    await approve_campaign(client, w.operator, campaign)

    history = await client.get(url(campaign, "/reviews"), headers=w.maker.headers)
    assert history.status_code == 200
    assert [r["decision"] for r in history.json()["items"]] == ["request_changes", "approve"]
    for insider in (w.operator, w.admin):
        assert (await client.get(url(campaign, "/reviews"), headers=insider.headers)).status_code == 200
    problem(await client.get(url(campaign, "/reviews"), headers=w.stranger.headers), 404)
    problem(await client.get(url(campaign, "/reviews")), 401)
    assert [m.facts["notes"] for m in await mails(sessions, "campaign_changes_requested")] == ["Show us the BOM costs."]


async def test_a_rejected_campaign_stays_rejected(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space)
    problem(
        await client.post(url(campaign, "/review"), json={"decision": "reject"}, headers=w.operator.headers),
        409,
        "not-in-review",
    )
    await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    rejected = await client.post(
        url(campaign, "/review"), json={"decision": "reject", "notes": "No prototype."}, headers=w.operator.headers
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert len(await mails(sessions, "campaign_rejected")) == 1
    problem(await client.post(url(campaign, "/submit"), headers=w.maker.headers), 409, "not-draft")
    problem(await client.post(url(campaign, "/launch"), headers=w.maker.headers), 409, "not-approved")
    problem(await client.patch(url(campaign), json={"title": "again"}, headers=w.maker.headers), 409)
    problem(await client.get(url(campaign)), 404)


async def test_launching_needs_an_approval_and_sets_the_deadline(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space, duration_days=7)
    problem(await client.post(url(campaign, "/launch"), headers=w.maker.headers), 409, "not-approved")
    await client.post(url(campaign, "/submit"), headers=w.maker.headers)
    problem(await client.post(url(campaign, "/launch"), headers=w.maker.headers), 409, "not-approved")
    await approve_campaign(client, w.operator, campaign)
    problem(await client.post(url(campaign, "/launch")), 401)
    problem(await client.post(url(campaign, "/launch"), headers=w.operator.headers), 403)
    problem(await client.post(url(campaign, "/launch"), headers=w.stranger.headers), 404)

    launched = await client.post(url(campaign, "/launch"), headers=w.maker.headers)
    assert launched.status_code == 200, launched.text
    body = launched.json()
    assert body["status"] == "live"
    launched_at = datetime.fromisoformat(body["launched_at"])
    ends_at = datetime.fromisoformat(body["ends_at"])
    assert body["launched_at"].endswith("Z")
    assert ends_at - launched_at == timedelta(seconds=7 * settings.day_seconds)
    assert abs(datetime.now(launched_at.tzinfo) - launched_at) < timedelta(minutes=1)
    problem(await client.post(url(campaign, "/launch"), headers=w.maker.headers), 409, "not-approved")
    told = await mails(sessions, "campaign_launched")
    assert [m.to_address for m in told] == [w.maker.email]
    assert (await client.get(url(campaign))).json()["status"] == "live"


async def test_launched_campaign_helper_gives_a_live_campaign_with_two_tiers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions, currency="JPY", goal=300_000)
    assert campaign["status"] == "live" and campaign["currency"] == "JPY" and campaign["maker_id"] == maker.id
    early, pair = campaign["tiers"]
    assert (early["quantity_limit"], early["remaining"], pair["quantity_limit"], pair["remaining"]) == (
        10,
        10,
        None,
        None,
    )
    assert {s["country"] for s in early["shipping"]} == {"CN", "*"}
    assert campaign["review"]["reviewer_id"] == operator.id


# Seeing campaigns


async def test_drafts_are_seen_only_by_their_maker_the_spaces_operators_and_admins(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    outsider = await make_operator(client, w.admin, await create_space(client, w.admin), "Outsider")
    campaign = await drafted_campaign(client, w.maker, w.space)
    for insider in (w.maker, w.operator, w.admin):
        assert (await client.get(url(campaign), headers=insider.headers)).status_code == 200
    for stranger in (w.stranger, outsider):
        problem(await client.get(url(campaign), headers=stranger.headers), 404)
    problem(await client.get(url(campaign)), 404)
    problem(await client.get(f"/api/v1/campaigns/{campaign['slug']}"), 404)
    problem(await client.get("/api/v1/campaigns/no-such-campaign"), 404)
    problem(await client.get(url(campaign), headers={"Authorization": "Bearer wrong"}), 401)


async def test_unit_costs_are_shown_only_to_insiders(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    public = (await client.get(url(campaign))).json()
    assert public["products"][0]["sku"] == "SKU-A" and public["products"][0]["unit_cost"] is None
    assert public["actions"] == []
    for insider in (maker, operator):
        assert (await client.get(url(campaign), headers=insider.headers)).json()["products"][0]["unit_cost"] == 3_000


async def test_the_list_shows_what_the_caller_may_see(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    live, _maker, _operator = await launched_campaign(client, sessions, space=w.space, operator=w.operator)
    draft = await create_campaign(client, w.maker, w.space)
    elsewhere = await create_campaign(client, w.stranger, await create_space(client, w.admin))

    def ids(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {c["id"] for c in response.json()["items"]}

    assert ids(await client.get("/api/v1/campaigns")) == {live["id"]}
    assert ids(await client.get("/api/v1/campaigns", headers=w.maker.headers)) == {live["id"], draft["id"]}
    assert ids(await client.get("/api/v1/campaigns", headers=w.operator.headers)) == {live["id"], draft["id"]}
    assert ids(await client.get("/api/v1/campaigns", headers=w.admin.headers)) == {
        live["id"],
        draft["id"],
        elsewhere["id"],
    }
    assert ids(await client.get("/api/v1/campaigns?status=draft")) == set()
    assert ids(await client.get("/api/v1/campaigns?status=draft", headers=w.stranger.headers)) == {elsewhere["id"]}
    assert ids(await client.get("/api/v1/campaigns?status=live", headers=w.maker.headers)) == {live["id"]}
    assert ids(await client.get(f"/api/v1/campaigns?space_id={w.space['id']}", headers=w.admin.headers)) == {
        live["id"],
        draft["id"],
    }
    assert ids(await client.get(f"/api/v1/campaigns?maker_id={w.maker.id}", headers=w.maker.headers)) == {draft["id"]}
    assert fields_of(await client.get("/api/v1/campaigns?status=asleep")) == {"status"}
    assert fields_of(await client.get("/api/v1/campaigns?space_id=nope&limit=0")) == {"space_id", "limit"}
    assert fields_of(await client.get("/api/v1/campaigns?cursor=garbage")) == {"cursor"}


async def test_searching_matches_titles_and_summaries_in_english_and_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    lamp = await create_campaign(client, w.maker, w.space, title="Desk Lamp", summary="A warm light for late work.")
    pot = await create_campaign(client, w.maker, w.space, title="智能花盆", summary="会自己浇水的花盆")
    kettle = await create_campaign(client, w.maker, w.space, title="Kettle", summary="烧水很快的 kettle, 100% steel")

    async def found(q: str) -> set[str]:
        response = await client.get("/api/v1/campaigns", params={"q": q}, headers=w.maker.headers)
        assert response.status_code == 200, response.text
        return {c["id"] for c in response.json()["items"]}

    assert await found("lamp") == {lamp["id"]}
    assert await found("WARM LIGHT") == {lamp["id"]}
    assert await found("花盆") == {pot["id"]}
    assert await found("浇水") == {pot["id"]}
    assert await found("烧水") == {kettle["id"]}
    assert await found("kettle") == {kettle["id"]}
    assert await found("100%") == {kettle["id"]}
    assert await found("%") == {kettle["id"]}
    assert await found("_") == set()
    assert await found("bicycle") == set()
    assert await found("") == {lamp["id"], pot["id"], kettle["id"]}


async def test_the_list_pages_with_a_cursor(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    made = [await create_campaign(client, w.maker, w.space) for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/campaigns", params=params, headers=w.maker.headers)).json()
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [c["id"] for c in reversed(made)]  # newest first, each once


async def test_pledged_and_backers_count_only_live_pledges(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    statuses = ["active", "collected", "errored", "cancelled", "requires_payment_method", "dropped"]
    async with sessions.begin() as session:
        for n, status in enumerate(statuses):
            backer = User(email=f"backer{n}@example.com", name=f"B{n}", password_hash="x")
            session.add(backer)
            await session.flush()
            session.add(
                Pledge(
                    campaign_id=uuid.UUID(campaign["id"]),
                    backer_id=backer.id,
                    tier_id=None,
                    status=status,
                    amount=1_000 * (n + 1),
                    currency="CNY",
                )
            )
    shown = (await client.get(url(campaign))).json()
    assert (shown["pledged"], shown["backers"]) == (1_000 + 2_000 + 3_000, 3)
    listed = (await client.get("/api/v1/campaigns")).json()["items"][0]
    assert (listed["pledged"], listed["backers"]) == (6_000, 3)


async def test_the_campaign_page_costs_the_same_queries_whatever_the_number_of_tiers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    few = await drafted_campaign(client, w.maker, w.space)
    many = await drafted_campaign(client, w.maker, w.space)
    for n in range(8):
        await add_tier(client, w.maker, many, title=f"Tier {n}", quantity_limit=n + 1)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", count)
    try:
        await client.get(url(few), headers=w.maker.headers)
        for_few = len(statements)
        statements.clear()
        await client.get(url(many), headers=w.maker.headers)
        for_many = len(statements)
        statements.clear()
        await client.get("/api/v1/campaigns", headers=w.maker.headers)
        for_list = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert for_few == for_many <= 12
    assert for_list <= 12


async def test_the_same_idempotency_key_drafts_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    body = {
        "title": "Once",
        "summary": "s",
        "currency": "CNY",
        "goal": 1,
        "space_id": w.space["id"],
        "duration_days": 1,
    }
    headers = w.maker.headers | {"Idempotency-Key": "draft-once"}
    first = await client.post("/api/v1/campaigns", json=body, headers=headers)
    again = await client.post("/api/v1/campaigns", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = (await client.get("/api/v1/campaigns", headers=w.maker.headers)).json()["items"]
    assert len(listed) == 1


async def test_a_tier_keeps_its_remaining_column_for_the_pledging_rules(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions, limited_quantity=3)
    async with sessions() as session:
        tier = await session.get_one(Tier, uuid.UUID(campaign["tiers"][0]["id"]))
    assert (tier.quantity_limit, tier.remaining) == (3, 3)


def test_the_api_documents_every_campaign_operation() -> None:
    from service.api import openapi_document
    from service.app import create_app  # noqa: F401 - imports every endpoint module
    from service.routes import api

    paths = openapi_document(api, title="t", version="1")["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/campaigns"])
    assert {"get", "patch"} <= set(paths["/api/v1/campaigns/{campaign_id}"])
    assert {"patch", "delete"} <= set(paths["/api/v1/campaigns/{campaign_id}/products/{product_id}"])
    assert {"patch", "delete"} <= set(paths["/api/v1/campaigns/{campaign_id}/tiers/{tier_id}"])
    for tail in ("submit", "review", "launch", "products", "tiers", "images", "updates"):
        assert "post" in paths[f"/api/v1/campaigns/{{campaign_id}}/{tail}"], tail
    upload = paths["/api/v1/campaigns/{campaign_id}/images"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_every_campaign_mail_renders(locale: str) -> None:
    from service.mail import mail_templates, render_mail

    campaign = {
        "campaign_id": str(uuid.uuid4()),
        "campaign_title": "Soil <Sensor>",
        "campaign_url": "http://127.0.0.1:8000/campaigns/soil-sensor",
    }
    review = {"notes": "Looks good.", "checklist": CHECKLIST_ALL_TRUE | {"certifications": False}}
    facts: dict[str, dict[str, Any]] = {
        "campaign_submitted": campaign | {"space_name": "Chaihuo", "maker_name": "Ada"},
        "campaign_approved": campaign | review,
        "campaign_changes_requested": campaign | review,
        "campaign_rejected": campaign | {"notes": "", "checklist": {}},
        "campaign_launched": campaign | {"ends_at": "2026-12-01T12:00:00+00:00"},
        "campaign_update": campaign
        | {
            "update_id": str(uuid.uuid4()),
            "update_title": "First batch",
            "update_body": "It **works**.",
            "update_body_html": "<p>It <strong>works</strong>.</p>",
            "visibility": "backers",
        },
    }
    for kind, values in facts.items():
        mail = Mail(kind=kind, to_address="ada@example.com", locale=locale, facts=values)
        rendered = render_mail(mail_templates(dev=False), mail, base_url="http://127.0.0.1:8000")
        assert "Soil" in rendered.subject, kind
        assert "http://127.0.0.1:8000/campaigns/soil-sensor" in rendered.text, kind
        assert "Soil &lt;Sensor&gt;" in rendered.html, kind
        if locale == "zh_CN":
            assert "Kindling" in rendered.html and any("\u4e00" <= ch <= "\u9fff" for ch in rendered.text), kind
    update = Mail(kind="campaign_update", to_address="a@example.com", locale=locale, facts=facts["campaign_update"])
    assert "<strong>works</strong>" in render_mail(mail_templates(dev=False), update, base_url="http://x").html


async def test_odd_input_is_never_a_server_error(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await arrange(client, sessions)
    campaign = await drafted_campaign(client, w.maker, w.space)
    body = {
        "title": "a\x00b",
        "summary": "s",
        "currency": "CNY",
        "goal": 1,
        "space_id": w.space["id"],
        "duration_days": 1,
    }
    assert fields_of(await client.post("/api/v1/campaigns", json=body, headers=w.maker.headers)) == {"title"}
    assert fields_of(await client.get("/api/v1/campaigns", params={"q": "soil\x00"})) == {"q"}
    assert fields_of(await client.patch(url(campaign), json={"description": "\x00"}, headers=w.maker.headers)) == {
        "description"
    }
    for path in ("/api/v1/campaigns/a%00b", "/api/v1/campaigns/" + "x" * 5000, "/api/v1/campaigns/%F0%9F%94%A5"):
        problem(await client.get(path), 404)
    problem(await client.patch(url(campaign, "/tiers/%00"), json={}, headers=w.maker.headers), 404)
    problem(await client.post(url(campaign, "/tiers"), content=b"[]", headers=w.maker.headers), 415)
    assert (await client.post(url(campaign, "/tiers"), json=[], headers=w.maker.headers)).status_code == 422
    huge = {"title": "t", "price": 10**30, "quantity_limit": 10**12, "items": [], "estimated_delivery": DELIVERY}
    assert fields_of(await client.post(url(campaign, "/tiers"), json=huge, headers=w.maker.headers)) == {
        "price",
        "quantity_limit",
        "items",
    }
