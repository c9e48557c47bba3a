"""Private conversations between a campaign's maker and one member (a backer, or someone thinking of backing).

A member asks from the campaign's page; the maker replies, or writes first to one backer, or to many at once through
a broadcast that a job delivers in batches. Each side's unread messages are those from the other side after it last
read the conversation. A member may ask the sponsoring space's operators to step in: from then on they read it and
may write in it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import lifecycle
from campaigns.access import operated_spaces, visible_campaign
from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.jobs import enqueue_job
from campaigns.matching import not_a_match
from campaigns.models import Campaign, Pledge, SpaceOperator, Tier, User, new_id
from campaigns.notification_settings import wants
from campaigns.notifications import notify
from campaigns.pagination import Cursor
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES, PledgeStatus
from campaigns.service import campaign_url
from campaigns.talk.models import Broadcast, Conversation, Message
from campaigns.two_factor import require_two_factor

SEND_BROADCAST = "talk.send_broadcast"
BROADCAST_BATCH = 500
MESSAGE_MAIL = "message_received"
SPACE_INVITED_MAIL = "conversation_space_invited"

Side = Literal["member", "maker", "space"]


class NotPublic(Conflict):
    type = "campaign-not-public"
    title = "The campaign is not public"


@dataclass(frozen=True)
class Seen:
    """A conversation as one reader sees it: which side they are on and how much of it is new to them."""

    conversation: Conversation
    campaign: Campaign
    member: User
    side: Side
    unread: int


def conversation_url(base_url: str, conversation_id: uuid.UUID) -> str:
    return f"{base_url.rstrip('/')}/messages/{conversation_id}"


# Starting and writing


async def ask_maker(
    session: AsyncSession, campaign_ref: uuid.UUID | str, member: User, body: str, *, base_url: str
) -> Message:
    """A member's question to the campaign's maker, in their conversation with them (begun if need be)."""
    campaign, roles = await visible_campaign(session, campaign_ref, member)
    if "maker" in roles:
        raise NotAllowed("The maker answers questions about their campaign; write to a backer instead.")
    if campaign.status not in lifecycle.PUBLIC_STATUSES:
        raise NotPublic("Questions are asked of campaigns that are public.")
    conversation = await _conversation_with(session, campaign.id, member.id)
    return await _write(session, conversation, campaign, member, "member", body, base_url=base_url)


async def write_to_member(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    member_id: uuid.UUID,
    body: str,
    *,
    base_url: str,
) -> Message:
    """The maker writes to one of the campaign's backers (anyone with a pledge on it) or someone who asked."""
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    if "maker" not in roles:
        raise NotAllowed("Only the campaign's maker writes to its backers.")
    pledged = await session.scalar(
        select(Pledge.id).where(Pledge.campaign_id == campaign.id, Pledge.backer_id == member_id).limit(1)
    )
    asked = await session.scalar(
        select(Conversation.id).where(Conversation.campaign_id == campaign.id, Conversation.member_id == member_id)
    )
    if pledged is None and asked is None:
        raise InvalidInput("member_id", "is not a backer of this campaign")
    conversation = await _conversation_with(session, campaign.id, member_id)
    return await _write(session, conversation, campaign, maker, "maker", body, base_url=base_url)


async def reply(
    session: AsyncSession, conversation_ref: uuid.UUID | str, author: User, body: str, *, base_url: str
) -> Message:
    """A message in a conversation the author takes part in (as its member, its maker, or the space asked in)."""
    seen = await _conversation_for(session, conversation_ref, author)
    return await _write(session, seen.conversation, seen.campaign, author, seen.side, body, base_url=base_url)


async def _conversation_with(session: AsyncSession, campaign_id: uuid.UUID, member_id: uuid.UUID) -> Conversation:
    """The (campaign, member) conversation, made now if there was none: one INSERT that races safely."""
    conversation_id = await session.scalar(
        insert(Conversation)
        .values(id=new_id(), campaign_id=campaign_id, member_id=member_id)
        # Setting a column to itself: the existing row's id comes back through RETURNING, as a new one's would.
        .on_conflict_do_update(
            constraint="uq_conversations_campaign_member", set_={"last_message_at": Conversation.last_message_at}
        )
        .returning(Conversation.id)
    )
    return await session.get_one(Conversation, conversation_id)


async def _write(
    session: AsyncSession,
    conversation: Conversation,
    campaign: Campaign,
    author: User,
    side: Side,
    body: str,
    *,
    base_url: str,
) -> Message:
    message = Message(conversation_id=conversation.id, author_id=author.id, author_role=side, body=body)
    session.add(message)
    await session.flush()
    await session.refresh(message)
    # Writing is reading: what the author answered is no longer new to them.
    read_now: dict[str, Any] = {f"{side}_read_at": func.now()} if side in ("member", "maker") else {}
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(last_message_at=func.now(), **read_now)
        .execution_options(synchronize_session=False)
    )
    member = await session.get_one(User, conversation.member_id)
    maker = await session.get_one(User, campaign.maker_id)
    readers = [person for person in (member, maker) if person.id != author.id]
    facts = _mail_facts(campaign, conversation, author, side, body, base_url=base_url)
    for reader in readers:
        if wants(reader, "messages"):
            await notify(session, reader, MESSAGE_MAIL, **facts)
    return message


def _mail_facts(
    campaign: Campaign, conversation: Conversation, author: User, side: Side, body: str, *, base_url: str
) -> dict[str, Any]:
    return {
        "campaign_title": campaign.title,
        "campaign_url": campaign_url(campaign, base_url),
        "conversation_url": conversation_url(base_url, conversation.id),
        "author_name": author.name,
        "author_role": side,
        "body": body,
    }


async def invite_space(
    session: AsyncSession, conversation_ref: uuid.UUID | str, member: User, *, base_url: str
) -> Conversation:
    """The member asks the sponsoring space's operators to step in: they may read the conversation from now on, and
    each is told by mail. Asking twice changes nothing."""
    seen = await _conversation_for(session, conversation_ref, member)
    if seen.side != "member":
        raise NotAllowed("Only the member of a conversation asks the space to step in.")
    invited = await session.scalar(
        update(Conversation)
        .where(Conversation.id == seen.conversation.id, Conversation.space_invited_at.is_(None))
        .values(space_invited_at=func.now())
        .returning(Conversation.id)
    )
    await session.refresh(seen.conversation)
    if invited is not None:
        operators = await session.scalars(
            select(User)
            .join(SpaceOperator, SpaceOperator.user_id == User.id)
            .where(SpaceOperator.space_id == seen.campaign.space_id, User.id != seen.campaign.maker_id)
        )
        facts = _mail_facts(seen.campaign, seen.conversation, member, "member", "", base_url=base_url)
        for operator in operators:
            await notify(session, operator, SPACE_INVITED_MAIL, **facts)
    return seen.conversation


# Reading


async def _conversation_for(session: AsyncSession, conversation_ref: uuid.UUID | str, reader: User) -> Seen:
    """The conversation and the reader's side in it; NotFound for who takes no part in it."""
    ident = parse_id(conversation_ref)
    conversation = await session.get(Conversation, ident) if ident is not None else None
    if conversation is None:
        raise NotFound("No such conversation.")
    campaign = await session.get_one(Campaign, conversation.campaign_id)
    side: Side
    if reader.id == conversation.member_id:
        side = "member"
    elif reader.id == campaign.maker_id:
        side = "maker"
    elif conversation.space_invited_at is not None and campaign.space_id in await operated_spaces(session, reader):
        require_two_factor(reader)
        side = "space"
    else:
        raise NotFound("No such conversation.")
    member = await session.get_one(User, conversation.member_id)
    return Seen(conversation, campaign, member, side, 0)


async def read_conversation(
    session: AsyncSession, conversation_ref: uuid.UUID | str, reader: User
) -> tuple[Seen, list[tuple[Message, str]]]:
    """Every message, oldest first, each with its author's name; the reader's side is marked read up to now."""
    seen = await _conversation_for(session, conversation_ref, reader)
    rows = await session.execute(
        select(Message, User.name)
        .join(User, User.id == Message.author_id)
        .where(Message.conversation_id == seen.conversation.id)
        .order_by(Message.created_at, Message.id)
    )
    messages = [(message, name) for message, name in rows]
    if seen.side != "space":
        column = "member_read_at" if seen.side == "member" else "maker_read_at"
        await session.execute(
            update(Conversation)
            .where(Conversation.id == seen.conversation.id)
            .values({column: func.now()})
            .execution_options(synchronize_session=False)
        )
        await session.refresh(seen.conversation)
    return seen, messages


def _unread_for(reader_id: uuid.UUID) -> ColumnElement[int]:
    """Per conversation row: messages from others after the reader's side last read it."""
    return (
        select(func.count(Message.id))
        .where(
            Message.conversation_id == Conversation.id,
            Message.author_id != reader_id,
            or_(
                and_(Conversation.member_id == reader_id, Conversation.member_read_at.is_(None)),
                and_(Conversation.member_id == reader_id, Message.created_at > Conversation.member_read_at),
                and_(_made_by(reader_id), Conversation.maker_read_at.is_(None)),
                and_(_made_by(reader_id), Message.created_at > Conversation.maker_read_at),
            ),
        )
        .correlate(Conversation)
        .scalar_subquery()
    )


def _made_by(reader_id: uuid.UUID) -> ColumnElement[bool]:
    """The conversation is on a campaign the reader made (the maker is never the member of their own)."""
    return Conversation.campaign_id.in_(select(Campaign.id).where(Campaign.maker_id == reader_id))


def _taking_part(reader_id: uuid.UUID) -> ColumnElement[bool]:
    """The conversations a reader counts as theirs: as member, or as maker of the campaign."""
    return or_(Conversation.member_id == reader_id, _made_by(reader_id))


def _asked_in(reader_id: uuid.UUID) -> ColumnElement[bool]:
    """The conversations whose member asked the reader's space in, on campaigns the space sponsors."""
    spaces = select(SpaceOperator.space_id).where(SpaceOperator.user_id == reader_id)
    return and_(
        Conversation.space_invited_at.isnot(None),
        Conversation.campaign_id.in_(select(Campaign.id).where(Campaign.space_id.in_(spaces))),
    )


async def unread_count(session: AsyncSession, reader: User) -> int:
    """All the messages new to the reader, in every conversation they take part in (the navigation's badge)."""
    # Only conversations with something after the reader's side last read them are counted message by message: a
    # maker with many backers' conversations, all read, costs one pass over their rows.
    mine = Conversation.member_id == reader.id
    maybe_unread = or_(
        and_(
            mine, or_(Conversation.member_read_at.is_(None), Conversation.last_message_at > Conversation.member_read_at)
        ),
        and_(
            ~mine, or_(Conversation.maker_read_at.is_(None), Conversation.last_message_at > Conversation.maker_read_at)
        ),
    )
    found = await session.scalar(
        select(func.coalesce(func.sum(_unread_for(reader.id)), 0)).where(_taking_part(reader.id), maybe_unread)
    )
    return int(found or 0)


async def inbox(
    session: AsyncSession, reader: User, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[Seen], str | None]:
    """The reader's conversations, latest message first, each with its unread count; for an operator, also those
    their space was asked into (unread counts are the member's and the maker's: 0 there)."""
    after = Cursor.decode(cursor)
    query = (
        select(Conversation, Campaign, User, _unread_for(reader.id).label("unread"))
        .join(Campaign, Campaign.id == Conversation.campaign_id)
        .join(User, User.id == Conversation.member_id)
        .where(or_(_taking_part(reader.id), _asked_in(reader.id)))
    )
    if after is not None:
        query = query.where(
            or_(
                Conversation.last_message_at < after.created_at,
                and_(Conversation.last_message_at == after.created_at, Conversation.id < after.id),
            )
        )
    rows = list(
        await session.execute(
            query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        next_cursor = Cursor(last.last_message_at, last.id).encode()
    seen = [
        Seen(conversation, campaign, member, _side(reader, conversation, campaign), int(unread))
        for conversation, campaign, member, unread in rows
    ]
    return seen, next_cursor


def _side(reader: User, conversation: Conversation, campaign: Campaign) -> Side:
    if reader.id == conversation.member_id:
        return "member"
    return "maker" if reader.id == campaign.maker_id else "space"


# Writing to many backers


def _audience_filter(audience: str, tier_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    """The pledges whose backers an audience names."""
    if audience == "charge_failed":
        return [Pledge.status == PledgeStatus.ERRORED, not_a_match()]
    conditions: list[ColumnElement[bool]] = [Pledge.status.in_(COUNTED_PLEDGE_STATUSES), not_a_match()]
    if audience == "tier":
        conditions.append(Pledge.tier_id == tier_id)
    if audience == "no_address":
        # As fulfillment.service.has_address reads it (campaigns does not import fulfillment): a JSON object or none.
        conditions += [
            Pledge.tier_id.isnot(None),
            not_(func.coalesce(func.jsonb_typeof(Pledge.address) == "object", False)),
        ]
    return conditions


async def _check_audience(
    session: AsyncSession, campaign_id: uuid.UUID, audience: str, tier_id: uuid.UUID | None
) -> None:
    if audience == "tier":
        if tier_id is None:
            raise InvalidInput("tier_id", "is required to write to a tier's backers")
        found = await session.scalar(select(Tier.id).where(Tier.id == tier_id, Tier.campaign_id == campaign_id))
        if found is None:
            raise InvalidInput("tier_id", "is not a tier of this campaign")
    elif tier_id is not None:
        raise InvalidInput("tier_id", "is only for the audience 'tier'")


async def audience_size(
    session: AsyncSession, campaign_id: uuid.UUID, maker_id: uuid.UUID, audience: str, tier_id: uuid.UUID | None
) -> int:
    """How many backers a broadcast to `audience` reaches now (the maker asks once more, told this number)."""
    await _check_audience(session, campaign_id, audience, tier_id)
    found = await session.scalar(
        select(func.count(func.distinct(Pledge.backer_id))).where(
            Pledge.campaign_id == campaign_id, Pledge.backer_id != maker_id, *_audience_filter(audience, tier_id)
        )
    )
    return int(found or 0)


async def write_to_backers(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    *,
    audience: str,
    tier_id: uuid.UUID | None,
    body: str,
) -> Broadcast:
    """The maker's message to all the campaign's backers or a filter of them; a job delivers it after the commit, in
    batches, into each backer's conversation with the maker."""
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    if "maker" not in roles:
        raise NotAllowed("Only the campaign's maker writes to its backers.")
    lifecycle.check(campaign.status, "post_update", roles)
    await _check_audience(session, campaign.id, audience, tier_id)
    broadcast = Broadcast(campaign_id=campaign.id, author_id=maker.id, audience=audience, tier_id=tier_id, body=body)
    session.add(broadcast)
    await session.flush()
    await session.refresh(broadcast)
    enqueue_job(session, SEND_BROADCAST, broadcast.id)
    return broadcast


async def send_broadcast_batch(
    session: AsyncSession, broadcast_id: uuid.UUID | str, *, base_url: str, batch_size: int = BROADCAST_BATCH
) -> int:
    """Deliver the broadcast to its next `batch_size` backers (by id, after `done_through`), and ask for the next
    batch; returns how many got it. Idempotent: the broadcast's row lock serialises jobs, and a backer's
    conversation holds each broadcast once."""
    broadcast = await session.scalar(
        select(Broadcast)
        .where(Broadcast.id == parse_id(broadcast_id), Broadcast.finished_at.is_(None))
        .with_for_update()
    )
    if broadcast is None:
        return 0
    recipients = select(Pledge.backer_id).where(
        Pledge.campaign_id == broadcast.campaign_id,
        Pledge.backer_id != broadcast.author_id,
        *_audience_filter(broadcast.audience, broadcast.tier_id),
    )
    if broadcast.done_through is not None:
        recipients = recipients.where(Pledge.backer_id > broadcast.done_through)
    member_ids = list(
        await session.scalars(recipients.group_by(Pledge.backer_id).order_by(Pledge.backer_id).limit(batch_size))
    )
    if member_ids:
        await session.execute(
            insert(Conversation)
            .values([{"id": new_id(), "campaign_id": broadcast.campaign_id, "member_id": m} for m in member_ids])
            .on_conflict_do_nothing(constraint="uq_conversations_campaign_member")
        )
        conversations = {
            member_id: conversation_id
            for conversation_id, member_id in await session.execute(
                select(Conversation.id, Conversation.member_id).where(
                    Conversation.campaign_id == broadcast.campaign_id, Conversation.member_id.in_(member_ids)
                )
            )
        }
        written = list(
            await session.scalars(
                insert(Message)
                .values(
                    [
                        {
                            "id": new_id(),
                            "conversation_id": conversations[m],
                            "author_id": broadcast.author_id,
                            "author_role": "maker",
                            "body": broadcast.body,
                            "broadcast_id": broadcast.id,
                        }
                        for m in member_ids
                    ]
                )
                .on_conflict_do_nothing(
                    index_elements=["broadcast_id", "conversation_id"], index_where=Message.broadcast_id.isnot(None)
                )
                .returning(Message.conversation_id)
            )
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.id.in_(written))
            .values(last_message_at=func.now(), maker_read_at=func.now())
            .execution_options(synchronize_session=False)
        )
        await _mail_broadcast(session, broadcast, written, base_url=base_url)
        broadcast.done_through = member_ids[-1]
        broadcast.recipients += len(written)
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    broadcast.batch_at = now
    if len(member_ids) < batch_size:
        broadcast.finished_at = now
    else:
        enqueue_job(session, SEND_BROADCAST, broadcast.id)
    await session.flush()
    return len(member_ids)


async def _mail_broadcast(
    session: AsyncSession, broadcast: Broadcast, conversation_ids: list[uuid.UUID], *, base_url: str
) -> None:
    campaign = await session.get_one(Campaign, broadcast.campaign_id)
    author = await session.get_one(User, broadcast.author_id)
    rows = await session.execute(
        select(Conversation, User)
        .join(User, User.id == Conversation.member_id)
        .where(Conversation.id.in_(conversation_ids))
    )
    for conversation, member in rows:
        if wants(member, "messages"):
            facts = _mail_facts(campaign, conversation, author, "maker", broadcast.body, base_url=base_url)
            await notify(session, member, MESSAGE_MAIL, **facts)


async def stalled_broadcasts(session: AsyncSession, *, idle_seconds: int) -> list[uuid.UUID]:
    """Broadcasts still being delivered whose last batch ran over `idle_seconds` ago: their next batch's message was
    most likely lost, and the sweep asks for it again."""
    return list(
        await session.scalars(
            select(Broadcast.id).where(
                Broadcast.finished_at.is_(None),
                Broadcast.batch_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, idle_seconds),
            )
        )
    )
