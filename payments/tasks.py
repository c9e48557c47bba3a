"""What the worker runs for payments. The Dramatiq actors themselves are declared in service/tasks.py, which owns the
worker's database sessions and gateway, and call these functions with them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from payments.gateway import PaymentGateway
from payments.webhooks import PROCESS_WEBHOOK, apply_webhook_event, record_webhook_failure, webhook_events_due_again

log = logging.getLogger("kindling.payments")

# A unit of work: one transaction that commits when the block ends cleanly, then sends the jobs it asked for.
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def process_webhook(transaction: Transaction, gateway: PaymentGateway, event_id: str) -> None:
    """The "payments.webhook" job: apply one stored event. A failure is counted on the event in a transaction of
    its own, then re-raised; the sweep tries again later (`requeue_unapplied_webhook_events`)."""
    try:
        async with transaction() as session:
            await apply_webhook_event(session, gateway, event_id)
    except Exception as exc:
        log.warning("webhook event %s failed: %s: %s", event_id, type(exc).__name__, exc)
        async with transaction() as session:
            await record_webhook_failure(session, event_id, f"{type(exc).__name__}: {exc}")
        raise


async def requeue_unapplied_webhook_events(session: AsyncSession) -> int:
    """The sweep's step for webhooks: ask again for every event whose job was lost or failed a while ago."""
    due = await webhook_events_due_again(session)
    for event_id in due:
        enqueue_job(session, PROCESS_WEBHOOK, event_id)
    return len(due)
