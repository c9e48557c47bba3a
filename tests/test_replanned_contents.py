"""Contents changed after funding are planned again: an add-on bought, a colour changed, an add-on given back in the
pledge manager and the batch that makes the pledge, not yet confirmed, follows (the sweep asks again when the plan's
job is lost); a confirmed batch is never changed behind the maker's back: its pledges' contents are refused changes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import AddOn, Product
from fulfillment.service import PLAN_CAMPAIGN
from payments.gateway import StripeGateway
from payments.models import AddOnCharge
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import many_backers
from tests.money_helpers import run_jobs, stripe_work, sweep
from tests.pledge_manager_helpers import A, back_lamp, fund, launched_shop

CHARGE_COPIED = ("pledge_id", "add_on_id", "sku", "quantity", "unit_amount", "amount", "currency", "customer_id",
                 "payment_method_id")  # fmt: skip


async def test_a_pledges_changed_contents_are_replanned_into_its_open_batch_and_refused_once_its_batch_is_confirmed(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=5)
    first, second = await many_backers(sessions, 2)
    early = await back_lamp(stripe_client, stripe_server, shop, first)
    late = await back_lamp(stripe_client, stripe_server, shop, second)
    async with sessions.begin() as session:  # one lamp a batch: each pledge has a batch of its own
        await session.execute(update(Product).where(Product.id == uuid.UUID(shop.lamp["id"])).values(batch_size=1))
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    base = f"{A}/campaigns/{shop.campaign['id']}"

    async def batches() -> list[tuple[str, dict[str, int]]]:
        async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
            await run_jobs(work, jobs)  # the charges, refunds and plans the requests asked for
        shown = await stripe_client.get(f"{base}/batches", headers=shop.maker.headers)
        assert shown.status_code == 200, shown.text
        return [(b["status"], {item["sku"]: item["quantity"] for item in b["units"]}) for b in shown.json()]

    [one, _] = (await stripe_client.get(f"{base}/batches", headers=shop.maker.headers)).json()
    confirmed = await stripe_client.post(f"{base}/batches/{one['id']}/confirm", headers=shop.maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert await batches() == [("confirmed", {"LAMP-BLC": 1}), ("planned", {"LAMP-BLC": 1})]

    # The second backer's batch is open: what they buy, recolour and give back is what it makes.
    items = f"{A}/pledges/{late['id']}/items"
    bought = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=second.headers)
    assert bought.status_code == 201, bought.text
    assert await batches() == [("confirmed", {"LAMP-BLC": 1}), ("planned", {"LAMP-BLC": 1, "CABLE": 1})]
    tier_line, cable_line = bought.json()["items"][0]["id"], bought.json()["items"][-1]["id"]
    white = {"choices": [{"item": tier_line, "variant": {shop.lamp["id"]: {"colour": "white"}}}]}
    recoloured = await stripe_client.put(f"{A}/pledges/{late['id']}/variants", json=white, headers=second.headers)
    assert recoloured.status_code == 200, recoloured.text
    jobs.jobs = [job for job in jobs.jobs if job.actor_name != PLAN_CAMPAIGN]  # the plan job is lost on its way
    assert await batches() == [("confirmed", {"LAMP-BLC": 1}), ("planned", {"LAMP-BLC": 1, "CABLE": 1})]
    await sweep(sessions, stripe_settings, jobs)  # finds the campaign still waiting for its plan, and asks again
    assert await batches() == [("confirmed", {"LAMP-BLC": 1}), ("planned", {"LAMP-WHT": 1, "CABLE": 1})]
    given_back = await stripe_client.delete(f"{items}/{cable_line}", headers=second.headers)
    assert given_back.status_code == 200, given_back.text
    assert await batches() == [("confirmed", {"LAMP-BLC": 1}), ("planned", {"LAMP-WHT": 1})]

    # The first backer's batch is ordered: no charge, no new colour, and the batch stays as the factory has it.
    refusals: list[Any] = [
        await stripe_client.post(
            f"{A}/pledges/{early['id']}/items", json={"add_on_id": shop.cable["id"]}, headers=first.headers
        ),
        await stripe_client.put(
            f"{A}/pledges/{early['id']}/variants",
            json={"choices": [{"item": early["items"][0]["id"], "variant": {shop.lamp["id"]: {"colour": "white"}}}]},
            headers=first.headers,
        ),
    ]
    assert [(r.status_code, r.json()["type"]) for r in refusals] == [(409, "batch-confirmed")] * 2
    assert await batches() == [("confirmed", {"LAMP-BLC": 1}), ("planned", {"LAMP-WHT": 1})]
    async with sessions() as session:
        assert await session.scalar(select(AddOn.remaining).where(AddOn.id == uuid.UUID(shop.cable["id"]))) == 5
        charges = await session.scalars(select(AddOnCharge.pledge_id))
        assert list(charges) == [uuid.UUID(late["id"])]

    # While an add-on of the open batch is being paid for, the batch waits: ordered now, it would be made without it.
    async with sessions.begin() as session:
        charge = await session.scalar(select(AddOnCharge))
        assert charge is not None
        session.add(
            AddOnCharge(**{column: getattr(charge, column) for column in CHARGE_COPIED}, item_id=uuid.uuid4(),
                        idempotency_key=f"pledge-item:{uuid.uuid4()}:charge", status="started")
        )  # fmt: skip
    [_one, open_batch] = (await stripe_client.get(f"{base}/batches", headers=shop.maker.headers)).json()
    two = f"{base}/batches/{open_batch['id']}/confirm"
    waiting = await stripe_client.post(two, headers=shop.maker.headers)
    assert waiting.status_code == 409 and waiting.json()["type"] == "add-on-being-charged", waiting.text
    async with sessions.begin() as session:
        await session.execute(update(AddOnCharge).where(AddOnCharge.status == "started").values(status="failed"))
    assert (await stripe_client.post(two, headers=shop.maker.headers)).status_code == 200
