"""The pledge manager page, as a browser without JavaScript uses it, in English and in Chinese."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.gateway import StripeGateway
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import many_backers
from tests.pages import log_in, new_browser, post_form
from tests.pledge_manager_helpers import A, back_lamp, fund, launched_shop


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ("Pledge manager", "Visa ending in 4242", "Pay for this add-on now?", "Your card ending 4242")),
        ("zh-CN", ("支持管理", "Visa，尾号 4242", "现在支付这个附加商品吗？", "你尾号 4242 的卡")),
    ],
)
async def test_after_funding_a_backer_picks_a_colour_and_pays_for_an_add_on_in_the_manager_after_being_asked_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
    language: str,
    words: tuple[str, str, str, str],
) -> None:
    shop = await launched_shop(stripe_client, sessions)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    manage = f"/me/pledges/{pledge['id']}/manage"
    title, card, question, charged = words

    async with new_browser(stripe_client) as browser:
        browser.headers["accept-language"] = language
        await log_in(browser, backer)
        detail = await browser.get(f"/me/pledges/{pledge['id']}")
        assert f'href="{manage}"' in detail.text
        page = await browser.get(manage)
        assert page.status_code == 200, page.text
        assert title in page.text and card in page.text
        assert "CABLE" not in re.sub(r"<form.*?</form>", "", page.text, flags=re.S).split("data-contents")[-1]

        chosen = await post_form(
            browser,
            f"{manage}/variants",
            {f"variant:{shop.lamp['id']}:colour": "white"},
            form_page=manage,
        )
        assert chosen.status_code == 303, chosen.text
        after = await browser.get(chosen.headers["location"])
        assert "LAMP-WHT" in after.text

        asked = await post_form(
            browser, f"{manage}/add-ons", {"add_on_id": shop.cable["id"], "quantity": "1"}, form_page=manage
        )
        assert asked.status_code == 200 and question in asked.text and charged in asked.text, asked.text
        assert "34.00" in asked.text  # 29.00 and 5.00 shipping
        shown = await browser.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)
        assert [item["kind"] for item in shown.json()["items"]] == ["tier", "shipping"], "nothing before the yes"

        paid = await post_form(
            browser,
            f"{manage}/add-ons",
            {"add_on_id": shop.cable["id"], "quantity": "1", "confirm": "yes"},
            form_page=manage,
        )
        assert paid.status_code == 303, paid.text
        done = await browser.get(paid.headers["location"])
        assert "CABLE" in done.text.split("data-contents")[-1]
        shown = await browser.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)
        assert [item["sku"] for item in shown.json()["items"]][-1] == "CABLE"
