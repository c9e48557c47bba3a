from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import httpx
from sqlalchemy import func, insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import IdempotencyRecord
from tests.helpers import make_admin, sign_up


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["status"] == status
    return body


async def test_unknown_api_paths_are_problem_documents(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nowhere"), 404)


async def test_a_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    assert_problem(await client.put("/api/v1/users"), 405)


async def test_a_body_that_is_not_json_is_415_or_400(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/api/v1/users", content=b"email=a", headers={"content-type": "text/plain"}), 415)
    body = assert_problem(
        await client.post("/api/v1/users", content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert body["type"] == "malformed-json"
    assert_problem(await client.post("/api/v1/users", json=[1, 2]), 422)


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/api/v1/users", content=b"x" * (9 * 1024 * 1024)), 413)
    big_json = b'{"name": "' + b"x" * 300_000 + b'"}'
    assert_problem(
        await client.post("/api/v1/users", content=big_json, headers={"content-type": "application/json"}), 413
    )


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/spaces")
    assert len(response.headers["x-request-id"]) >= 8
    echoed = await client.get("/api/v1/spaces", headers={"X-Request-ID": "trace-abc-12345"})
    assert echoed.headers["x-request-id"] == "trace-abc-12345"


async def test_an_unhandled_error_is_a_500_problem_without_internals(client: httpx.AsyncClient, caplog: object) -> None:
    from starlette.routing import Route

    async def explode(request: object) -> None:
        raise RuntimeError("secret internals")

    client.app.router.routes.insert(0, Route("/api/v1/explode", explode))  # type: ignore[attr-defined]
    response = await client.get("/api/v1/explode")
    body = assert_problem(response, 500)
    assert "secret internals" not in response.text
    assert response.headers["x-request-id"] in str(body["detail"])


async def test_the_openapi_document_describes_the_api(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    create_user = document["paths"]["/api/v1/users"]["post"]
    schema_ref = create_user["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"email", "password", "name"}
    assert schema["additionalProperties"] is False
    assert "422" in create_user["responses"]


async def test_health_reports_each_part(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


async def test_idempotency_key_replays_the_first_response(client: httpx.AsyncClient, sessions: object) -> None:
    from tests.helpers import make_admin

    admin = await make_admin(sessions, await sign_up(client, "Admin"))  # type: ignore[arg-type]
    body = {"name": "A", "slug": "idem-space", "city": "Shenzhen", "country": "CN", "sponsor_fee_bps": 0}
    headers = admin.headers | {"Idempotency-Key": "create-space-1"}
    first = await client.post("/api/v1/spaces", json=body, headers=headers)
    again = await client.post("/api/v1/spaces", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await client.post("/api/v1/spaces", json=body | {"name": "B"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    listed = (await client.get("/api/v1/spaces")).json()["items"]
    assert len(listed) == 1


async def test_a_key_whose_first_request_died_unfinished_is_given_up_after_five_minutes(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    body = {"name": "A", "slug": "died-space", "city": "Shenzhen", "country": "CN", "sponsor_fee_bps": 0}
    headers = admin.headers | {"Idempotency-Key": "create-space-died", "Content-Type": "application/json"}
    request_hash = hashlib.sha256(b"\n".join([b"POST", b"/api/v1/spaces", json.dumps(body).encode()])).hexdigest()
    async with sessions.begin() as session:
        # What a process killed in the middle of the request leaves: a claim with no response.
        await session.execute(
            insert(IdempotencyRecord).values(user_id=admin.id, key="create-space-died", request_hash=request_hash)
        )

    still_running = await client.post("/api/v1/spaces", content=json.dumps(body), headers=headers)
    assert assert_problem(still_running, 409)["type"] == "idempotency-key-in-use"

    async with sessions.begin() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "create-space-died")
            .values(created_at=func.now() - timedelta(minutes=6))
        )
    retried = await client.post("/api/v1/spaces", content=json.dumps(body), headers=headers)
    again = await client.post("/api/v1/spaces", content=json.dumps(body), headers=headers)
    assert retried.status_code == again.status_code == 201
    assert retried.json() == again.json()
    assert len((await client.get("/api/v1/spaces")).json()["items"]) == 1


async def test_a_nul_character_in_any_text_field_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users", json={"email": "nul@example.com", "password": "long enough password", "name": "a\u0000b"}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [{"field": "name", "message": "must not contain NUL"}]


async def test_an_anonymous_caller_with_a_bad_body_learns_first_that_they_must_log_in(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(await client.post("/api/v1/spaces", json={"nonsense": True}), 401)
    assert_problem(await client.post("/api/v1/spaces", json={"name": "x"}, headers={"Authorization": "Bearer no"}), 401)
