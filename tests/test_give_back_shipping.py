"""An add-on bought in the pledge manager and given back is refunded its price and the drop it makes in the
shipping now (the contents priced with and without it), not only the shipping its own charge took; never more
than the pledge pays for shipping in all."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import many_backers
from tests.money_helpers import amount_refunded_at_stripe, payment_intents, run_jobs, stripe_work
from tests.pledge_manager_helpers import CABLE_PRICE, LAMP_PRICE, A, back_lamp, fund
from tests.test_shipping_by_weight import line_sum, weighed_shop


async def refunded_of_intent(stripe: EmbeddedStripe, intent_id: str) -> int:
    async with httpx.AsyncClient(base_url=stripe.api_base, auth=(stripe.secret_key, "")) as http:
        charge = (await http.get(f"/v1/payment_intents/{intent_id}")).json()["latest_charge"]
        charge = charge if isinstance(charge, dict) else (await http.get(f"/v1/charges/{charge}")).json()
    return int(charge["amount_refunded"])


async def test_a_cable_given_back_is_refunded_the_lighter_bracket_a_later_cable_paid_for(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await weighed_shop(stripe_client, sessions)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    items = f"{A}/pledges/{pledge['id']}/items"
    # The first cable fits the paid bracket (160 g: 8.00) and is charged its price alone; the second takes the
    # package to 200 g (12.00) and pays the 4.00 more.
    first = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert first.status_code == 201, first.text
    first_line = first.json()["items"][-1]["id"]
    second = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert second.status_code == 201 and second.json()["shipping_fee"] == 1_200, second.text
    [first_intent] = await payment_intents(stripe_server, pledge_item_id=first_line)
    assert first_intent["amount"] == CABLE_PRICE

    # The first cable given back: the package is 160 g again, so its price and the 4.00 come back, though its own
    # charge took no shipping. The 4.00 comes from the pledge's own charge, its own charge refunded whole.
    gone = await stripe_client.delete(f"{items}/{first_line}", headers=backer.headers)
    assert gone.status_code == 200, gone.text
    body = gone.json()
    assert body["shipping_fee"] == 800 and body["amount"] == line_sum(body) == LAMP_PRICE + 800 + CABLE_PRICE
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert await refunded_of_intent(stripe_server, first_intent["id"]) == CABLE_PRICE
    assert await amount_refunded_at_stripe(stripe_server, pledge["id"]) == 400
    async with sessions() as session:
        ledger = await campaign_ledger(session, uuid.UUID(shop.campaign["id"]))
        stored = await session.get_one(Pledge, uuid.UUID(pledge["id"]))
    assert ledger.refunded == CABLE_PRICE + 400
    assert ledger.collected - ledger.refunded == stored.amount == body["amount"]
