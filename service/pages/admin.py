"""Administration in pages: a platform admin creates and edits spaces, names and removes their operators, finds users
and makes them admins. Every step calls the same use case as the API, and each is audited there."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import administration, spaces
from campaigns.errors import NotFound
from campaigns.models import Space, User
from campaigns.schemas import SpaceCreate, SpaceUpdate
from service.i18n import gettext as _
from service.pages import FieldMessages, validate_form, viewer
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import client_address, read_form, redirect, render, uow

SPACES_SHOWN = 200
SPACE_FIELDS = ("name", "slug", "city", "province", "country", "sponsor_fee_bps", "description")


async def _admin(request: Request, session: AsyncSession) -> User | None:
    """The signed-in admin, refused (403) unless they are one with two-factor on; None when nobody is logged in."""
    user = await viewer(request, session)
    if user is not None:
        spaces.require_acting_admin(user)
    return user


def _to_login(request: Request) -> Response:
    return redirect("/login?next=" + quote(request.url.path))


def _done_messages() -> dict[str, str]:
    return {
        "created": _("The space is created."),
        "saved": _("The space is saved."),
        "added": _("The operator is added."),
        "removed": _("The operator is removed."),
        "promoted": _("The user is now a platform admin."),
    }


def _space_messages() -> FieldMessages:
    return {
        "slug": _("Use lower-case letters, digits and single hyphens, like chaihuo-shenzhen."),
        "country": _("Enter a two-letter country code, like CN or US."),
        "sponsor_fee_bps": _("Enter basis points from 0 to 2000 (100 basis points make 1 percent)."),
    }


async def overview(request: Request) -> Response:
    async with uow(request) as session:
        if await _admin(request, session) is None:
            return _to_login(request)
        rows, _next = await spaces.list_spaces(session, limit=SPACES_SHOWN, cursor=None)
    done = _done_messages().get(request.query_params.get("done", ""))
    return render(request, "admin/index.html", {"spaces": rows, "done": done})


def _space_form(
    request: Request,
    *,
    space: Space | None,
    operators: list[User],
    values: dict[str, Any],
    errors: FieldMessages | None = None,
    operator_error: str | None = None,
    status: int = 200,
) -> Response:
    context = {
        "space": space,
        "operators": operators,
        "values": values,
        "errors": errors or {},
        "form_error": None,
        "operator_error": operator_error,
        "done": _done_messages().get(request.query_params.get("done", "")),
    }
    return render(request, "admin/space.html", context, status=status)


async def new_space(request: Request) -> Response:
    async with uow(request) as session:
        if await _admin(request, session) is None:
            return _to_login(request)
    return _space_form(request, space=None, operators=[], values={"country": "CN", "sponsor_fee_bps": "300"})


def _form_values(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name) or "").strip() for name in names}


async def create_space(request: Request) -> Response:
    form = await read_form(request)
    values = _form_values(form, SPACE_FIELDS)
    values["country"] = values["country"].upper()
    checked = validate_form(SpaceCreate, values, invalid=_space_messages())
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        if not isinstance(checked, SpaceCreate):
            return _space_form(request, space=None, operators=[], values=values, errors=checked, status=422)
        try:
            space = await spaces.create_space(
                session, admin, **checked.model_dump(), client_address=client_address(request)
            )
        except spaces.SlugTaken:
            errors = {"slug": _("Another space already uses this slug.")}
            return _space_form(request, space=None, operators=[], values=values, errors=errors, status=409)
    return redirect(f"/admin/spaces/{space.id}?done=created")


async def edit_space(request: Request) -> Response:
    async with uow(request) as session:
        if await _admin(request, session) is None:
            return _to_login(request)
        space = await spaces.get_space(session, request.path_params["space_id"])
        operators = list(await spaces.operators_of(session, space))
    values = {name: getattr(space, name) for name in SPACE_FIELDS}
    return _space_form(request, space=space, operators=operators, values=values)


async def save_space(request: Request) -> Response:
    form = await read_form(request)
    values = _form_values(form, SPACE_FIELDS[:1] + SPACE_FIELDS[2:])
    values["country"] = values["country"].upper()
    checked = validate_form(SpaceUpdate, values, invalid=_space_messages())
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        space = await spaces.get_space(session, request.path_params["space_id"])
        if not isinstance(checked, SpaceUpdate):
            operators = list(await spaces.operators_of(session, space))
            values["slug"] = space.slug
            return _space_form(request, space=space, operators=operators, values=values, errors=checked, status=422)
        await spaces.update_space(
            session, admin, space.id, **checked.model_dump(), client_address=client_address(request)
        )
    return redirect(f"/admin/spaces/{space.id}?done=saved")


async def add_operator(request: Request) -> Response:
    form = await read_form(request)
    email = str(form.get("email") or "").strip()
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        space = await spaces.get_space(session, request.path_params["space_id"])
        try:
            await spaces.add_operator(session, admin, space, email, client_address=client_address(request))
        except NotFound:
            operators = list(await spaces.operators_of(session, space))
            values = {name: getattr(space, name) for name in SPACE_FIELDS}
            message = _("Nobody has an account with this email. Ask them to sign up first.")
            return _space_form(
                request, space=space, operators=operators, values=values, operator_error=message, status=422
            )
    return redirect(f"/admin/spaces/{space.id}?done=added#operators")


def _remove_operator_question(space: Space, person: User) -> Confirmation:
    return Confirmation(
        title=_("Remove %(name)s as an operator of %(space)s?") % {"name": person.name, "space": space.name},
        subject=person.email,
        consequences=[
            _(
                "From now on they can no longer review this space's campaigns, approve its escrow releases or suspend "
                "its campaigns."
            ),
            _("What they did stays in the audit log; you can add them again later."),
        ],
        confirm_label=_("Yes, remove the operator"),
        back_url=f"/admin/spaces/{space.id}#operators",
    )


async def remove_operator(request: Request) -> Response:
    form = await read_form(request)
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        space = await spaces.get_space(session, request.path_params["space_id"])
        if not is_confirmed(form):
            user_id = str(request.path_params["user_id"])
            person = next((p for p in await spaces.operators_of(session, space) if str(p.id) == user_id), None)
            if person is None:
                raise NotFound("This person does not operate this space.")
            return ask_first(request, form, _remove_operator_question(space, person))
        await spaces.remove_operator(
            session, admin, space, request.path_params["user_id"], client_address=client_address(request)
        )
    return redirect(f"/admin/spaces/{space.id}?done=removed#operators")


async def find_users(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        found = await administration.find_users(session, admin, query) if query else []
    done = _done_messages().get(request.query_params.get("done", ""))
    return render(request, "admin/users.html", {"q": query, "users": found, "done": done})


async def confirm_promotion(request: Request) -> Response:
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        person = await administration.get_user(session, request.path_params["user_id"])
    return render(request, "admin/promote.html", {"person": person})


async def promote(request: Request) -> Response:
    await read_form(request)
    async with uow(request) as session:
        admin = await _admin(request, session)
        if admin is None:
            return _to_login(request)
        person = await administration.promote_to_admin(
            session, admin, request.path_params["user_id"], client_address=client_address(request)
        )
    return redirect(f"/admin/users?q={quote(person.email)}&done=promoted")


routes = [
    Route("/admin", overview, methods=["GET"]),
    Route("/admin/spaces/new", new_space, methods=["GET"]),
    Route("/admin/spaces", create_space, methods=["POST"]),
    Route("/admin/spaces/{space_id}", edit_space, methods=["GET"]),
    Route("/admin/spaces/{space_id}", save_space, methods=["POST"]),
    Route("/admin/spaces/{space_id}/operators", add_operator, methods=["POST"]),
    Route("/admin/spaces/{space_id}/operators/{user_id}/remove", remove_operator, methods=["POST"]),
    Route("/admin/users", find_users, methods=["GET"]),
    Route("/admin/users/{user_id}/promote", confirm_promotion, methods=["GET"]),
    Route("/admin/users/{user_id}/promote", promote, methods=["POST"]),
]
