"""An update reaches its backers: posting it asks for one fan-out job, which writes the outbox in batches (INSERT …
SELECT, never one row per backer from Python) and asks for the send job; the mailer (service.mail.send_update_mails)
then sends them at the SMTP server's pace.

Who gets it: every backer whose pledge counts, once each, who has not turned update mail off, whose account is not
deleted, and whose address has not bounced or complained.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from campaigns.languages import Written, language_of, version_for
from campaigns.matching import not_a_match
from campaigns.models import Campaign, CampaignUpdate, Mail, MailSuppression, Pledge, User
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES
from campaigns.service import campaign_facts

FAN_OUT_UPDATE = "updates.fan_out"
SEND_UPDATE_MAILS = "updates.send_mails"
UPDATE_MAIL_KIND = "campaign_update"
FAN_OUT_BATCH = 5_000


def ask_for_fan_out(session: AsyncSession, update_id: uuid.UUID) -> None:
    """After the update's transaction commits, the fan-out job writes its mails (the request writes none)."""
    enqueue_job(session, FAN_OUT_UPDATE, update_id)


async def fan_out_update(
    session: AsyncSession, update_id: uuid.UUID | str, *, base_url: str, batch_size: int = FAN_OUT_BATCH
) -> int:
    """Write one outbox mail per recipient of the update, `batch_size` recipients per INSERT … SELECT, and ask for
    the send job; how many were written. Idempotent: the update is claimed by a conditional UPDATE of `mailed_at`
    in the same transaction, so a second run (or a concurrent one, which waits on the row) writes nothing."""
    claimed = await session.scalar(
        update(CampaignUpdate)
        .where(CampaignUpdate.id == uuid.UUID(str(update_id)), CampaignUpdate.mailed_at.is_(None))
        .values(mailed_at=func.now())
        .returning(CampaignUpdate)
    )
    if claimed is None:
        return 0
    campaign = await session.get_one(Campaign, claimed.campaign_id)
    # The texts are not copied into 100,000 rows: the send job reads them once per language (`update_texts`).
    facts = campaign_facts(campaign, base_url) | {
        "update_id": str(claimed.id),
        "update_title": claimed.title,
        "visibility": claimed.visibility,
    }
    backers = select(Pledge.backer_id).where(
        Pledge.campaign_id == campaign.id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES), not_a_match()
    )
    suppressed = exists().where(MailSuppression.address == User.email)
    written, after = 0, None
    while True:
        chosen = select(User.id, User.email, User.locale).where(
            User.id.in_(backers), User.notify_updates, User.deleted_at.is_(None), ~suppressed
        )
        if after is not None:
            chosen = chosen.where(User.id > after)
        batch = chosen.order_by(User.id).limit(batch_size).cte("chosen")
        rows = list(
            await session.scalars(
                insert(Mail)
                .from_select(
                    ["id", "kind", "user_id", "to_address", "locale", "facts", "campaign_update_id"],
                    select(
                        func.gen_random_uuid(),
                        literal(UPDATE_MAIL_KIND),
                        batch.c.id,
                        batch.c.email,
                        batch.c.locale,
                        literal(facts, JSONB),
                        literal(claimed.id),
                    ),
                )
                .returning(Mail.user_id)
            )
        )
        written += len(rows)
        if len(rows) < batch_size:
            break
        after = max(user_id for user_id in rows if user_id is not None)
    if written:
        enqueue_job(session, SEND_UPDATE_MAILS, claimed.id)
    return written


def update_texts(campaign: Campaign, update: CampaignUpdate, locale: str | None) -> dict[str, str]:
    """What every mail of the update in `locale` says beyond its outbox facts, read when the mail is sent (so an edit
    made meanwhile is what goes out): the maker's version of each text in that language where they wrote one, else
    the original, and the language the update's text is written in."""
    language = language_of(locale)

    def version(field: str, original: str) -> Written:
        return version_for(language, field, original, update.language, update.translations)

    title = version("title", update.title)
    campaign_title = version_for(language, "title", campaign.title, campaign.language, campaign.translations)
    return {
        "campaign_title": str(campaign_title),
        "update_title": str(title),
        "update_body": str(version("body", update.body)),
        "update_body_html": str(version("body_html", update.body_html)),
        "update_language": title.language,
    }


async def unmailed_updates(session: AsyncSession, *, older_than_seconds: int, limit: int = 100) -> list[uuid.UUID]:
    """Updates whose fan-out job seems lost: posted a while ago and still not written to the outbox."""
    found = await session.scalars(
        select(CampaignUpdate.id)
        .where(
            CampaignUpdate.mailed_at.is_(None),
            CampaignUpdate.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
        )
        .order_by(CampaignUpdate.created_at)
        .limit(limit)
    )
    return list(found)
