"""What fuzzing the API (tests/test_api_fuzz.py) found, each pinned by the smallest request that showed it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.problems import PROBLEM_CONTENT_TYPE
from tests.helpers import LOCK_AT, PASSWORD, SHENZHEN, create_campaign, create_space, make_admin, sign_up


async def documented_statuses(client: httpx.AsyncClient, method: str, path: str) -> set[int]:
    document = (await client.get("/api/v1/openapi.json")).json()
    return {int(status) for status in document["paths"]["/api/v1" + path][method.lower()]["responses"]}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def a_draft(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, dict[str, Any]]:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    return maker, await create_campaign(client, maker, space)


async def test_a_bad_idempotency_key_is_a_documented_422_on_every_idempotent_operation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Found on POST /campaigns/{id}/submit: the key's 422 was documented only where the operation also had a body.
    maker, campaign = await a_draft(client, sessions)
    for key in ("", "k" * 256):
        refused = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/submit", headers={**maker.headers, "Idempotency-Key": key}
        )
        assert problem(refused, 422)["errors"] == [
            {"field": "Idempotency-Key", "message": "must be 1 to 255 characters long"}
        ]
    # A key still in use by its first request is 409, whether the operation has a body or not.
    assert {409, 422} <= await documented_statuses(client, "POST", "/campaigns/{campaign_id}/submit")
    assert {409, 422} <= await documented_statuses(client, "POST", "/campaigns/{campaign_id}/launch")


async def test_a_wrong_password_is_a_documented_401(client: httpx.AsyncClient) -> None:
    ada = await sign_up(client, "Ada")
    wrong = await client.post("/api/v1/tokens", json={"email": ada.email, "password": PASSWORD + "!"})
    assert problem(wrong, 401)["type"] == "wrong-credentials"
    assert 401 in await documented_statuses(client, "POST", "/tokens")


async def test_a_malformed_upload_is_a_documented_400_problem(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Found on POST /campaigns/{id}/images: the form parser's 400 (here: more fields than an upload has) was not in the
    # document, and neither were 413 and 415, for operations whose body is not JSON.
    maker, campaign = await a_draft(client, sessions)
    crowded = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/images",
        data={f"field{n}": "x" for n in range(6)},
        files={"file": ("a.png", b"\x89PNG", "image/png")},
        headers=maker.headers,
    )
    assert "Too many fields" in problem(crowded, 400)["detail"]
    assert {400, 413, 415} <= await documented_statuses(client, "POST", "/campaigns/{campaign_id}/images")
    assert {400, 413, 415} <= await documented_statuses(client, "POST", "/campaigns/{campaign_id}/shipments")


async def test_a_number_is_not_taken_for_the_address_lock_time(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Found on PUT /campaigns/{id}/fulfillment-settings: -12573 was read as seconds since 1970, and the addresses of
    # the campaign locked in 1969. Numbers written as text were read the same way; a time without offset is ambiguous.
    maker, campaign = await a_draft(client, sessions)
    path = f"/api/v1/campaigns/{campaign['id']}/fulfillment-settings"
    for number in (-12573, 1_800_000_000, 1.5e9, "1800000000", "2027-01-31T16:00:00"):
        refused = await client.put(
            path, json={"address_lock_at": number, "packaging_weight_grams": 50}, headers=maker.headers
        )
        assert [e["field"] for e in problem(refused, 422)["errors"]] == ["address_lock_at"]
    written = await client.put(
        path,
        json={"address_lock_at": LOCK_AT.astimezone(SHENZHEN).isoformat(), "packaging_weight_grams": 50},
        headers=maker.headers,
    )
    assert written.status_code == 200, written.text
    assert written.json()["address_lock_at"] == f"{LOCK_AT:%Y-%m-%dT%H:%M:%S}Z"


async def test_a_malformed_content_length_is_a_documented_400_not_413(client: httpx.AsyncClient) -> None:
    # Found on POST /pledges/{id}/payment-method with `Content-Length: Xd.R`: the body limit called it too large.
    ada = await sign_up(client, "Ada")
    for path in ("/api/v1/me", "/api/v1/spaces"):
        malformed = await client.get(path, headers={**ada.headers, "Content-Length": "Xd.R"})
        assert problem(malformed, 400)["detail"] == "Content-Length must be a number of bytes."
    too_large = await client.get("/api/v1/spaces", headers={"Content-Length": str(9 * 1024 * 1024)})
    problem(too_large, 413)
    page = await client.get("/", headers={"Content-Length": "-1"})
    assert page.status_code == 400
    # Any request may meet the limit before it is routed, so every operation documents both.
    document = (await client.get("/api/v1/openapi.json")).json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert {"400", "413"} <= set(operation["responses"]), f"{method.upper()} {path}"


async def test_a_json_body_takes_numbers_and_booleans_only_as_json_numbers_and_booleans(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Found with the fuzzer's class of "schema-violating request accepted": where the document says integer, the API
    # also took "300", 300.0 and even true (a sponsor fee of 1 bps); money and shares must be JSON integers.
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    for n, fee in enumerate(("300", 300.0, True)):
        space = {
            "name": "Chaihuo",
            "slug": f"chaihuo-x{n}",
            "city": "Shenzhen",
            "country": "CN",
            "sponsor_fee_bps": fee,
        }
        refused = await client.post("/api/v1/spaces", json=space, headers=admin.headers)
        assert problem(refused, 422)["errors"] == [
            {"field": "sponsor_fee_bps", "message": "Input should be a valid integer"}
        ]
    space = await create_space(client, admin)
    plan = {"milestones": [{"name": "All at once", "share_bps": "10000", "unlocks_on": "funded"}]}
    refused = await client.put(f"/api/v1/spaces/{space['id']}/milestone-plan", json=plan, headers=admin.headers)
    assert [e["field"] for e in problem(refused, 422)["errors"]] == ["milestones.0.share_bps"]
    # JSON's own types still go through, with ids and times as the strings JSON has for them.
    plan["milestones"][0]["share_bps"] = 10000
    accepted = await client.put(f"/api/v1/spaces/{space['id']}/milestone-plan", json=plan, headers=admin.headers)
    assert accepted.status_code == 200, accepted.text
    maker, campaign = await a_draft(client, sessions)
    accepted = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}", json={"space_id": space["id"], "goal": 5000}, headers=maker.headers
    )
    assert accepted.status_code == 200, accepted.text
