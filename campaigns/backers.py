"""A campaign's backers as its maker and the sponsoring space's operators see them: the list (filters, search, cursor
pages) and its CSV export. Addresses follow the data rules of campaigns.pledges.viewers: to those who ship the
reward, once the campaign is funded and ships; never to an admin.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import visible_campaign
from campaigns.audit import record_audit
from campaigns.countries import is_country
from campaigns.errors import InvalidInput, NotAllowed
from campaigns.ids import parse_id
from campaigns.lifecycle import Role
from campaigns.matching import not_a_match
from campaigns.models import Campaign, Pledge, Tier, User
from campaigns.pledges.contents import Contents, pledge_contents
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES, PledgeStatus
from campaigns.pledges.viewers import PledgeViewer, sees_address, visible_address
from campaigns.spreadsheet import escape_cell

BACKER_VIEWERS: frozenset[Role] = frozenset({"maker", "operator", "admin"})
# A pledge that never got its card is not a backer yet: the list starts at the card.
LISTED_STATUSES = frozenset(PledgeStatus) - {PledgeStatus.REQUIRES_PAYMENT_METHOD}
SEARCH_LIMIT = 200
ROWS_PER_FETCH = 1000
EXPORTS = ("backers", "addresses", "transactions")
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
BACKER_COLUMNS = (
    "pledge_id",
    "name",
    "email",
    "tier",
    "items",
    "status",
    "amount",
    "currency",
    "pledged_at",
    "charged_at",
    "country",
)
ADDRESS_COLUMNS = ("pledge_id", "email", *ADDRESS_FIELDS)


@dataclass(frozen=True, slots=True)
class BackerFilter:
    """What the list is narrowed to: a tier (or "none": no reward), a status, a country, words in a name or email."""

    tier: str | None = None
    status: str | None = None
    country: str | None = None
    search: str | None = None


@dataclass(frozen=True, slots=True)
class Backer:
    pledge_id: uuid.UUID
    backer_id: uuid.UUID
    name: str
    email: str
    tier_id: uuid.UUID | None
    tier_title: str | None
    items: Contents
    status: str
    amount: int
    currency: str
    pledged_at: datetime
    charged_at: datetime | None
    country: str | None
    address: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class BackerPage:
    campaign: Campaign
    roles: frozenset[Role]
    backers: list[Backer]
    next_cursor: str | None
    tiers: list[Tier]

    @property
    def sees_addresses(self) -> bool:
        return sees_address(_viewer(self.campaign, self.roles))


def _viewer(campaign: Campaign, roles: frozenset[Role]) -> PledgeViewer:
    return PledgeViewer(backer=False, roles=roles, campaign_status=campaign.status)


async def backers_campaign(
    session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User
) -> tuple[Campaign, frozenset[Role]]:
    """The campaign whose backers `viewer` may see: its maker, the sponsoring space's operators, admins."""
    campaign, roles = await visible_campaign(session, campaign_ref, viewer)
    if not roles & BACKER_VIEWERS:
        raise NotAllowed("Only the campaign's maker and the sponsoring space's operators see its backers.")
    return campaign, roles


def _filtered(campaign: Campaign, narrowed: BackerFilter) -> Select[Pledge, str, str, str]:
    query = (
        select(Pledge, User.name, User.email, Tier.title)
        .join(User, User.id == Pledge.backer_id)
        .outerjoin(Tier, Tier.id == Pledge.tier_id)
        .where(Pledge.campaign_id == campaign.id, Pledge.status.in_(LISTED_STATUSES), not_a_match())
    )
    if narrowed.tier == "none":
        query = query.where(Pledge.tier_id.is_(None))
    elif narrowed.tier:
        tier_id = parse_id(narrowed.tier)
        if tier_id is None:
            raise InvalidInput("tier", "is not a tier of this campaign")
        query = query.where(Pledge.tier_id == tier_id)
    if narrowed.status:
        if narrowed.status not in LISTED_STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(sorted(LISTED_STATUSES))}")
        query = query.where(Pledge.status == narrowed.status)
    if narrowed.country:
        if not is_country(narrowed.country):
            raise InvalidInput("country", "must be an ISO 3166 alpha-2 country code")
        query = query.where(_country_of() == narrowed.country)
    if narrowed.search:
        words = narrowed.search.strip()
        if len(words) > SEARCH_LIMIT:
            raise InvalidInput("q", f"must be at most {SEARCH_LIMIT} characters")
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.name.ilike(pattern, escape="\\"), User.email.ilike(pattern, escape="\\")))
    return query


def _country_of() -> Any:
    """Where the pledge ships: the address's country once given, else the country chosen when pledging."""
    return func.coalesce(Pledge.address["country"].astext, Pledge.shipping_country)


def _backer(row: Any, contents: Mapping[uuid.UUID, Contents], viewer: PledgeViewer) -> Backer:
    pledge, name, email, tier_title = row
    address = visible_address(pledge, viewer)
    country = pledge.shipping_country
    if isinstance(pledge.address, dict) and pledge.address.get("country"):
        country = str(pledge.address["country"])
    return Backer(
        pledge_id=pledge.id,
        backer_id=pledge.backer_id,
        name=name,
        email=email,
        tier_id=pledge.tier_id,
        tier_title=tier_title,
        items=contents.get(pledge.id, {}),
        status=pledge.status,
        amount=pledge.amount,
        currency=pledge.currency,
        pledged_at=pledge.created_at,
        charged_at=pledge.charged_at,
        country=country,
        address=address,
    )


async def list_backers(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    viewer: User,
    narrowed: BackerFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> BackerPage:
    """One page of the campaign's backers, earliest first, narrowed by `narrowed`."""
    campaign, roles = await backers_campaign(session, campaign_ref, viewer)
    query = _filtered(campaign, narrowed)
    rows, next_cursor = await _page(session, query, limit=limit, cursor=cursor)
    contents = await pledge_contents(session, [row[0].id for row in rows])
    who = _viewer(campaign, roles)
    tiers = list(await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id).order_by(Tier.price)))
    return BackerPage(campaign, roles, [_backer(row, contents, who) for row in rows], next_cursor, tiers)


async def _page(
    session: AsyncSession, query: Select[Pledge, str, str, str], *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Keyset pages in arrival order (the pledge's number: pledges made in one transaction share a created_at)."""
    after = _decode_cursor(cursor)
    if after is not None:
        query = query.where(Pledge.number > after)
    rows = list((await session.execute(query.order_by(Pledge.number).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1][0].number)
    return rows, next_cursor


def _encode_cursor(number: int) -> str:
    return base64.urlsafe_b64encode(f"n{number}".encode()).decode().rstrip("=")


def _decode_cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    digits = raw.removeprefix("n")
    if not (raw.startswith("n") and digits.isascii() and digits.isdigit() and len(digits) <= 19):
        raise InvalidInput("cursor", "is not a cursor this API gave out")
    return int(digits)


async def start_export(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    viewer: User,
    export: str,
    *,
    client_address: str | None,
    narrowed: BackerFilter | None = None,
) -> Campaign:
    """The campaign whose `export` (one of EXPORTS) `viewer` may download, the download (and the filters of a
    backer list) written into the audit log in the caller's transaction. Addresses go only to those who ship, while
    the campaign ships."""
    campaign, roles = await backers_campaign(session, campaign_ref, viewer)
    details: dict[str, object] = {}
    if narrowed is not None:
        _filtered(campaign, narrowed)  # a bad filter is refused before anything is recorded
        details = {name: value for name, value in asdict(narrowed).items() if value}
    if export == "addresses" and not sees_address(_viewer(campaign, roles)):
        raise NotAllowed(
            "Addresses go to the maker and the sponsoring space's operators only, while the campaign is funded and "
            "ships."
        )
    await record_audit(
        session,
        viewer.id,
        f"campaign.export_{export}",
        "campaign",
        campaign.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details=details,
    )
    return campaign


def _time_cell(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def format_contents(items: Mapping[str, int]) -> str:
    """`{"SKU-B": 1, "SKU-A": 2}` → `"SKU-A x2; SKU-B x1"`, as the shipping list writes it."""
    return "; ".join(f"{sku} x{quantity}" for sku, quantity in sorted(items.items()) if quantity)


async def backers_csv(
    session: AsyncSession, campaign_id: uuid.UUID, narrowed: BackerFilter = BackerFilter()
) -> AsyncIterator[Sequence[str]]:
    """Every listed backer of the campaign (narrowed as the page is) as a row of BACKER_COLUMNS, earliest first,
    fetched ROWS_PER_FETCH at a time; free text is escaped so no cell runs as a formula."""
    campaign = await session.get_one(Campaign, campaign_id)
    query = _filtered(campaign, narrowed).order_by(Pledge.number)
    result = await session.stream(query.execution_options(yield_per=ROWS_PER_FETCH))
    async for rows in result.partitions():
        contents = await pledge_contents(session, [row[0].id for row in rows])
        for pledge, name, email, tier_title in rows:
            country = pledge.shipping_country or ""
            if isinstance(pledge.address, dict) and pledge.address.get("country"):
                country = str(pledge.address["country"])
            yield (
                str(pledge.id),
                escape_cell(name),
                escape_cell(email),
                escape_cell(tier_title or ""),
                escape_cell(format_contents(contents.get(pledge.id, {}))),
                pledge.status,
                str(pledge.amount),
                pledge.currency,
                _time_cell(pledge.created_at),
                _time_cell(pledge.charged_at),
                escape_cell(country),
            )


async def addresses_csv(session: AsyncSession, campaign_id: uuid.UUID) -> AsyncIterator[Sequence[str]]:
    """The address of every paid-for backer who gave one (the pledges that ship), earliest first; each cell escaped.
    Only for who `start_export(…, "addresses")` let through."""
    address = [Pledge.address[name].astext for name in ADDRESS_FIELDS]
    result = await session.stream(
        select(Pledge.id, User.email, *address)
        .join(User, User.id == Pledge.backer_id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
            Pledge.address.is_not(None),
        )
        .order_by(Pledge.number)
        .execution_options(yield_per=ROWS_PER_FETCH)
    )
    async for row in result:
        pledge_id, email, *fields = row
        yield (str(pledge_id), escape_cell(email), *(escape_cell(value or "") for value in fields))
