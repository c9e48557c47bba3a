"""Public comments on a campaign and on each of its updates, with one level of replies.

Comments on a backers-only update are read and written by its backers, the maker and the space only. The maker and
the sponsoring space's operators hide an abusive comment: it is kept, marked hidden (and audited), and shows as
hidden to everyone else. Each person may post a number of comments in any window of some seconds (the settings
KINDLING_COMMENTS_PER_WINDOW and KINDLING_COMMENT_WINDOW_SECONDS), a limit that PostgreSQL keeps: the count and the
insert are one statement, run under the author's advisory lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import lifecycle
from campaigns.access import visible_campaign
from campaigns.audit import record_audit
from campaigns.errors import Conflict, NotAllowed, NotFound, TooManyRequests
from campaigns.ids import parse_id
from campaigns.lifecycle import Role
from campaigns.models import Campaign, CampaignUpdate, User, new_id
from campaigns.notification_settings import wants
from campaigns.notifications import notify
from campaigns.pagination import Cursor, page_after
from campaigns.story import render_story
from campaigns.talk.models import Comment
from campaigns.two_factor import require_two_factor
from campaigns.updates import is_backer

COMMENT_MAIL = "comment_posted"
# Who hides comments: the maker, the sponsoring space's operators, and platform admins.
MODERATORS: frozenset[Role] = frozenset({"maker", "operator", "admin"})


class CommentsClosed(Conflict):
    type = "comments-closed"
    title = "Comments are open on public campaigns only"


class ReplyToReply(Conflict):
    type = "reply-to-reply"
    title = "Replies are one level deep"


@dataclass
class Thread:
    """A top-level comment and its replies, oldest reply first, each with its author's name."""

    comment: Comment
    author_name: str
    replies: list[tuple[Comment, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Place:
    """Where comments are: a campaign, or one of its updates; and what the reader may do there."""

    campaign: Campaign
    update: CampaignUpdate | None
    roles: frozenset[Role]

    @property
    def moderates(self) -> bool:
        return bool(self.roles & MODERATORS)


async def comment_place(
    session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None, update_ref: uuid.UUID | str | None = None
) -> Place:
    """The campaign (and update) whose comments `viewer` reads; NotFound for a backers-only update they may not read."""
    campaign, roles = await visible_campaign(session, campaign_ref, viewer)
    posted = None
    if update_ref is not None:
        ident = parse_id(update_ref)
        posted = await session.get(CampaignUpdate, ident) if ident is not None else None
        if posted is None or posted.campaign_id != campaign.id:
            raise NotFound("No such update on this campaign.")
        if posted.visibility == "backers" and not (
            roles & lifecycle.INSIDERS or await is_backer(session, campaign.id, viewer)
        ):
            raise NotFound("No such update on this campaign.")
    return Place(campaign, posted, roles)


def _author_role(roles: frozenset[Role]) -> str:
    if "maker" in roles:
        return "maker"
    if "operator" in roles:
        return "space"
    return "member"


_POST_WITHIN_LIMIT = text(
    """
    INSERT INTO comments (id, campaign_id, update_id, parent_id, author_id, author_role, body, body_html)
    SELECT :id, :campaign_id, :update_id, :parent_id, :author_id, :author_role, :body, :body_html
    WHERE (
        SELECT count(*) FROM comments
        WHERE author_id = :author_id AND created_at > now() - make_interval(secs => :window)
    ) < :limit
    RETURNING id
    """
)
_OLDEST_IN_WINDOW = text(
    "SELECT extract(epoch FROM min(created_at) + make_interval(secs => :window) - clock_timestamp()) "
    "FROM comments WHERE author_id = :author_id AND created_at > now() - make_interval(secs => :window)"
)


async def post_comment(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    author: User,
    body: str,
    *,
    update_ref: uuid.UUID | str | None = None,
    parent_id: uuid.UUID | None = None,
    base_url: str,
    per_window: int,
    window_seconds: int,
) -> Comment:
    """A comment (or a reply to a top-level one) on a public campaign or one of its updates; 429 past `per_window`
    comments by the author in the last `window_seconds`.

    A reply is mailed to the author of the comment it answers, a new thread to the maker (each unless it is their
    own, and as their notification settings allow)."""
    place = await comment_place(session, campaign_ref, author, update_ref)
    if place.campaign.status not in lifecycle.PUBLIC_STATUSES:
        raise CommentsClosed("Comments open once the campaign is public.")
    update_id = place.update.id if place.update is not None else None
    parent = None
    if parent_id is not None:
        parent = await session.get(Comment, parent_id)
        if parent is None or parent.campaign_id != place.campaign.id or parent.update_id != update_id:
            raise NotFound("No such comment here to reply to.")
        if parent.parent_id is not None:
            raise ReplyToReply("Reply to the comment the thread begins with.")
    # One author's posts are counted one at a time, so two at once cannot both pass the limit.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"comments:{author.id}", 0))))
    values = {
        "id": new_id(),
        "campaign_id": place.campaign.id,
        "update_id": update_id,
        "parent_id": parent_id,
        "author_id": author.id,
        "author_role": _author_role(place.roles),
        "body": body,
        "body_html": render_story(body),
        "window": window_seconds,
        "limit": per_window,
    }
    posted = await session.scalar(_POST_WITHIN_LIMIT, values)
    if posted is None:
        left = await session.scalar(_OLDEST_IN_WINDOW, {"author_id": author.id, "window": window_seconds})
        raise TooManyRequests(max(1, int(left or 0) + 1))
    comment = await session.get_one(Comment, posted)
    reader = await session.get_one(User, parent.author_id if parent is not None else place.campaign.maker_id)
    if reader.id != author.id and wants(reader, "comments"):
        await notify(
            session,
            reader,
            COMMENT_MAIL,
            campaign_title=place.campaign.title,
            update_title=place.update.title if place.update is not None else None,
            comment_url=f"{base_url.rstrip('/')}{comments_path(place)}#comment-{comment.id}",
            author_name=author.name,
            body=body,
            reply=parent is not None,
        )
    return comment


def comments_path(place: Place) -> str:
    """Where the place's comments are read on the site."""
    base = f"/campaigns/{place.campaign.slug}"
    return f"{base}/updates/{place.update.id}/comments" if place.update is not None else f"{base}/comments"


async def comment_threads(
    session: AsyncSession, place: Place, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[Thread], str | None]:
    """Top-level comments newest first, each with all its replies; hidden ones keep their place, emptied for
    readers who do not moderate (the pages and the API say "hidden")."""
    top = select(Comment).where(
        Comment.campaign_id == place.campaign.id,
        Comment.update_id.is_(None) if place.update is None else Comment.update_id == place.update.id,
        Comment.parent_id.is_(None),
    )
    firsts, next_cursor = await page_after(
        session, top, Comment, limit=limit, cursor=Cursor.decode(cursor), newest_first=True
    )
    ids = [comment.id for comment in firsts]
    replies = list(
        await session.scalars(
            select(Comment).where(Comment.parent_id.in_(ids)).order_by(Comment.created_at, Comment.id)
        )
    )
    authors = {comment.author_id for comment in firsts} | {comment.author_id for comment in replies}
    names = dict((await session.execute(select(User.id, User.name).where(User.id.in_(authors)))).all())
    threads = {comment.id: Thread(comment, names.get(comment.author_id, "")) for comment in firsts}
    for comment in replies:
        if comment.parent_id is not None:
            threads[comment.parent_id].replies.append((comment, names.get(comment.author_id, "")))
    return list(threads.values()), next_cursor


async def hide_comment(
    session: AsyncSession, comment_ref: uuid.UUID | str, actor: User, *, client_address: str | None
) -> Comment:
    """The maker or an operator of the sponsoring space hides a comment: kept, marked hidden, audited. Hiding a
    hidden comment changes nothing."""
    ident = parse_id(comment_ref)
    comment = await session.get(Comment, ident) if ident is not None else None
    if comment is None:
        raise NotFound("No such comment.")
    campaign, roles = await visible_campaign(session, comment.campaign_id, actor)
    if not roles & MODERATORS:
        raise NotAllowed("Only the maker and the sponsoring space's operators hide comments.")
    if "maker" not in roles:
        require_two_factor(actor)
    hidden = await session.scalar(
        update(Comment)
        .where(Comment.id == comment.id, Comment.hidden_at.is_(None))
        .values(hidden_at=func.now(), hidden_by=actor.id)
        .returning(Comment.id)
    )
    if hidden is not None:
        await record_audit(
            session,
            actor.id,
            "comment.hide",
            "comment",
            comment.id,
            space_id=campaign.space_id,
            client_address=client_address,
            details={"campaign_id": str(campaign.id), "author_id": str(comment.author_id), "as": _author_role(roles)},
        )
    await session.refresh(comment)
    return comment
