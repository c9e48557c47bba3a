"""Asking once more before a step that cannot be undone.

The page's own form for such a step posts as before; its handler acts only when the form carries `confirm=yes`.
Without it, the handler answers with `confirm.html`: what the step will do, worked out by the page (amounts, backers,
dates), and a form that posts the same fields again with `confirm=yes`. It works without JavaScript, and Cancel is
a plain link back to where the person came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from service.web import render

CONFIRM_FIELD = "confirm"


@dataclass(frozen=True)
class Confirmation:
    """What the confirmation page says: the question, each consequence in a sentence, and where Cancel goes."""

    title: str
    consequences: Sequence[str]
    confirm_label: str
    back_url: str
    subject: str = ""
    danger: bool = True


def is_confirmed(form: FormData) -> bool:
    return form.get(CONFIRM_FIELD) == "yes"


def ask_first(request: Request, form: FormData, confirmation: Confirmation) -> Response:
    """The confirmation page for the step this POST asked for; its form repeats the fields, plus `confirm=yes`."""
    fields = [
        (key, value)
        for key, value in form.multi_items()
        if isinstance(value, str) and key not in ("csrf_token", CONFIRM_FIELD)
    ]
    context = {"confirmation": confirmation, "fields": fields, "action": request.url.path}
    return render(request, "confirm.html", context)
