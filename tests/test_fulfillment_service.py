from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail, Pledge, Tier, User
from campaigns.notifications import DELIVER_MAIL
from fulfillment.addresses import (
    ADDRESS_REMINDER,
    ADDRESS_SURVEY,
    address_change,
    remind_missing_addresses,
    save_address,
    send_address_surveys,
    suggested_address,
)
from fulfillment.models import AddressRequest, Allocation, Batch
from fulfillment.planner import PledgeDemand, ProductSpec, plan_batches
from fulfillment.service import PLAN_CAMPAIGN, confirm_batch, plan_campaign
from fulfillment.shipments import finish_fulfilled_campaigns, shipping_list_csv
from fulfillment.shipping_csv import COLUMNS
from fulfillment.tasks import plan_campaign_job, replan_stale_campaigns
from service.broker import ListSender
from service.database import unit_of_work
from service.mail import mail_templates, render_mail
from tests.factories import (
    address,
    insert_campaign,
    insert_pledge,
    insert_pledges,
    insert_product,
    insert_tier,
    insert_user,
)
from tests.helpers import LOCK_AT

BOARD = ProductSpec(sku="BOARD", batch_size=100, overage_bps=500, weight_grams=120)
CASE = ProductSpec(sku="CASE", batch_size=60, overage_bps=0, weight_grams=80)


@dataclass
class Arranged:
    campaign_id: uuid.UUID
    maker_id: uuid.UUID
    kit_id: uuid.UUID
    pair_id: uuid.UUID


async def arrange(sessions: async_sessionmaker[AsyncSession], *, status: str = "funded") -> Arranged:
    """A campaign with two products (BOARD: 95 per batch once its spares are counted, CASE: 60) and two tiers."""
    async with sessions.begin() as session:
        maker = await insert_user(session, "Maker")
        campaign = await insert_campaign(session, maker_id=maker.id, status=status)
        for spec in (BOARD, CASE):
            await insert_product(
                session,
                campaign,
                spec.sku,
                batch_size=spec.batch_size,
                overage_bps=spec.overage_bps,
                weight_grams=spec.weight_grams,
            )
        kit = await insert_tier(session, campaign, {"BOARD": 1, "CASE": 1}, title="Kit")
        pair = await insert_tier(
            session, campaign, {"BOARD": 2}, title="Two boards", shipping=[{"country": "CN", "fee": 0}]
        )
        return Arranged(campaign.id, maker.id, kit.id, pair.id)


async def add_pledges(
    sessions: async_sessionmaker[AsyncSession], arranged: Arranged, count: int, *, pair: bool = False
) -> list[uuid.UUID]:
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, arranged.campaign_id)
        tier = await session.get_one(Tier, arranged.pair_id if pair else arranged.kit_id)
        return await insert_pledges(session, campaign, tier, count)


async def plan(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await plan_campaign(session, campaign_id)


async def batches(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID) -> list[Batch]:
    async with sessions() as session:
        return list(await session.scalars(select(Batch).where(Batch.campaign_id == campaign_id).order_by(Batch.number)))


async def allocations(
    sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID
) -> dict[uuid.UUID, Allocation]:
    async with sessions() as session:
        rows = await session.scalars(select(Allocation).where(Allocation.campaign_id == campaign_id))
        return {a.pledge_id: a for a in rows}


async def shipping_list(sessions: async_sessionmaker[AsyncSession], batch_id: uuid.UUID) -> list[dict[str, str]]:
    async with sessions() as session:
        text_ = "".join([part async for part in shipping_list_csv(session, batch_id)])
    reader = csv.DictReader(io.StringIO(text_, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


async def confirm(sessions: async_sessionmaker[AsyncSession], arranged: Arranged, batch_id: uuid.UUID) -> None:
    async with sessions.begin() as session:
        maker = await session.get_one(User, arranged.maker_id)
        await confirm_batch(session, arranged.campaign_id, batch_id, maker)


async def backer_of(sessions: async_sessionmaker[AsyncSession], pledge_id: uuid.UUID) -> User:
    async with sessions() as session:
        pledge = await session.get_one(Pledge, pledge_id)
        return await session.get_one(User, pledge.backer_id)


async def address_pledge(sessions: async_sessionmaker[AsyncSession], pledge_id: uuid.UUID, country: str = "CN") -> None:
    backer = await backer_of(sessions, pledge_id)
    async with sessions.begin() as session:
        await save_address(session, await address_change(session, pledge_id, backer, address(country)))


def made_within_batch_size(batch: Batch, sizes: dict[str, int]) -> bool:
    return all(units + batch.spares[sku] <= sizes[sku] for sku, units in batch.units.items())


# Planning


async def test_planning_a_funded_campaign_allocates_every_paid_reward_once_within_batch_sizes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 130)
    pairs = await add_pledges(sessions, arranged, 40, pair=True)
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, arranged.campaign_id)
        kit = await session.get_one(Tier, arranged.kit_id)
        no_reward = await insert_pledge(session, campaign, None)
        cancelled = await insert_pledge(session, campaign, kit, status="cancelled")
        unpaid = await insert_pledge(session, campaign, kit, status="errored")

    await plan(sessions, arranged.campaign_id)

    planned = await batches(sessions, arranged.campaign_id)
    allocated = await allocations(sessions, arranged.campaign_id)
    assert set(allocated) == set(kits) | set(pairs)
    assert {no_reward.id, cancelled.id, unpaid.id}.isdisjoint(allocated)
    assert all(made_within_batch_size(b, {"BOARD": 100, "CASE": 60}) for b in planned)
    per_batch = Counter(a.batch_id for a in allocated.values())
    assert sum(per_batch.values()) == len(kits) + len(pairs)
    expected = plan_batches(
        [PledgeDemand(p, n, {"BOARD": 1, "CASE": 1}) for n, p in enumerate(kits)]
        + [PledgeDemand(p, 1000 + n, {"BOARD": 2}) for n, p in enumerate(pairs)],
        [BOARD, CASE],
    )
    assert [(b.number, b.units, b.spares) for b in planned] == [(b.number, b.units, b.spares) for b in expected]
    assert [per_batch[b.id] for b in planned] == [len(b.pledge_ids) for b in expected]
    assert all(b.status == "planned" for b in planned)


async def test_planning_again_gives_the_same_batches_with_the_same_ids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 150)
    await plan(sessions, arranged.campaign_id)
    first = [(b.id, b.number, b.units, b.spares) for b in await batches(sessions, arranged.campaign_id)]
    first_allocations = {p: a.batch_id for p, a in (await allocations(sessions, arranged.campaign_id)).items()}

    await plan(sessions, arranged.campaign_id)

    assert [(b.id, b.number, b.units, b.spares) for b in await batches(sessions, arranged.campaign_id)] == first
    assert {p: a.batch_id for p, a in (await allocations(sessions, arranged.campaign_id)).items()} == first_allocations


async def test_new_pledges_change_only_the_batches_they_land_in(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 100)  # batch 1 holds 60 (CASE), batch 2 the other 40
    await plan(sessions, arranged.campaign_id)
    before = await batches(sessions, arranged.campaign_id)

    await add_pledges(sessions, arranged, 5)
    await plan(sessions, arranged.campaign_id)

    after = await batches(sessions, arranged.campaign_id)
    assert after[0].id == before[0].id
    assert after[1].id != before[1].id and after[1].units == {"BOARD": 45, "CASE": 45}


async def test_pledges_no_longer_paid_leave_the_open_batches(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 10)
    await plan(sessions, arranged.campaign_id)
    async with sessions.begin() as session:
        await session.execute(update(Pledge).where(Pledge.id == kits[0]).values(status="refunded"))

    await plan(sessions, arranged.campaign_id)

    assert set(await allocations(sessions, arranged.campaign_id)) == set(kits[1:])
    assert (await batches(sessions, arranged.campaign_id))[0].units == {"BOARD": 9, "CASE": 9}


async def test_a_campaign_that_is_not_funded_is_not_planned(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions, status="successful")
    await add_pledges(sessions, arranged, 3)
    async with sessions.begin() as session:
        assert await plan_campaign(session, arranged.campaign_id) is None
    assert await batches(sessions, arranged.campaign_id) == []


# Confirmed batches


async def test_a_confirmed_batch_never_changes_when_more_pledges_arrive(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 50)
    await plan(sessions, arranged.campaign_id)
    [first] = await batches(sessions, arranged.campaign_id)
    members = {p for p, a in (await allocations(sessions, arranged.campaign_id)).items() if a.batch_id == first.id}
    await confirm(sessions, arranged, first.id)

    later = await add_pledges(sessions, arranged, 30)
    await plan(sessions, arranged.campaign_id)

    confirmed, second = await batches(sessions, arranged.campaign_id)
    assert (confirmed.id, confirmed.status, confirmed.units) == (first.id, "confirmed", {"BOARD": 50, "CASE": 50})
    allocated = await allocations(sessions, arranged.campaign_id)
    assert {p for p, a in allocated.items() if a.batch_id == first.id} == members
    assert {p for p, a in allocated.items() if a.batch_id == second.id} == set(later)
    async with sessions() as session:
        campaign = await session.get_one(Campaign, arranged.campaign_id)
    assert campaign.status == "fulfilling" and campaign.first_batch_confirmed_at is not None


async def test_the_database_refuses_to_change_a_confirmed_batch(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 5)
    await plan(sessions, arranged.campaign_id)
    [batch] = await batches(sessions, arranged.campaign_id)
    await confirm(sessions, arranged, batch.id)

    for statement in (
        update(Batch).where(Batch.id == batch.id).values(units={"BOARD": 1}),
        update(Batch).where(Batch.id == batch.id).values(status="planned", confirmed_at=None),
        text("DELETE FROM batches WHERE id = :id").bindparams(id=batch.id),
        text("DELETE FROM allocations WHERE pledge_id = :id").bindparams(id=kits[0]),
    ):
        with pytest.raises(DBAPIError, match="never"):
            async with sessions.begin() as session:
                await session.execute(statement)


async def test_batches_are_confirmed_in_order(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 70)
    await plan(sessions, arranged.campaign_id)
    _first, second = await batches(sessions, arranged.campaign_id)

    with pytest.raises(Exception, match="Confirm batch 1 first") as refused:
        await confirm(sessions, arranged, second.id)
    assert getattr(refused.value, "type", None) == "batch-out-of-order"


# Addresses and lists


async def test_a_late_address_joins_the_next_open_batch_list_and_never_two_lists(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 80)
    for pledge_id in kits[1:]:
        await address_pledge(sessions, pledge_id)
    await plan(sessions, arranged.campaign_id)
    first, second = await batches(sessions, arranged.campaign_id)
    assert str(kits[0]) not in {row["pledge_id"] for row in await shipping_list(sessions, first.id)}
    await confirm(sessions, arranged, first.id)

    await address_pledge(sessions, kits[0])  # late: batch 1 was confirmed without it
    await plan(sessions, arranged.campaign_id)

    first_list = [row["pledge_id"] for row in await shipping_list(sessions, first.id)]
    second_list = [row["pledge_id"] for row in await shipping_list(sessions, second.id)]
    assert str(kits[0]) not in first_list and second_list.count(str(kits[0])) == 1
    assert len(first_list) == 59 and len(second_list) == 21
    assert set(first_list).isdisjoint(second_list)
    allocated = await allocations(sessions, arranged.campaign_id)
    assert (allocated[kits[0]].batch_id, allocated[kits[0]].list_batch_id) == (first.id, second.id)


async def test_a_late_address_with_no_batch_open_opens_one_with_nothing_to_make(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 3)
    await plan(sessions, arranged.campaign_id)
    [only] = await batches(sessions, arranged.campaign_id)
    await confirm(sessions, arranged, only.id)
    backer = await backer_of(sessions, kits[0])
    sender = ListSender()

    async with unit_of_work(sessions, sender) as session:
        await save_address(session, await address_change(session, kits[0], backer, address()))
    assert [(job.actor_name, job.args) for job in sender.jobs] == [(PLAN_CAMPAIGN, (str(arranged.campaign_id),))]
    await plan(sessions, arranged.campaign_id)

    confirmed, late = await batches(sessions, arranged.campaign_id)
    assert (late.number, late.status, late.units, late.spares) == (2, "planned", {}, {})
    assert [row["pledge_id"] for row in await shipping_list(sessions, late.id)] == [str(kits[0])]
    assert await shipping_list(sessions, confirmed.id) == []


async def test_suggested_address_is_the_backers_last_one(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, arranged.campaign_id)
        kit = await session.get_one(Tier, arranged.kit_id)
        backer = await insert_user(session)
        elsewhere = await insert_campaign(session)
        await insert_pledge(session, elsewhere, None, backer_id=backer.id, given_address=address(city="广州"))
        pledge = await insert_pledge(session, campaign, kit, backer_id=backer.id)
        suggestion = await suggested_address(session, pledge)
    assert suggestion is not None and suggestion["city"] == "广州"


# The job, the survey and the sweep


async def mails(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Mail]:
    async with sessions() as session:
        return list(await session.scalars(select(Mail).where(Mail.kind == kind).order_by(Mail.created_at)))


async def test_the_plan_job_plans_and_asks_each_backer_of_a_reward_for_an_address_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 4)
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, arranged.campaign_id)
        campaign.address_lock_at = LOCK_AT
        await insert_pledge(session, campaign, None)  # nothing to ship: no survey
        returning = await session.get_one(Pledge, kits[0])
        elsewhere = await insert_campaign(session)
        await insert_pledge(session, elsewhere, None, backer_id=returning.backer_id, given_address=address(city="广州"))
    sender = ListSender()

    await plan_campaign_job(lambda: unit_of_work(sessions, sender), str(arranged.campaign_id), survey_seconds=0)
    await plan_campaign_job(lambda: unit_of_work(sessions, sender), str(arranged.campaign_id), survey_seconds=0)

    assert len(await allocations(sessions, arranged.campaign_id)) == 4
    surveys = await mails(sessions, ADDRESS_SURVEY)
    assert sorted(m.facts["pledge_id"] for m in surveys) == sorted(str(k) for k in kits)
    assert surveys[0].facts["address_lock"] == LOCK_AT.isoformat()
    prefilled = {m.facts["pledge_id"]: m.facts["address"] for m in surveys}
    assert prefilled[str(kits[0])]["city"] == "广州" and prefilled[str(kits[1])] is None
    assert [job.actor_name for job in sender.jobs] == [DELIVER_MAIL] * 4


async def test_the_sweep_finds_campaigns_whose_plan_is_stale(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 3)
    sender = ListSender()

    async def stale() -> list[tuple[str, ...]]:
        async with unit_of_work(sessions, sender) as session:
            await replan_stale_campaigns(session)
        found = [job.args for job in sender.jobs]
        sender.jobs.clear()
        return found

    assert await stale() == [(str(arranged.campaign_id),)]
    async with sessions.begin() as session:
        await plan_campaign(session, arranged.campaign_id)
        await send_address_surveys(session, arranged.campaign_id, survey_seconds=0)
    assert await stale() == []
    await add_pledges(sessions, arranged, 1)
    assert await stale() == [(str(arranged.campaign_id),)]


async def test_one_reminder_goes_to_backers_still_without_an_address(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 3)
    async with sessions.begin() as session:
        await send_address_surveys(session, arranged.campaign_id, survey_seconds=0)
    await address_pledge(sessions, kits[0])

    async def remind() -> int:
        async with sessions.begin() as session:
            return await remind_missing_addresses(session, day_seconds=86400)

    assert await remind() == 0  # asked just now
    async with sessions.begin() as session:
        await session.execute(update(AddressRequest).values(surveyed_at=func.now() - timedelta(days=4)))
    assert await remind() == 2
    assert await remind() == 0
    reminded = await mails(sessions, ADDRESS_REMINDER)
    assert sorted(m.facts["pledge_id"] for m in reminded) == sorted(str(k) for k in kits[1:])


async def test_no_reminder_after_the_address_lock(sessions: async_sessionmaker[AsyncSession]) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 2)
    async with sessions.begin() as session:
        await send_address_surveys(session, arranged.campaign_id, survey_seconds=0)
        await session.execute(update(AddressRequest).values(surveyed_at=func.now() - timedelta(days=4)))
        await session.execute(
            update(Campaign).where(Campaign.id == arranged.campaign_id).values(address_lock_at=func.now())
        )
        assert await remind_missing_addresses(session, day_seconds=86400) == 0


async def test_after_the_lock_a_campaign_with_only_unaddressed_pledges_left_is_fulfilled(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 2)
    await plan(sessions, arranged.campaign_id)
    [batch] = await batches(sessions, arranged.campaign_id)
    await confirm(sessions, arranged, batch.id)
    async with sessions.begin() as session:
        assert await finish_fulfilled_campaigns(session) == 0
        await session.execute(
            update(Campaign)
            .where(Campaign.id == arranged.campaign_id)
            .values(address_lock_at=func.now() - timedelta(minutes=1))
        )
    async with sessions.begin() as session:
        assert await finish_fulfilled_campaigns(session) == 1
        campaign = await session.get_one(Campaign, arranged.campaign_id)
        assert campaign.status == "fulfilled"


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
@pytest.mark.parametrize("kind", ["address_survey", "address_reminder", "shipped"])
def test_the_fulfillment_mails_render_in_both_languages(kind: str, locale: str) -> None:
    facts = {
        "name": "李雷",
        "campaign_title": "Grove 传感器套件",
        "campaign_path": "/campaigns/grove",
        "pledge_id": str(uuid.uuid4()),
        "address_path": "/pledges/x/address",
        "address": address(),
        "address_given": False,
        "address_lock": "2027-01-15T12:00:00+00:00",
        "carrier": "顺丰速运",
        "tracking_number": "SF1234567890",
        "corrected": False,
    }
    mail = Mail(kind=kind, to_address="lilei@example.com", locale=locale, facts=facts)
    rendered = render_mail(mail_templates(dev=True), mail, base_url="https://kindling.example")
    assert rendered.subject and "Grove 传感器套件" in rendered.subject
    body = rendered.text
    if kind == "shipped":
        assert "SF1234567890" in body and "顺丰速运" in rendered.html
    else:
        assert "https://kindling.example/pledges/x/address" in body and "南山区科技园" in body
    if locale == "zh_CN":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rendered.subject.replace("Grove 传感器套件", ""))


# Scale


async def test_twenty_thousand_pledges_plan_and_allocate_correctly(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange(sessions)
    kits = await add_pledges(sessions, arranged, 14_000)
    pairs = await add_pledges(sessions, arranged, 6_000, pair=True)

    await plan(sessions, arranged.campaign_id)
    await plan(sessions, arranged.campaign_id)

    planned = await batches(sessions, arranged.campaign_id)
    allocated = await allocations(sessions, arranged.campaign_id)
    assert len(allocated) == 20_000 and set(allocated) == set(kits) | set(pairs)
    assert all(made_within_batch_size(b, {"BOARD": 100, "CASE": 60}) for b in planned)
    units = Counter[str]()
    for batch in planned:
        units.update(batch.units)
    assert units == {"BOARD": 14_000 + 2 * 6_000, "CASE": 14_000}
    assert [b.number for b in planned] == list(range(1, len(planned) + 1))
    # Earliest first: batch numbers never go down along the arrival order.
    number = {b.id: b.number for b in planned}
    along_arrival = [number[allocated[p].batch_id] for p in kits + pairs]
    assert along_arrival == sorted(along_arrival)


async def test_a_campaign_that_cannot_be_planned_still_asks_for_addresses_and_refuses_confirmation(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    arranged = await arrange(sessions)
    await add_pledges(sessions, arranged, 2)
    await plan(sessions, arranged.campaign_id)
    [batch] = await batches(sessions, arranged.campaign_id)
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, arranged.campaign_id)
        crate = await insert_tier(session, campaign, {"BOARD": 200}, title="A crate of boards")  # one batch makes 95
        await insert_pledge(session, campaign, crate)

    await plan_campaign_job(lambda: unit_of_work(sessions, ListSender()), str(arranged.campaign_id), survey_seconds=0)

    assert "cannot be planned" in caplog.text
    assert len(await mails(sessions, ADDRESS_SURVEY)) == 3
    with pytest.raises(Exception, match="200 × BOARD") as refused:
        await confirm(sessions, arranged, batch.id)
    assert getattr(refused.value, "type", None) == "pledge-larger-than-batch"


def test_the_sweep_runs_the_fulfillment_steps() -> None:
    from service.sweep import sweep_steps

    assert {"fulfillment-plans", "address-reminders", "fulfilled-campaigns"} <= set(sweep_steps())
