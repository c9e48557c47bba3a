"""Two-factor for those who hold money: TOTP codes from an authenticator app (computed here from the secret, as the
app does), one-time recovery codes, and operators and admins refused until they have set it up."""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from itsdangerous import TimestampSigner
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import RecoveryCode, User
from service.settings import Settings
from tests.account_helpers import log_in_form as log_in_with
from tests.account_helpers import mailed_link, new_browser, post_form
from tests.helpers import (
    CHECKLIST_ALL_TRUE,
    PASSWORD,
    Actor,
    Inbox,
    create_space,
    drafted_campaign,
    enrol_two_factor_by_api,
    make_admin,
    sign_up,
)

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


async def token_with(client: httpx.AsyncClient, actor: Actor, otp: str | None = None) -> httpx.Response:
    body = {"email": actor.email, "password": PASSWORD} | ({"otp": otp} if otp is not None else {})
    return await client.post("/api/v1/tokens", json=body)


def code_at(secret: str, steps_from_now: int) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


async def test_an_operator_sets_up_two_factor_and_then_logs_in_only_with_a_fresh_code(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    olga = await sign_up(client, "Olga")
    started = await client.post("/api/v1/me/two-factor", headers=olga.headers)
    assert started.status_code == 201, started.text
    secret, uri = started.json()["secret"], started.json()["otpauth_uri"]
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert parse_qs(parts.query)["secret"] == [secret] and parse_qs(parts.query)["issuer"] == ["Kindling"]
    assert (await token_with(client, olga)).status_code == 201, "not active until confirmed"

    wrong = await client.post("/api/v1/me/two-factor/confirm", json={"code": "000000"}, headers=olga.headers)
    assert wrong.status_code == 422 and [e["field"] for e in wrong.json()["errors"]] == ["code"]
    assert (await client.get("/api/v1/me", headers=olga.headers)).json()["two_factor"] is False

    first = pyotp.TOTP(secret).now()
    confirmed = await client.post("/api/v1/me/two-factor/confirm", json={"code": first}, headers=olga.headers)
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await client.get("/api/v1/me", headers=olga.headers)).json()["two_factor"] is True
    async with sessions() as session:
        kept = list(await session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == olga.id)))
    assert len(kept) == 10 and not set(codes) & set(kept), "only hashes are kept"
    again = await client.post("/api/v1/me/two-factor", headers=olga.headers)
    assert again.status_code == 409 and again.json()["type"] == "two-factor-active"

    # The code used to confirm is spent: that very code (the app's code of this moment would be a new one once the
    # clock passes into the next 30 s step, as it may on a loaded machine, and rightly taken).
    for otp in (None, "", "123456", first):
        refused = await token_with(client, olga, otp)
        assert refused.status_code == 401 and refused.json()["type"] == "two-factor-required", otp
    later = code_at(secret, 1)
    assert (await token_with(client, olga, later)).status_code == 201
    assert (await token_with(client, olga, later)).status_code == 401, "a code is taken once"

    assert (await token_with(client, olga, codes[0].upper())).status_code == 201
    assert (await token_with(client, olga, codes[0])).status_code == 401, "a recovery code is taken once"
    assert (await token_with(client, olga, codes[1].replace("-", ""))).status_code == 201


async def test_operators_and_admins_act_only_once_they_have_two_factor(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await sign_up(client, "Admin")
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.email == admin.email).values(is_admin=True))
    body = {"name": "Hackerspace", "slug": "hackerspace", "city": "Shanghai", "country": "CN", "sponsor_fee_bps": 100}
    refused = await client.post("/api/v1/spaces", json=body, headers=admin.headers)
    assert refused.status_code == 403 and refused.json()["type"] == "two-factor-setup-required"
    assert (await client.get("/api/v1/spaces")).json()["items"] == []

    await make_admin(sessions, admin)
    space = await create_space(client, admin)
    operator = await sign_up(client, "Olu")
    named = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert named.status_code == 201
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    assert (await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)).status_code == 200

    review = {"decision": "approve", "notes": "", "checklist": CHECKLIST_ALL_TRUE}
    url = f"/api/v1/campaigns/{campaign['id']}/review"
    refused = await client.post(url, json=review, headers=operator.headers)
    assert refused.status_code == 403 and refused.json()["type"] == "two-factor-setup-required"
    audit = await client.get("/api/v1/audit", headers=operator.headers)
    assert audit.status_code == 403 and audit.json()["type"] == "two-factor-setup-required"
    stranger = await sign_up(client, "Stranger")
    not_theirs = await client.post(url, json=review, headers=stranger.headers)
    assert not_theirs.status_code == 404, "who is no operator learns nothing of two-factor"

    await enrol_two_factor_by_api(client, operator)
    approved = await client.post(url, json=review, headers=operator.headers)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"


async def log_in_form(browser: httpx.AsyncClient, actor: Actor) -> httpx.Response:
    page = await browser.get("/login")
    token = CSRF_INPUT.search(page.text)
    assert token
    return await browser.post("/login", data={"csrf_token": token.group(1), "email": actor.email, "password": PASSWORD})


async def test_the_log_in_page_asks_for_the_code_as_a_second_step(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    olga = await enrol_two_factor_by_api(client, await sign_up(client, "Olga"))
    assert olga.totp_secret is not None
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver") as browser:
        step = await log_in_form(browser, olga)
        assert step.status_code == 200 and 'action="/login/code"' in step.text
        assert 'autocomplete="one-time-code"' in step.text
        assert (await browser.get("/me/pledges")).status_code == 303, "not logged in before the code"
        token = CSRF_INPUT.search(step.text)
        assert token
        wrong = await browser.post("/login/code", data={"csrf_token": token.group(1), "code": "000000"})
        assert wrong.status_code == 401 and "That code is wrong or was used already." in wrong.text
        empty = await browser.post("/login/code", data={"csrf_token": token.group(1), "code": ""})
        assert empty.status_code == 422 and 'id="field-code-error"' in empty.text
        right = await browser.post(
            "/login/code", data={"csrf_token": token.group(1), "code": code_at(olga.totp_secret, 1)}
        )
        assert right.status_code == 303
        assert (await browser.get("/me/pledges")).status_code == 200

    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver", headers={"Accept-Language": "zh-CN"}
    ) as browser:
        step = await log_in_form(browser, olga)
        assert step.status_code == 200 and "验证码" in step.text
        token = CSRF_INPUT.search(step.text)
        assert token
        recovered = await browser.post(
            "/login/code", data={"csrf_token": token.group(1), "code": olga.recovery_codes[0]}
        )
        assert recovered.status_code == 303


async def test_an_operator_without_two_factor_is_led_to_its_set_up_page(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await sign_up(client, "Olu")
    named = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert named.status_code == 201
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver") as browser:
        assert (await log_in_form(browser, operator)).status_code == 303
        queue = await browser.get("/operator")
        assert "data-two-factor-banner" in queue.text and 'href="/me/two-factor"' in queue.text
        audit = await browser.get("/audit")
        assert audit.status_code == 403 and 'class="btn btn-primary" href="/me/two-factor"' in audit.text

        setup = await browser.get("/me/two-factor")
        token = CSRF_INPUT.search(setup.text)
        assert token
        started = await browser.post("/me/two-factor/start", data={"csrf_token": token.group(1)})
        assert started.status_code == 303
        page = await browser.get("/me/two-factor")
        assert "<svg" in page.text and "data-two-factor-banner" not in page.text
        found = re.search(r"data-totp-secret>([A-Z2-7]+)<", page.text)
        assert found
        wrong = await browser.post("/me/two-factor/confirm", data={"csrf_token": token.group(1), "code": "000000"})
        assert wrong.status_code == 422 and 'id="field-code-error"' in wrong.text
        done = await browser.post(
            "/me/two-factor/confirm", data={"csrf_token": token.group(1), "code": pyotp.TOTP(found.group(1)).now()}
        )
        assert done.status_code == 200
        assert len(re.findall(r"<li><code>[a-z2-9]{5}-[a-z2-9]{5}</code></li>", done.text)) == 10
        audit = await browser.get("/audit")
        assert audit.status_code == 200 and "Added an operator" in audit.text


async def test_a_reset_password_still_asks_for_the_code_and_the_code_step_expires(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    olga = await enrol_two_factor_by_api(client, await sign_up(client, "Olga"))
    new_password = "a brand new passphrase"
    async with new_browser(client) as browser:
        await post_form(browser, "/forgot-password", {"email": olga.email}, form_page="/forgot-password")
        link = await mailed_link(sessions, settings, smtp_inbox, olga.email, "/reset-password/")
        saved = await post_form(browser, link, {"password": new_password}, form_page=link)
        assert saved.status_code == 303 and saved.headers["location"] == "/login?done=password-reset"
        assert (await browser.get("/me/pledges")).status_code == 303, "a reset signs nobody in"

        step = await log_in_with(browser, olga.email, new_password)
        assert step.status_code == 200 and 'action="/login/code"' in step.text
        assert (await browser.get("/me/pledges")).status_code == 303, "not logged in before the code"
        token = CSRF_INPUT.search(step.text)
        assert token
        api_token = await client.post("/api/v1/tokens", json={"email": olga.email, "password": new_password})
        assert api_token.status_code == 401 and api_token.json()["type"] == "two-factor-required"

        # The code step waits five minutes: a browser whose password step was longer ago is asked to log in again.
        late_step = {"csrf": "late-token", "code_step": {"user_id": olga.id, "until": int(time.time()) - 1}}
        browser.cookies.clear()
        browser.cookies.set("kindling_session", signed_session(settings, late_step))
        late = await browser.post("/login/code", data={"csrf_token": "late-token", "code": olga.recovery_codes[0]})
        assert late.status_code == 401 and "That took too long. Please log in again." in late.text
        assert (await browser.get("/me/pledges")).status_code == 303


def signed_session(settings: Settings, data: dict[str, object]) -> str:
    """A session cookie as Starlette's SessionMiddleware signs it with the site's key."""
    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(str(settings.secret_key)).sign(payload).decode()
