from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from campaigns.errors import InvalidInput
from campaigns.models import Tier
from campaigns.pledges.contents import pledge_contents
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import PledgeChoice, price_pledge
from fulfillment.models import Batch
from fulfillment.service import plan_campaign
from fulfillment.shipments import shipping_list_csv
from service.devservices import EmbeddedPostgres
from service.migrations import alembic_config
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import launched_campaign, sign_up

# Pledges whose amount is not the sum of their lines: none, ever.
MISPRICED = text(
    """
    SELECT p.id FROM pledges p
    LEFT JOIN (SELECT pledge_id, sum(quantity * unit_amount) AS total FROM pledge_items GROUP BY pledge_id) i
        ON i.pledge_id = p.id
    WHERE p.amount IS DISTINCT FROM i.total
    """
)


async def mispriced(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return list(await session.scalars(MISPRICED))


def lines(body: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(item["kind"], item["quantity"], item["unit_amount"]) for item in body["items"]]


# Pricing, with plain values

ONE_SENSOR = [{"sku": "SKU-A", "quantity": 1}]


def test_a_reward_with_a_bonus_shipped_abroad_is_three_lines_that_add_up_to_the_amount() -> None:
    tier = Tier(
        id=uuid.uuid4(),
        price=14_900,
        items=[{"sku": "SKU-A", "quantity": 1}],
        shipping=[{"country": "*", "fee": 5_000}],
    )
    terms = price_pledge("CNY", tier, PledgeChoice(tier.id, 500, "DE"))
    assert [(line.kind, line.quantity, line.unit_amount, line.ref_id) for line in terms.items] == [
        ("tier", 1, 14_900, tier.id),
        ("bonus", 1, 500, None),
        ("shipping", 1, 5_000, None),
    ]
    assert terms.amount == 14_900 + 500 + 5_000 == sum(line.amount for line in terms.items)
    assert (terms.bonus, terms.shipping_fee) == (500, 5_000)


def test_a_pledge_without_reward_is_one_bonus_line_and_a_digital_reward_has_no_shipping_line() -> None:
    assert [(line.kind, line.unit_amount) for line in price_pledge("CNY", None, PledgeChoice(None, 2_000)).items] == [
        ("bonus", 2_000)
    ]
    digital = Tier(id=uuid.uuid4(), price=3_000, items=[], shipping=[])
    assert [line.kind for line in price_pledge("CNY", digital, PledgeChoice(digital.id)).items] == ["tier"]


def test_a_choice_that_cannot_be_priced_names_its_field() -> None:
    tier = Tier(
        id=uuid.uuid4(), price=14_900, items=[{"sku": "SKU-A", "quantity": 1}], shipping=[{"country": "CN", "fee": 0}]
    )
    with pytest.raises(InvalidInput) as refused:
        price_pledge("CNY", tier, PledgeChoice(tier.id, 0, "US"))
    assert refused.value.errors[0].field == "shipping_country"


# Through the API


async def test_the_pledge_json_lists_its_lines_and_its_amount_is_their_sum(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Lin")
    created = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": campaign["tiers"][0]["id"], "bonus": 500, "shipping_country": "DE"},
        headers=backer.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert lines(body) == [("tier", 1, 14_900), ("bonus", 1, 500), ("shipping", 1, 5_000)]
    assert body["items"][0]["ref_id"] == campaign["tiers"][0]["id"] and body["items"][0]["variant"] == {}
    assert body["amount"] == sum(quantity * unit for _kind, quantity, unit in lines(body)) == 20_400
    assert {"bonus", "shipping_fee", "shipping_country", "tier_id", "address", "charged_at"} <= body.keys()

    changed = await stripe_client.patch(
        f"/api/v1/pledges/{body['id']}",
        json={"tier_id": campaign["tiers"][1]["id"], "bonus": 0, "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert changed.status_code == 200, changed.text
    assert lines(changed.json()) == [("tier", 1, 34_900), ("shipping", 1, 1_000)]
    assert changed.json()["amount"] == 35_900
    shown = await stripe_client.get(f"/api/v1/pledges/{body['id']}", headers=backer.headers)
    assert lines(shown.json()) == lines(changed.json())
    assert await mispriced(sessions) == []


async def test_a_refused_change_leaves_the_lines_as_they_were(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Ada")
    created = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": campaign["tiers"][1]["id"], "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert created.status_code == 201, created.text
    refused = await stripe_client.patch(
        f"/api/v1/pledges/{created.json()['id']}",
        json={"tier_id": campaign["tiers"][1]["id"], "bonus": -5, "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert refused.status_code == 422
    async with sessions() as session:
        kept = list(await session.scalars(select(PledgeItem.unit_amount).order_by(PledgeItem.position)))
    assert kept == [34_900, 1_000]
    assert await mispriced(sessions) == []


async def test_many_backers_at_once_each_get_their_lines_in_the_same_statement_as_their_pledge(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=3)
    backers = [await sign_up(stripe_client, f"Rush{n}") for n in range(6)]

    async def pledge(backer: Any) -> httpx.Response:
        return await stripe_client.post(
            f"/api/v1/campaigns/{campaign['id']}/pledges",
            json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
            headers=backer.headers,
        )

    answers = await asyncio.gather(*(pledge(backer) for backer in backers))
    assert sorted(answer.status_code for answer in answers) == [201, 201, 201, 409, 409, 409]
    async with sessions() as session:
        counted = (await session.execute(text("SELECT count(*), count(DISTINCT pledge_id) FROM pledge_items"))).one()
    assert tuple(counted) == (6, 3)  # a tier line and a shipping line each; the sold-out ones left nothing behind
    assert await mispriced(sessions) == []


# What a pledge contains drives fulfillment


async def test_the_planner_and_the_shipping_list_count_what_pledge_contents_says(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        campaign = await insert_campaign(session)
        await insert_product(session, campaign, "BOARD", batch_size=100, weight_grams=120)
        await insert_product(session, campaign, "CASE", batch_size=100, weight_grams=80)
        kit = await insert_tier(session, campaign, {"BOARD": 1}, title="Kit")
        plain = await insert_pledge(session, campaign, kit, given_address=address("CN"))
        extra = await insert_pledge(session, campaign, kit, given_address=address("CN"))
        bonus_only = await insert_pledge(session, campaign, None)
        # A second kit and a case on the same pledge: lines, not the tier's items, say what it holds.
        await session.execute(
            text("UPDATE pledge_items SET quantity = 2 WHERE pledge_id = :id AND kind = 'tier'"), {"id": extra.id}
        )
        await session.execute(
            insert(PledgeItem).values(
                pledge_id=extra.id, position=5, kind="addon", ref_id=uuid.uuid4(), quantity=1, unit_amount=0, sku="CASE"
            )
        )
        contents = await pledge_contents(session, [plain.id, extra.id, bonus_only.id])
        assert contents == {plain.id: {"BOARD": 1}, extra.id: {"BOARD": 2, "CASE": 1}}
        assert bonus_only.id not in contents
        await plan_campaign(session, campaign.id)
        batch = await session.scalar(select(Batch).where(Batch.campaign_id == campaign.id))
        assert batch is not None and batch.units == {"BOARD": 3, "CASE": 1}
        listed = "".join([part async for part in shipping_list_csv(session, batch.id)])
    rows = {row["pledge_id"]: row for row in csv.DictReader(io.StringIO(listed, newline=""))}
    assert rows[str(plain.id)]["items"] == "BOARD x1"
    assert rows[str(extra.id)]["items"] == "BOARD x2; CASE x1"
    assert rows[str(extra.id)]["weight_grams"] == str(2 * 120 + 80)
    assert str(bonus_only.id) not in rows


# The migration


async def test_the_migration_gives_every_earlier_pledge_its_lines_as_it_was_priced(postgres: EmbeddedPostgres) -> None:
    name = "kindling_pledge_items_backfill"
    postgres.drop_database(name)
    postgres.create_database(name)
    url = postgres.database_url(name)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0017")
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.begin() as connection:
            for statement in BEFORE_LINES:
                await connection.execute(text(statement))
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0018")
        async with engine.connect() as connection:
            found = (
                await connection.execute(
                    text(
                        "SELECT p.amount, i.position, i.kind, i.ref_id = p.tier_id, i.quantity, i.unit_amount, i.sku"
                        " FROM pledge_items i JOIN pledges p ON p.id = i.pledge_id ORDER BY p.amount, i.position"
                    )
                )
            ).all()
            wrong = (await connection.execute(MISPRICED)).all()
        await engine.dispose()
        assert [tuple(row) for row in found] == [
            (3_000, 0, "bonus", None, 1, 3_000, None),  # no reward: the bonus alone
            (15_900, 0, "tier", True, 1, 14_900, None),  # the tier's price, then the fee
            (15_900, 1, "shipping", None, 1, 1_000, None),
            (20_400, 0, "tier", True, 1, 14_900, None),
            (20_400, 1, "bonus", None, 1, 500, None),
            (20_400, 2, "shipping", None, 1, 5_000, None),
        ]
        assert wrong == []
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0017")
    finally:
        postgres.drop_database(name)


USER = "INSERT INTO users (id, email, name, password_hash) VALUES ('{id}', '{id}@example.com', 'B', 'x')"
BEFORE_LINES = (
    USER.format(id="00000000-0000-0000-0000-0000000000a1"),
    USER.format(id="00000000-0000-0000-0000-0000000000b1"),
    USER.format(id="00000000-0000-0000-0000-0000000000b2"),
    USER.format(id="00000000-0000-0000-0000-0000000000b3"),
    "INSERT INTO spaces (id, name, slug, city, country, sponsor_fee_bps)"
    " VALUES ('00000000-0000-0000-0000-0000000000c1', 'Chaihuo', 'chaihuo', 'Shenzhen', 'CN', 300)",
    "INSERT INTO campaigns (id, slug, title, summary, currency, goal, status, space_id, maker_id, duration_days)"
    " VALUES ('00000000-0000-0000-0000-0000000000d1', 'lamp', 'Lamp', 'A lamp', 'CNY', 100000, 'live',"
    " '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', 30)",
    "INSERT INTO tiers (id, campaign_id, title, price, items, shipping, estimated_delivery)"
    " VALUES ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000d1', 'Lamp', 14900,"
    """ '[{"sku": "LAMP", "quantity": 1}]', '[{"country": "CN", "fee": 1000}, {"country": "*", "fee": 5000}]',"""
    " '2027-03')",
    "INSERT INTO pledges (id, campaign_id, backer_id, tier_id, amount, bonus, shipping_fee, currency, shipping_country)"
    " VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000b1',"
    " '00000000-0000-0000-0000-0000000000e1', 15900, 0, 1000, 'CNY', 'CN')",
    "INSERT INTO pledges (id, campaign_id, backer_id, tier_id, amount, bonus, shipping_fee, currency, shipping_country)"
    " VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000b2',"
    " '00000000-0000-0000-0000-0000000000e1', 20400, 500, 5000, 'CNY', 'DE')",
    "INSERT INTO pledges (id, campaign_id, backer_id, tier_id, amount, bonus, shipping_fee, currency, shipping_country)"
    " VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000b3',"
    " NULL, 3000, 3000, 0, 'CNY', NULL)",
)
