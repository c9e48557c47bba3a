"""Comments as pages: a campaign's (and each update's) threads with a form to comment or reply, the maker's and the
space's replies marked, and the hide button for whoever moderates them (it asks once more). Every step calls
campaigns.talk.comments, as the API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import Conflict, NotAllowed, NotFound, TooManyRequests
from campaigns.ids import parse_id
from campaigns.talk import comments
from campaigns.talk.comments import Place, comments_path
from campaigns.talk.models import Comment
from campaigns.talk.schemas import CommentCreate
from service.i18n import gettext as _
from service.pages import FieldMessages, validate_form, viewer, wait_message
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import client_address, read_form, redirect, render, settings_of, uow


def role_mark(role: str) -> str | None:
    return {"maker": _("Maker"), "space": _("Sponsoring space")}.get(role)


def _comment_view(comment: Comment, author: str, place: Place) -> dict[str, Any]:
    shown = comment.hidden_at is None or place.moderates
    return {
        "id": str(comment.id),
        "author": author,
        "mark": role_mark(comment.author_role),
        "role": comment.author_role,
        "hidden": comment.hidden_at is not None,
        # sanitised by render_story when it was posted
        "body_html": Markup(comment.body_html) if shown else None,  # noqa: S704
        "at": comment.created_at,
        "hide_action": f"/comments/{comment.id}/hide" if place.moderates and comment.hidden_at is None else None,
    }


async def _comments_page(
    request: Request, values: dict[str, str], errors: FieldMessages, *, status: int = 200
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        place = await comments.comment_place(
            session, request.path_params["slug"], user, request.path_params.get("update_id")
        )
        threads, next_cursor = await comments.comment_threads(
            session, place, cursor=request.query_params.get("cursor") or None
        )
    context = {
        "campaign": place.campaign,
        "update": place.update,
        "threads": [
            {
                **_comment_view(thread.comment, thread.author_name, place),
                "replies": [_comment_view(reply, name, place) for reply, name in thread.replies],
            }
            for thread in threads
        ],
        "next_cursor": next_cursor,
        "action": comments_path(place),
        "login_url": "/login?next=" + quote(comments_path(place), safe=""),
        "values": values,
        "errors": errors,
        "reply_to": values.get("parent_id", ""),
    }
    return render(request, "talk/comments.html", context, status=status)


async def comments_page(request: Request) -> Response:
    return await _comments_page(request, {}, {})


async def post_comment(request: Request) -> Response:
    form = await read_form(request)
    values = {"body": str(form.get("body") or "").strip(), "parent_id": str(form.get("parent_id") or "").strip()}
    checked = validate_form(
        CommentCreate, {"body": values["body"]} | ({"parent_id": values["parent_id"]} if values["parent_id"] else {})
    )
    if not isinstance(checked, CommentCreate):
        return await _comments_page(request, values, checked, status=422)
    settings = settings_of(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path, safe=""))
        try:
            posted = await comments.post_comment(
                session,
                request.path_params["slug"],
                user,
                checked.body,
                update_ref=request.path_params.get("update_id"),
                parent_id=checked.parent_id,
                base_url=settings.base_url,
                per_window=settings.comments_per_window,
                window_seconds=settings.comment_window_seconds,
            )
        except TooManyRequests as refused:
            return await _comments_page(request, values, {"body": wait_message(refused.retry_after)}, status=429)
        except Conflict as refused:
            message = (
                _("Reply to the comment the thread begins with.")
                if refused.type == "reply-to-reply"
                else _("Comments open once the campaign is public.")
            )
            return await _comments_page(request, values, {"body": message}, status=409)
    return redirect(f"{request.url.path}#comment-{posted.id}")


async def hide_comment(request: Request) -> Response:
    form = await read_form(request)
    comment_id = request.path_params["comment_id"]
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path, safe=""))
        ident = parse_id(comment_id)
        found = await session.get(Comment, ident) if ident is not None else None
        if found is None:
            raise NotFound("No such comment.")
        place = await comments.comment_place(session, found.campaign_id, user, found.update_id)
        back = f"{comments_path(place)}#comment-{found.id}"
        if not is_confirmed(form):
            if not place.moderates:
                raise NotAllowed("Only the maker and the sponsoring space's operators hide comments.")
            question = Confirmation(
                title=_("Hide this comment?"),
                subject=found.body[:200],
                consequences=[
                    _("Everyone else sees only that a comment was hidden here; its text is kept."),
                    _("The hiding is recorded in the audit log, with your name."),
                ],
                confirm_label=_("Yes, hide the comment"),
                back_url=back,
            )
            return ask_first(request, form, question)
        await comments.hide_comment(session, comment_id, user, client_address=client_address(request))
    return redirect(back)


routes = [
    Route("/campaigns/{slug}/comments", comments_page, methods=["GET"]),
    Route("/campaigns/{slug}/comments", post_comment, methods=["POST"]),
    Route("/campaigns/{slug}/updates/{update_id}/comments", comments_page, methods=["GET"]),
    Route("/campaigns/{slug}/updates/{update_id}/comments", post_comment, methods=["POST"]),
    Route("/comments/{comment_id}/hide", hide_comment, methods=["POST"]),
]
