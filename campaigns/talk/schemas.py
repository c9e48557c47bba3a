"""What the API takes and gives for conversations, messages to many backers, and comments."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime

MessageBody = Annotated[str, Field(min_length=1, max_length=5000)]


class MessageCreate(RequestModel):
    body: MessageBody


class ConversationStart(RequestModel):
    """A member asks the maker (no `member_id`), or the maker writes to one of the campaign's backers."""

    body: MessageBody
    member_id: uuid.UUID | None = None


class BroadcastCreate(RequestModel):
    body: MessageBody
    audience: Literal["all", "tier", "no_address", "charge_failed"]
    tier_id: uuid.UUID | None = None


class CommentCreate(RequestModel):
    body: MessageBody
    parent_id: uuid.UUID | None = None


class MessageOut(ResponseModel):
    id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    # member, maker or space (an operator of the sponsoring space who stepped in)
    author_role: str
    body: str
    created_at: UtcDatetime


class ConversationOut(ResponseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    campaign_title: str
    member_id: uuid.UUID
    member_name: str
    space_invited_at: UtcDatetime | None
    last_message_at: UtcDatetime
    # Messages from the other side that the caller has not read yet.
    unread: int
    messages: list[MessageOut] | None = None


class InboxOut(ResponseModel):
    items: list[ConversationOut]
    next_cursor: str | None
    # Unread messages in all the caller's conversations (the navigation's badge).
    unread: int


class BroadcastOut(ResponseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    audience: str
    tier_id: uuid.UUID | None
    body: str
    recipients: int
    finished_at: UtcDatetime | None
    created_at: UtcDatetime


class CommentOut(ResponseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    update_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    author_id: uuid.UUID
    author_name: str
    # member, maker, or space (an operator of the sponsoring space): the page marks the last two.
    author_role: str
    hidden: bool
    # Empty for a hidden comment, except to the maker and the space's operators.
    body: str
    body_html: str
    created_at: UtcDatetime
    replies: list[CommentOut] = []


class CommentPage(ResponseModel):
    items: list[CommentOut]
    next_cursor: str | None
