"""The maker edits or takes down an update they posted. Editing keeps it posted where it was (marked edited, not
mailed again); taking it down asks once more. Both call campaigns.updates, as the API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import updates
from campaigns.campaign_schemas import UpdatePatch
from campaigns.models import CampaignUpdate
from service.i18n import gettext as _
from service.pages import FieldMessages, validate_form, viewer
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import current_user, read_form, redirect, render, uow

FIELDS = ("title", "body", "visibility")


def _manage_url(slug: str, done: str) -> str:
    return f"/maker/campaigns/{slug}?done={done}#updates"


def _edit_url(slug: str, update_id: object) -> str:
    return f"/maker/campaigns/{slug}/updates/{update_id}/edit"


def _render(
    request: Request,
    posted: CampaignUpdate,
    values: dict[str, str],
    errors: FieldMessages | None = None,
    *,
    status: int = 200,
) -> Response:
    slug = str(request.path_params["slug"])
    context: dict[str, Any] = {
        "slug": slug,
        "update": posted,
        "action": _edit_url(slug, posted.id),
        "delete_action": f"/maker/campaigns/{slug}/updates/{posted.id}/delete",
        "values": values,
        "errors": errors or {},
    }
    return render(request, "maker/update_form.html", context, status=status)


async def edit_form(request: Request) -> Response:
    async with uow(request) as session:
        maker = await viewer(request, session)
        if maker is None:
            return redirect("/login?next=" + quote(request.url.path))
        posted = await updates.get_update(session, request.path_params["slug"], maker, request.path_params["update_id"])
    return _render(request, posted, {name: str(getattr(posted, name)) for name in FIELDS})


async def save_update(request: Request) -> Response:
    form = await read_form(request)
    values = {name: str(form.get(name) or "").strip() for name in FIELDS}
    checked = validate_form(UpdatePatch, values, invalid={"visibility": _("Choose who may read the update.")})
    async with uow(request) as session:
        maker = await current_user(request, session)
        slug, update_id = request.path_params["slug"], request.path_params["update_id"]
        if not isinstance(checked, UpdatePatch):
            posted = await updates.get_update(session, slug, maker, update_id)
            return _render(request, posted, values, checked, status=422)
        await updates.edit_update(session, slug, maker, update_id, checked)
    return redirect(_manage_url(str(slug), "update-saved"))


async def delete_update(request: Request) -> Response:
    form = await read_form(request)
    slug, update_id = str(request.path_params["slug"]), request.path_params["update_id"]
    async with uow(request) as session:
        maker = await current_user(request, session)
        if not is_confirmed(form):
            posted = await updates.get_update(session, slug, maker, update_id)
            question = Confirmation(
                title=_("Delete the update “%(title)s”?") % {"title": posted.title},
                subject=posted.title,
                consequences=[
                    _("It leaves the campaign's page and its list of updates, for everyone."),
                    _("Backers who got it by mail keep that mail."),
                    _("A deleted update cannot be brought back."),
                ],
                confirm_label=_("Yes, delete the update"),
                back_url=_edit_url(slug, posted.id),
            )
            return ask_first(request, form, question)
        await updates.delete_update(session, slug, maker, update_id)
    return redirect(_manage_url(slug, "update-deleted"))


routes = [
    Route("/maker/campaigns/{slug}/updates/{update_id}/edit", edit_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/updates/{update_id}/edit", save_update, methods=["POST"]),
    Route("/maker/campaigns/{slug}/updates/{update_id}/delete", delete_update, methods=["POST"]),
]
