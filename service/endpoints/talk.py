"""The JSON API of conversations (questions, replies, the maker's messages to backers) and comments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns.models import User
from campaigns.schemas import PageQuery
from campaigns.talk import comments, messages
from campaigns.talk.comments import Thread
from campaigns.talk.messages import Seen
from campaigns.talk.models import Comment, Message
from campaigns.talk.schemas import (
    BroadcastCreate,
    BroadcastOut,
    CommentCreate,
    CommentOut,
    CommentPage,
    ConversationOut,
    ConversationStart,
    InboxOut,
    MessageCreate,
    MessageOut,
)
from service.api import json_response
from service.routes import api
from service.web import client_address, current_user, optional_user, settings_of, uow

TAGS = ["conversations"]
COMMENT_TAGS = ["comments"]


def message_out(message: Message, author_name: str) -> MessageOut:
    return MessageOut(
        id=message.id,
        author_id=message.author_id,
        author_name=author_name,
        author_role=message.author_role,
        body=message.body,
        created_at=message.created_at,
    )


def conversation_out(seen: Seen, listed: list[MessageOut] | None = None) -> ConversationOut:
    return ConversationOut(
        id=seen.conversation.id,
        campaign_id=seen.campaign.id,
        campaign_title=seen.campaign.title,
        member_id=seen.member.id,
        member_name=seen.member.name,
        space_invited_at=seen.conversation.space_invited_at,
        last_message_at=seen.conversation.last_message_at,
        unread=seen.unread,
        messages=listed,
    )


def comment_out(comment: Comment, author_name: str, *, moderates: bool, replies: list[CommentOut]) -> CommentOut:
    shown = comment.hidden_at is None or moderates
    return CommentOut(
        id=comment.id,
        campaign_id=comment.campaign_id,
        update_id=comment.update_id,
        parent_id=comment.parent_id,
        author_id=comment.author_id,
        author_name=author_name,
        author_role=comment.author_role,
        hidden=comment.hidden_at is not None,
        body=comment.body if shown else "",
        body_html=comment.body_html if shown else "",
        created_at=comment.created_at,
        replies=replies,
    )


def thread_out(thread: Thread, *, moderates: bool) -> CommentOut:
    replies = [comment_out(c, name, moderates=moderates, replies=[]) for c, name in thread.replies]
    return comment_out(thread.comment, thread.author_name, moderates=moderates, replies=replies)


# Conversations


@api.route(
    "POST",
    "/campaigns/{campaign_id}/conversations",
    summary="Ask the maker a question (a member), or write to one backer (the maker, with member_id); both are mailed",
    body=ConversationStart,
    response=MessageOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def start_conversation(request: Request, body: ConversationStart) -> Response:
    base_url = settings_of(request).base_url
    async with uow(request) as session:
        user = await current_user(request, session)
        ref = request.path_params["campaign_id"]
        if body.member_id is None:
            message = await messages.ask_maker(session, ref, user, body.body, base_url=base_url)
        else:
            message = await messages.write_to_member(session, ref, user, body.member_id, body.body, base_url=base_url)
        return json_response(message_out(message, user.name), 201)


@api.route(
    "GET",
    "/me/conversations",
    summary="The caller's conversations, latest first, each with its unread count, and the unread total",
    query=PageQuery,
    response=InboxOut,
    tags=TAGS,
)
async def list_conversations(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        found, next_cursor = await messages.inbox(session, user, limit=query.limit, cursor=query.cursor)
        unread = await messages.unread_count(session, user)
    items = [conversation_out(seen) for seen in found]
    return json_response(InboxOut(items=items, next_cursor=next_cursor, unread=unread))


@api.route(
    "GET",
    "/conversations/{conversation_id}",
    summary="One conversation with every message, oldest first (its member, its maker, or the space once asked in); "
    "reading it marks it read",
    response=ConversationOut,
    errors=(403,),
    tags=TAGS,
)
async def get_conversation(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        seen, listed = await messages.read_conversation(session, request.path_params["conversation_id"], user)
    return json_response(conversation_out(seen, [message_out(m, name) for m, name in listed]))


@api.route(
    "POST",
    "/conversations/{conversation_id}/messages",
    summary="Write in a conversation; the other side is mailed the text with a link to reply",
    body=MessageCreate,
    response=MessageOut,
    status=201,
    errors=(403,),
    idempotent=True,
    tags=TAGS,
)
async def post_message(request: Request, body: MessageCreate) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        message = await messages.reply(
            session, request.path_params["conversation_id"], user, body.body, base_url=settings_of(request).base_url
        )
        return json_response(message_out(message, user.name), 201)


@api.route(
    "POST",
    "/conversations/{conversation_id}/space",
    summary="The member asks the sponsoring space's operators to step in: they may read and write in it from now on",
    response=ConversationOut,
    errors=(403,),
    tags=TAGS,
)
async def invite_space(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        conversation = await messages.invite_space(
            session, request.path_params["conversation_id"], user, base_url=settings_of(request).base_url
        )
        seen, _listed = await messages.read_conversation(session, conversation.id, user)
    return json_response(conversation_out(seen))


@api.route(
    "POST",
    "/campaigns/{campaign_id}/broadcasts",
    summary="The maker writes to all backers or to a filter (a tier, those without an address, those whose charge "
    "failed); a job delivers it in batches",
    body=BroadcastCreate,
    response=BroadcastOut,
    status=202,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def post_broadcast(request: Request, body: BroadcastCreate) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        broadcast = await messages.write_to_backers(
            session,
            request.path_params["campaign_id"],
            maker,
            audience=body.audience,
            tier_id=body.tier_id,
            body=body.body,
        )
        return json_response(BroadcastOut.model_validate(broadcast), 202)


# Comments


async def _list_comments(request: Request, query: PageQuery, update_ref: str | None) -> Response:
    async with uow(request) as session:
        viewer: User | None = await optional_user(request, session)
        place = await comments.comment_place(session, request.path_params["campaign_id"], viewer, update_ref)
        threads, next_cursor = await comments.comment_threads(session, place, limit=query.limit, cursor=query.cursor)
    items = [thread_out(thread, moderates=place.moderates) for thread in threads]
    return json_response(CommentPage(items=items, next_cursor=next_cursor))


async def _post_comment(request: Request, body: CommentCreate, update_ref: str | None) -> Response:
    settings = settings_of(request)
    async with uow(request) as session:
        author = await current_user(request, session)
        posted = await comments.post_comment(
            session,
            request.path_params["campaign_id"],
            author,
            body.body,
            update_ref=update_ref,
            parent_id=body.parent_id,
            base_url=settings.base_url,
            per_window=settings.comments_per_window,
            window_seconds=settings.comment_window_seconds,
        )
        return json_response(comment_out(posted, author.name, moderates=False, replies=[]), 201)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/comments",
    summary="A campaign's comments, newest thread first, each with its replies; hidden ones marked and emptied",
    query=PageQuery,
    response=CommentPage,
    auth=False,
    tags=COMMENT_TAGS,
)
async def list_campaign_comments(request: Request, query: PageQuery) -> Response:
    return await _list_comments(request, query, None)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/comments",
    summary="Comment on a public campaign (Markdown), or reply to a top-level comment; throttled per person",
    body=CommentCreate,
    response=CommentOut,
    status=201,
    errors=(409, 429),
    idempotent=True,
    tags=COMMENT_TAGS,
)
async def post_campaign_comment(request: Request, body: CommentCreate) -> Response:
    return await _post_comment(request, body, None)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/updates/{update_id}/comments",
    summary="An update's comments (a backers-only update's: for its backers, the maker and the space)",
    query=PageQuery,
    response=CommentPage,
    auth=False,
    tags=COMMENT_TAGS,
)
async def list_update_comments(request: Request, query: PageQuery) -> Response:
    return await _list_comments(request, query, request.path_params["update_id"])


@api.route(
    "POST",
    "/campaigns/{campaign_id}/updates/{update_id}/comments",
    summary="Comment on an update, or reply to a top-level comment on it; throttled per person",
    body=CommentCreate,
    response=CommentOut,
    status=201,
    errors=(409, 429),
    idempotent=True,
    tags=COMMENT_TAGS,
)
async def post_update_comment(request: Request, body: CommentCreate) -> Response:
    return await _post_comment(request, body, request.path_params["update_id"])


@api.route(
    "POST",
    "/comments/{comment_id}/hide",
    summary="Hide an abusive comment (the maker, the sponsoring space's operators): kept, marked hidden, audited",
    response=CommentOut,
    errors=(403,),
    tags=COMMENT_TAGS,
)
async def hide_comment(request: Request) -> Response:
    async with uow(request) as session:
        actor = await current_user(request, session)
        hidden = await comments.hide_comment(
            session, request.path_params["comment_id"], actor, client_address=client_address(request)
        )
        author = await session.get_one(User, hidden.author_id)
        return json_response(comment_out(hidden, author.name, moderates=True, replies=[]))
