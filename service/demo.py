"""Demo data for `kindling demo` and the first `kindling dev`: a makerspace, its operator, a maker, a backer, an admin.

Every part finds what it made before and makes only what is missing, so loading twice changes nothing. A new part
(campaigns, pledges) is one more function taking the session, the settings and the `Demo` built so far, called
from load_demo.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import accounts, spaces
from campaigns.models import Space, User
from service.settings import Settings

# Every demo account has this password (documented in the README and printed by `kindling demo`).
DEMO_PASSWORD = "kindling-demo"
ADMIN_EMAIL = "admin@kindling.localhost"
OPERATOR_EMAIL = "operator@kindling.localhost"
MAKER_EMAIL = "maker@kindling.localhost"
BACKER_EMAIL = "backer@kindling.localhost"
SPACE_SLUG = "chaihuo-x-factory"


@dataclass
class Demo:
    admin: User
    operator: User
    maker: User
    backer: User
    space: Space


async def load_demo(session: AsyncSession, settings: Settings) -> Demo:
    demo = await demo_people_and_space(session)
    # Later parts go here, each `await demo_<part>(session, settings, demo)`.
    return demo


async def demo_people_and_space(session: AsyncSession) -> Demo:
    admin, _created = await accounts.create_admin(session, email=ADMIN_EMAIL, password=DEMO_PASSWORD)
    operator = await _ensure_user(session, OPERATOR_EMAIL, "Li Wei", locale="zh_CN")
    maker = await _ensure_user(session, MAKER_EMAIL, "Ada Maker")
    backer = await _ensure_user(session, BACKER_EMAIL, "Ben Backer")
    space = await session.scalar(select(Space).where(Space.slug == SPACE_SLUG))
    if space is None:
        space = await spaces.create_space(
            session,
            name="Chaihuo x.factory",
            slug=SPACE_SLUG,
            city="Shenzhen",
            country="CN",
            sponsor_fee_bps=300,
            description=(
                "Seeed Studio's makerspace in Shenzhen: prototyping benches, and the factories next door "
                "for the first production batch."
            ),
        )
    await spaces.add_operator(session, space, OPERATOR_EMAIL)
    return Demo(admin=admin, operator=operator, maker=maker, backer=backer, space=space)


async def _ensure_user(session: AsyncSession, email: str, name: str, *, locale: str = "en") -> User:
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        user = await accounts.register_user(session, email=email, password=DEMO_PASSWORD, name=name, locale=locale)
    return user
