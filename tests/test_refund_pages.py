"""The sponsoring space's refunds pages: the collected pledges with what is left of each, and a refund of one pledge
that says what will happen and asks once more before it is made, in English and Chinese."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.gateway import StripeGateway
from payments.models import Refund
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.money_helpers import amount_refunded_at_stripe, run_jobs, stripe_work
from tests.test_money_pages import csrf_from, logged_in
from tests.test_suspension import PAIR, funded_campaign


async def refunds_of(sessions: async_sessionmaker[AsyncSession], pledge_id: str) -> list[Refund]:
    async with sessions() as session:
        return list(await session.scalars(select(Refund).where(Refund.pledge_id == uuid.UUID(pledge_id))))


async def test_an_operator_refunds_a_pledge_from_the_page_after_saying_yes_once_more(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0, 0]
    )
    backing = backings[0]
    listing = f"/operator/campaigns/{campaign['slug']}/refunds"
    form_page = f"/operator/campaigns/{campaign['slug']}/pledges/{backing.id}/refund"
    async with logged_in(stripe_client, operator) as browser:
        page = await browser.get(listing)
        assert page.status_code == 200, page.text
        assert form_page in page.text and backing.backer.email in page.text

        typo = await browser.post(
            form_page, data={"csrf_token": await csrf_from(browser, form_page), "amount": "12.345", "reason": "x"}
        )
        assert typo.status_code == 422 and "field-amount-error" in typo.text
        too_much = await browser.post(
            form_page, data={"csrf_token": await csrf_from(browser, form_page), "amount": "9999", "reason": "x"}
        )
        assert too_much.status_code == 422 and "field-amount-error" in too_much.text
        no_reason = await browser.post(
            form_page, data={"csrf_token": await csrf_from(browser, form_page), "amount": "50", "reason": " "}
        )
        assert no_reason.status_code == 422 and "field-reason-error" in no_reason.text

        asked = await browser.post(
            form_page,
            data={"csrf_token": await csrf_from(browser, form_page), "amount": "50.00", "reason": "A cracked cup."},
        )
        assert asked.status_code == 200, asked.text
        assert "cannot be undone" in asked.text and 'name="confirmed" value="yes"' in asked.text
        assert await refunds_of(sessions, backing.id) == [], "nothing is refunded before the second yes"

        made = await browser.post(
            form_page,
            data={
                "csrf_token": await csrf_from(browser, form_page),
                "amount": "50.00",
                "reason": "A cracked cup.",
                "confirmed": "yes",
            },
        )
        assert made.status_code == 303 and made.headers["location"] == listing + "?done=refunded"
        [refund] = await refunds_of(sessions, backing.id)
        assert (refund.amount, refund.reason, refund.requested_by) == (5_000, "A cracked cup.", uuid.UUID(operator.id))

        async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
            await run_jobs(work, jobs)
        assert await amount_refunded_at_stripe(stripe_server, backing.id) == 5_000
        after = await browser.get(listing + "?done=refunded")
        assert "A cracked cup." in after.text

        rest = await browser.post(
            form_page,
            data={"csrf_token": await csrf_from(browser, form_page), "reason": "All of it.", "confirmed": "yes"},
        )
        assert rest.status_code == 303
        assert sorted(r.amount for r in await refunds_of(sessions, backing.id)) == [5_000, PAIR - 5_000]
        nothing = await browser.post(
            form_page,
            data={"csrf_token": await csrf_from(browser, form_page), "reason": "Again.", "confirmed": "yes"},
        )
        assert nothing.status_code == 409 and "Nothing is left to refund" in nothing.text

        chinese = await browser.get(
            f"/operator/campaigns/{campaign['slug']}/pledges/{backings[1].id}/refund?lang=zh_CN"
        )
        assert chinese.status_code == 200 and "退款" in chinese.text
        asked_in_chinese = await browser.post(
            f"/operator/campaigns/{campaign['slug']}/pledges/{backings[1].id}/refund?lang=zh_CN",
            data={"csrf_token": await csrf_from(browser, listing), "reason": "破损"},
        )
        assert asked_in_chinese.status_code == 200 and "退款无法撤销" in asked_in_chinese.text
