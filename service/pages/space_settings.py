"""A space's operators edit it: its name and description, its sponsor fee, its escrow milestone plan and its
risk-compensation fund. The form calls
payments.space_terms.edit_space, the use case PATCH /spaces/{id} calls; campaigns launched already keep their terms."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import NotAllowed, ValidationFailed
from campaigns.models import Space, User
from campaigns.spaces import get_space, operates
from payments import space_terms
from payments.milestones import MAX_MILESTONES, PlannedMilestone, milestone_plan_of
from payments.models import MILESTONE_CONDITIONS
from payments.space_terms import KEEP
from service.i18n import gettext as _
from service.pages import FieldMessages, fee_percent, viewer
from service.pages.money_input import NumberInputError, major_units, minor_units
from service.web import client_address, current_user, read_form, redirect, render, uow

SPARE_ROWS = 2


def _path(space: Space) -> str:
    return f"/operator/spaces/{space.id}"


async def _space_of_operator(request: Request, session: AsyncSession, user: User) -> Space:
    space = await get_space(session, request.path_params["space_id"])
    if not (user.is_admin or await operates(session, user, space.id)):
        raise NotAllowed("Only an operator of the space or an admin edits it.")
    return space


def _values_of(space: Space) -> dict[str, Any]:
    plan = milestone_plan_of(space)
    return {
        "name": space.name,
        "description": space.description,
        "sponsor_fee_bps": str(space.sponsor_fee_bps),
        "fund_share_bps": str(space.fund_share_bps),
        "fund_cap": major_units(space.fund_cap, space.fund_currency),
        "default_plan": space.milestone_plan is None,
        "milestones": [{"name": p.name, "share": _percent_text(p.share_bps), "unlocks_on": p.unlocks_on} for p in plan],
    }


def _percent_text(bps: int) -> str:
    return str(Decimal(bps) / 100)


def _condition_label(unlocks_on: str) -> str:
    """When a milestone unlocks, short enough for a select on a phone."""
    labels = {
        "funded": _("Campaign funded"),
        "first_batch_confirmed": _("First batch confirmed"),
        "shipping_done": _("Every reward shipped"),
    }
    return labels.get(unlocks_on, unlocks_on)


def _render(
    request: Request, space: Space, values: dict[str, Any], errors: FieldMessages | None = None, *, status: int = 200
) -> Response:
    rows = list(values["milestones"])
    rows += [{"name": "", "share": "", "unlocks_on": ""}] * min(SPARE_ROWS, MAX_MILESTONES - len(rows))
    context = {
        "space": space,
        "action": _path(space),
        "values": values,
        "rows": rows,
        "errors": errors or {},
        "conditions": [(code, _condition_label(code)) for code in MILESTONE_CONDITIONS],
        "fee": fee_percent(space.sponsor_fee_bps),
        "fund_currency": space.fund_currency,
        "done": _("The space is saved. Campaigns launched from now on take its fee and plan.")
        if request.query_params.get("done") == "saved"
        else None,
    }
    return render(request, "operator/space.html", context, status=status)


async def space_form(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        space = await _space_of_operator(request, session, user)
    return _render(request, space, _values_of(space))


# The longest a typed share ("100.00") and fee ("2000") can sensibly be; longer is refused as out of bounds.
SHARE_CHARS = 8
FEE_DIGITS = 5


def _read_rows(form: Any) -> tuple[list[dict[str, str]], list[PlannedMilestone], FieldMessages]:
    """The milestone rows as typed (blank rows left out), the plan they make, and the shares that are not numbers."""
    rows: list[dict[str, str]] = []
    plan: list[PlannedMilestone] = []
    errors: FieldMessages = {}
    for i in range(MAX_MILESTONES):
        row = {key: str(form.get(f"m{i}_{key}") or "").strip() for key in ("name", "share", "unlocks_on")}
        if not row["name"] and not row["share"]:
            continue
        n = len(plan)
        rows.append(row)
        typed = row["share"].replace(",", ".").removesuffix("%").strip()
        try:
            share = Decimal(typed) * 100 if len(typed) <= SHARE_CHARS else Decimal(-1)
        except InvalidOperation:
            share = Decimal(-1)
        if not share.is_finite():  # "Infinity", "NaN": out of bounds like any other
            share = Decimal(-1)
        if share != share.to_integral_value():
            errors[f"m{n}_share"] = _("Enter a share in percent, like 30 or 12.5.")
            share = Decimal(0)
        plan.append(PlannedMilestone(row["name"], int(share), row["unlocks_on"]))
    return rows, plan, errors


def _messages(failed: ValidationFailed, plan: list[PlannedMilestone]) -> FieldMessages:
    """The use case's field errors in the reader's words, under the form's field names."""
    errors: FieldMessages = {}
    for problem in failed.errors:
        field = problem.field
        if field == "name":
            errors["name"] = _("Give the space a name of at most 200 characters.")
        elif field == "description":
            errors["description"] = _("Use at most 5,000 characters.")
        elif field == "sponsor_fee_bps":
            errors["sponsor_fee_bps"] = _("Enter basis points from 0 to 2000 (100 basis points make 1 percent).")
        elif field == "fund_share_bps":
            errors["fund_share_bps"] = _("Enter basis points from 0 to 10000 (10000 puts the whole fee in the fund).")
        elif field == "fund_cap":
            errors["fund_cap"] = _("Enter an amount from zero up to a sensible limit.")
        elif field == "milestones":
            total = sum(p.share_bps for p in plan)
            errors["milestones"] = (
                _("The shares must add up to 100 %%; they add up to %(total)s.") % {"total": fee_percent(total)}
                if plan
                else _("List at least one milestone, or choose Kindling's default plan.")
            )
        elif field.startswith("milestones."):
            _prefix, index, part = field.split(".")
            if part == "name":
                errors.setdefault(f"m{index}_name", _("Give the milestone a name."))
            elif part == "share_bps":
                errors.setdefault(f"m{index}_share", _("Enter a share from 0.01 to 100 percent."))
            else:
                errors.setdefault(f"m{index}_unlocks_on", _("Choose when the milestone unlocks."))
    return errors


def _basis_points(typed: str) -> int:
    """Typed basis points, or -1 (refused as out of bounds) for anything but a few ASCII digits: "²".isdigit() is
    true, yet int("²") fails."""
    return int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= FEE_DIGITS else -1


async def save_space(request: Request) -> Response:
    form = await read_form(request)
    rows, plan, errors = _read_rows(form)
    default_plan = form.get("default_plan") == "yes"
    if default_plan:
        errors = {}
    values: dict[str, Any] = {
        "name": str(form.get("name") or "").strip(),
        "description": str(form.get("description") or "").strip(),
        "sponsor_fee_bps": str(form.get("sponsor_fee_bps") or "").strip(),
        "fund_share_bps": str(form.get("fund_share_bps") or "").strip(),
        "fund_cap": str(form.get("fund_cap") or "").strip(),
        "default_plan": default_plan,
        "milestones": rows,
    }
    fee = _basis_points(values["sponsor_fee_bps"])
    # The fund's fields left empty (a form from before they existed) keep what the space has.
    fund_share: int | space_terms.Keep = _basis_points(values["fund_share_bps"]) if values["fund_share_bps"] else KEEP
    fund_cap: int | space_terms.Keep = KEEP
    async with uow(request) as session:
        user = await current_user(request, session)
        space = await _space_of_operator(request, session, user)
        if values["fund_cap"]:
            try:
                fund_cap = minor_units(values["fund_cap"], space.fund_currency)
            except NumberInputError as wrong:
                errors["fund_cap"] = wrong.message
        if not errors:
            try:
                await space_terms.edit_space(
                    session,
                    user,
                    space.id,
                    name=values["name"],
                    description=values["description"],
                    sponsor_fee_bps=fee,
                    milestones=None if default_plan else plan,
                    fund_share_bps=fund_share,
                    fund_cap=fund_cap,
                    client_address=client_address(request),
                )
            except ValidationFailed as failed:
                errors = _messages(failed, plan)
    if errors:
        return _render(request, space, values, errors, status=422)
    return redirect(_path(space) + "?done=saved")


routes = [
    Route("/operator/spaces/{space_id}", space_form, methods=["GET"]),
    Route("/operator/spaces/{space_id}", save_space, methods=["POST"]),
]
