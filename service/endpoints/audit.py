"""The audit log, read: admins all of it, a space's operators their spaces' rows."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns import audit
from campaigns.schemas import AuditEntryOut, AuditQuery
from campaigns.schemas_base import Page
from service.api import json_response
from service.routes import api
from service.web import current_user, uow


@api.route(
    "GET",
    "/audit",
    summary="Operator and admin actions, newest first (admins: all; operators: their spaces')",
    query=AuditQuery,
    response=Page[AuditEntryOut],
    errors=(403,),
    tags=["audit"],
)
async def list_audit(request: Request, query: AuditQuery) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        rows, next_cursor = await audit.audit_entries(
            session,
            viewer,
            space_id=query.space_id,
            actor_id=query.actor_id,
            action=query.action,
            object_id=query.object,
            limit=query.limit,
            cursor=query.cursor,
        )
    return json_response(
        Page[AuditEntryOut](items=[AuditEntryOut.model_validate(row) for row in rows], next_cursor=next_cursor)
    )
