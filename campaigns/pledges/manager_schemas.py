"""What the pledge manager's endpoints take: an add-on to add, new variant choices."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from campaigns.pledges.manager import VariantChoice
from campaigns.pledges.schemas import AddOnChoiceIn
from campaigns.schemas_base import RequestModel


class PledgeItemAdd(AddOnChoiceIn):
    """An add-on for the pledge, in the shape a pledge's `add_ons` takes at pledge time."""


class LineVariant(RequestModel):
    item: uuid.UUID
    # A tier line's {product id: {option: value}}; an add-on line's {option: value}.
    variant: Annotated[dict[Annotated[str, Field(max_length=100)], Any], Field(max_length=20)]


class PledgeVariantsChange(RequestModel):
    choices: Annotated[list[LineVariant], Field(max_length=50)]

    def variant_choices(self) -> list[VariantChoice]:
        return [VariantChoice(choice.item, choice.variant) for choice in self.choices]
