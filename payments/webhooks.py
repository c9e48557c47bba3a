"""Stripe's webhook events: stored once by their id, applied later by the worker through the handlers registered here.

Handlers must not trust an event's order or its copy of the object: Stripe delivers at least once, in any order, so
each handler re-reads the object (from Stripe or our database) and moves our state only forward.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from payments.gateway import PaymentGateway, StripeEvent
from payments.models import WebhookEvent

PROCESS_WEBHOOK = "payments.webhook"
MAX_ATTEMPTS = 12
# An event still unapplied this long after it arrived (doubling with each failed attempt) is sent to the worker again.
RETRY_AFTER_SECONDS = 10
ERROR_LIMIT = 2000

# Modules whose import registers webhook handlers; loaded before the first event is applied.
HANDLER_MODULES: tuple[str, ...] = ("payments.cards", "payments.charge_events", "payments.disputes")

WebhookHandler = Callable[[AsyncSession, PaymentGateway, StripeEvent], Awaitable[None]]
H = TypeVar("H", bound=WebhookHandler)

_handlers: dict[str, WebhookHandler] = {}


def webhook_handler(event_type: str) -> Callable[[H], H]:
    """Register the function that applies events of `event_type`; there is at most one per type."""

    def register(handler: H) -> H:
        if _handlers.get(event_type, handler) is not handler:
            raise ValueError(f"{event_type} already has a handler: {_handlers[event_type].__qualname__}")
        _handlers[event_type] = handler
        return handler

    return register


def handler_for(event_type: str) -> WebhookHandler | None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)
    return _handlers.get(event_type)


async def record_webhook_event(session: AsyncSession, event: StripeEvent) -> bool:
    """Store a verified event unless its id is already stored; only a new one asks the worker to apply it.

    Two deliveries of one event racing each other meet at the primary key: one inserts, the other waits for it and
    then inserts nothing. Returns whether this delivery was the first."""
    stored = await session.scalar(
        insert(WebhookEvent)
        .values(id=event.id, type=event.type, object_id=event.object_id, payload=event.payload)
        .on_conflict_do_nothing(index_elements=[WebhookEvent.id])
        .returning(WebhookEvent.id)
    )
    if stored is None:
        return False
    enqueue_job(session, PROCESS_WEBHOOK, event.id)
    return True


async def apply_webhook_event(session: AsyncSession, gateway: PaymentGateway, event_id: str) -> bool:
    """Apply a stored event once: mark it processed and run its handler in the same transaction.

    The conditional UPDATE claims the event; a second worker on the same event waits on the row and then finds it
    processed. If the handler fails the transaction rolls back and the event stays unprocessed for a retry. Events
    of a type nobody handles are simply marked processed. Returns whether this call applied the event."""
    claimed = (
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
            .values(processed_at=func.now())
            .returning(WebhookEvent.type, WebhookEvent.object_id, WebhookEvent.payload)
        )
    ).one_or_none()
    if claimed is None:
        return False
    event = StripeEvent(id=event_id, type=claimed.type, object_id=claimed.object_id, payload=claimed.payload)
    handler = handler_for(event.type)
    if handler is not None:
        await handler(session, gateway, event)
    return True


async def record_webhook_failure(session: AsyncSession, event_id: str, error: str) -> None:
    """Note a failed attempt to apply an event (which stays unprocessed), for the sweep and for whoever debugs it."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
        .values(attempts=WebhookEvent.attempts + 1, last_error=error[:ERROR_LIMIT])
    )


async def webhook_events_due_again(session: AsyncSession, *, limit: int = 500) -> list[str]:
    """Stored events still unapplied long after they arrived, oldest first: their job was lost, or failed and waits
    out a pause that doubles with each attempt. After MAX_ATTEMPTS they are left for a person to look at."""
    due = await session.scalars(
        select(WebhookEvent.id)
        .where(
            WebhookEvent.processed_at.is_(None),
            WebhookEvent.attempts < MAX_ATTEMPTS,
            WebhookEvent.received_at
            < func.now()
            - text("make_interval(secs => :base * power(2, webhook_events.attempts))").bindparams(
                base=RETRY_AFTER_SECONDS
            ),
        )
        .order_by(WebhookEvent.received_at)
        .limit(limit)
    )
    return list(due)
