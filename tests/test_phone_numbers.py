"""Phone numbers on shipping addresses: taken only when they are phone numbers, and given to the carrier as typed."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from campaigns.phones import is_phone_number
from tests.factories import address
from tests.money_helpers import pledge_row
from tests.pages import logged_in, post_form
from tests.test_fulfillment_api import batches_of, give_address, open_shop, plan, shipping_list

NOT_PHONE_NUMBERS = ["=1+1", "+1 555 CALL NOW", "-1 555 0100", "12", "+", "()", "555.0100", "+1 555 0100 ext. 4"]


async def test_a_phone_number_goes_to_the_carrier_as_typed_and_every_free_text_cell_stays_escaped(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=2)
    tokyo = {"name": '=HYPERLINK("http://evil.example")', "line2": "+cmd|' /C calc'!A0", "phone": "+81 3 1234 5678"}
    assert (await give_address(client, shop, 0, **tokyo)).status_code == 200
    assert (await give_address(client, shop, 1, phone="(020) 7946-0000")).status_code == 200
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)

    rows = {row["pledge_id"]: row for row in await shipping_list(client, shop, batch["id"])}

    first, second = (rows[pledge_id] for pledge_id in shop.pledge_ids)
    assert first["phone"] == "+81 3 1234 5678"
    assert (first["name"], first["line2"]) == ('\'=HYPERLINK("http://evil.example")', "'+cmd|' /C calc'!A0")
    assert second["phone"] == "(020) 7946-0000"


async def test_a_phone_kept_from_before_the_rule_is_still_escaped_in_the_list(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=2)
    # Addresses given before phone numbers were checked could hold anything in the field.
    async with sessions.begin() as session:
        for pledge_id, phone in zip(shop.pledge_ids, ["=2+3", "-1 (555) 0100"], strict=True):
            await session.execute(
                update(Pledge).where(Pledge.id == uuid.UUID(pledge_id)).values(address=address(phone=phone))
            )
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)

    rows = {row["pledge_id"]: row for row in await shipping_list(client, shop, batch["id"])}

    assert [rows[pledge_id]["phone"] for pledge_id in shop.pledge_ids] == ["'=2+3", "'-1 (555) 0100"]


@pytest.mark.parametrize("phone", NOT_PHONE_NUMBERS)
async def test_what_is_not_a_phone_number_is_refused_naming_phone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], phone: str
) -> None:
    shop = await open_shop(client, sessions, backers=1)

    refused = await give_address(client, shop, 0, phone=phone)

    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["phone"]
    assert "5 to 20 digits" in refused.json()["errors"][0]["message"]
    assert (await pledge_row(sessions, shop.pledge_ids[0])).address is None


def test_phone_numbers_as_backers_type_them_are_taken() -> None:
    for phone in ["+81 3 1234 5678", "(020) 7946-0000", "13800138000", "+1 (555) 010-0199", "+86 755 1234 5678"]:
        assert is_phone_number(phone), phone
    for phone in NOT_PHONE_NUMBERS:
        assert not is_phone_number(phone), phone
    assert not is_phone_number("1" * 21) and not is_phone_number("+1 " + "2 " * 19)


async def test_the_address_form_shows_the_phone_message_again_and_keeps_what_was_typed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=1)
    pledge_page = f"/me/pledges/{shop.pledge_ids[0]}"
    form = {**address(), "phone": "-1 555 0100"}

    async with logged_in(client, shop.backers[0]) as browser:
        refused = await post_form(browser, f"{pledge_page}/address", form, form_page=pledge_page)
        chinese = await post_form(browser, f"{pledge_page}/address?lang=zh_CN", form, form_page=pledge_page)

    assert refused.status_code == 422
    assert "A phone number has 5 to 20 digits: use digits, spaces and + ( ) - only." in refused.text
    assert 'value="-1 555 0100"' in refused.text and 'value="南山区科技园深南大道 9988 号"' in refused.text
    assert chinese.status_code == 422 and "电话号码应有 5 到 20 位数字" in chinese.text
    assert (await pledge_row(sessions, shop.pledge_ids[0])).address is None
