"""What the HTML pages share: who is looking, where a form may send them next, and form errors in their language."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from babel.numbers import format_percent
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from campaigns.accounts import roles_of
from campaigns.models import User
from campaigns.talk.messages import unread_count
from campaigns.two_factor import has_two_factor
from service.i18n import babel_locale, gettext, ngettext
from service.i18n import country_name as country_name  # the pages' name for it
from service.web import optional_user

M = TypeVar("M", bound=BaseModel)
FieldMessages = dict[str, str]


async def viewer(request: Request, session: AsyncSession) -> User | None:
    """The signed-in user, if any, with what the navigation needs to know about them (may they review campaigns?)."""
    user = await optional_user(request, session)
    if user is not None:
        roles = await roles_of(session, user)
        request.state.reviews = roles.admin or bool(roles.operator_of)
        request.state.admin = roles.admin
        # Operators and admins act only with two-factor on: every page tells them until they have set it up.
        request.state.needs_two_factor = request.state.reviews and not has_two_factor(user)
        request.state.unread_messages = await unread_count(session, user)
    return user


def safe_next(value: object, default: str = "/") -> str:
    """A local path to go to after a form, never another site: `//evil.example`, `https://…` give `default`."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


# The pages that greet someone who has just signed up: the reward's back page, where "Back this project" sends them.
GREETING_PAGE = re.compile(r"/campaigns/[^/]+/back")


def welcomed(path: str) -> str:
    """`path` (already safe), marked so that a greeting page welcomes the newly signed-up person; others unchanged."""
    parts = urlsplit(path)
    if not GREETING_PAGE.fullmatch(parts.path):
        return path
    query = f"{parts.query}&welcome=1" if parts.query else "welcome=1"
    return urlunsplit(("", "", parts.path, query, parts.fragment))


def validate_form(model: type[M], values: dict[str, str], *, invalid: FieldMessages | None = None) -> M | FieldMessages:
    """The validated model, or one message per bad field in the reader's language.

    The rules are the API's own (the same pydantic model); only their wording is the page's. `invalid` words a
    field's format error ("Enter a valid email address.") where the generic message would be vague.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        messages: FieldMessages = {}
        for item in exc.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            messages.setdefault(field, _field_message(item, (invalid or {}).get(field)))
        return messages


def _field_message(item: Any, invalid: str | None) -> str:
    kind = item["type"]
    limits = item.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and limits.get("min_length") == 1):
        return gettext("This field is required.")
    if kind == "string_too_short":
        n = int(limits["min_length"])
        return ngettext("Use at least %(num)d character.", "Use at least %(num)d characters.", n) % {"num": n}
    if kind == "string_too_long":
        n = int(limits["max_length"])
        return ngettext("Use at most %(num)d character.", "Use at most %(num)d characters.", n) % {"num": n}
    return invalid or gettext("This value is not valid.")


def wait_message(seconds: int) -> str:
    """'Too many attempts' in words a person can act on."""
    minutes = max(1, -(-seconds // 60))
    return ngettext(
        "Too many attempts. Please wait %(num)d minute and try again.",
        "Too many attempts. Please wait %(num)d minutes and try again.",
        minutes,
    ) % {"num": minutes}


def fee_percent(bps: int) -> str:
    return format_percent(Decimal(bps) / 10000, format="#,##0.##%", locale=babel_locale())
