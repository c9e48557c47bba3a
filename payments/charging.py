"""Charging the pledges of a successful campaign: each one exactly once, by idempotent jobs of up to CHARGE_BATCH
pledges each.

A charge attempt is recorded before Stripe is called (unique per pledge and attempt number, with the idempotency key
`pledge:<id>:charge:<n>`), in a transaction of its own (one for the job's whole batch); Stripe is called with no
transaction open; the outcome is recorded in another (again one for the batch). An attempt whose outcome is not
recorded (`started`: the process died between the call and the commit, or before the call; `unknown`: the call
failed on the way) is "in doubt", and before anything else its PaymentIntent is looked for at Stripe by its
metadata. Only when Stripe has none is the same attempt sent again, with the same idempotency key, so neither real
Stripe (which honours the key) nor a stand-in that ignores it (localstripe, whose listing is exact) ever charges
twice. Nothing stays in doubt for ever: an attempt recorded over KINDLING_CHARGE_DOUBT_HOURS ago that Stripe still has
no PaymentIntent for is settled as failed (DOUBT_EXPIRED), logged at ERROR and listed on the operators' escrow desk.
While a job works on a pledge it holds the pledge's advisory lock (payments.stripe_jobs.held_exclusively_many), so no
second job sends the same attempt meanwhile.

What an outcome does to the pledge is `record_charge_outcome(s)`, the one code path shared by the job and by Stripe's
webhooks (payments.charge_events), which may deliver it before, after or instead of the job; it only ever moves
forward. A card that is declined, or that the bank wants authenticated, or a charge Stripe refuses outright (a 4xx
other than 429: a deleted Customer, an unknown card, an amount out of bounds) makes the pledge `errored`: the backer may
give a new card within the retry window (7 campaign days, payments.closing.RETRY_WINDOW_DAYS), is reminded a day
before it ends, and is dropped after it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict
from campaigns.jobs import enqueue_job
from campaigns.models import Campaign, Pledge, User
from campaigns.notifications import notify
from campaigns.pledges.lifecycle import WAITING_PLEDGE_STATUSES, PledgeStatus
from campaigns.pledges.service import pledge_facts, release_tier_slots
from campaigns.pledges.units import give_back_pledge_units
from fulfillment.backer_mail import mail_about_pledge, mail_backers
from payments.closing import (
    IN_DOUBT_REQUEUE_SECONDS,
    REMOVE_CARD,
    RETRY_WINDOW_DAYS,
    fund_if_settled,
    fund_settled_campaigns,
    in_doubt_attempt,
    parse_job_id,
    requeue_due,
)
from payments.gateway import ChargeResult, GatewayError, PaymentRefused, RequestRefused, SetupIntentResult
from payments.ledger import EscrowShort, record_collection, record_fee_borne_by_platform, record_refund
from payments.models import IN_DOUBT_ATTEMPT_STATUSES, ChargeAttempt, ChargeTerms, Refund, StripeCustomer
from payments.refunds import create_refund, pledge_money, settle_refunded_pledge
from payments.stripe_jobs import CHARGE_DOUBT_SECONDS, CHARGING_PLEDGE, StripeWork, held_exclusively_many

log = logging.getLogger("kindling.payments")

CHARGE_PLEDGE = "payments.charge"
# How many pledges one charge job takes on when the sweep asks for many.
CHARGE_BATCH = 20
DEFAULT_RETRY_WINDOW_SECONDS = RETRY_WINDOW_DAYS * 86400
# PaymentIntent statuses after which nothing more happens without the backer: the charge failed.
_FAILED_INTENT_STATUSES = ("requires_payment_method", "requires_action", "canceled")


class ChargeDeferred(Exception):
    """Stripe could not be reached, or asked us to slow down: the attempt is left in doubt and tried again (after
    Dramatiq's back-off, or the sweep's next look), beginning with a look at Stripe for it."""


class CampaignMovedOn(Exception):
    """By the time a call's turn came, its campaign was no longer successful (say, its space suspended it): the
    batch stops there. Its attempts not sent stay in doubt until a later job finds them unsent at Stripe and
    settles their pledges as the campaign now requires."""


class NotErrored(Conflict):
    type = "pledge-not-errored"
    title = "Only a pledge whose charge failed takes a new card"


class RetryWindowClosed(Conflict):
    type = "retry-window-closed"
    title = "The time to give a new card has passed"


@dataclass(frozen=True)
class ChargeOutcome:
    """What Stripe says about one charge attempt, as far as our books care."""

    status: Literal["succeeded", "failed", "pending"]
    payment_intent_id: str | None = None
    failure_code: str | None = None
    amount: int | None = None
    # What Stripe kept, in the charge's own currency (a fee in another currency is not ours to book here: 0).
    processor_fee: int = 0
    amount_refunded: int = 0


def outcome_of(charge: ChargeResult) -> ChargeOutcome:
    if charge.succeeded:
        fee = charge.fee if charge.fee is not None and charge.fee_currency == charge.currency else 0
        return ChargeOutcome(
            "succeeded",
            charge.payment_intent_id,
            amount=charge.amount,
            processor_fee=fee,
            amount_refunded=charge.amount_refunded,
        )
    if charge.status in _FAILED_INTENT_STATUSES:
        code = charge.failure_code or (
            "authentication_required" if charge.status == "requires_action" else charge.status
        )
        return ChargeOutcome("failed", charge.payment_intent_id, failure_code=code, amount=charge.amount)
    return ChargeOutcome("pending", charge.payment_intent_id, amount=charge.amount)


def outcome_of_refusal(refused: PaymentRefused) -> ChargeOutcome:
    code = refused.code or ("authentication_required" if refused.type == "authentication-required" else "declined")
    return ChargeOutcome("failed", refused.payment_intent_id, failure_code=code)


NOT_SENT = ChargeOutcome("failed", failure_code="not_sent")
# Why an attempt in doubt for longer than KINDLING_CHARGE_DOUBT_HOURS, that Stripe has no PaymentIntent for, failed.
DOUBT_EXPIRED = "doubt_expired"
DOUBT_SETTLED = ChargeOutcome("failed", failure_code=DOUBT_EXPIRED)


@dataclass(frozen=True)
class ChargeCall:
    """The call to Stripe a charge job is to make."""

    pledge_id: uuid.UUID
    campaign_id: uuid.UUID
    attempt: int
    amount: int
    currency: str
    customer_id: str
    payment_method_id: str
    # An earlier call of this attempt may have reached Stripe: look for its PaymentIntent first.
    in_doubt: bool
    # Whether the pledge may still be charged, should Stripe have no PaymentIntent for the attempt.
    may_charge: bool
    # In doubt for longer than the job's charge_doubt_seconds: should Stripe have no PaymentIntent for it, it failed.
    doubt_expired: bool = False


# The job


async def charge_pledges(work: StripeWork, *pledge_refs: str) -> list[str]:
    """The "payments.charge" job, for one pledge or a batch of them (the sweep asks in batches of CHARGE_BATCH).
    Idempotent and driven by the database: run any number of times, at once or after a crash, it charges each
    pledge at most once. Returns what happened to each, in order: "succeeded", "failed", "pending", "nothing" or
    "busy" (another job holds the pledge). Raises ChargeDeferred when Stripe is unavailable or rate-limits us, after
    recording what the batch's other calls got.

    A batch shares what one pledge alone pays for: the message, the advisory locks (one round trip), the
    transaction that decides the calls, and the one that records the outcomes. Its calls go to Stripe one after
    another, each when the rate limit gives it a turn; the worker's many jobs make them concurrent."""
    refs = [parse_job_id(ref) for ref in pledge_refs]
    results: dict[uuid.UUID, str] = {}
    async with held_exclusively_many(work.engine, CHARGING_PLEDGE, [ref for ref in refs if ref]) as mine:
        if mine:
            async with work.transaction() as session:
                calls = await next_charge_calls(session, sorted(mine), doubt_seconds=work.charge_doubt_seconds)
            outcomes, failure = await _make_calls(work, calls)
            await _record_outcomes(work, outcomes)
            if outcomes:
                # Outcomes recorded at once, each under a share lock, may each see the other still waiting: whichever
                # commits last finds the campaign settled here, instead of at the sweep's next look.
                async with work.transaction() as session:
                    await fund_settled_campaigns(session, among={call.campaign_id for call, _outcome in outcomes})
            results.update((call.pledge_id, outcome.status) for call, outcome in outcomes)
            if failure is not None:
                raise failure
    return [("busy" if ref not in mine else results.get(ref, "nothing")) if ref else "nothing" for ref in refs]


async def _make_calls(
    work: StripeWork, calls: Sequence[ChargeCall]
) -> tuple[list[tuple[ChargeCall, ChargeOutcome]], Exception | None]:
    """Stripe's word on each call: for the attempts in doubt, the PaymentIntents Stripe has for them (looked for
    together); for the others, and for those Stripe has none for while the pledge may still be charged, the
    charge itself, one after another. The first failure (Stripe unavailable: ChargeDeferred) stops the batch:
    returns what the calls before it got, and the failure. A campaign no longer successful stops it too, with no
    failure (CampaignMovedOn)."""
    outcomes: list[tuple[ChargeCall, ChargeOutcome]] = []
    try:
        found = await _find_in_doubt(work, [call for call in calls if call.in_doubt])
        for call in calls:
            outcome = found.get((call.pledge_id, call.attempt))
            if outcome is None and call.in_doubt and not call.may_charge:
                outcome = NOT_SENT
            elif outcome is None and call.doubt_expired:
                log.error(
                    "pledge %s attempt %d: in doubt for over %d hours and never seen at Stripe: settled as failed",
                    call.pledge_id,
                    call.attempt,
                    work.charge_doubt_seconds // 3600,
                )
                outcome = DOUBT_SETTLED
            outcomes.append((call, outcome or await _send_charge(work, call)))
    except CampaignMovedOn as moved_on:
        log.info("%s; the rest of the batch waits for the sweep", moved_on)
    except Exception as error:
        return outcomes, error
    return outcomes, None


async def _find_in_doubt(work: StripeWork, calls: Sequence[ChargeCall]) -> dict[tuple[uuid.UUID, int], ChargeOutcome]:
    if not calls:
        return {}
    for _call in calls:
        await work.wait_for_turn()
    try:
        found = await work.gateway.find_charges([(call.pledge_id, call.attempt) for call in calls])
    except GatewayError as error:
        raise ChargeDeferred(f"cannot look for {len(calls)} charge attempt(s) in doubt: {error}") from error
    return {(uuid.UUID(pledge_id), attempt): outcome_of(charge) for (pledge_id, attempt), charge in found.items()}


async def _record_outcomes(work: StripeWork, outcomes: list[tuple[ChargeCall, ChargeOutcome]]) -> None:
    """Record a batch's outcomes in one transaction; should that fail, each in its own, so that one pledge's
    trouble leaves the others recorded (and it alone in doubt, for the sweep)."""
    if not outcomes:
        return
    try:
        async with work.transaction() as session:
            await record_charge_outcomes(
                session, [(call.pledge_id, call.attempt, outcome) for call, outcome in outcomes]
            )
        return
    except Exception:
        if len(outcomes) == 1:
            raise
        log.exception("recording %d charge outcomes at once failed: recording them one by one", len(outcomes))
    failure: Exception | None = None
    for call, outcome in outcomes:
        try:
            async with work.transaction() as session:
                await record_charge_outcome(session, call.pledge_id, call.attempt, outcome)
        except Exception as error:
            log.exception("recording the outcome of pledge %s attempt %d failed", call.pledge_id, call.attempt)
            failure = failure or error
    if failure is not None:
        raise failure


async def _send_charge(work: StripeWork, call: ChargeCall) -> ChargeOutcome:
    await work.wait_for_turn()
    # The batch's calls were decided a moment ago, and each waits for its turn: look at the campaign once more.
    if not await _still_successful(work, call.campaign_id):
        raise CampaignMovedOn(f"campaign {call.campaign_id} is no longer successful: pledge {call.pledge_id} not sent")
    try:
        charge = await work.gateway.charge_off_session(
            pledge_id=call.pledge_id,
            attempt=call.attempt,
            amount=call.amount,
            currency=call.currency,
            customer_id=call.customer_id,
            payment_method_id=call.payment_method_id,
        )
    except PaymentRefused as refused:
        return outcome_of_refusal(refused)
    except RequestRefused as refused:
        # Stripe refused the call itself (a deleted Customer, an unknown card, an amount it will not charge): it
        # charged nothing and never will on this attempt, which fails like a declined card.
        return ChargeOutcome("failed", failure_code=f"refused:{refused.code or 'invalid_request'}")
    except GatewayError as error:
        # It may or may not have reached Stripe (a timeout, a 5xx, a bad key); a 429 did not, but is handled alike.
        async with work.transaction() as session:
            await session.execute(
                update(ChargeAttempt)
                .where(
                    ChargeAttempt.pledge_id == call.pledge_id,
                    ChargeAttempt.attempt == call.attempt,
                    ChargeAttempt.status.in_(IN_DOUBT_ATTEMPT_STATUSES),
                )
                .values(status="unknown", failure_code=error.type)
            )
        raise ChargeDeferred(f"pledge {call.pledge_id} attempt {call.attempt}: {error.detail}") from error
    return outcome_of(charge)


async def _still_successful(work: StripeWork, campaign_id: uuid.UUID) -> bool:
    async with work.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        status = await connection.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    return status == "successful"


async def next_charge_call(session: AsyncSession, pledge_id: uuid.UUID) -> ChargeCall | None:
    """`next_charge_calls` for one pledge: its call, or None when there is nothing to do."""
    calls = await next_charge_calls(session, [pledge_id])
    return calls[0] if calls else None


async def next_charge_calls(
    session: AsyncSession, pledge_ids: Sequence[uuid.UUID], *, doubt_seconds: int = CHARGE_DOUBT_SECONDS
) -> list[ChargeCall]:
    """Decide, under the campaigns' share locks and the pledges' row locks, which call a job makes for each pledge:
    the attempt in doubt if there is one (noting whether it was recorded over `doubt_seconds` ago), else a new
    attempt (recorded here, `started`) when the pledge is due for a charge; nothing when there is nothing to do. A
    pledge is due when its campaign is successful and it is active, or errored with a new card given since its last
    attempt. Four reads and one write, however many pledges."""
    ids = sorted(set(pledge_ids))
    campaign_statuses: dict[uuid.UUID, str] = {
        row.id: row.status
        for row in await session.execute(
            select(Campaign.id, Campaign.status)
            .where(Campaign.id.in_(select(Pledge.campaign_id).where(Pledge.id.in_(ids))))
            .order_by(Campaign.id)
            .with_for_update(read=True)
        )
    }
    pledges = await _lock_pledges(session, ids)
    doubt_expired = ChargeAttempt.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, doubt_seconds)
    last_attempts: dict[uuid.UUID, tuple[ChargeAttempt, bool]] = {
        attempt.pledge_id: (attempt, expired)
        for attempt, expired in await session.execute(
            select(ChargeAttempt, doubt_expired)
            .where(ChargeAttempt.pledge_id.in_(ids))
            .ext(distinct_on(ChargeAttempt.pledge_id))
            .order_by(ChargeAttempt.pledge_id, ChargeAttempt.attempt.desc())
            .execution_options(populate_existing=True)
        )
    }
    customers: dict[uuid.UUID, str] = {
        row.user_id: row.customer_id
        for row in await session.execute(
            select(StripeCustomer.user_id, StripeCustomer.customer_id).where(
                StripeCustomer.user_id.in_({pledge.backer_id for pledge in pledges.values()})
            )
        )
    }
    calls = []
    for pledge in pledges.values():
        last, expired = last_attempts.get(pledge.id, (None, False))
        call = _next_call(
            pledge, campaign_statuses.get(pledge.campaign_id), last, customers.get(pledge.backer_id), expired=expired
        )
        if call is None:
            continue
        calls.append(call)
        if not call.in_doubt:
            session.add(
                ChargeAttempt(
                    pledge_id=pledge.id,
                    attempt=call.attempt,
                    idempotency_key=f"pledge:{pledge.id}:charge:{call.attempt}",
                    amount=call.amount,
                    currency=call.currency,
                    payment_method_id=call.payment_method_id,
                )
            )
    await session.flush()
    return calls


def _next_call(
    pledge: Pledge, campaign_status: str | None, last: ChargeAttempt | None, customer_id: str | None, *, expired: bool
) -> ChargeCall | None:
    if campaign_status is None:
        return None
    new_card = pledge.payment_method_id is not None and (
        last is None or last.payment_method_id != pledge.payment_method_id
    )
    due = campaign_status == "successful" and (
        pledge.status == PledgeStatus.ACTIVE or (pledge.status == PledgeStatus.ERRORED and new_card)
    )
    if last is not None and last.status in IN_DOUBT_ATTEMPT_STATUSES:
        return ChargeCall(
            pledge_id=pledge.id,
            campaign_id=pledge.campaign_id,
            attempt=last.attempt,
            amount=last.amount,
            currency=last.currency,
            customer_id=customer_id or "",
            payment_method_id=last.payment_method_id,
            in_doubt=True,
            # It was due when it was recorded; it still may be sent unless the campaign or the pledge has moved on.
            may_charge=campaign_status == "successful"
            and pledge.status in WAITING_PLEDGE_STATUSES
            and customer_id is not None,
            doubt_expired=expired,
        )
    if not due or customer_id is None or pledge.payment_method_id is None:
        if due:
            log.error("pledge %s is due for a charge but has no Stripe customer or card", pledge.id)
        return None
    if last is not None and last.status == "succeeded":
        return None
    return ChargeCall(
        pledge_id=pledge.id,
        campaign_id=pledge.campaign_id,
        attempt=1 if last is None else last.attempt + 1,
        amount=pledge.amount,
        currency=pledge.currency,
        customer_id=customer_id,
        payment_method_id=pledge.payment_method_id,
        in_doubt=False,
        may_charge=True,
    )


async def _lock_pledges(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Pledge]:
    """The pledges, read afresh and row-locked in the order of their ids (so two transactions that lock several
    never wait on each other in a circle)."""
    pledges = await session.scalars(
        select(Pledge)
        .where(Pledge.id.in_(ids))
        .order_by(Pledge.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {pledge.id: pledge for pledge in pledges}


# What an outcome does: the one code path for the job and the webhooks


async def record_charge_outcome(
    session: AsyncSession, pledge_id: uuid.UUID, attempt: int, outcome: ChargeOutcome
) -> bool:
    """Record what Stripe said about a charge attempt and move the pledge, the ledger and the campaign forward, never
    backward: recording an outcome twice, or an older one after a newer, changes nothing.

    succeeded: the collection is booked (with the campaign's fees), the pledge is `collected` and the backer told; a
    refund Stripe reports on the charge is booked too. On a campaign that was suspended meanwhile (or a pledge no
    longer waiting) the money is booked without fees and given back in full, Stripe's fee borne by the platform.
    failed (a card declined, a charge Stripe refused outright, a doubt settled): an active pledge becomes `errored`
    with its retry window, and the backer gets a link to give a new card; on a suspended campaign the pledge is
    cancelled instead. After any outcome the campaign is funded if it no longer waits on anyone.
    Returns False when the attempt is not one of ours.
    """
    return await record_charge_outcomes(session, [(pledge_id, attempt, outcome)]) == 1


async def record_charge_outcomes(
    session: AsyncSession, outcomes: Sequence[tuple[uuid.UUID, int, ChargeOutcome]]
) -> int:
    """`record_charge_outcome` for many attempts (of any campaigns) in one transaction, in the order of their pledge
    ids. What they have in common is read once: the campaigns (share-locked: nobody can suspend or fund them
    meanwhile, yet the outcomes of their other pledges are recorded at the same time), the pledges (row-locked), the
    attempts and the backers. Each campaign is funded, if it is settled, once at the end. Returns how many attempts
    were ours."""
    ids = sorted({pledge_id for pledge_id, _attempt, _outcome in outcomes})
    campaigns = {
        campaign.id: campaign
        for campaign in await session.scalars(
            select(Campaign)
            .where(Campaign.id.in_(select(Pledge.campaign_id).where(Pledge.id.in_(ids))))
            .order_by(Campaign.id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
    }
    pledges = await _lock_pledges(session, ids)
    attempts = {
        (row.pledge_id, row.attempt): row
        for row in await session.scalars(
            select(ChargeAttempt).where(ChargeAttempt.pledge_id.in_(ids)).execution_options(populate_existing=True)
        )
    }
    # Kept referenced, so that the mails' `session.get` of each backer finds it in the identity map.
    backers = list(await session.scalars(select(User).where(User.id.in_({p.backer_id for p in pledges.values()}))))
    settled: dict[uuid.UUID, Campaign] = {}
    for pledge_id, attempt, outcome in sorted(outcomes, key=lambda item: item[0]):
        pledge = pledges.get(pledge_id)
        if pledge is None:
            log.warning("charge outcome for unknown pledge %s", pledge_id)
            continue
        row = attempts.get((pledge_id, attempt))
        if row is None:
            log.warning("charge outcome for pledge %s attempt %d, which was never made", pledge_id, attempt)
            continue
        campaign = campaigns[pledge.campaign_id]
        await _apply_outcome(session, campaign, pledge, row, outcome)
        settled[campaign.id] = campaign
    for campaign in settled.values():
        await fund_if_settled(session, campaign)
    del backers
    return sum(1 for pledge_id, attempt, _ in outcomes if (pledge_id, attempt) in attempts)


async def _apply_outcome(
    session: AsyncSession, campaign: Campaign, pledge: Pledge, row: ChargeAttempt, outcome: ChargeOutcome
) -> None:
    moved = await _move_attempt(session, row, outcome)
    if outcome.status == "succeeded":
        await _collect(session, campaign, pledge, row, outcome, moved=moved)
        if outcome.amount_refunded > 0 and outcome.payment_intent_id is not None:
            await _book_refunds_made_at_stripe(
                session, campaign, pledge, outcome.payment_intent_id, outcome.amount_refunded
            )
    elif outcome.status == "failed" and moved:
        await _refuse(session, campaign, pledge, outcome)


async def _move_attempt(session: AsyncSession, row: ChargeAttempt, outcome: ChargeOutcome) -> bool:
    """Forward only: in doubt → anything; failed → succeeded (Stripe's word wins); succeeded stays."""
    movable: tuple[str, ...] = IN_DOUBT_ATTEMPT_STATUSES
    if outcome.status == "pending":
        new_status = "unknown"
    elif outcome.status == "succeeded":
        new_status, movable = "succeeded", (*IN_DOUBT_ATTEMPT_STATUSES, "failed")
    else:
        new_status = "failed"
    values: dict[str, Any] = {"status": new_status}
    if outcome.payment_intent_id is not None:
        values["payment_intent_id"] = outcome.payment_intent_id
    if outcome.status != "pending":
        values["finished_at"] = func.now()
        values["failure_code"] = outcome.failure_code
    moved = await session.scalar(
        update(ChargeAttempt)
        .where(ChargeAttempt.id == row.id, ChargeAttempt.status.in_(movable))
        .values(**values)
        .returning(ChargeAttempt.id)
    )
    return moved is not None


async def _collect(
    session: AsyncSession,
    campaign: Campaign,
    pledge: Pledge,
    row: ChargeAttempt,
    outcome: ChargeOutcome,
    *,
    moved: bool,
) -> None:
    collectable = pledge.status in WAITING_PLEDGE_STATUSES and campaign.status == "successful"
    terms = await session.get(ChargeTerms, campaign.id)
    if collectable and terms is None:
        log.error(
            "campaign %s has no charge terms (it was not closed by the sweep): collecting without fees", campaign.id
        )
    platform_bps, sponsor_bps, fund_bps = (
        (terms.platform_fee_bps, terms.sponsor_fee_bps, terms.fund_share_bps) if collectable and terms else (0, 0, 0)
    )
    amount = outcome.amount if outcome.amount is not None else row.amount
    booked = await record_collection(
        session,
        campaign,
        pledge.id,
        amount,
        campaign.currency,
        platform_bps,
        sponsor_bps,
        outcome.processor_fee,
        fund_share_bps=fund_bps,
        clearing="match_clearing" if pledge.is_match else "stripe_clearing",
    )
    if booked is None:
        if moved:
            # Another attempt of this pledge was collected already: by design this cannot happen. Say so loudly.
            log.error("pledge %s: attempt %d succeeded but the pledge was collected before", pledge.id, row.attempt)
        return
    if pledge.status in WAITING_PLEDGE_STATUSES:
        await session.scalar(
            update(Pledge)
            .where(Pledge.id == pledge.id)
            .values(status=PledgeStatus.COLLECTED, charged_at=func.now(), retry_until=None)
            .returning(Pledge)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    if collectable:
        backer = await session.get_one(User, pledge.backer_id)
        await notify(session, backer, "pledge_charged", **await pledge_facts(session, pledge))
        return
    # Charged after the campaign was suspended (the call was already on its way), or on a pledge no longer waiting:
    # the backer gets it all back, and Stripe's fee on it is the platform's to bear.
    log.warning("pledge %s was charged after its campaign became %s: giving it back", pledge.id, campaign.status)
    if outcome.payment_intent_id is None:
        return
    reference = f"late:{pledge.id}:{row.attempt}"
    if outcome.processor_fee > 0:
        await record_fee_borne_by_platform(session, campaign, pledge.id, reference, outcome.processor_fee)
    await create_refund(
        session, campaign, pledge.id, amount, reference=reference, payment_intent_id=outcome.payment_intent_id
    )


async def _refuse(session: AsyncSession, campaign: Campaign, pledge: Pledge, outcome: ChargeOutcome) -> None:
    if pledge.status not in WAITING_PLEDGE_STATUSES:
        return
    if campaign.status != "successful":
        refused = (
            await session.execute(
                update(Pledge)
                .where(Pledge.id == pledge.id, Pledge.status.in_(WAITING_PLEDGE_STATUSES))
                .values(
                    status=PledgeStatus.CANCELLED,
                    cancelled_at=func.now(),
                    retry_until=None,
                    payment_job_requested_at=func.now(),
                )
                .returning(Pledge.tier_id)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if refused is not None:
            await give_back_pledge_units(session, [pledge.id])  # units before the slot, as the reservation
            await release_tier_slots(session, refused.tier_id)
        enqueue_job(session, REMOVE_CARD, pledge.id)
        return
    if pledge.status == PledgeStatus.ACTIVE:
        terms = await session.get(ChargeTerms, campaign.id)
        window = terms.retry_window_seconds if terms else DEFAULT_RETRY_WINDOW_SECONDS
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge.id, Pledge.status == PledgeStatus.ACTIVE)
            .values(status=PledgeStatus.ERRORED, retry_until=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, window))
            .execution_options(synchronize_session=False)
        )
        await session.refresh(pledge)
    backer = await session.get_one(User, pledge.backer_id)
    await notify(
        session,
        backer,
        "charge_failed",
        **await pledge_facts(session, pledge),
        reason=outcome.failure_code or "declined",
        retry_until=_iso(pledge.retry_until),
    )


async def _book_refunds_made_at_stripe(
    session: AsyncSession, campaign: Campaign, pledge: Pledge, payment_intent_id: str, amount_refunded: int
) -> None:
    """Stripe says `amount_refunded` of the charge has been given back. What our own refund jobs have booked, or
    may be booking now, is ours; anything beyond it was refunded outside Kindling (say, from Stripe's dashboard)
    and is booked here, once per total Stripe reports."""
    _collected, booked = await pledge_money(session, pledge.id)
    in_flight = int(
        await session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.pledge_id == pledge.id, Refund.status == "pending", Refund.attempted_at.is_not(None)
            )
        )
        or 0
    )
    outside = amount_refunded - booked - in_flight
    if outside <= 0:
        return
    try:
        await record_refund(
            session, campaign, f"stripe:{payment_intent_id}:{amount_refunded}", outside, pledge_id=pledge.id
        )
    except EscrowShort:
        log.error("pledge %s: %d refunded at Stripe is more than escrow holds; booked later", pledge.id, outside)
        raise
    await settle_refunded_pledge(session, pledge.id)


# A new card for an errored pledge


async def take_new_card(session: AsyncSession, pledge: Pledge, intent: SetupIntentResult) -> bool:
    """The backer's new card (its SetupIntent has succeeded) replaces the one that failed, and the charge is tried
    again at once by a job. Refused after the retry window. Returns whether the card was taken."""
    if not intent.succeeded or intent.payment_method is None:
        return False
    taken = await session.scalar(
        update(Pledge)
        .where(
            Pledge.id == pledge.id,
            Pledge.status == PledgeStatus.ERRORED,
            Pledge.setup_intent_id == intent.id,
            Pledge.retry_until > func.now(),
        )
        .values(payment_method_id=intent.payment_method, payment_job_requested_at=func.now())
        .returning(Pledge.id)
    )
    if taken is None:
        await session.refresh(pledge)
        if pledge.status == PledgeStatus.ERRORED:
            raise RetryWindowClosed("The time to give a new card for this pledge has passed.")
        return False
    enqueue_job(session, CHARGE_PLEDGE, pledge.id)
    await session.refresh(pledge)
    return True


async def record_new_card_setup(
    session: AsyncSession, pledge: Pledge, *, setup_intent_id: str, client_secret: str
) -> None:
    """Keep the SetupIntent that asks an errored pledge's backer for a new card."""
    stored = await session.scalar(
        update(Pledge)
        .where(Pledge.id == pledge.id, Pledge.status == PledgeStatus.ERRORED)
        .values(setup_intent_id=setup_intent_id, setup_intent_client_secret=client_secret)
        .returning(Pledge.id)
    )
    if stored is None:
        raise NotErrored(f"A pledge that is {pledge.status} takes no new card.")
    await session.refresh(pledge)


# What the operators see


async def charges_settled_after_doubt(session: AsyncSession, campaigns: Any, *, limit: int) -> list[Any]:
    """The charge attempts settled as failed after too long in doubt (DOUBT_EXPIRED), latest first, of the
    campaigns `campaigns` (SQL on Campaign) selects: rows of pledge_id, attempt, amount, currency, settled_at,
    campaign_title, campaign_slug."""
    rows = await session.execute(
        select(
            ChargeAttempt.pledge_id,
            ChargeAttempt.attempt,
            ChargeAttempt.amount,
            ChargeAttempt.currency,
            ChargeAttempt.finished_at.label("settled_at"),
            Campaign.title.label("campaign_title"),
            Campaign.slug.label("campaign_slug"),
        )
        .join(Pledge, Pledge.id == ChargeAttempt.pledge_id)
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .where(campaigns, ChargeAttempt.failure_code == DOUBT_EXPIRED, ChargeAttempt.status == "failed")
        .order_by(ChargeAttempt.finished_at.desc(), ChargeAttempt.id)
        .limit(limit)
    )
    return list(rows)


# The sweep's steps


async def request_due_charges(session: AsyncSession, *, limit: int) -> int:
    """Ask for a charge job for pledges due for one whose job was never asked for or seems lost: active pledges of
    successful campaigns, errored ones with a new card, and any with an attempt in doubt (whatever the campaign).
    At most `limit` per sweep, so the queue holds about what the rate limit lets through until the next one."""
    chargeable = (
        select(Campaign.id)
        .where(Campaign.id == Pledge.campaign_id, Campaign.status == "successful")
        .where(or_(Pledge.status == PledgeStatus.ACTIVE, (Pledge.status == PledgeStatus.ERRORED) & _new_card_given()))
        .exists()
    )
    due = or_(
        in_doubt_attempt() & requeue_due(IN_DOUBT_REQUEUE_SECONDS),
        Pledge.status.in_(WAITING_PLEDGE_STATUSES) & chargeable & requeue_due(),
    )
    asked = await session.scalars(
        update(Pledge)
        .where(
            # Pledges a charge job has locked are being charged: the sweep passes them by rather than wait, which
            # could deadlock with a job that locks several.
            Pledge.id.in_(
                select(Pledge.id).where(due).order_by(Pledge.number).limit(limit).with_for_update(skip_locked=True)
            )
        )
        .values(payment_job_requested_at=func.now())
        .returning(Pledge.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(asked)
    for start in range(0, len(ids), CHARGE_BATCH):
        enqueue_job(session, CHARGE_PLEDGE, *ids[start : start + CHARGE_BATCH])
    return len(ids)


def _new_card_given() -> Any:
    """SQL, correlated to `pledges`: the pledge's card is not the one its last attempt charged."""
    last_card = (
        select(ChargeAttempt.payment_method_id)
        .where(ChargeAttempt.pledge_id == Pledge.id)
        .order_by(ChargeAttempt.attempt.desc())
        .limit(1)
        # Named: nested in another EXISTS (request_due_charges), automatic correlation would not reach `pledges`.
        .correlate(Pledge)
        .scalar_subquery()
    )
    return Pledge.payment_method_id.is_not(None) & Pledge.payment_method_id.is_distinct_from(last_card)


async def remind_errored_pledges(session: AsyncSession, *, day_seconds: int, limit: int = 500) -> int:
    """The sweep's step: once, a day before its retry window ends, tell the backer of an errored pledge that it
    still needs a card."""
    reminded = (
        await session.execute(
            update(Pledge)
            .where(
                Pledge.id.in_(
                    select(Pledge.id)
                    .where(
                        Pledge.status == PledgeStatus.ERRORED,
                        Pledge.reminded_at.is_(None),
                        Pledge.retry_until > func.now(),
                        Pledge.retry_until <= func.now() + func.make_interval(0, 0, 0, 0, 0, 0, day_seconds),
                        not_(in_doubt_attempt()),
                        not_(_new_card_given()),
                    )
                    .limit(limit)
                )
            )
            .values(reminded_at=func.now())
            .returning(Pledge.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return await _mail_pledges(session, "charge_retry_reminder", [row.id for row in reminded])


async def drop_expired_pledges(session: AsyncSession, *, limit: int = 500) -> int:
    """The sweep's step: errored pledges whose retry window has passed without a new card are `dropped`: their
    reward slot is freed, their card removed, their backer told. A pledge whose charge is in doubt or whose new
    card has not been tried yet waits for that first.

    The rows are locked first (skipping those a charge job holds), and checked in a second statement that sees
    whatever such a job committed before the lock was taken."""
    locked = list(
        await session.scalars(
            select(Pledge.id)
            .where(Pledge.status == PledgeStatus.ERRORED, Pledge.retry_until <= func.now())
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not locked:
        return 0
    rows = (
        await session.execute(
            update(Pledge)
            .where(
                Pledge.id.in_(locked),
                Pledge.status == PledgeStatus.ERRORED,
                Pledge.retry_until <= func.now(),
                not_(in_doubt_attempt()),
                not_(_new_card_given()),
            )
            .values(status=PledgeStatus.DROPPED, payment_job_requested_at=func.now())
            .returning(Pledge.id, Pledge.tier_id, Pledge.payment_method_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    freed: dict[uuid.UUID, int] = {}
    for row in rows:
        if row.tier_id is not None:
            freed[row.tier_id] = freed.get(row.tier_id, 0) + 1
        if row.payment_method_id is not None:
            enqueue_job(session, REMOVE_CARD, row.id)
    await give_back_pledge_units(session, [row.id for row in rows])  # units before the slots, as the reservation
    for tier_id, count in freed.items():
        await release_tier_slots(session, tier_id, count)
    return await _mail_pledges(session, "pledge_dropped", [row.id for row in rows])


async def _mail_pledges(session: AsyncSession, kind: str, pledge_ids: list[uuid.UUID]) -> int:
    if not pledge_ids:
        return 0
    rows = await session.execute(
        select(
            Pledge.id,
            Pledge.amount,
            Pledge.currency,
            Pledge.retry_until,
            Campaign.id.label("campaign_id"),
            Campaign.title,
            User.id.label("user_id"),
            User.email,
            User.locale,
            User.name,
        )
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .join(User, User.id == Pledge.backer_id)
        .where(Pledge.id.in_(pledge_ids))
        .order_by(Pledge.number)
    )
    return await mail_backers(
        session,
        kind,
        (
            mail_about_pledge(
                row,
                {
                    "campaign_id": str(row.campaign_id),
                    "campaign_title": row.title,
                    "amount": row.amount,
                    "currency": row.currency,
                    "retry_until": _iso(row.retry_until),
                },
            )
            for row in rows
        ),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
