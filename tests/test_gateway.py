"""The payment gateway against the real Stripe stand-in (localstripe), and the one Stripe Customer per user."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from campaigns.models import User
from payments.customers import ensure_customer
from payments.gateway import (
    AuthenticationRequired,
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    RateLimited,
    RequestRefused,
    StripeGateway,
)
from payments.models import StripeCustomer
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import (
    CARD_DECLINED_AT_CHARGE,
    CARD_DECLINED_AT_SETUP,
    CARD_NEEDS_AUTHENTICATION,
    CARD_OK,
    complete_card_authentication,
    confirm_card_setup,
    serving,
    sign_up,
    stripe_object,
)


@dataclass
class SavedCard:
    customer_id: str
    payment_method_id: str


async def save_card(gateway: StripeGateway, stripe: EmbeddedStripe, card_number: str = CARD_OK) -> SavedCard:
    customer_id = await gateway.create_customer(user_id=uuid.uuid4(), email="backer@example.com", name="Backer")
    intent = await gateway.create_setup_intent(customer_id=customer_id, pledge_id=uuid.uuid4(), attempt=1)
    assert intent.client_secret is not None
    confirmed = await confirm_card_setup(stripe, intent.client_secret, card_number)
    if confirmed.json().get("status") == "requires_action":
        await complete_card_authentication(stripe, intent.client_secret)
    saved = await gateway.retrieve_setup_intent(intent.id)
    assert saved.succeeded and saved.payment_method is not None
    await gateway.attach_payment_method(payment_method_id=saved.payment_method, customer_id=customer_id)
    return SavedCard(customer_id, saved.payment_method)


async def user_named(sessions: async_sessionmaker[AsyncSession], email: str) -> User:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


async def test_a_user_gets_one_customer_that_is_reused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], gateway: StripeGateway
) -> None:
    backer = await sign_up(client, "Mei")
    user = await user_named(sessions, backer.email)

    async with sessions.begin() as session:
        first = await ensure_customer(session, gateway, user)
    async with sessions.begin() as session:
        again = await ensure_customer(session, gateway, user)

    assert first == again and first.startswith("cus_")
    async with sessions() as session:
        assert (
            await session.scalar(select(StripeCustomer.customer_id).where(StripeCustomer.user_id == user.id)) == first
        )


async def test_two_racing_requests_make_one_customer(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
    stripe_server: EmbeddedStripe,
) -> None:
    backer = await sign_up(client, "Lin")
    user = await user_named(sessions, backer.email)

    async def one_request() -> str:
        async with sessions.begin() as session:
            return await ensure_customer(session, gateway, user)

    ids = await asyncio.gather(*(one_request() for _ in range(4)))

    assert len(set(ids)) == 1
    at_stripe = await stripe_object(stripe_server, f"/v1/customers?email={backer.email}&limit=100")
    assert [customer["id"] for customer in at_stripe["data"]] == [ids[0]]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StripeCustomer)) == 1


async def test_a_setup_intent_saves_a_card_for_charging_later(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    customer_id = await gateway.create_customer(user_id=uuid.uuid4(), email="ada@example.com", name="Ada")
    pledge_id = uuid.uuid4()

    intent = await gateway.create_setup_intent(customer_id=customer_id, pledge_id=pledge_id, attempt=1)

    assert intent.status == "requires_payment_method" and intent.client_secret
    at_stripe = await stripe_object(stripe_server, f"/v1/setup_intents/{intent.id}")
    assert at_stripe["usage"] == "off_session"
    assert at_stripe["customer"] == customer_id
    assert at_stripe["metadata"] == {"pledge_id": str(pledge_id), "attempt": "1"}

    confirmed = await confirm_card_setup(stripe_server, intent.client_secret, CARD_OK)
    assert confirmed.status_code == 200, confirmed.text

    saved = await gateway.retrieve_setup_intent(intent.id)
    assert saved.succeeded
    assert saved.customer == customer_id
    assert saved.metadata["pledge_id"] == str(pledge_id)
    assert saved.payment_method is not None


async def test_the_saved_card_is_attached_to_the_customer_once(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    card = await save_card(gateway, stripe_server)

    # save_card attached it; a second attach (as after a retried confirm) changes nothing.
    await gateway.attach_payment_method(payment_method_id=card.payment_method_id, customer_id=card.customer_id)

    method = await stripe_object(stripe_server, f"/v1/payment_methods/{card.payment_method_id}")
    assert method["customer"] == card.customer_id
    assert method["card"]["last4"] == "4242"


async def test_a_card_declined_at_setup_does_not_succeed(gateway: StripeGateway, stripe_server: EmbeddedStripe) -> None:
    customer_id = await gateway.create_customer(user_id=uuid.uuid4(), email="bo@example.com", name="Bo")
    intent = await gateway.create_setup_intent(customer_id=customer_id, pledge_id=uuid.uuid4(), attempt=1)
    assert intent.client_secret is not None

    confirmed = await confirm_card_setup(stripe_server, intent.client_secret, CARD_DECLINED_AT_SETUP)

    assert confirmed.status_code == 402
    assert not (await gateway.retrieve_setup_intent(intent.id)).succeeded


async def test_an_off_session_charge_succeeds_and_reports_the_fee(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    card = await save_card(gateway, stripe_server)
    pledge_id = uuid.uuid4()

    charge = await gateway.charge_off_session(
        pledge_id=pledge_id,
        attempt=1,
        amount=2500,
        currency="EUR",
        customer_id=card.customer_id,
        payment_method_id=card.payment_method_id,
    )

    assert charge.succeeded
    assert (charge.amount, charge.currency) == (2500, "EUR")
    assert charge.metadata == {"pledge_id": str(pledge_id), "attempt": "1"}
    assert charge.charge_id is not None and charge.charge_id.startswith("ch_")
    assert (charge.fee, charge.fee_currency) == (0, "EUR")  # localstripe charges no fee
    assert charge.amount_refunded == 0
    assert await gateway.retrieve_charge(charge.payment_intent_id) == charge


async def test_an_off_session_charge_on_a_declining_card_raises_card_declined(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    card = await save_card(gateway, stripe_server, CARD_DECLINED_AT_CHARGE)

    with pytest.raises(CardDeclined) as declined:
        await gateway.charge_off_session(
            pledge_id=uuid.uuid4(),
            attempt=1,
            amount=2500,
            currency="EUR",
            customer_id=card.customer_id,
            payment_method_id=card.payment_method_id,
        )

    assert declined.value.code == "card_declined"
    assert declined.value.status == 402 and declined.value.type == "card-declined"


async def test_an_off_session_charge_the_bank_wants_authenticated_raises_authentication_required(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    card = await save_card(gateway, stripe_server, CARD_NEEDS_AUTHENTICATION)

    with pytest.raises(AuthenticationRequired) as refused:
        await gateway.charge_off_session(
            pledge_id=uuid.uuid4(),
            attempt=1,
            amount=2500,
            currency="EUR",
            customer_id=card.customer_id,
            payment_method_id=card.payment_method_id,
        )

    assert refused.value.payment_intent_id is not None
    assert (await gateway.retrieve_charge(refused.value.payment_intent_id)).status == "requires_action"


async def test_a_charge_whose_outcome_was_lost_is_found_by_pledge_and_attempt(
    stripe_settings: Settings, stripe_server: EmbeddedStripe
) -> None:
    # A page size of 2 makes the listing that localstripe needs (it has no Search) go through several pages.
    gateway = StripeGateway(
        secret_key=stripe_settings.stripe_secret_key,
        publishable_key=stripe_settings.stripe_publishable_key,
        webhook_secret=stripe_settings.stripe_webhook_secret,
        api_base=stripe_settings.stripe_api_base,
        page_size=2,
    )
    try:
        card = await save_card(gateway, stripe_server)
        pledge_id = uuid.uuid4()
        charges = [
            await gateway.charge_off_session(
                pledge_id=pledge_id,
                attempt=attempt,
                amount=1000 * attempt,
                currency="USD",
                customer_id=card.customer_id,
                payment_method_id=card.payment_method_id,
            )
            for attempt in (1, 2, 3)
        ]

        found = await gateway.find_charges([(pledge_id, 2)])

        assert found == {(str(pledge_id), 2): charges[1]}
        assert await gateway.find_charges([(pledge_id, 4)]) == {}
        assert await gateway.find_charges([(uuid.uuid4(), 1)]) == {}
        # Several attempts are looked for together (one listing at localstripe); those Stripe never saw are left out.
        stranger = uuid.uuid4()
        together = await gateway.find_charges([(pledge_id, 3), (stranger, 1), (pledge_id, 1), (pledge_id, 5)])
        assert together == {(str(pledge_id), 3): charges[2], (str(pledge_id), 1): charges[0]}
        assert await gateway.find_charges([]) == {}
    finally:
        await gateway.aclose()


async def test_a_declined_charge_is_found_with_its_failure(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    card = await save_card(gateway, stripe_server, CARD_DECLINED_AT_CHARGE)
    pledge_id = uuid.uuid4()
    with pytest.raises(CardDeclined):
        await gateway.charge_off_session(
            pledge_id=pledge_id,
            attempt=1,
            amount=2500,
            currency="EUR",
            customer_id=card.customer_id,
            payment_method_id=card.payment_method_id,
        )

    found = (await gateway.find_charges([(pledge_id, 1)])).get((str(pledge_id), 1))

    assert found is not None
    assert found.status == "requires_payment_method" and not found.succeeded
    assert found.failure_code == "card_declined"


async def test_a_refund_gives_back_part_of_a_charge(gateway: StripeGateway, stripe_server: EmbeddedStripe) -> None:
    card = await save_card(gateway, stripe_server)
    charge = await gateway.charge_off_session(
        pledge_id=uuid.uuid4(),
        attempt=1,
        amount=4000,
        currency="EUR",
        customer_id=card.customer_id,
        payment_method_id=card.payment_method_id,
    )

    refund = await gateway.refund(
        reference="suspension-1", payment_intent_id=charge.payment_intent_id, amount=1500, metadata={"why": "test"}
    )

    assert (refund.status, refund.amount, refund.currency) == ("succeeded", 1500, "EUR")
    assert refund.payment_intent_id == charge.payment_intent_id
    assert refund.charge_id == charge.charge_id
    assert refund.metadata == {"why": "test", "reference": "suspension-1"}
    assert (await gateway.retrieve_charge(charge.payment_intent_id)).amount_refunded == 1500


async def test_a_detached_card_leaves_the_customer(gateway: StripeGateway, stripe_server: EmbeddedStripe) -> None:
    card = await save_card(gateway, stripe_server)

    await gateway.detach_payment_method(card.payment_method_id)
    await gateway.detach_payment_method(card.payment_method_id)  # already gone: nothing to do

    method = await stripe_object(stripe_server, f"/v1/payment_methods/{card.payment_method_id}")
    assert method["customer"] is None


async def test_an_unknown_setup_intent_is_a_request_stripe_refuses(gateway: StripeGateway) -> None:
    with pytest.raises(GatewayError) as failed:
        await gateway.retrieve_setup_intent("seti_doesnotexist")

    assert type(failed.value) is RequestRefused and failed.value.status == 502


async def test_a_charge_of_an_unknown_card_or_a_deleted_customer_is_refused_for_good(
    gateway: StripeGateway, stripe_server: EmbeddedStripe
) -> None:
    card = await save_card(gateway, stripe_server)
    charge = {"pledge_id": uuid.uuid4(), "attempt": 1, "amount": 2500, "currency": "EUR"}

    with pytest.raises(RequestRefused):
        await gateway.charge_off_session(**charge, customer_id=card.customer_id, payment_method_id="pm_doesnotexist")
    await gateway.delete_customer(card.customer_id)
    with pytest.raises(RequestRefused):
        await gateway.charge_off_session(
            **charge, customer_id=card.customer_id, payment_method_id=card.payment_method_id
        )


async def test_stripe_out_of_reach_is_gateway_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens there once the socket closes
    gateway = StripeGateway(
        secret_key="sk_test_x",
        publishable_key="pk_test_x",
        webhook_secret="whsec_x",
        api_base=f"http://127.0.0.1:{port}",
        max_network_retries=0,
    )
    try:
        with pytest.raises(GatewayUnavailable) as failed:
            await gateway.create_customer(user_id=uuid.uuid4(), email="x@example.com", name="X")
    finally:
        await gateway.aclose()

    assert type(failed.value) is GatewayUnavailable and failed.value.status == 503


@pytest.fixture
async def troubled_stripe() -> AsyncIterator[tuple[str, list[int]]]:
    """A server in Stripe's place that answers each request with the next status in a list the test fills in."""
    statuses: list[int] = []

    async def answer(request: Request) -> JSONResponse:
        status = statuses.pop(0) if statuses else 500
        return JSONResponse({"error": {"type": "api_error", "message": f"status {status}"}}, status_code=status)

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST", "DELETE"])])
    async with serving(app, lifespan="off") as api_base:
        yield api_base, statuses


async def test_stripe_rate_limiting_us_is_rate_limited(troubled_stripe: tuple[str, list[int]]) -> None:
    api_base, statuses = troubled_stripe
    gateway = StripeGateway(
        secret_key="sk_test_x",
        publishable_key="pk_test_x",
        webhook_secret="whsec_x",
        api_base=api_base,
        max_network_retries=0,
    )
    try:
        statuses[:] = [429]
        with pytest.raises(RateLimited) as limited:
            await gateway.retrieve_charge("pi_x")
        statuses[:] = [500]
        with pytest.raises(GatewayUnavailable) as broken:
            await gateway.retrieve_charge("pi_x")
    finally:
        await gateway.aclose()

    assert limited.value.status == 503 and limited.value.retry_after > 0
    assert type(broken.value) is GatewayUnavailable


def test_every_gateway_verifies_stripes_certificates_through_the_one_context_of_the_process() -> None:
    """The gateway's TLS context is made once a process (reading the CA bundle costs 20-30 ms) and still checks
    Stripe's certificate chain and host name, against stripe's own bundle."""
    contexts = []
    for _ in range(2):
        gateway = StripeGateway(secret_key="sk_test_x", publishable_key="pk_test_x", webhook_secret="whsec_x")
        contexts.append(gateway._http._client_async._transport._pool._ssl_context)
    first, second = contexts
    assert first is second
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    stripes_own = ssl.create_default_context(cafile=stripe.ca_bundle_path)
    assert first.cert_store_stats() == stripes_own.cert_store_stats() != {"crl": 0, "x509": 0, "x509_ca": 0}
