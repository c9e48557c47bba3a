"""The audit log: every operator and admin action is one row, written with the action, kept by PostgreSQL, read by
admins (all of it) and by a space's operators (their spaces' rows)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.accounts import create_admin
from campaigns.administration import promote_to_admin
from campaigns.audit import record_audit
from campaigns.models import AuditEntry, User
from tests.helpers import CHECKLIST_ALL_TRUE, Actor, drafted_campaign, sign_up
from tests.test_milestones import Books, funded_books, request_and_release


async def audit_rows(client: httpx.AsyncClient, actor: Actor, **filters: str) -> list[dict[str, Any]]:
    """Every row `actor` may read with these filters, walking the cursors two rows at a time."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **filters} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/audit", params=params, headers=actor.headers)
        assert response.status_code == 200, response.text
        rows.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return rows


async def review(client: httpx.AsyncClient, operator: Actor, campaign_id: str, decision: str) -> None:
    body = {"decision": decision, "notes": "Seen at the space.", "checklist": CHECKLIST_ALL_TRUE}
    answer = await client.post(f"/api/v1/campaigns/{campaign_id}/review", json=body, headers=operator.headers)
    assert answer.status_code == 200, answer.text


async def submit(client: httpx.AsyncClient, maker: Actor, campaign_id: str) -> None:
    answer = await client.post(f"/api/v1/campaigns/{campaign_id}/submit", headers=maker.headers)
    assert answer.status_code == 200, answer.text


async def every_action_taken(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Books:
    """Each audited action once or more, through the API where it has one."""
    books = await funded_books(client, sessions)  # creates two spaces and names an operator of each
    plan = {"milestones": [{"name": "All at once", "share_bps": 10000, "unlocks_on": "funded"}]}
    changed = await client.put(
        f"/api/v1/spaces/{books.space_id}/milestone-plan", json=plan, headers=books.operator.headers
    )
    assert changed.status_code == 200, changed.text
    milestones = await client.get(f"{books.base}/milestones", headers=books.maker.headers)
    first = milestones.json()[0]["id"]
    await request_and_release(client, books, first)
    paid = await client.post(
        f"{books.base}/milestones/{first}/payout",
        json={"bank_reference": "ICBC-2026-0001"},
        headers=books.operator.headers,
    )
    assert paid.status_code == 200, paid.text

    space = {"id": books.space_id}
    campaign = await drafted_campaign(client, books.maker, space)
    for decision in ("request_changes", "reject"):
        if decision == "reject":
            campaign = await drafted_campaign(client, books.maker, space)
        await submit(client, books.maker, campaign["id"])
        await review(client, books.operator, campaign["id"], decision)
    approved = await drafted_campaign(client, books.maker, space)
    await submit(client, books.maker, approved["id"])
    await review(client, books.operator, approved["id"], "approve")
    launched = await client.post(f"/api/v1/campaigns/{approved['id']}/launch", headers=books.maker.headers)
    assert launched.status_code == 200, launched.text
    suspended = await client.post(
        f"/api/v1/campaigns/{approved['id']}/suspend",
        json={"reason": "The factory closed."},
        headers=books.admin.headers,
    )
    assert suspended.status_code == 200, suspended.text

    removed = await client.delete(
        f"/api/v1/spaces/{books.space_id}/operators/{books.other_operator.id}", headers=books.admin.headers
    )
    assert removed.status_code == 404, "the other operator runs the other space, not this one"
    me = await client.get("/api/v1/me", headers=books.other_operator.headers)
    other_space = me.json()["roles"]["operator_of"][0]
    removed = await client.delete(
        f"/api/v1/spaces/{other_space}/operators/{books.other_operator.id}", headers=books.admin.headers
    )
    assert removed.status_code == 204, removed.text

    async with sessions.begin() as session:
        admin = await session.get_one(User, uuid.UUID(books.admin.id))
        await promote_to_admin(session, admin, books.stranger.id, client_address="203.0.113.9")
    return books


async def test_each_operator_and_admin_action_writes_one_row_with_who_what_where_and_from_where(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await every_action_taken(client, sessions)
    rows = await audit_rows(client, books.admin)

    counted: dict[str, int] = {}
    for row in rows:
        counted[row["action"]] = counted.get(row["action"], 0) + 1
    assert counted == {
        "space.create": 2,
        "space.operator_add": 2,
        "space.operator_remove": 1,
        "space.milestone_plan_change": 1,
        "milestone.release": 1,
        "payout.mark_paid": 1,
        "campaign.request_changes": 1,
        "campaign.reject": 1,
        "campaign.approve": 1,
        "campaign.suspend": 1,
        "user.promote": 1,
    }
    assert [row["created_at"] for row in rows] == sorted((row["created_at"] for row in rows), reverse=True)
    by_action = {row["action"]: row for row in rows}
    release = by_action["milestone.release"]
    assert release["actor_id"] == books.operator.id and release["space_id"] == books.space_id
    assert release["object_type"] == "milestone" and release["details"]["currency"] == "USD"
    assert release["client_address"] == "127.0.0.1"
    assert by_action["payout.mark_paid"]["details"]["bank_reference"] == "ICBC-2026-0001"
    assert by_action["campaign.suspend"]["actor_id"] == books.admin.id
    assert by_action["campaign.suspend"]["details"]["reason"] == "The factory closed."
    promoted = by_action["user.promote"]
    assert promoted["object_id"] == books.stranger.id and promoted["client_address"] == "203.0.113.9"
    assert by_action["space.operator_remove"]["object_id"] == books.other_operator.id


async def test_an_action_refused_leaves_no_row(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    before = await audit_rows(client, books.admin)
    milestones = await client.get(f"{books.base}/milestones", headers=books.maker.headers)
    not_requested = await client.post(
        f"{books.base}/milestones/{milestones.json()[0]['id']}/release", headers=books.operator.headers
    )
    assert not_requested.status_code == 409
    twice = await client.post(
        f"/api/v1/spaces/{books.space_id}/operators", json={"email": books.operator.email}, headers=books.admin.headers
    )
    assert twice.status_code == 201
    assert await audit_rows(client, books.admin) == before, "no release happened; naming an operator twice is once"


async def test_operators_read_their_spaces_rows_only_and_others_none(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await every_action_taken(client, sessions)
    everything = await audit_rows(client, books.admin)

    theirs = await audit_rows(client, books.operator)
    assert theirs and {row["space_id"] for row in theirs} == {books.space_id}
    assert theirs == [row for row in everything if row["space_id"] == books.space_id]

    # Removed from their space, the other operator no longer reads its rows.
    for outsider in (books.other_operator, books.maker, await sign_up(client, "Nosy")):
        refused = await client.get("/api/v1/audit", headers=outsider.headers)
        assert refused.status_code == 403 and refused.json()["type"] == "forbidden"
    assert (await client.get("/api/v1/audit")).status_code == 401

    releases = await audit_rows(client, books.operator, action="milestone.release")
    assert [row["action"] for row in releases] == ["milestone.release"]
    by_admin = await audit_rows(client, books.admin, actor_id=books.admin.id)
    assert by_admin and {row["actor_id"] for row in by_admin} == {books.admin.id}
    about_the_campaign = await audit_rows(client, books.admin, object=str(books.campaign_id))
    assert about_the_campaign == []  # milestones, payouts and reviews name their own objects
    one = releases[0]
    assert await audit_rows(client, books.admin, object=one["object_id"]) == [one]
    assert await audit_rows(client, books.admin, space_id=books.space_id) == theirs

    bad = await client.get("/api/v1/audit", params={"cursor": "not-a-cursor"}, headers=books.admin.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    bad = await client.get("/api/v1/audit", params={"space_id": "nope"}, headers=books.admin.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "space_id"


async def test_postgresql_refuses_to_change_or_delete_an_audit_row(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        admin, _created = await create_admin(session, email="root@example.com", password="a-long-password")
    async with sessions() as session:
        row = await session.get(AuditEntry, (await session.scalars(text("SELECT id FROM audit_log"))).one())
        assert row is not None and row.action == "user.promote" and row.actor_id is None
    for statement in (
        update(AuditEntry).where(AuditEntry.id == row.id).values(action="space.create"),
        update(AuditEntry).values(client_address="10.0.0.1"),
        delete(AuditEntry).where(AuditEntry.id == row.id),
    ):
        async with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(statement)
    async with sessions.begin() as session:
        await record_audit(
            session, admin.id, "user.promote", "user", admin.id, space_id=None, client_address="127.0.0.1"
        )
    async with sessions() as session:
        count = await session.scalar(text("SELECT count(*) FROM audit_log"))
    assert count == 2
