"""One Stripe Customer per user, made the first time they save a card and reused ever after."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import User
from payments.gateway import PaymentGateway
from payments.models import StripeCustomer


async def ensure_customer(session: AsyncSession, gateway: PaymentGateway, user: User) -> str:
    """The user's Stripe Customer id, creating the Customer if they have none.

    Two requests of one user racing here make one Customer: the second waits on a lock of the user's row until the
    first has committed, then finds its Customer. The lock (NO KEY UPDATE, so rows that merely reference the user
    are not held up) is taken only when there is no Customer yet, and held across one call to Stripe: run this in a
    transaction of its own, before the one that reserves a pledge, so that lock is not held longer and a pledge
    that rolls back does not take the Customer's row with it."""
    known = await _stored_customer(session, user)
    if known is not None:
        return known
    # key_share=True is FOR NO KEY UPDATE
    await session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))
    known = await _stored_customer(session, user)
    if known is not None:
        return known
    created = await gateway.create_customer(user_id=user.id, email=user.email, name=user.name)
    stored: str | None = await session.scalar(
        insert(StripeCustomer)
        .values(user_id=user.id, customer_id=created)
        .on_conflict_do_nothing(index_elements=[StripeCustomer.user_id])
        .returning(StripeCustomer.customer_id)
    )
    if stored is not None:
        return stored
    # Someone stored a Customer without taking the lock; theirs wins and ours goes.
    existing = await _stored_customer(session, user)
    assert existing is not None
    if existing != created:
        await gateway.delete_customer(created)
    return existing


async def _stored_customer(session: AsyncSession, user: User) -> str | None:
    customer_id: str | None = await session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.user_id == user.id)
    )
    return customer_id
