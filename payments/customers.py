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
    that rolls back does not take the Customer's row with it. Pledging (pledges/checkout.py) does not use this: it
    calls Stripe with no connection held, through `stored_customer` and `keep_customer`."""
    known = await stored_customer(session, user)
    if known is not None:
        return known
    # key_share=True is FOR NO KEY UPDATE
    await session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))
    known = await stored_customer(session, user)
    if known is not None:
        return known
    created = await gateway.create_customer(user_id=user.id, email=user.email, name=user.name)
    # Someone may have stored a Customer without taking the lock (pledges/checkout.py does): theirs wins and ours goes.
    kept = await keep_customer(session, user, created)
    if kept != created:
        await gateway.delete_customer(created)
    return kept


async def stored_customer(session: AsyncSession, user: User) -> str | None:
    """The user's Stripe Customer id, if they have one already."""
    customer_id: str | None = await session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.user_id == user.id)
    )
    return customer_id


async def keep_customer(session: AsyncSession, user: User, customer_id: str) -> str:
    """Store the Customer just made at Stripe for `user`, unless another request stored one first; returns the id
    that is kept. A caller whose Customer was not kept deletes it at Stripe (on real Stripe both requests got the
    same Customer anyway, through the idempotency key made of the user's id)."""
    stored: str | None = await session.scalar(
        insert(StripeCustomer)
        .values(user_id=user.id, customer_id=customer_id)
        .on_conflict_do_nothing(index_elements=[StripeCustomer.user_id])
        .returning(StripeCustomer.customer_id)
    )
    if stored is not None:
        return stored
    existing = await stored_customer(session, user)
    assert existing is not None
    return existing
