"""What the pledge manager's endpoints take: an add-on to add, new variant choices."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from campaigns.pledges.manager import MOST_OF_ONE_ADD_ON, VariantChoice
from campaigns.schemas_base import RequestModel

OptionValue = Annotated[str, Field(min_length=1, max_length=100)]


class PledgeItemAdd(RequestModel):
    add_on_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=MOST_OF_ONE_ADD_ON)] = 1
    # The add-on's {option: value} when the backer chooses its variant; {} for one without options or a fixed one.
    variant: Annotated[dict[Annotated[str, Field(max_length=100)], OptionValue], Field(max_length=20)] = {}


class LineVariant(RequestModel):
    item: uuid.UUID
    # A tier line's {product id: {option: value}}; an add-on line's {option: value}.
    variant: Annotated[dict[Annotated[str, Field(max_length=100)], Any], Field(max_length=20)]


class PledgeVariantsChange(RequestModel):
    choices: Annotated[list[LineVariant], Field(max_length=50)]

    def variant_choices(self) -> list[VariantChoice]:
        return [VariantChoice(choice.item, choice.variant) for choice in self.choices]
