"""The one way to Stripe: typed async calls, fixed idempotency keys made of our ids, Stripe's errors turned into ours.

Works against real Stripe and against localstripe (the stand-in used in development and tests), which differ in ways
the callers must not see: localstripe has no Search API and ignores Idempotency-Key, and it does not attach a
PaymentMethod to the Customer when a SetupIntent succeeds.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import stripe

from campaigns.errors import KindlingError

log = logging.getLogger("kindling.payments")

# The API version every request asks for; objects and webhook payloads are shaped by it. Change it deliberately.
STRIPE_API_VERSION = "2026-10-28.endive"
WEBHOOK_TOLERANCE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 30.0

Id = uuid.UUID | str


class GatewayError(KindlingError):
    status = 502
    type = "payment-provider-error"
    title = "The payment provider refused the request"


class PaymentRefused(GatewayError):
    """The card's bank said no; a new card or the backer's presence may fix it, retrying the same call will not."""

    status = 402
    type = "payment-refused"
    title = "The payment was refused"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        payment_intent_id: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id


class CardDeclined(PaymentRefused):
    type = "card-declined"
    title = "The card was declined"


class AuthenticationRequired(PaymentRefused):
    type = "authentication-required"
    title = "The bank wants the cardholder to authenticate this payment"


class GatewayUnavailable(GatewayError):
    """Stripe could not be reached or failed on its side: the same call (same idempotency key) may be retried."""

    status = 503
    type = "payment-provider-unavailable"
    title = "The payment provider is unavailable"
    retry_after = 5


class RateLimited(GatewayUnavailable):
    type = "payment-provider-busy"
    title = "The payment provider asks us to slow down"
    retry_after = 2


class RequestRefused(GatewayError):
    """Stripe refused the request itself (invalid, or about an object it does not have: a deleted Customer, an
    unknown or detached PaymentMethod, an amount it will not charge): nothing happened, and sending the same request
    again changes nothing. A charge refused so is final, unlike one whose call timed out or met a 5xx."""

    type = "payment-provider-refused"
    title = "The payment provider refused the request"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.code = code


class WebhookRejected(KindlingError):
    status = 400
    type = "bad-webhook-signature"
    title = "The webhook's signature is missing, wrong or too old"


class MalformedWebhookEvent(WebhookRejected):
    type = "malformed-webhook-event"
    title = "The webhook's body is not a Stripe event"


@dataclass(frozen=True)
class SetupIntentResult:
    id: str
    client_secret: str | None
    status: str
    payment_method: str | None
    customer: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    failure_code: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class ChargeResult:
    """A PaymentIntent as far as we care. `fee` is the processor's fee in `fee_currency` (the account's settlement
    currency, not necessarily `currency`), None while Stripe has no balance transaction for the charge yet."""

    payment_intent_id: str
    status: str
    amount: int
    currency: str
    charge_id: str | None
    fee: int | None
    fee_currency: str | None
    amount_refunded: int
    metadata: dict[str, str] = field(default_factory=dict)
    failure_code: str | None = None
    failure_message: str | None = None
    payment_method: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class PaymentIntentMade:
    """A PaymentIntent made for the buyer to confirm in the browser (Stripe.js confirmCardPayment)."""

    id: str
    client_secret: str
    status: str


@dataclass(frozen=True)
class CardDetails:
    """What a backer recognises their saved card by: its brand (visa, mastercard, unionpay…) and last four digits."""

    brand: str
    last4: str


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str
    amount: int
    currency: str
    charge_id: str | None
    payment_intent_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StripeEvent:
    """A verified webhook event: its id and type, the id of the object it is about, and the whole payload."""

    id: str
    type: str
    object_id: str | None
    payload: dict[str, Any]


class PaymentGateway(Protocol):
    publishable_key: str

    async def create_customer(self, *, user_id: Id, email: str, name: str) -> str: ...

    async def delete_customer(self, customer_id: str) -> None: ...

    async def create_setup_intent(self, *, customer_id: str, pledge_id: Id, attempt: int) -> SetupIntentResult: ...

    async def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentResult: ...

    async def attach_payment_method(self, *, payment_method_id: str, customer_id: str) -> None: ...

    async def detach_payment_method(self, payment_method_id: str) -> None: ...

    async def retrieve_card(self, payment_method_id: str) -> CardDetails | None: ...

    async def charge_off_session(
        self,
        *,
        pledge_id: Id,
        attempt: int,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
    ) -> ChargeResult: ...

    async def charge_line_off_session(
        self, *, item_id: Id, amount: int, currency: str, customer_id: str, payment_method_id: str
    ) -> ChargeResult: ...

    async def find_line_charges(self, item_ids: Sequence[Id]) -> dict[str, ChargeResult]: ...

    async def create_preorder_payment(
        self, *, pledge_id: Id, amount: int, currency: str, customer_id: str
    ) -> PaymentIntentMade: ...

    async def retrieve_charge(self, payment_intent_id: str) -> ChargeResult: ...

    async def find_charges(self, attempts: Sequence[tuple[Id, int]]) -> dict[tuple[str, int], ChargeResult]: ...

    async def refund(
        self, *, reference: str, payment_intent_id: str, amount: int, metadata: Mapping[str, str] | None = None
    ) -> RefundResult: ...

    def verify_webhook(self, payload: bytes, signature: str | None) -> StripeEvent: ...


class StripeSettings(Protocol):
    @property
    def stripe_secret_key(self) -> str: ...

    @property
    def stripe_publishable_key(self) -> str: ...

    @property
    def stripe_webhook_secret(self) -> str: ...

    @property
    def stripe_api_base(self) -> str | None: ...


@functools.cache
def _stripe_tls() -> ssl.SSLContext:
    """The TLS context of every gateway in the process, verifying Stripe's certificates against stripe's own CA bundle
    as its client does. Made once: reading the bundle costs 20-30 ms of CPU, and stripe's client reads it anew for
    each instance (an app, a worker process, each test)."""
    return ssl.create_default_context(cafile=stripe.ca_bundle_path)


class _HttpxClient(stripe.HTTPXClient):
    """stripe's httpx client on the process's one TLS context, sending the encoded form as `content=`: it passes
    `data=`, which httpx deprecates for raw bytes (and the test suite turns that warning into an error)."""

    def __init__(self, *, timeout: float) -> None:
        # Unverified only while stripe's constructor runs, so that it makes no context of its own; verified after.
        super().__init__(timeout=timeout, verify_ssl_certs=False)
        self._verify_ssl_certs = True
        self._client_async = httpx.AsyncClient(verify=_stripe_tls())

    def _get_request_args_kwargs(self, method: str, url: str, headers: Mapping[str, str], post_data: Any) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:
            kwargs["content"] = data
        return [args, kwargs]


class StripeGateway:
    def __init__(
        self,
        *,
        secret_key: str,
        publishable_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        max_network_retries: int = 2,
        page_size: int = 100,
    ) -> None:
        self.publishable_key = publishable_key
        self._webhook_secret = webhook_secret
        self._page_size = page_size
        self._http = _HttpxClient(timeout=REQUEST_TIMEOUT_SECONDS)
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    @classmethod
    def from_settings(cls, settings: StripeSettings) -> StripeGateway:
        return cls(
            secret_key=settings.stripe_secret_key,
            publishable_key=settings.stripe_publishable_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(self, *, user_id: Id, email: str, name: str) -> str:
        async with _stripe_errors():
            customer = await self._client.v1.customers.create_async(
                params={"email": email, "name": name, "metadata": {"user_id": str(user_id)}},
                options={"idempotency_key": f"user:{user_id}:customer"},
            )
        return customer.id

    async def delete_customer(self, customer_id: str) -> None:
        async with _stripe_errors():
            await self._client.v1.customers.delete_async(customer_id)

    async def create_setup_intent(self, *, customer_id: str, pledge_id: Id, attempt: int) -> SetupIntentResult:
        """A SetupIntent that saves a card for charging later without the backer; `attempt` counts the cards asked
        for on this pledge (1 at pledge time, more when a failed card is replaced)."""
        async with _stripe_errors():
            intent = await self._client.v1.setup_intents.create_async(
                params={
                    "customer": customer_id,
                    "usage": "off_session",
                    "metadata": {"pledge_id": str(pledge_id), "attempt": str(attempt)},
                },
                options={"idempotency_key": f"pledge:{pledge_id}:setup:{attempt}"},
            )
        return _setup_intent_result(intent)

    async def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentResult:
        async with _stripe_errors():
            intent = await self._client.v1.setup_intents.retrieve_async(setup_intent_id)
        return _setup_intent_result(intent)

    async def attach_payment_method(self, *, payment_method_id: str, customer_id: str) -> None:
        """Make sure the card belongs to the Customer, which off-session charges need. Real Stripe attaches it when
        the SetupIntent succeeds; localstripe does not, so attach it unless it already is."""
        async with _stripe_errors():
            method = await self._client.v1.payment_methods.retrieve_async(payment_method_id)
            if _id_of(method.customer) == customer_id:
                return
            await self._client.v1.payment_methods.attach_async(payment_method_id, params={"customer": customer_id})

    async def retrieve_card(self, payment_method_id: str) -> CardDetails | None:
        """The saved card's brand and last four digits (None for a payment method that is not a card)."""
        async with _stripe_errors():
            method = await self._client.v1.payment_methods.retrieve_async(payment_method_id)
        card = getattr(method, "card", None)
        if card is None:
            return None
        return CardDetails(brand=str(card.brand), last4=str(card.last4))

    async def detach_payment_method(self, payment_method_id: str) -> None:
        """Forget a card at Stripe; a card that is already detached is left alone."""
        async with _stripe_errors():
            method = await self._client.v1.payment_methods.retrieve_async(payment_method_id)
            if method.customer is None:
                return
            await self._client.v1.payment_methods.detach_async(payment_method_id)

    async def charge_off_session(
        self,
        *,
        pledge_id: Id,
        attempt: int,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
    ) -> ChargeResult:
        """Charge a saved card now, without the backer. The idempotency key names the pledge and the attempt, so a
        retry of the same attempt can never charge twice (on real Stripe; localstripe ignores the key, see
        `find_charges`). Raises CardDeclined or AuthenticationRequired when the bank refuses, RequestRefused when Stripe
        itself does (a deleted Customer, an unknown card, an amount out of its bounds)."""
        return await self._charge(
            f"pledge:{pledge_id}:charge:{attempt}",
            {"pledge_id": str(pledge_id), "attempt": str(attempt)},
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            payment_method_id=payment_method_id,
        )

    async def charge_line_off_session(
        self, *, item_id: Id, amount: int, currency: str, customer_id: str, payment_method_id: str
    ) -> ChargeResult:
        """Charge a saved card now for one line bought after the close (an add-on in the pledge manager), once: the
        idempotency key and the metadata name the line, and each line is charged at most once (there is no second
        attempt: a refused card means the line is not bought). Raises as `charge_off_session`."""
        return await self._charge(
            f"pledge-item:{item_id}:charge",
            {"pledge_item_id": str(item_id)},
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            payment_method_id=payment_method_id,
        )

    async def create_preorder_payment(
        self, *, pledge_id: Id, amount: int, currency: str, customer_id: str
    ) -> PaymentIntentMade:
        """The PaymentIntent of a pre-order, for its buyer to confirm on-session (Stripe.js confirmCardPayment, 3-D
        Secure included). One per pre-order: the idempotency key names the pledge; its metadata `late_pledge_id` tells
        the webhook whose it is."""
        key = f"pledge:{pledge_id}:preorder"
        async with _stripe_errors():
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "customer": customer_id,
                    "metadata": {"late_pledge_id": str(pledge_id)},
                },
                options={"idempotency_key": key},
            )
        log.info("pre-order payment %s: %d %s asked for (intent %s)", key, amount, currency, intent.id)
        return PaymentIntentMade(id=intent.id, client_secret=intent.client_secret or "", status=str(intent.status))

    async def _charge(
        self,
        key: str,
        metadata: Mapping[str, str],
        *,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
    ) -> ChargeResult:
        try:
            async with _stripe_errors():
                intent = await self._client.v1.payment_intents.create_async(
                    params={
                        "amount": amount,
                        "currency": currency.lower(),
                        "customer": customer_id,
                        "payment_method": payment_method_id,
                        "confirm": True,
                        "off_session": True,
                        "metadata": dict(metadata),
                        "expand": ["latest_charge.balance_transaction"],
                    },
                    options={"idempotency_key": key},
                )
        except PaymentRefused as refused:
            log.info(
                "charge %s: %d %s refused (%s, intent %s)",
                key,
                amount,
                currency,
                refused.code,
                refused.payment_intent_id,
            )
            raise
        except GatewayError as failed:
            log.warning("charge %s: %d %s failed: %s", key, amount, currency, failed.type)
            raise
        result = _charge_result(intent)
        log.info("charge %s: %d %s %s (intent %s)", key, amount, currency, result.status, result.payment_intent_id)
        if result.status == "requires_action":
            # Real Stripe answers this case with a CardError (authentication_required); localstripe with this status.
            raise AuthenticationRequired(
                "The bank wants the backer to authenticate this payment.",
                code="authentication_required",
                payment_intent_id=result.payment_intent_id,
            )
        return result

    async def retrieve_charge(self, payment_intent_id: str) -> ChargeResult:
        async with _stripe_errors():
            intent = await self._client.v1.payment_intents.retrieve_async(
                payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]}
            )
        return _charge_result(intent)

    async def find_charges(self, attempts: Sequence[tuple[Id, int]]) -> dict[tuple[str, int], ChargeResult]:
        """The PaymentIntents of charge attempts (pledge id, attempt) whose outcome we never learnt (say, the worker
        died mid-call), by (pledge id as text, attempt); an attempt Stripe has none for is left out.

        Real Stripe: Search, one query an attempt, whose index can lag a freshly created PaymentIntent by a minute or
        so; a missing attempt then means "not seen yet", and retrying the charge with the same idempotency key
        returns the original outcome instead of charging again. localstripe has no Search and its lists take no
        filters: everything is listed once, for all the attempts, and filtered here."""
        wanted = [{"pledge_id": str(pledge_id), "attempt": str(attempt)} for pledge_id, attempt in attempts]
        found: dict[tuple[str, int], ChargeResult] = {}
        async with _stripe_errors():
            for tags, intents in zip(wanted, await self._payment_intents_with(wanted), strict=True):
                if intents:
                    best = max(intents, key=lambda intent: (intent.status == "succeeded", intent.created))
                    found[tags["pledge_id"], int(tags["attempt"])] = await self.retrieve_charge(best.id)
        return found

    async def find_line_charges(self, item_ids: Sequence[Id]) -> dict[str, ChargeResult]:
        """The PaymentIntents of lines charged by `charge_line_off_session` whose outcome we never learnt, by line id
        as text; a line Stripe has none for is left out (found as `find_charges` finds a pledge's)."""
        wanted = [{"pledge_item_id": str(item_id)} for item_id in item_ids]
        found: dict[str, ChargeResult] = {}
        async with _stripe_errors():
            for tags, intents in zip(wanted, await self._payment_intents_with(wanted), strict=True):
                if intents:
                    best = max(intents, key=lambda intent: (intent.status == "succeeded", intent.created))
                    found[tags["pledge_item_id"]] = await self.retrieve_charge(best.id)
        return found

    async def refund(
        self, *, reference: str, payment_intent_id: str, amount: int, metadata: Mapping[str, str] | None = None
    ) -> RefundResult:
        """Refund `amount` of a charge. `reference` is our own name for this refund and makes its idempotency key."""
        key = f"refund:{reference}"
        try:
            async with _stripe_errors():
                refund = await self._client.v1.refunds.create_async(
                    params={
                        "payment_intent": payment_intent_id,
                        "amount": amount,
                        "metadata": {**(metadata or {}), "reference": reference},
                    },
                    options={"idempotency_key": key},
                )
        except GatewayError as failed:
            log.warning("refund %s: %d of %s failed: %s", key, amount, payment_intent_id, failed.type)
            raise
        result = RefundResult(
            id=refund.id,
            status=str(refund.status),
            amount=refund.amount,
            currency=refund.currency.upper(),
            charge_id=_id_of(refund.charge),
            payment_intent_id=_id_of(refund.payment_intent),
            metadata=_metadata(refund.metadata),
        )
        log.info("refund %s: %d %s of %s %s", key, amount, result.currency, payment_intent_id, result.status)
        return result

    def verify_webhook(self, payload: bytes, signature: str | None) -> StripeEvent:
        """The event in a webhook body, once its signature proves it came from Stripe within the last five minutes."""
        if not signature:
            raise WebhookRejected("The Stripe-Signature header is missing.")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(text, signature, self._webhook_secret)
        except UnicodeDecodeError:
            raise MalformedWebhookEvent("The body is not UTF-8.") from None
        except stripe.SignatureVerificationError:
            raise WebhookRejected(
                "The Stripe-Signature header does not match the body and this endpoint's secret."
            ) from None
        if _signed_at(signature) < time.time() - WEBHOOK_TOLERANCE_SECONDS:
            # An old signature is someone replaying a delivery: Stripe signs every delivery, retries too, anew.
            raise WebhookRejected(f"The signature is over {WEBHOOK_TOLERANCE_SECONDS} seconds old.")
        return _parse_event(text)

    async def _payment_intents_with(self, wanted: Sequence[Mapping[str, str]]) -> list[list[stripe.PaymentIntent]]:
        """For each set of metadata in `wanted`, the PaymentIntents that carry it."""
        found: list[list[stripe.PaymentIntent]] = []
        for metadata in wanted:
            query = " AND ".join(f"metadata['{name}']:'{value}'" for name, value in metadata.items())
            try:
                page = await self._client.v1.payment_intents.search_async(params={"query": query, "limit": 100})
            except stripe.InvalidRequestError as exc:
                if exc.http_status not in (400, 404):
                    raise
                break  # no Search here (localstripe): list instead
            found.append(list(page.data))
        else:
            return found
        matching: list[list[stripe.PaymentIntent]] = [[] for _ in wanted]
        first_page = await self._client.v1.payment_intents.list_async(params={"limit": self._page_size})
        async for intent in first_page.auto_paging_iter():
            tags = _metadata(intent.metadata)
            for metadata, matches in zip(wanted, matching, strict=True):
                if all(tags.get(name) == value for name, value in metadata.items()):
                    matches.append(intent)
        return matching


@asynccontextmanager
async def _stripe_errors() -> AsyncIterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise _our_error(exc) from exc


def _our_error(exc: stripe.StripeError) -> GatewayError:
    if isinstance(exc, stripe.CardError):
        error = exc.error
        payment_intent = getattr(error, "payment_intent", None) if error is not None else None
        refused = AuthenticationRequired if exc.code == "authentication_required" else CardDeclined
        return refused(
            exc.user_message or "The card was declined.",
            code=exc.code,
            decline_code=getattr(error, "decline_code", None) if error is not None else None,
            payment_intent_id=_id_of(payment_intent),
        )
    if isinstance(exc, stripe.RateLimitError):
        return RateLimited("Stripe is rate-limiting our requests; try again shortly.")
    if isinstance(exc, stripe.APIConnectionError):
        return GatewayUnavailable("Stripe could not be reached; try again shortly.")
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return GatewayUnavailable("Stripe failed on its side; try again shortly.")
    if isinstance(exc, stripe.InvalidRequestError):
        # 400 or 404: Stripe did nothing. Not so a bad key (401, 403: our configuration, to be fixed, then retried)
        # nor a key reused with other parameters (409, IdempotencyError: the first request may have done something).
        log.warning("Stripe refused a request as invalid: %s (%s, status %s)", exc, exc.code, exc.http_status)
        return RequestRefused(
            f"The payment provider refused the request ({exc.code or exc.http_status}).", code=exc.code
        )
    # Our own mistake or configuration (a bad key, a wrong id, an idempotency key reused with other parameters).
    log.error("Stripe refused a request: %s (%s, status %s)", type(exc).__name__, exc.code, exc.http_status)
    return GatewayError(f"The payment provider refused the request ({exc.code or exc.http_status}).")


def _id_of(value: Any) -> str | None:
    """The id of an expandable field: Stripe gives either the id or the whole object."""
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return found if isinstance(found, str) else None


def _metadata(value: Any) -> dict[str, str]:
    if isinstance(value, stripe.StripeObject):
        value = value.to_dict()
    return {str(k): str(v) for k, v in (value or {}).items()}


def _setup_intent_result(intent: stripe.SetupIntent) -> SetupIntentResult:
    # localstripe leaves out some fields real Stripe always sends (last_setup_error, last_payment_error)
    error = getattr(intent, "last_setup_error", None)
    return SetupIntentResult(
        id=intent.id,
        client_secret=intent.client_secret,
        status=str(intent.status),
        payment_method=_id_of(intent.payment_method),
        customer=_id_of(intent.customer),
        metadata=_metadata(intent.metadata),
        failure_code=getattr(error, "code", None),
    )


def _charge_result(intent: stripe.PaymentIntent) -> ChargeResult:
    charge = intent.latest_charge
    fee: int | None = None
    fee_currency: str | None = None
    amount_refunded = 0
    if isinstance(charge, stripe.Charge):
        amount_refunded = charge.amount_refunded
        balance = charge.balance_transaction
        if isinstance(balance, stripe.BalanceTransaction):
            fee, fee_currency = balance.fee, balance.currency.upper()
    error = getattr(intent, "last_payment_error", None)
    return ChargeResult(
        payment_intent_id=intent.id,
        status=str(intent.status),
        amount=intent.amount,
        currency=intent.currency.upper(),
        charge_id=_id_of(charge),
        fee=fee,
        fee_currency=fee_currency,
        amount_refunded=amount_refunded,
        metadata=_metadata(intent.metadata),
        failure_code=getattr(error, "code", None),
        failure_message=getattr(error, "message", None),
        payment_method=_id_of(intent.payment_method),
    )


def _signed_at(signature: str) -> int:
    """The `t=` timestamp of a Stripe-Signature header that has passed verification (which parsed it already)."""
    return int(next(part for part in signature.split(",") if part.startswith("t="))[2:])


def _parse_event(text: str) -> StripeEvent:
    try:
        # PostgreSQL's JSON has no NaN or Infinity and no NUL character; refuse them here, not in the database.
        if "\\u0000" in text:
            raise ValueError("NUL character")
        payload = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise MalformedWebhookEvent(f"The body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedWebhookEvent("The body is not a JSON object.")
    event_id, event_type, data = payload.get("id"), payload.get("type"), payload.get("data")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 255:
        raise MalformedWebhookEvent("The event has no valid `id`.")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
        raise MalformedWebhookEvent("The event has no valid `type`.")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedWebhookEvent("The event has no `data.object`.")
    object_id = data["object"].get("id")
    if not isinstance(object_id, str) or len(object_id) > 255:
        object_id = None
    return StripeEvent(id=event_id, type=event_type, object_id=object_id, payload=payload)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
