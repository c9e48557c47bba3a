"""Sweep step for the maker's messages to many backers: a broadcast whose next batch's message was lost is asked for
again (a batch that runs twice delivers nothing twice)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from campaigns.talk.messages import SEND_BROADCAST, stalled_broadcasts
from service.settings import Settings
from service.sweep import sweep_step

# A batch of 500 takes a few seconds: a broadcast a minute without one has most likely lost its next message.
STALLED_SECONDS = 60


@sweep_step("broadcasts")
async def resume_broadcasts(session: AsyncSession, settings: Settings) -> int:
    found = await stalled_broadcasts(session, idle_seconds=STALLED_SECONDS)
    for broadcast_id in found:
        enqueue_job(session, SEND_BROADCAST, broadcast_id)
    return len(found)
