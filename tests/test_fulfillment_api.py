from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail
from fulfillment.models import Shipment
from fulfillment.service import PLAN_CAMPAIGN, plan_campaign
from fulfillment.shipments import shipment_of
from fulfillment.shipping_csv import COLUMNS
from payments.milestones import create_milestones
from service.broker import ListSender
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import LOCK_AT, SHENZHEN, Actor, create_space, make_admin, sign_up

# The same fee to both: an address moved between them moves no money (tests/test_address_reprice.py prices it).
CN_AND_US = ({"country": "CN", "fee": 0}, {"country": "US", "fee": 0})
CSV_HEADERS = {"Content-Type": "text/csv"}


@dataclass
class Shop:
    """A funded campaign with a reward of one board and one case, and three backers who pledged for it."""

    campaign_id: uuid.UUID
    kit_id: uuid.UUID
    maker: Actor
    operator: Actor
    admin: Actor
    stranger: Actor
    backers: list[Actor]
    pledge_ids: list[str]

    @property
    def base(self) -> str:
        return f"/api/v1/campaigns/{self.campaign_id}"


async def open_shop(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], *, status: str = "funded", backers: int = 3
) -> Shop:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await sign_up(client, "Operator")
    added = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert added.status_code == 201, added.text
    maker = await sign_up(client, "Maker")
    stranger = await sign_up(client, "Stranger")
    people = [await sign_up(client, f"Backer{n}") for n in range(backers)]
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, space_id=space["id"], status=status)
        await insert_product(session, campaign, "BOARD", batch_size=100, overage_bps=500, weight_grams=120)
        await insert_product(session, campaign, "CASE", batch_size=60, weight_grams=80)
        kit = await insert_tier(session, campaign, {"BOARD": 1, "CASE": 1}, shipping=CN_AND_US)
        pledges = [await insert_pledge(session, campaign, kit, backer_id=p.id) for p in people]
        if status in ("funded", "fulfilling"):
            await create_milestones(session, campaign)
        return Shop(campaign.id, kit.id, maker, operator, admin, stranger, people, [str(p.id) for p in pledges])


async def plan(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID) -> None:
    """What the "fulfillment.plan" job does when the campaign is funded."""
    async with sessions.begin() as session:
        await plan_campaign(session, campaign_id)


async def batches_of(client: httpx.AsyncClient, shop: Shop) -> list[dict[str, Any]]:
    response = await client.get(f"{shop.base}/batches", headers=shop.maker.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def give_address(client: httpx.AsyncClient, shop: Shop, n: int, **fields: str) -> httpx.Response:
    return await client.put(
        f"/api/v1/pledges/{shop.pledge_ids[n]}/address", json=address(**fields), headers=shop.backers[n].headers
    )


async def confirm_first_batch(client: httpx.AsyncClient, shop: Shop) -> dict[str, Any]:
    [batch] = await batches_of(client, shop)
    confirmed = await client.post(f"{shop.base}/batches/{batch['id']}/confirm", headers=shop.maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    found: dict[str, Any] = confirmed.json()
    return found


async def shipping_list(client: httpx.AsyncClient, shop: Shop, batch_id: str) -> list[dict[str, str]]:
    response = await client.get(f"{shop.base}/batches/{batch_id}/shipping-list.csv", headers=shop.maker.headers)
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


async def mails_of(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Mail]:
    async with sessions() as session:
        return list(await session.scalars(select(Mail).where(Mail.kind == kind).order_by(Mail.created_at, Mail.id)))


async def campaign_status(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> str:
    async with sessions() as session:
        return (await session.get_one(Campaign, shop.campaign_id)).status


def upload(*rows: tuple[str, str, str]) -> str:
    return "pledge_id,carrier,tracking_number\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)


# Batches


async def test_the_maker_and_the_spaces_operators_see_the_batches(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    await plan(sessions, shop.campaign_id)

    [batch] = await batches_of(client, shop)

    assert batch["number"] == 1 and batch["status"] == "planned" and batch["pledges"] == 3
    assert batch["items"] == [{"sku": "BOARD", "quantity": 4}, {"sku": "CASE", "quantity": 3}]
    assert batch["spares"] == [{"sku": "BOARD", "quantity": 1}]
    for viewer in (shop.operator, shop.admin):
        seen = await client.get(f"{shop.base}/batches", headers=viewer.headers)
        assert seen.status_code == 200 and seen.json() == [batch]
    stranger = await client.get(f"{shop.base}/batches", headers=shop.stranger.headers)
    assert stranger.status_code == 403
    assert (await client.get(f"{shop.base}/batches")).status_code == 401
    unknown = await client.get(f"/api/v1/campaigns/{uuid.uuid4()}/batches", headers=shop.maker.headers)
    assert unknown.status_code == 404


async def test_batches_are_ready_only_once_the_campaign_is_funded(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live = await open_shop(client, sessions, status="live", backers=0)
    response = await client.get(f"{live.base}/batches", headers=live.maker.headers)
    assert response.status_code == 409 and response.json()["type"] == "not-funded"

    draft = await open_shop(client, sessions, status="draft", backers=0)
    assert (await client.get(f"{draft.base}/batches", headers=draft.stranger.headers)).status_code == 404


async def test_confirming_the_first_batch_starts_fulfilment_and_unlocks_the_second_milestone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)
    milestones = (await client.get(f"{shop.base}/milestones", headers=shop.maker.headers)).json()
    second = next(m for m in milestones if m["unlocks_on"] == "first_batch_confirmed")
    early = await client.post(f"{shop.base}/milestones/{second['id']}/request", headers=shop.maker.headers)
    assert early.status_code == 409 and early.json()["type"] == "milestone-not-due"
    confirm = f"{shop.base}/batches/{batch['id']}/confirm"
    for refused, status in ((shop.operator, 403), (shop.stranger, 403), (shop.admin, 403)):
        assert (await client.post(confirm, headers=refused.headers)).status_code == status
    assert (await client.post(confirm)).status_code == 401
    unknown = await client.post(f"{shop.base}/batches/{uuid.uuid4()}/confirm", headers=shop.maker.headers)
    assert unknown.status_code == 404

    confirmed = await client.post(confirm, headers=shop.maker.headers)

    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["id"] == batch["id"]
    assert await campaign_status(sessions, shop) == "fulfilling"
    requested = await client.post(f"{shop.base}/milestones/{second['id']}/request", headers=shop.maker.headers)
    assert requested.status_code == 200, requested.text
    again = await client.post(confirm, headers=shop.maker.headers)
    assert again.status_code == 409 and again.json()["type"] == "batch-not-planned"


async def test_a_confirmed_batch_goes_into_production(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)
    start = f"{shop.base}/batches/{batch['id']}/start-production"
    too_early = await client.post(start, headers=shop.maker.headers)
    assert too_early.status_code == 409 and too_early.json()["type"] == "batch-not-confirmed"
    await confirm_first_batch(client, shop)
    assert (await client.post(start, headers=shop.operator.headers)).status_code == 403
    assert (await client.post(start)).status_code == 401

    started = await client.post(start, headers=shop.maker.headers)

    assert started.status_code == 200 and started.json()["status"] == "in_production"
    assert started.json()["production_started_at"] is not None


# Addresses


async def test_a_backer_gives_the_address_their_reward_ships_to(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)

    given = await give_address(client, shop, 0)

    assert given.status_code == 200, given.text
    assert given.json()["address"] == address() and given.json()["shipment"] is None
    changed = await give_address(client, shop, 0, country="US", name="Ada Lovelace", city="Boston", region="MA")
    assert changed.status_code == 200 and changed.json()["address"]["city"] == "Boston"


async def test_an_address_in_a_country_the_tier_does_not_ship_to_is_refused_naming_country(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)

    refused = await give_address(client, shop, 0, country="FR")

    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["country"]
    assert "FR" in refused.json()["errors"][0]["message"]
    incomplete = await client.put(
        f"/api/v1/pledges/{shop.pledge_ids[0]}/address", json={"name": "李雷"}, headers=shop.backers[0].headers
    )
    assert incomplete.status_code == 422
    assert {"line1", "city", "postal_code", "country"} <= {e["field"] for e in incomplete.json()["errors"]}


async def test_after_the_address_lock_addresses_no_longer_change(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    async with sessions.begin() as session:  # the lock has come (a maker sets it at least weeks after the survey)
        await session.execute(
            update(Campaign).where(Campaign.id == shop.campaign_id).values(address_lock_at=func.now())
        )

    refused = await give_address(client, shop, 0)

    assert refused.status_code == 409 and refused.json()["type"] == "address-locked"


async def test_only_the_backer_gives_the_address(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    path = f"/api/v1/pledges/{shop.pledge_ids[0]}/address"
    assert (await client.put(path, json=address(), headers=shop.maker.headers)).status_code == 403
    assert (await client.put(path, json=address(), headers=shop.operator.headers)).status_code == 403
    assert (await client.put(path, json=address(), headers=shop.backers[1].headers)).status_code == 404
    assert (await client.put(path, json=address())).status_code == 401
    unknown = await client.put(f"/api/v1/pledges/{uuid.uuid4()}/address", json=address(), headers=shop.maker.headers)
    assert unknown.status_code == 404


async def test_a_pledge_without_a_reward_needs_no_address(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=0)
    backer = await sign_up(client, "Patron")
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, shop.campaign_id)
        pledge = await insert_pledge(session, campaign, None, backer_id=backer.id)

    refused = await client.put(f"/api/v1/pledges/{pledge.id}/address", json=address(), headers=backer.headers)

    assert refused.status_code == 409 and refused.json()["type"] == "nothing-to-ship"


async def test_a_late_address_with_every_batch_confirmed_asks_for_a_new_plan(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], jobs: ListSender
) -> None:
    shop = await open_shop(client, sessions)
    await plan(sessions, shop.campaign_id)
    await confirm_first_batch(client, shop)
    jobs.jobs.clear()

    assert (await give_address(client, shop, 0)).status_code == 200

    assert (PLAN_CAMPAIGN, (str(shop.campaign_id),)) in [(job.actor_name, job.args) for job in jobs.jobs]
    await plan(sessions, shop.campaign_id)
    confirmed, late = await batches_of(client, shop)
    assert (late["number"], late["items"], late["packages"]) == (2, [], 1)
    assert [row["pledge_id"] for row in await shipping_list(client, shop, late["id"])] == [shop.pledge_ids[0]]
    assert await shipping_list(client, shop, confirmed["id"]) == []


# Shipping lists


async def test_the_shipping_list_has_the_contracts_columns_and_keeps_chinese_addresses(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=4)
    settings = await client.put(
        f"{shop.base}/fulfillment-settings",
        json={"address_lock_at": None, "packaging_weight_grams": 150},
        headers=shop.maker.headers,
    )
    assert settings.status_code == 200 and settings.json() == {"address_lock_at": None, "packaging_weight_grams": 150}
    us = address(
        "US", name="Ada Lovelace", line1="1 Main St", line2="", city="Boston", region="MA", postal_code="02108"
    )
    assert (await give_address(client, shop, 0, **us)).status_code == 200
    assert (await give_address(client, shop, 1)).status_code == 200
    assert (await give_address(client, shop, 2, name="王小明", line2="", region="", phone="")).status_code == 200
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)

    response = await client.get(f"{shop.base}/batches/{batch['id']}/shipping-list.csv", headers=shop.maker.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "batch-1-shipping-list.csv" in response.headers["content-disposition"]
    body = response.content.decode("utf-8")
    assert body.splitlines()[0] == ",".join(COLUMNS)
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert [row["country"] for row in rows] == ["CN", "CN", "US"]  # grouped by country; backer 3 has no address
    li_lei = next(row for row in rows if row["pledge_id"] == shop.pledge_ids[1])
    assert li_lei == {
        "pledge_id": shop.pledge_ids[1],
        "name": "李雷",
        "line1": "南山区科技园深南大道 9988 号",
        "line2": "柴火创客空间 3 楼",
        "city": "深圳",
        "region": "广东省",
        "postal_code": "518057",
        "country": "CN",
        "phone": "+86 755 1234 5678",  # as typed: a phone number holds no formula
        "items": "BOARD x1; CASE x1",
        "weight_grams": str(120 + 80 + 150),
    }
    wang = next(row for row in rows if row["pledge_id"] == shop.pledge_ids[2])
    assert (wang["name"], wang["line2"], wang["region"], wang["phone"]) == ("王小明", "", "", "")
    path = f"{shop.base}/batches/{batch['id']}/shipping-list.csv"
    seen = await client.get(path, headers=shop.operator.headers)
    assert seen.status_code == 200 and seen.content == response.content
    assert (await client.get(path, headers=shop.admin.headers)).status_code == 403  # addresses: not an admin's
    assert (await client.get(path, headers=shop.stranger.headers)).status_code == 403
    assert (await client.get(path)).status_code == 401
    elsewhere = await open_shop(client, sessions, backers=0)
    other = await client.get(
        f"{elsewhere.base}/batches/{batch['id']}/shipping-list.csv", headers=elsewhere.maker.headers
    )
    assert other.status_code == 404


async def test_unaddressed_lists_the_pledges_held_back(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    assert (await give_address(client, shop, 1)).status_code == 200
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)

    first = await client.get(f"{shop.base}/unaddressed?limit=1", headers=shop.maker.headers)

    assert first.status_code == 200, first.text
    [held] = first.json()["items"]
    assert (held["pledge_id"], held["batch_id"], held["batch_number"]) == (shop.pledge_ids[0], batch["id"], 1)
    assert held["backer_name"] == "Backer0"
    cursor = first.json()["next_cursor"]
    second = await client.get(f"{shop.base}/unaddressed", params={"cursor": cursor}, headers=shop.maker.headers)
    assert [h["pledge_id"] for h in second.json()["items"]] == [shop.pledge_ids[2]]
    assert second.json()["next_cursor"] is None
    assert (await client.get(f"{shop.base}/unaddressed", headers=shop.operator.headers)).status_code == 200
    assert (await client.get(f"{shop.base}/unaddressed", headers=shop.stranger.headers)).status_code == 403
    assert (await client.get(f"{shop.base}/unaddressed")).status_code == 401
    bad = await client.get(f"{shop.base}/unaddressed", params={"cursor": "nonsense"}, headers=shop.maker.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


# Settings


async def test_fulfillment_settings_are_the_makers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=0)
    path = f"{shop.base}/fulfillment-settings"
    body = {"address_lock_at": LOCK_AT.astimezone(SHENZHEN).isoformat(), "packaging_weight_grams": 90}

    saved = await client.put(path, json=body, headers=shop.maker.headers)

    assert saved.status_code == 200
    assert saved.json() == {"address_lock_at": f"{LOCK_AT:%Y-%m-%dT%H:%M:%S}Z", "packaging_weight_grams": 90}
    assert (await client.get(path, headers=shop.operator.headers)).json() == saved.json()
    assert (await client.put(path, json=body, headers=shop.operator.headers)).status_code == 403
    assert (await client.get(path, headers=shop.stranger.headers)).status_code == 403
    assert (await client.put(path, json=body)).status_code == 401
    for bad, field in (
        ({**body, "address_lock_at": LOCK_AT.astimezone(SHENZHEN).replace(tzinfo=None).isoformat()}, "address_lock_at"),
        ({**body, "packaging_weight_grams": -1}, "packaging_weight_grams"),
        ({**body, "colour": "red"}, "colour"),
        ({"packaging_weight_grams": 0}, "address_lock_at"),
    ):
        refused = await client.put(path, json=bad, headers=shop.maker.headers)
        assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == [field]
    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.id == shop.campaign_id).values(status="fulfilled"))
    closed = await client.put(path, json=body, headers=shop.maker.headers)
    assert closed.status_code == 409 and closed.json()["type"] == "fulfillment-closed"


# Shipments


async def test_an_upload_with_bad_lines_lists_each_by_number_and_applies_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    for n in range(3):
        assert (await give_address(client, shop, n)).status_code == 200
    await plan(sessions, shop.campaign_id)
    await confirm_first_batch(client, shop)
    elsewhere = await open_shop(client, sessions, backers=1)
    a, b, c = shop.pledge_ids

    refused = await client.post(
        f"{shop.base}/shipments",
        content=upload(
            (a, "SF Express", "SF100"),  # line 2: good
            (str(uuid.uuid4()), "SF Express", "SF101"),  # line 3: unknown pledge
            (elsewhere.pledge_ids[0], "SF Express", "SF102"),  # line 4: another campaign's pledge
            (a, "SF Express", "SF103"),  # line 5: duplicate
            (b, "SF Express", ""),  # line 6: empty tracking number
            (c, "顺丰速运", "SF105"),  # line 7: good
        ),
        headers={**shop.maker.headers, **CSV_HEADERS},
    )

    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["line 3", "line 4", "line 5", "line 6"]
    messages = [e["message"] for e in refused.json()["errors"]]
    assert "no pledge" in messages[0] and "another campaign" in messages[1]
    assert "already on line 2" in messages[2] and "tracking_number is empty" in messages[3]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Shipment)) == 0
    assert await mails_of(sessions, "shipped") == []


async def test_a_good_upload_ships_tells_each_backer_once_and_fulfills_the_campaign(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    for n in range(3):
        assert (await give_address(client, shop, n)).status_code == 200
    await plan(sessions, shop.campaign_id)
    batch = await confirm_first_batch(client, shop)
    a, b, c = shop.pledge_ids
    first_two = upload((a, "SF Express", "SF100"), (b, "顺丰速运", "SF101"))

    shipped = await client.post(
        f"{shop.base}/shipments", content=first_two.encode(), headers={**shop.maker.headers, **CSV_HEADERS}
    )

    assert shipped.status_code == 200, shipped.text
    assert shipped.json() == {
        "received": 2,
        "shipped": 2,
        "corrected": 0,
        "unchanged": 0,
        "campaign_status": "fulfilling",
    }
    async with sessions() as session:
        shipment = await shipment_of(session, uuid.UUID(b))
    assert shipment is not None and (shipment["carrier"], shipment["tracking_number"]) == ("顺丰速运", "SF101")
    shown = (await client.get(f"/api/v1/pledges/{b}", headers=shop.maker.headers)).json()
    assert (shown["shipment"]["carrier"], shown["shipment"]["tracking_number"]) == ("顺丰速运", "SF101")
    assert shown["shipment"]["shipped_at"].endswith("Z")
    assert sorted(m.facts["pledge_id"] for m in await mails_of(sessions, "shipped")) == sorted([a, b])

    again = await client.post(
        f"{shop.base}/shipments", content=first_two, headers={**shop.maker.headers, **CSV_HEADERS}
    )
    assert again.status_code == 200 and (again.json()["shipped"], again.json()["unchanged"]) == (0, 2)
    assert len(await mails_of(sessions, "shipped")) == 2
    assert (await batches_of(client, shop))[0]["status"] == "confirmed"

    last = await client.post(
        f"{shop.base}/shipments",
        content=upload((c, "SF Express", "SF102"), (a, "SF Express", "SF200")),
        headers={**shop.maker.headers, **CSV_HEADERS},
    )
    assert last.status_code == 200
    assert (last.json()["shipped"], last.json()["corrected"], last.json()["campaign_status"]) == (1, 1, "fulfilled")
    assert await campaign_status(sessions, shop) == "fulfilled"
    [done] = await batches_of(client, shop)
    assert (done["id"], done["status"], done["shipped"]) == (batch["id"], "shipped", 3)
    mails = await mails_of(sessions, "shipped")
    assert len(mails) == 4 and sum(1 for m in mails if m.facts["corrected"]) == 1
    milestones = (await client.get(f"{shop.base}/milestones", headers=shop.maker.headers)).json()
    last_milestone = next(m for m in milestones if m["unlocks_on"] == "shipping_done")
    requested = await client.post(f"{shop.base}/milestones/{last_milestone['id']}/request", headers=shop.maker.headers)
    assert requested.status_code == 200, requested.text


async def test_shipments_are_uploaded_by_the_maker_as_csv_once_a_batch_is_confirmed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    assert (await give_address(client, shop, 0)).status_code == 200
    await plan(sessions, shop.campaign_id)
    path = f"{shop.base}/shipments"
    file = upload((shop.pledge_ids[0], "SF Express", "SF100"))
    too_early = await client.post(path, content=file, headers={**shop.maker.headers, **CSV_HEADERS})
    assert too_early.status_code == 409 and too_early.json()["type"] == "not-fulfilling"
    await confirm_first_batch(client, shop)
    for refused, status in ((shop.operator, 403), (shop.stranger, 403), (shop.backers[0], 403)):
        assert (await client.post(path, content=file, headers={**refused.headers, **CSV_HEADERS})).status_code == status
    assert (await client.post(path, content=file, headers=CSV_HEADERS)).status_code == 401
    as_json = await client.post(path, json={"pledge_id": shop.pledge_ids[0]}, headers=shop.maker.headers)
    assert as_json.status_code == 415
    not_utf8 = await client.post(
        path, content="pledge_id\n\xff".encode("latin-1"), headers={**shop.maker.headers, **CSV_HEADERS}
    )
    assert not_utf8.status_code == 422 and not_utf8.json()["errors"][0]["field"] == "body"
    unaddressed = await client.post(
        path, content=upload((shop.pledge_ids[1], "SF Express", "SF101")), headers={**shop.maker.headers, **CSV_HEADERS}
    )
    assert unaddressed.status_code == 422 and "no shipping list" in unaddressed.json()["errors"][0]["message"]

    key = {"Idempotency-Key": "tracking-upload-1"}
    first = await client.post(path, content=file, headers={**shop.maker.headers, **CSV_HEADERS, **key})
    retry = await client.post(path, content=file, headers={**shop.maker.headers, **CSV_HEADERS, **key})
    assert first.status_code == retry.status_code == 200 and first.json() == retry.json()
    assert first.json()["shipped"] == 1
