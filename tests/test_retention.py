"""What the sweep forgets: throttle rows once their window and delay have passed, idempotency keys after 24 hours
(as Stripe keeps them). Under a stream of random buckets and keys the tables hold only what is still live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from fulfillment.models import Shipment
from service.broker import ListSender
from service.models import IdempotencyRecord, Throttle
from service.settings import Settings
from service.sweep import sweep_once, sweep_steps
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier, insert_user

EXPIRED_THROTTLES = text(
    "INSERT INTO throttles (bucket, window_started_at, hits, expires_at) "
    "SELECT 'login:ip:' || gen_random_uuid(), now() - interval '16 minutes', 3, now() - interval '1 minute' "
    "FROM generate_series(1, :count)"
)
LIVE_THROTTLES = text(
    "INSERT INTO throttles (bucket, hits, blocked_until, expires_at) "
    "SELECT 'login:email-ip:' || gen_random_uuid(), 12, now() + interval '2 minutes', now() + interval '17 minutes' "
    "FROM generate_series(1, :count)"
)
KEYS = text(
    "INSERT INTO idempotency_records (id, user_id, key, request_hash, status_code, created_at) "
    "SELECT gen_random_uuid(), :user_id, gen_random_uuid()::text, repeat('0', 64), 201, "
    "now() - make_interval(hours => :hours) "
    "FROM generate_series(1, :count)"
)


async def _count(sessions: async_sessionmaker[AsyncSession], model: type[Throttle] | type[IdempotencyRecord]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_throttles_and_idempotency_keys_stay_bounded_under_a_stream_of_random_keys(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    steps = sweep_steps()
    retention = {name: steps[name] for name in ("throttles", "idempotency-keys")}
    async with sessions.begin() as session:
        user = await insert_user(session)
        await session.execute(LIVE_THROTTLES, {"count": 50})

    for round_ in range(1, 6):
        async with sessions.begin() as session:
            await session.execute(EXPIRED_THROTTLES, {"count": 2000})
            await session.execute(KEYS, {"user_id": user.id, "hours": 25, "count": 2000})
            await session.execute(KEYS, {"user_id": user.id, "hours": 23, "count": 20})

        found = await sweep_once(sessions, ListSender(), settings, steps=retention)

        assert found == {"throttles": 2000, "idempotency-keys": 2000}
        assert await _count(sessions, Throttle) == 50
        assert await _count(sessions, IdempotencyRecord) == 20 * round_


async def test_a_backers_address_is_erased_the_retention_days_after_their_package_shipped(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert settings.address_retention_days == 180
    step = {"delivered-addresses": sweep_steps()["delivered-addresses"]}
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, status="fulfilled")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        tier = await insert_tier(session, campaign, {"BOARD": 1})
        pledges = {}
        for days_ago in (181, 179, None):  # shipped that many days ago; None: not shipped
            pledge = await insert_pledge(session, campaign, tier, given_address=address())
            pledges[days_ago] = pledge.id
            if days_ago is not None:
                session.add(
                    Shipment(
                        pledge_id=pledge.id,
                        campaign_id=campaign.id,
                        carrier="SF Express",
                        tracking_number=f"SF{days_ago}",
                        shipped_at=datetime.now(UTC) - timedelta(days=days_ago),
                    )
                )

    assert await sweep_once(sessions, ListSender(), settings, steps=step) == {"delivered-addresses": 1}
    assert await sweep_once(sessions, ListSender(), settings, steps=step) == {"delivered-addresses": 0}

    async with sessions() as session:
        kept = {days: (await session.get_one(Pledge, pledge_id)).address for days, pledge_id in pledges.items()}
        shipment = await session.get_one(Shipment, pledges[181])
    assert kept[181] is None, "shipped 181 days ago: where it went is forgotten"
    assert kept[179] == address() and kept[None] == address()
    assert shipment.tracking_number == "SF181", "the shipment itself stays"
