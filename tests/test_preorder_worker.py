"""Pre-orders with a real worker process: with the first batch full of the campaign's own backers, paid pre-orders
land in the second batch (the worker plans them), behind them; confirming the first batch for production leaves the
reward on sale (the second is still open), and the pre-orders move up the delivery queue when the first batch ships."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.late_pledges import LateReward
from campaigns.models import Product
from service.app import create_app
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.factories import address
from tests.helpers import many_backers
from tests.money_helpers import pass_deadline
from tests.pledge_manager_helpers import A, back_lamp, launched_shop
from tests.test_charging import money_worker, quick_settings  # noqa: F401 - the real worker, as fixtures
from tests.test_preorders import LATE_PRICE, pay_in_browser


@pytest.mark.slow
async def test_paid_preorders_land_in_the_second_batch_and_move_up_when_the_first_ships(  # noqa: PLR0915
    quick_settings: Settings,  # noqa: F811 - the fixture imported above
    stripe_server: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    money_worker: subprocess.Popen[bytes],  # noqa: F811
    tmp_path: Path,
) -> None:
    app = create_app(quick_settings, engine_pool=2)  # its jobs go to Redis, for the worker
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50003))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:

            async def until(ready: Callable[[], Awaitable[bool]], what: str) -> None:
                deadline = time.monotonic() + 120
                while not await ready():
                    assert time.monotonic() < deadline, f"{what}: " + (tmp_path / "worker.log").read_text()[-3000:]
                    await asyncio.sleep(0.3)

            shop = await launched_shop(client, sessions)
            base = f"{A}/campaigns/{shop.campaign['id']}"
            async with sessions.begin() as session:
                session.add(
                    LateReward(
                        tier_id=uuid.UUID(shop.tier_id), campaign_id=uuid.UUID(shop.campaign["id"]), price=LATE_PRICE
                    )
                )
            # Lamps are made two a batch: the campaign's two backers fill the first.
            async with sessions.begin() as session:
                await session.execute(
                    update(Product).where(Product.id == uuid.UUID(shop.lamp["id"])).values(batch_size=2, overage_bps=0)
                )
            *backers, first_buyer, second_buyer = await many_backers(sessions, 4)
            buyers = [first_buyer, second_buyer]
            backed = []
            for backer in backers:
                pledge = await back_lamp(client, stripe_server, shop, backer)
                given = await client.put(f"{A}/pledges/{pledge['id']}/address", json=address(), headers=backer.headers)
                assert given.status_code == 200, given.text
                backed.append((backer, pledge))
            await pass_deadline(sessions, shop.campaign["id"])

            async def batches() -> list[dict[str, Any]]:
                return list((await client.get(f"{base}/batches", headers=shop.maker.headers)).json())

            async def first_planned() -> bool:
                return len(await batches()) == 1

            await until(first_planned, "the worker funds and plans the campaign")
            [first] = await batches()

            preorders = []
            for buyer in buyers:
                made = await client.post(
                    f"{base}/preorders",
                    json={
                        "tier_id": shop.tier_id,
                        "shipping_country": "CN",
                        "variants": {shop.lamp["id"]: {"colour": "black"}},
                    },
                    headers=buyer.headers,
                )
                assert made.status_code == 201, made.text
                await pay_in_browser(stripe_server, made.json()["payment"]["payment_intent_id"])
                paid = await client.post(f"{A}/pledges/{made.json()['id']}/confirm", headers=buyer.headers)
                assert paid.status_code == 200 and paid.json()["status"] == "collected", paid.text
                given = await client.put(
                    f"{A}/pledges/{made.json()['id']}/address", json=address(), headers=buyer.headers
                )
                assert given.status_code == 200, given.text
                preorders.append((buyer, made.json()["id"]))

            async def queue_of(buyer: Any, pledge_id: str) -> Any:
                return (await client.get(f"{A}/pledges/{pledge_id}", headers=buyer.headers)).json()["queue"]

            async def in_second_batch() -> bool:
                places = [await queue_of(b, p) or {} for b, p in preorders]
                return all(place.get("batch") == 2 for place in places)

            await until(in_second_batch, "the worker plans the paid pre-orders into the second batch")
            assert [(await queue_of(b, p))["position"] for b, p in preorders] == [3, 4]
            assert [(await queue_of(b, p["id"]))["batch"] for b, p in backed] == [1, 1]

            # The first batch goes into production; the second is still open, so the reward stays on sale.
            confirmed = await client.post(f"{base}/batches/{first['id']}/confirm", headers=shop.maker.headers)
            assert confirmed.status_code == 200, confirmed.text
            late = (await client.get(f"{base}/late-pledges")).json()
            assert [tier["open"] for tier in late["tiers"]] == [True]

            rows = "".join(f"{p['id']},SF Express,SF{n}\n" for n, (_b, p) in enumerate(backed))
            shipped = await client.post(
                f"{base}/shipments",
                content=f"pledge_id,carrier,tracking_number\n{rows}".encode(),
                headers={**shop.maker.headers, "Content-Type": "text/csv"},
            )
            assert shipped.status_code == 200, shipped.text
            assert [(await queue_of(b, p))["position"] for b, p in preorders] == [1, 2]
            assert [b["number"] for b in await batches()] == [1, 2]
