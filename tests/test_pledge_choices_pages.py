"""The public pledge form with a lamp in colours and add-ons, without JavaScript: the choices are shown, the server's
total is reviewed with "Update total", and the card page shows what was chosen; in English and Chinese."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.extras_helpers import lamp_campaign, units_left
from tests.helpers import sign_up
from tests.pages import log_in, new_browser


async def test_a_backer_picks_a_colour_and_cables_reviews_the_servers_total_and_goes_on_to_the_card(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, cable_limit=5)
    slug = lamp.json["slug"]
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    url = f"/campaigns/{slug}/back"

    page = await stripe_client.get(url)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Choose your options" in text and f'name="variant.{lamp.lamp}.colour" value="black"' in text
    assert "Spare cable" in text and f'name="addon.{lamp.cable}"' in text and "5 left" in text
    assert "Only with: Lamp." in text and "Ships only with a reward." in text

    base = {"csrf_token": token, "tier": lamp.lamp_tier, "bonus": "", "shipping_country": "CN"}
    # No colour: the form again, with the message beside the lamp, and nothing made.
    missing = await stripe_client.post(url, data=base | {"action": "pledge", f"addon.{lamp.cable}": "2"})
    assert missing.status_code == 422
    assert "Choose the colour of Desk lamp." in html.unescape(missing.text)
    too_many = await stripe_client.post(url, data=base | {"action": "update", f"addon.{lamp.cable}": "²"})
    assert too_many.status_code == 422 and "Enter a number from 0 to 20." in too_many.text
    abroad = base | {"action": "update", "shipping_country": "US", f"variant.{lamp.lamp}.colour": "black"}
    refused = await stripe_client.post(url, data=abroad | {f"addon.{lamp.cable}": "1"})
    assert refused.status_code == 422
    assert "Something you chose does not ship to United States." in html.unescape(refused.text)

    # The review: 199.00 + 2 × 29.00 + shipping 10.00 + 2 × 5.00 = 277.00, computed by the server.
    chosen = base | {f"variant.{lamp.lamp}.colour": "black", f"addon.{lamp.cable}": "2"}
    review = await stripe_client.post(url, data=chosen | {"action": "update"})
    assert review.status_code == 200
    summary = re.sub(r"\s+", " ", html.unescape(review.text))
    assert re.search(r'data-summary="add_ons">CN¥58\.00<', summary), summary
    assert re.search(r'data-summary="shipping">CN¥20\.00<', summary)
    assert re.search(r'data-summary="total" aria-live="polite">CN¥277\.00<', summary)
    assert 'value="black" checked' in summary and f'name="addon.{lamp.cable}" type="number"' in summary
    assert await units_left(sessions, lamp) == {"black": None, "cable": 5, "tier": None}

    made = await stripe_client.post(url, data=chosen | {"action": "pledge"})
    assert made.status_code == 303, made.text
    card = await stripe_client.get(made.headers["location"])
    figures = re.sub(r"\s+", " ", html.unescape(card.text))
    assert "Desk lamp (black)" in figures and "2 × Spare cable" in figures
    assert "CN¥58.00" in figures and "CN¥277.00" in figures
    assert await units_left(sessions, lamp) == {"black": None, "cable": 3, "tier": None}

    # A bonus added on the pledge page, whose pickers show the lamp's colour and the cables, keeps them.
    pledge_id = made.headers["location"].split("/")[3]
    shown = html.unescape((await stripe_client.get(f"/me/pledges/{pledge_id}")).text)
    assert 'value="black" checked' in shown and re.search(rf'name="addon.{lamp.cable}"[^>]* value="2"', shown)
    changed = await stripe_client.post(
        f"/me/pledges/{pledge_id}/change",
        data=chosen | {"csrf_token": token, "bonus": "10", "action": "change"},
    )
    assert changed.status_code == 303, changed.text
    page = re.sub(r"\s+", " ", html.unescape((await stripe_client.get(f"/me/pledges/{pledge_id}")).text))
    assert "Desk lamp (black)" in page and "2 × Spare cable" in page and "CN¥287.00" in page
    assert await units_left(sessions, lamp) == {"black": None, "cable": 3, "tier": None}

    # In Chinese, for another backer: the same choices, the messages in Chinese.
    async with new_browser(stripe_client) as browser:
        token = await log_in(browser, await sign_up(stripe_client, "Li"))
        chinese = await browser.get(url + "?lang=zh_CN")
        assert "选择款式" in chinese.text and "仅可搭配：Lamp。" in chinese.text and "剩余 3 件" in chinese.text
        unchosen = await browser.post(url, data=base | {"csrf_token": token, "action": "update"})
        assert unchosen.status_code == 422 and "请选择Desk lamp的colour。" in html.unescape(unchosen.text)
