"""The backer's side at pledge time: a colour for the tier's lamp, add-ons beside it, shipping from the contents, and
limited variants and add-ons taken with the tier's slot and given back exactly once."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge
from campaigns.pledges.contents import pledge_contents
from campaigns.pledges.lifecycle import OPEN_PLEDGE_STATUSES
from campaigns.pledges.service import expire_unconfirmed_pledges, give_back_unconfirmed_pledge
from campaigns.pledges.units import give_back_pledge_units
from fulfillment.models import Batch
from fulfillment.service import plan_campaign
from fulfillment.shipments import shipping_list_csv
from payments.closing import cancel_pledges
from tests.extras_helpers import lamp_campaign, units_left
from tests.factories import address
from tests.helpers import many_backers, sign_up


def bad_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["field"] for error in response.json()["errors"]}


def lines(pledge: dict[str, Any]) -> list[tuple[str, Any, int, int, str | None]]:
    return [(i["kind"], i["variant"], i["quantity"], i["unit_amount"], i["sku"]) for i in pledge["items"]]


async def test_a_backer_picks_a_colour_and_spare_cables_pays_their_shipping_and_changes_and_cancels(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, black_limit=5, cable_limit=5, tier_limit=10)
    backer = await sign_up(stripe_client, "Backer")

    made = await stripe_client.post(lamp.pledges_url(), json=lamp.body("black", cables=2), headers=backer.headers)
    assert made.status_code == 201, made.text
    pledge = made.json()
    # 199.00 + 2 × 29.00, shipped to CN: the tier's 10.00 and 5.00 for each cable.
    assert lines(pledge) == [
        ("tier", {lamp.lamp: {"colour": "black"}}, 1, 19_900, None),
        ("addon", {}, 2, 2_900, "CABLE"),
        ("shipping", {}, 1, 2_000, None),
    ]
    assert pledge["amount"] == 19_900 + 5_800 + 2_000 and pledge["shipping_fee"] == 2_000
    assert pledge["items"][1]["add_on_id"] == lamp.cable
    assert await units_left(sessions, lamp) == {"black": 4, "cable": 3, "tier": 9}

    # White with one cable: the black lamp and a cable come back, nothing of white is counted (it is unlimited).
    changed = await stripe_client.patch(
        f"/api/v1/pledges/{pledge['id']}", json=lamp.body("white", cables=1), headers=backer.headers
    )
    assert changed.status_code == 200, changed.text
    assert lines(changed.json())[:2] == [
        ("tier", {lamp.lamp: {"colour": "white"}}, 1, 19_900, None),
        ("addon", {}, 1, 2_900, "CABLE"),
    ]
    assert changed.json()["amount"] == 19_900 + 2_900 + 1_500
    assert await units_left(sessions, lamp) == {"black": 5, "cable": 4, "tier": 9}

    # Cancelled: everything comes back once, and a second cancel gives back nothing more.
    cancelled = await stripe_client.delete(f"/api/v1/pledges/{pledge['id']}", headers=backer.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await stripe_client.delete(f"/api/v1/pledges/{pledge['id']}", headers=backer.headers)
    assert again.status_code == 409
    assert await units_left(sessions, lamp) == {"black": 5, "cable": 5, "tier": 10}

    # A poster alone (it ships alone and has no fee of its own) is a pledge without a tier.
    poster = await stripe_client.post(
        lamp.pledges_url(),
        json={"tier_id": None, "shipping_country": "DE", "add_ons": [{"add_on_id": lamp.poster, "quantity": 3}]},
        headers=backer.headers,
    )
    assert poster.status_code == 201, poster.text
    assert lines(poster.json()) == [("addon", {}, 3, 1_500, "POSTER")] and poster.json()["amount"] == 4_500

    # Then the lamp tier in black with a spare lamp, also black: both lamps are black units.
    spare = [{"add_on_id": lamp.spare_lamp, "variant": {"colour": "black"}}]
    both = await stripe_client.patch(
        f"/api/v1/pledges/{poster.json()['id']}", json=lamp.body("black", add_ons=spare), headers=backer.headers
    )
    assert both.status_code == 200, both.text
    assert lines(both.json())[1] == ("addon", {"colour": "black"}, 1, 9_900, "LAMP-BLC")
    assert await units_left(sessions, lamp) == {"black": 3, "cable": 5, "tier": 9}
    unchosen = [{"add_on_id": lamp.spare_lamp}]
    assert bad_fields(
        await stripe_client.patch(
            f"/api/v1/pledges/{poster.json()['id']}", json=lamp.body("black", add_ons=unchosen), headers=backer.headers
        )
    ) == {"add_ons.0.variant"}
    assert await units_left(sessions, lamp) == {"black": 3, "cable": 5, "tier": 9}

    # The OpenAPI document describes the choice and the lines.
    document = (await stripe_client.get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert {"variants", "add_ons"} <= set(schemas["PledgeCreate"]["properties"])
    assert set(schemas["AddOnChoiceIn"]["properties"]) == {"add_on_id", "quantity", "variant"}
    assert "add_on_id" in schemas["LineItemOut"]["properties"]
    pledges_path = document["paths"]["/api/v1/campaigns/{campaign_id}/pledges"]["post"]
    assert {"201", "409", "422"} <= set(pledges_path["responses"])


async def test_a_choice_the_catalogue_does_not_allow_is_a_422_naming_the_field_and_takes_nothing(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, black_limit=5, cable_limit=5, tier_limit=10)
    other = await lamp_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Backer")
    url = lamp.pledges_url()

    async def refused(body: dict[str, Any]) -> set[str]:
        return bad_fields(await stripe_client.post(url, json=body, headers=backer.headers))

    assert await refused(lamp.body(colour=None)) == {f"variants.{lamp.lamp}"}
    assert await refused(lamp.body("green")) == {f"variants.{lamp.lamp}"}
    assert await refused(
        lamp.body() | {"variants": {lamp.lamp: {"colour": "black"}, other.lamp: {"colour": "black"}}}
    ) == {f"variants.{other.lamp}"}
    assert await refused(lamp.body(add_ons=[{"add_on_id": other.cable}])) == {"add_ons.0.add_on_id"}
    assert await refused(lamp.body(cables=0, add_ons=[{"add_on_id": lamp.cable, "quantity": 0}])) == {
        "add_ons.0.quantity"
    }
    assert await refused(lamp.body(cables=21)) == {"add_ons.0.quantity"}
    poster_twice = [{"add_on_id": lamp.poster}, {"add_on_id": lamp.poster, "quantity": 2}]
    assert await refused(lamp.body(add_ons=poster_twice)) == {"add_ons.1.add_on_id"}
    assert await refused(lamp.body(add_ons=[{"add_on_id": lamp.poster, "variant": {"colour": "black"}}])) == {
        "add_ons.0.variant"
    }
    # The cable comes only with the lamp tier, never alone, and is shipped only to China.
    alone = {"tier_id": None, "add_ons": [{"add_on_id": lamp.cable}], "shipping_country": "CN"}
    assert await refused(alone) == {"add_ons.0.add_on_id"}
    assert await refused(lamp.body(cables=1, country="US")) == {"shipping_country"}
    assert await refused(lamp.body(cables=1, shipping_country=None)) == {"shipping_country"}

    assert await units_left(sessions, lamp) == {"black": 5, "cable": 5, "tier": 10}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Pledge)) == 0

    # A bonus alone contains nothing: no country, no shipping line.
    bonus = await stripe_client.post(url, json={"tier_id": None, "bonus": 2_000}, headers=backer.headers)
    assert bonus.status_code == 201, bonus.text
    assert lines(bonus.json()) == [("bonus", {}, 1, 2_000, None)]


async def test_the_last_black_lamp_sold_leaves_the_next_pledge_a_409_and_takes_nothing_of_it(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, black_limit=1, cable_limit=1, tier_limit=10)
    first, second, third = await many_backers(sessions, 3)
    url = lamp.pledges_url()
    assert (await stripe_client.post(url, json=lamp.body("black"), headers=first.headers)).status_code == 201

    sold_out = await stripe_client.post(url, json=lamp.body("black", cables=1), headers=second.headers)
    assert sold_out.status_code == 409 and sold_out.json()["type"] == "sold-out", sold_out.text
    # Neither the tier's slot nor the cable was taken for the refused pledge.
    assert await units_left(sessions, lamp) == {"black": 0, "cable": 1, "tier": 9}

    white = await stripe_client.post(url, json=lamp.body("white", cables=1), headers=second.headers)
    assert white.status_code == 201, white.text
    no_cable = await stripe_client.post(url, json=lamp.body("white", cables=1), headers=third.headers)
    assert no_cable.status_code == 409 and no_cable.json()["type"] == "sold-out"
    assert await units_left(sessions, lamp) == {"black": 0, "cable": 0, "tier": 8}
    # Changing to black now is refused and leaves the white lamp and the cable as they were.
    to_black = await stripe_client.patch(
        f"/api/v1/pledges/{white.json()['id']}", json=lamp.body("black", cables=1), headers=second.headers
    )
    assert to_black.status_code == 409 and to_black.json()["type"] == "sold-out"
    kept = (await stripe_client.get(f"/api/v1/pledges/{white.json()['id']}", headers=second.headers)).json()
    assert lines(kept)[0] == ("tier", {lamp.lamp: {"colour": "white"}}, 1, 19_900, None)
    assert await units_left(sessions, lamp) == {"black": 0, "cable": 0, "tier": 8}

    # A pledge whose card set-up never started, and one whose card never came, give their units back once.
    async with sessions() as session, session.begin():
        await give_back_unconfirmed_pledge(session, white.json()["id"])
        await give_back_unconfirmed_pledge(session, white.json()["id"])
    assert await units_left(sessions, lamp) == {"black": 0, "cable": 1, "tier": 9}
    async with sessions() as session, session.begin():
        assert await expire_unconfirmed_pledges(session, hold_seconds=0) == 1
        assert await expire_unconfirmed_pledges(session, hold_seconds=0) == 0
    assert await units_left(sessions, lamp) == {"black": 1, "cable": 1, "tier": 10}

    # A campaign that fails cancels its pledges: their units come back with their slots, once.
    again = await stripe_client.post(url, json=lamp.body("black", cables=1), headers=third.headers)
    assert again.status_code == 201, again.text
    assert await units_left(sessions, lamp) == {"black": 0, "cable": 0, "tier": 9}
    async with sessions() as session, session.begin():
        campaign = await session.get_one(Campaign, uuid.UUID(lamp.id))
        assert len(await cancel_pledges(session, campaign, OPEN_PLEDGE_STATUSES)) == 1
        assert await cancel_pledges(session, campaign, OPEN_PLEDGE_STATUSES) == []
    assert await units_left(sessions, lamp) == {"black": 1, "cable": 1, "tier": 10}
    # A campaign of 100,000 pledges gives back in one statement, past the 32,767 parameters one may have.
    async with sessions() as session, session.begin():
        await give_back_pledge_units(session, [uuid.uuid4() for _ in range(40_000)])


async def test_many_backers_at_once_get_exactly_the_limited_lamps_and_cables_and_no_more(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    limit = 4
    lamp = await lamp_campaign(stripe_client, sessions, black_limit=limit, cable_limit=limit, tier_limit=100)
    backers = await many_backers(sessions, 24)
    url = lamp.pledges_url()
    bodies = [lamp.body("black") for _ in range(12)] + [lamp.body("white", cables=1) for _ in range(12)]
    answers = await asyncio.gather(
        *(
            stripe_client.post(url, json=body, headers=backer.headers)
            for backer, body in zip(backers, bodies, strict=True)
        )
    )
    statuses = [answer.status_code for answer in answers]
    assert statuses[:12].count(201) == limit and statuses[12:].count(201) == limit, statuses
    assert all(answer.json()["type"] == "sold-out" for answer in answers if answer.status_code != 201)
    assert await units_left(sessions, lamp) == {"black": 0, "cable": 0, "tier": 100 - 2 * limit}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Pledge)) == 2 * limit


async def test_the_batch_planner_and_the_shipping_list_count_the_chosen_colours_and_the_add_ons(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions)
    backers = await many_backers(sessions, 3)
    bodies = [
        lamp.body("black", cables=2),
        lamp.body("white"),
        lamp.body("white", add_ons=[{"add_on_id": lamp.cable}, {"add_on_id": lamp.poster}]),
    ]
    ids = []
    for backer, body in zip(backers, bodies, strict=True):
        made = await stripe_client.post(lamp.pledges_url(), json=body, headers=backer.headers)
        assert made.status_code == 201, made.text
        ids.append(uuid.UUID(made.json()["id"]))
    # Funded and charged (the close is tested elsewhere), each with an address.
    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.id == lamp.id).values(status="funded"))
        await session.execute(update(Pledge).values(status="collected", address=address("CN")))

    async with sessions() as session:
        contents = await pledge_contents(session, ids)
    assert contents == {
        ids[0]: {"LAMP-BLC": 1, "CABLE": 2},
        ids[1]: {"LAMP-WHT": 1},
        ids[2]: {"LAMP-WHT": 1, "CABLE": 1, "POSTER": 1},
    }

    async with sessions.begin() as session:
        await plan_campaign(session, uuid.UUID(lamp.id))
    async with sessions() as session:
        (batch,) = await session.scalars(select(Batch).where(Batch.campaign_id == lamp.id))
        listed = "".join([part async for part in shipping_list_csv(session, batch.id)])
    assert batch.units == {"LAMP-BLC": 1, "LAMP-WHT": 2, "CABLE": 3, "POSTER": 1}
    rows = {row["pledge_id"]: row for row in csv.DictReader(io.StringIO(listed, newline=""))}
    assert rows[str(ids[0])]["items"] == "CABLE x2; LAMP-BLC x1"
    assert rows[str(ids[2])]["items"] == "CABLE x1; LAMP-WHT x1; POSTER x1"
    # The lamp weighs 120 g, a cable 40 g and the poster 90 g, whichever colour the lamp is.
    assert [rows[str(i)]["weight_grams"] for i in ids] == ["200", "120", "250"]
