"""Request and response models of pledges."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from campaigns.campaign_schemas import MAX_OPTIONS
from campaigns.models import Pledge
from campaigns.phones import MAX_PHONE_CHARS, PHONE_DIGITS, is_phone_number
from campaigns.pledges.choices import MOST_ADD_ON_LINES, MOST_OF_ONE_ADD_ON
from campaigns.pledges.lifecycle import CARD_SETUP_STATUSES, PledgeStatus
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import AddOnChoice, PledgeChoice
from campaigns.pledges.viewers import (
    PledgeViewer,
    sees_card_setup,
    visible_address,
)
from campaigns.schemas import Country
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime

Money = Annotated[int, Field(ge=0, le=10**12)]


def _phone_number(value: str) -> str:
    if value and not is_phone_number(value):
        raise ValueError(
            f"a phone number: digits, spaces and + ( ) - only, starting with a digit, + or (, "
            f"{PHONE_DIGITS.start} to {PHONE_DIGITS.stop - 1} digits"
        )
    return value


OptionWord = Annotated[str, Field(max_length=40)]
ChosenOptions = Annotated[dict[OptionWord, OptionWord], Field(max_length=MAX_OPTIONS)]


class AddOnChoiceIn(RequestModel):
    """An add-on in a pledge: which, how many, and the options of its product when the add-on leaves them open."""

    add_on_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=MOST_OF_ONE_ADD_ON)] = 1
    variant: ChosenOptions = {}


class PledgeCreate(RequestModel):
    tier_id: uuid.UUID | None
    bonus: Money = 0
    shipping_country: Country | None = None
    # The options of each of the tier's products that has some, by product id: {"<product id>": {"colour": "black"}}.
    variants: Annotated[dict[str, ChosenOptions], Field(max_length=50)] = {}
    add_ons: Annotated[list[AddOnChoiceIn], Field(max_length=MOST_ADD_ON_LINES)] = []

    def choice(self) -> PledgeChoice:
        return PledgeChoice(
            self.tier_id,
            self.bonus,
            self.shipping_country,
            variants=self.variants,
            add_ons=tuple(AddOnChoice(one.add_on_id, one.quantity, one.variant) for one in self.add_ons),
        )


class PledgeChange(PledgeCreate):
    pass


class AddressIn(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    line1: Annotated[str, Field(min_length=1, max_length=300)]
    line2: Annotated[str, Field(max_length=300)] = ""
    city: Annotated[str, Field(min_length=1, max_length=120)]
    region: Annotated[str, Field(max_length=120)] = ""
    postal_code: Annotated[str, Field(min_length=1, max_length=20)]
    country: Country
    phone: Annotated[str, Field(max_length=MAX_PHONE_CHARS), AfterValidator(_phone_number)] = ""


class ShippingQuoteQuery(RequestModel):
    country: Country


class ShippingQuoteOut(ResponseModel):
    """What an address in `country` would do to the pledge's shipping, before it is given: `difference` more than
    zero is charged at once with the saved card, less than zero refunded, zero moves nothing."""

    country: str
    currency: str
    shipping_fee: int
    current_shipping_fee: int
    difference: int


class AddressOut(ResponseModel):
    name: str
    line1: str
    line2: str
    city: str
    region: str
    postal_code: str
    country: str
    phone: str


class PaymentOut(ResponseModel):
    """What the backer's browser confirms with Stripe.js: the card set-up (confirmCardSetup), or a pre-order's
    PaymentIntent (`payment_intent_id`, confirmCardPayment) with its `client_secret`."""

    provider: str = "stripe"
    setup_intent_id: str | None
    client_secret: str | None
    publishable_key: str
    payment_intent_id: str | None = None


class PreorderCreate(RequestModel):
    """A pre-order of one late reward (`tier_id`), with the options of its products that have some, and any of the
    campaign's late add-ons (as a pledge takes add-ons), shipped to `shipping_country`."""

    tier_id: uuid.UUID
    shipping_country: Country | None = None
    variants: Annotated[dict[str, ChosenOptions], Field(max_length=50)] = {}
    add_ons: Annotated[list[AddOnChoiceIn], Field(max_length=MOST_ADD_ON_LINES)] = []

    def choice(self) -> PledgeChoice:
        return PledgeChoice(
            self.tier_id,
            0,
            self.shipping_country,
            variants=self.variants,
            add_ons=tuple(AddOnChoice(one.add_on_id, one.quantity, one.variant) for one in self.add_ons),
        )


class ShipmentOut(ResponseModel):
    carrier: str
    tracking_number: str
    shipped_at: UtcDatetime


class LineItemOut(ResponseModel):
    """One line of a pledge: `id` is the line's own, `ref_id` what it is (the tier, the add-on's product)."""

    id: uuid.UUID
    kind: str
    ref_id: uuid.UUID | None
    # A tier line: {product id: {option: value}} for its products with options; an add-on line: {option: value}.
    variant: dict[str, Any]
    quantity: int
    unit_amount: int
    sku: str | None
    # An add-on line's add-on (null on the other lines).
    add_on_id: uuid.UUID | None = None


class QueueOut(ResponseModel):
    """The pledge's place in the delivery queue: packages still to ship up to and including its own, its batch's
    number, and the month its batch is planned to ship (null until the maker plans it)."""

    position: int
    batch: int
    estimated_ship_month: str | None


class PledgeOut(ResponseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    backer_id: uuid.UUID
    tier_id: uuid.UUID | None
    status: str
    amount: int
    bonus: int
    shipping_fee: int
    currency: str
    shipping_country: str | None
    created_at: UtcDatetime
    charged_at: UtcDatetime | None
    address: AddressOut | None
    shipment: ShipmentOut | None = None
    payment: PaymentOut | None = None
    # Its lines; `amount` is their sum.
    items: list[LineItemOut] = []
    # Once it is in a batch and until it ships (fulfillment.queue).
    queue: QueueOut | None = None
    # A pre-order: bought from a late reward after the campaign was funded, paid at once (payments.preorders).
    late: bool = False

    @classmethod
    def for_viewer(
        cls,
        pledge: Pledge,
        viewer: PledgeViewer,
        *,
        items: Sequence[PledgeItem],
        publishable_key: str,
        shipment: dict[str, Any] | None = None,
        queue: QueueOut | None = None,
    ) -> PledgeOut:
        """The pledge as `viewer` may see it (`campaigns.pledges.viewers`): every response that shows a pledge is
        made here."""
        address = visible_address(pledge, viewer)
        payment = None
        if sees_card_setup(viewer) and pledge.late and pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
            payment = PaymentOut(
                setup_intent_id=None,
                client_secret=pledge.payment_intent_client_secret,
                publishable_key=publishable_key,
                payment_intent_id=pledge.payment_intent_id,
            )
        elif sees_card_setup(viewer) and pledge.status in CARD_SETUP_STATUSES:
            payment = PaymentOut(
                setup_intent_id=pledge.setup_intent_id,
                client_secret=pledge.setup_intent_client_secret,
                publishable_key=publishable_key,
            )
        return cls(
            id=pledge.id,
            campaign_id=pledge.campaign_id,
            backer_id=pledge.backer_id,
            tier_id=pledge.tier_id,
            status=pledge.status,
            amount=pledge.amount,
            bonus=pledge.bonus,
            shipping_fee=pledge.shipping_fee,
            currency=pledge.currency,
            shipping_country=pledge.shipping_country,
            created_at=pledge.created_at,
            charged_at=pledge.charged_at,
            address=AddressOut.model_validate(address) if address else None,
            shipment=ShipmentOut.model_validate(shipment) if shipment else None,
            payment=payment,
            items=[LineItemOut.model_validate(item) for item in items],
            queue=queue,
            late=pledge.late,
        )
