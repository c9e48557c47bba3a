"""The pledge page's change form (while the campaign is live) has the reward page's pickers: the colour of the
reward's lamp and the add-ons' quantities and colours, priced by the server ("Update total", no JavaScript); the
pledge manager has a colour picker for each add-on line."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AddOn, ProductVariant
from service.devservices import EmbeddedStripe
from tests.helpers import many_backers
from tests.pages import logged_in, post_form
from tests.pledge_manager_helpers import CABLE_PRICE, CABLE_SHIPPING_CN, LAMP_PRICE, A, back_lamp, launched_shop

LAMP_SHIPPING_CN, SHADE_PRICE = 1_000, 1_900


def total_shown(page: str) -> str:
    found = re.search(r'data-summary="total"[^>]*>\s*([^<]*?)\s*<', page)
    assert found is not None, page
    return found.group(1)


def add_ons_of(pledge: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((item["sku"], item["quantity"]) for item in pledge["items"] if item["kind"] == "addon")


async def remaining(sessions: async_sessionmaker[AsyncSession], model: Any, row_id: str) -> int | None:
    async with sessions() as session:
        return (await session.get_one(model, uuid.UUID(row_id))).remaining  # type: ignore[no-any-return]


async def test_a_backer_changes_colour_and_add_ons_on_the_pledge_page_and_recolours_add_on_lines_in_the_manager(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=5, white_limit=2)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer, colour="black")
    api = f"{A}/pledges/{pledge['id']}"
    shade_added = await stripe_client.post(
        f"{api}/items", json={"add_on_id": shop.shade["id"], "variant": {"colour": "black"}}, headers=backer.headers
    )
    assert shade_added.status_code == 201, shade_added.text
    before = (await stripe_client.get(api, headers=backer.headers)).json()
    assert before["amount"] == LAMP_PRICE + LAMP_SHIPPING_CN + SHADE_PRICE
    page_path, change = f"/me/pledges/{pledge['id']}", f"/me/pledges/{pledge['id']}/change"
    lamp_field, shade, cable = (
        f"variant.{shop.lamp['id']}.colour",
        f"addon.{shop.shade['id']}",
        f"addon.{shop.cable['id']}",
    )
    form = {"tier": shop.tier_id, "bonus": "", "shipping_country": "CN", lamp_field: "black", shade: "1"}
    form[f"{shade}.colour"] = "black"

    async with logged_in(stripe_client, backer) as browser:
        # The form shows the pledge as it is: the lamp's colour, the shade's quantity and colour, its total.
        page = (await browser.get(page_path)).text
        assert re.search(rf'name="{re.escape(lamp_field)}" value="black" checked', page), page
        assert re.search(rf'id="field-{re.escape(shade)}" name="{re.escape(shade)}"[^>]* value="1"', page)
        assert re.search(r'<option value="black" selected>black</option>', page)
        assert "428.00" in total_shown(page)  # 399.00 + 10.00 shipping + the 19.00 shade

        # "Update total" prices two cables with their shipping, and saves nothing.
        updated = await post_form(browser, change, form | {cable: "2", "action": "update"}, form_page=page_path)
        assert updated.status_code == 200, updated.text
        expected = LAMP_PRICE + LAMP_SHIPPING_CN + SHADE_PRICE + 2 * (CABLE_PRICE + CABLE_SHIPPING_CN)
        assert f"{expected // 100}.00" in total_shown(updated.text)
        assert (await stripe_client.get(api, headers=backer.headers)).json() == before

        # An add-on without its colour is shown again with the message, and nothing changes.
        unchosen = await post_form(
            browser, change, form | {f"{shade}.colour": "", "action": "change"}, form_page=page_path
        )
        assert unchosen.status_code == 422 and "Choose the colour of Shade." in unchosen.text, unchosen.text
        assert (await stripe_client.get(api, headers=backer.headers)).json() == before

        # Saved: a white lamp, no shade, one cable; the units follow exactly.
        saved = await post_form(
            browser,
            change,
            form | {lamp_field: "white", shade: "0", cable: "1", "action": "change"},
            form_page=page_path,
        )
        assert saved.status_code == 303, saved.text
        after = (await stripe_client.get(api, headers=backer.headers)).json()
        assert after["amount"] == LAMP_PRICE + LAMP_SHIPPING_CN + CABLE_PRICE + CABLE_SHIPPING_CN
        assert add_ons_of(after) == [("CABLE", 1)]
        assert after["items"][0]["variant"] == {shop.lamp["id"]: {"colour": "white"}}
        assert await remaining(sessions, ProductVariant, shop.variants["white"]["id"]) == 1
        assert await remaining(sessions, AddOn, shop.cable["id"]) == 4

        # In Chinese the pickers read in Chinese.
        chinese = (await browser.get(f"{page_path}?lang=zh_CN")).text
        assert "选择款式" in chinese and "附加商品" in chinese
        await browser.get(f"{page_path}?lang=en")

        # A shade in two colours (added in the pledge manager) stays two lines when the form's shade is left as
        # shown and only the bonus changes.
        for colour in ("black", "white"):
            added = await stripe_client.post(
                f"{api}/items",
                json={"add_on_id": shop.shade["id"], "variant": {"colour": colour}},
                headers=backer.headers,
            )
            assert added.status_code == 201, added.text
        page = (await browser.get(page_path)).text
        assert re.search(rf'id="field-{re.escape(shade)}" name="{re.escape(shade)}"[^>]* value="2"', page)
        shown = {lamp_field: "white", shade: "2", f"{shade}.colour": "white", cable: "1"}
        kept = await post_form(
            browser,
            change,
            {"tier": shop.tier_id, "bonus": "5", "shipping_country": "CN", **shown, "action": "change"},
            form_page=page_path,
        )
        assert kept.status_code == 303, kept.text
        final = (await stripe_client.get(api, headers=backer.headers)).json()
        assert add_ons_of(final) == [("CABLE", 1), ("SHADE-BLC", 1), ("SHADE-WHT", 1)]
        assert final["bonus"] == 500

        # More cables than are left (5, counting the one this pledge holds): refused whole, nothing changes.
        greedy = await post_form(
            browser,
            change,
            {"tier": shop.tier_id, "bonus": "5", "shipping_country": "CN", **shown, cable: "6", "action": "change"},
            form_page=page_path,
        )
        assert greedy.status_code == 409 and "nothing was changed" in greedy.text, greedy.text
        assert (await stripe_client.get(api, headers=backer.headers)).json() == final
        assert await remaining(sessions, AddOn, shop.cable["id"]) == 4

        # The maker limits cables to the one this pledge holds: none left for others, but its own is no sold-out
        # (disabled, so never sent) field, and the pledge keeps it when saved.
        async with sessions.begin() as session:
            await session.execute(
                update(AddOn).where(AddOn.id == uuid.UUID(shop.cable["id"])).values(quantity_limit=1, remaining=0)
            )
        page = (await browser.get(page_path)).text
        own_cable = re.search(rf'<input id="field-{re.escape(cable)}"[^>]*>', page)
        assert own_cable is not None and "disabled" not in own_cable.group(0) and 'max="1"' in own_cable.group(0)
        resaved = await post_form(
            browser,
            change,
            {"tier": shop.tier_id, "bonus": "6", "shipping_country": "CN", **shown, "action": "change"},
            form_page=page_path,
        )
        assert resaved.status_code == 303, resaved.text
        final = (await stripe_client.get(api, headers=backer.headers)).json()
        assert add_ons_of(final) == [("CABLE", 1), ("SHADE-BLC", 1), ("SHADE-WHT", 1)] and final["bonus"] == 600
        assert await remaining(sessions, AddOn, shop.cable["id"]) == 0

        # In the pledge manager each shade line has its own colour picker: the white one becomes black.
        manage = f"/me/pledges/{pledge['id']}/manage"
        lines = {item["sku"]: item["id"] for item in final["items"] if item["kind"] == "addon"}
        page = (await browser.get(manage)).text
        for sku, colour in (("SHADE-BLC", "black"), ("SHADE-WHT", "white")):
            picker = f'name="line:{lines[sku]}:colour"'
            assert re.search(rf'{picker}.*?<option value="{colour}" selected>', page, flags=re.S), page
        assert f"line:{lines['CABLE']}:" not in page  # a cable has no options
        recoloured = await post_form(
            browser,
            f"{manage}/variants",
            {
                f"variant:{shop.lamp['id']}:colour": "white",
                f"line:{lines['SHADE-BLC']}:colour": "black",
                f"line:{lines['SHADE-WHT']}:colour": "black",
            },
            form_page=manage,
        )
        assert recoloured.status_code == 303, recoloured.text
        shown = (await stripe_client.get(api, headers=backer.headers)).json()
        assert add_ons_of(shown) == [("CABLE", 1), ("SHADE-BLC", 1), ("SHADE-BLC", 1)]
        assert shown["amount"] == final["amount"]
        wrong = await post_form(
            browser, f"{manage}/variants", {f"line:{lines['SHADE-WHT']}:colour": "purple"}, form_page=manage
        )
        assert wrong.status_code == 422 and "Choose one of each option." in wrong.text
        assert (await stripe_client.get(api, headers=backer.headers)).json() == shown
