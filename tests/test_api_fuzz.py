"""The JSON API fuzzed from its own OpenAPI document (schemathesis), as each kind of caller, against the real services.

Every operation /api/v1/openapi.json lists is called with generated requests, valid and invalid, by an anonymous
caller, a backer, a maker, the operator of the maker's space and a platform admin. The world they act in is real: a
space, a draft, a live campaign with a confirmed pledge (the card saved on localstripe), a funded campaign planned into
batches. Path parameters, and ids or emails in bodies and queries, are often swapped for ones of real objects so the
requests get past "not found". Every response must be: no 5xx, a status, content type and body the document declares,
and for every 4xx an RFC 9457 problem document.

Bounded for CI: a few examples per operation and role, no shrinking, a fixed seed (derandomised), no example database.
"""

from __future__ import annotations

import importlib
import io
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis import Case, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from campaigns.accounts import issue_token, user_by_email
from campaigns.models import Campaign
from fulfillment.service import plan_campaign
from payments.milestones import create_milestones
from service.api import openapi_document
from service.app import ENDPOINT_MODULES, create_app
from service.broker import ListSender
from service.database import create_engine, create_sessionmaker
from service.devservices import EmbeddedStripe
from service.problems import PROBLEM_CONTENT_TYPE
from service.routes import api
from service.settings import Settings
from tests.database import empty_tables
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import (
    DELIVERY,
    Actor,
    confirm_card_setup,
    create_space,
    drafted_campaign,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
)

ROLES = ("anonymous", "backer", "maker", "operator", "admin")
# Fixed so that CI is reproducible; KINDLING_FUZZ_SEED and KINDLING_FUZZ_EXAMPLES explore further by hand.
SEED = int(os.environ.get("KINDLING_FUZZ_SEED", "20261201"))
EXAMPLES_PER_OPERATION = int(os.environ.get("KINDLING_FUZZ_EXAMPLES", "12"))
# Operations that end the credentials they are called with get a token of their own each time.
ENDS_ITS_TOKEN = {("DELETE", "/api/v1/tokens/current")}
SPARE_TOKENS = 150
# The boundary cases of the coverage phase are about validation, which is the same for every signed-in caller.
COVERAGE_ROLES = {"maker"}
# Values the server accepts for fields whose rules the document cannot state (a currency in use, a country, a SKU of
# the campaign), swapped in like the ids so that generated bodies are sometimes accepted.
VOCABULARY = {
    "currency": ["CNY", "USD", "JPY"],
    "country": ["CN", "US", "DE"],
    "shipping_country": ["CN", "US"],
    "sku": ["SKU-A"],
    "estimated_delivery": [DELIVERY],
}

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
        # A body over the size limit is refused with 413 before anything reads it.
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": ["400", "401", "403", "404", "405", "409", "413", "415", "422", "429"]
            }
        },
        "suppress-health-check": ["all"],
    }
)


@dataclass
class World:
    """What the fuzzed requests act on: the callers' tokens and the ids of real objects, by the names the API uses."""

    tokens: dict[str, str]
    spare_tokens: dict[str, list[str]] = field(repr=False)
    known: dict[str, list[str]] = field(default_factory=dict)
    # Requests sent, by schemathesis phase (coverage, fuzzing, examples).
    sent: Counter[str] = field(default_factory=Counter)

    def headers_for(self, role: str, *, ends_its_token: bool) -> dict[str, str]:
        if role == "anonymous":
            return {}
        if ends_its_token:
            spares = self.spare_tokens[role]
            assert spares, f"the {role} ran out of spare tokens; raise SPARE_TOKENS"
            return {"Authorization": f"Bearer {spares.pop()}"}
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 80, 20)).save(buffer, "PNG")
    return buffer.getvalue()


async def _empty(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await empty_tables(await session.connection())


async def _build_world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], stripe: EmbeddedStripe
) -> World:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    backer = await sign_up(client, "Backer")
    actors: dict[str, Actor] = {"admin": admin, "operator": operator, "maker": maker, "backer": backer}

    # Drafts to edit (the fuzzer submits some of them along the way) and one waiting for its review.
    drafts = [await drafted_campaign(client, maker, space) for _ in range(3)]
    in_review = await drafted_campaign(client, maker, space)
    submitted = await client.post(f"/api/v1/campaigns/{in_review['id']}/submit", headers=maker.headers)
    assert submitted.status_code == 200, submitted.text
    image = await client.post(
        f"/api/v1/campaigns/{drafts[0]['id']}/images",
        files={"file": ("cover.png", _png(), "image/png")},
        data={"role": "gallery"},
        headers=maker.headers,
    )
    assert image.status_code == 201, image.text

    live, _maker, _operator = await launched_campaign(client, sessions, maker=maker, space=space, operator=operator)
    pledged = await client.post(
        f"/api/v1/campaigns/{live['id']}/pledges",
        json={"tier_id": live["tiers"][0]["id"], "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert pledged.status_code == 201, pledged.text
    card = await confirm_card_setup(stripe, pledged.json()["payment"]["client_secret"])
    assert card.status_code == 200, card.text
    confirmed = await client.post(f"/api/v1/pledges/{pledged.json()['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200, confirmed.text
    update = await client.post(
        f"/api/v1/campaigns/{live['id']}/updates",
        json={"title": "Boards ordered", "body": "The **first** boards are on their way.", "visibility": "backers"},
        headers=maker.headers,
    )
    assert update.status_code == 201, update.text

    async with sessions.begin() as session:
        await create_milestones(session, await session.get_one(Campaign, live["id"]))
        funded = await insert_campaign(session, maker_id=maker.id, space_id=space["id"], status="funded")
        await insert_product(session, funded, "BOARD", batch_size=100, overage_bps=500)
        kit = await insert_tier(session, funded, {"BOARD": 1})
        funded_pledge = await insert_pledge(session, funded, kit, backer_id=backer.id, given_address=address())
        await insert_pledge(session, funded, kit)
        milestones = await create_milestones(session, funded)
        spare_tokens: dict[str, list[str]] = {}
        for role, actor in actors.items():
            user = await user_by_email(session, actor.email)
            spare_tokens[role] = [await issue_token(session, user) for _ in range(SPARE_TOKENS)]
    async with sessions.begin() as session:
        await plan_campaign(session, funded.id)

    funded_id = str(funded.id)
    batches = await client.get(f"/api/v1/campaigns/{funded_id}/batches", headers=maker.headers)
    assert batches.status_code == 200, batches.text
    live_milestones = await client.get(f"/api/v1/campaigns/{live['id']}/milestones", headers=maker.headers)
    assert live_milestones.status_code == 200, live_milestones.text

    campaigns = [*drafts, in_review, live]
    known: dict[str, list[str]] = {
        "campaign_id": [c["id"] for c in campaigns] + [live["slug"], funded_id],
        "space_id": [space["id"]],
        "product_id": [p["id"] for c in campaigns for p in c["products"]],
        "tier_id": [t["id"] for c in campaigns for t in c["tiers"]] + [str(kit.id)],
        "image_id": [image.json()["id"]],
        "pledge_id": [pledged.json()["id"], str(funded_pledge.id)],
        "milestone_id": [m["id"] for m in live_milestones.json()] + [str(m.id) for m in milestones],
        "batch_id": [b["id"] for b in batches.json()],
        "maker_id": [maker.id],
        "email": [actor.email for actor in actors.values()],
        **VOCABULARY,
    }
    return World(
        tokens={role: actor.token for role, actor in actors.items()},
        spare_tokens=spare_tokens,
        known={name: values for name, values in known.items() if values},
    )


@pytest.fixture(scope="module")
async def world(stripe_settings: Settings, stripe_server: EmbeddedStripe) -> AsyncIterator[World]:
    # Its own engine rather than the `engine` fixture, which would empty the tables before every role's run.
    engine = create_engine(stripe_settings.database_url, pool_size=2)
    sessions = create_sessionmaker(engine)
    await _empty(sessions)
    app = create_app(stripe_settings, sender=ListSender(), engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            built = await _build_world(client, sessions, stripe_server)
    await engine.dispose()
    yield built


class AppUnderTest:
    """The app the fuzzed requests reach, in-process: schemathesis runs it, lifespan included, on an event loop of its
    own. It exists before the app does (the schema is loaded at import, the app needs the test services' settings)."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "ask for the fuzzed_app fixture"
        await self.app(scope, receive, send)


APP = AppUnderTest()


@pytest.fixture(scope="module")
def fuzzed_app(stripe_settings: Settings, world: World, request: pytest.FixtureRequest) -> Iterator[AppUnderTest]:
    KNOWN.update(world.known)
    APP.app = create_app(stripe_settings, sender=ListSender(), engine_pool=5)
    yield APP
    shutdown_lifespans()
    APP.app = None
    KNOWN.clear()
    phases = ", ".join(f"{count} {phase}" for phase, count in sorted(world.sent.items()))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(
            f"\nAPI fuzzing: {world.sent.total()} requests ({phases}) to {len(OPERATIONS)} operations "
            f"as {len(ROLES)} kinds of caller"
        )


def _served_document() -> dict[str, Any]:
    """The document GET /api/v1/openapi.json serves (test_the_fuzzed_document_is_the_one_the_app_serves checks)."""
    for name in ENDPOINT_MODULES:
        importlib.import_module(name)
    return openapi_document(api, title="Kindling API", version="1")


DOCUMENT = _served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = APP
OPERATIONS = [(method, path) for path, methods in DOCUMENT["paths"].items() for method in methods]
# Ids of real objects by parameter or field name, filled in once the world is built.
KNOWN: dict[str, list[str]] = {}


def _with_known_values(value: Any) -> st.SearchStrategy[Any]:
    """`value` as generated, with each field named like something real (`campaign_id`, `currency`, ...) swapped
    for a real one about half the time, at any depth."""
    if isinstance(value, dict):
        fields = {}
        for name, item in value.items():
            generated = _with_known_values(item)
            if KNOWN.get(name) and not isinstance(item, dict | list):
                generated = st.one_of(generated, st.sampled_from(KNOWN[name]))
            fields[name] = generated
        return st.fixed_dictionaries(fields)
    if isinstance(value, list):
        return st.tuples(*(_with_known_values(item) for item in value)).map(list)
    return st.just(value)


def _with_parts(case: Case, parts: tuple[Any, Any, Any]) -> Case:
    path_parameters, query, body = parts
    if path_parameters != case.path_parameters:
        case.path_parameters = path_parameters
    if query != case.query:
        case.query = query
    if body != case.body:
        case.body = body
    return case


@schema.hook
def flatmap_case(context: HookContext, case: Case) -> st.SearchStrategy[Case]:
    if case.meta is not None and case.meta.generation.mode.is_negative:
        # Real ids in the path only: any string fits a path parameter, whereas a real value in the query or body could
        # repair the very field that makes the request invalid while schemathesis still counts it as invalid.
        parts = st.tuples(_with_known_values(case.path_parameters), st.just(case.query), st.just(case.body))
    else:
        parts = st.tuples(
            _with_known_values(case.path_parameters), _with_known_values(case.query), _with_known_values(case.body)
        )
    return parts.map(lambda drawn: _with_parts(case, drawn))


@schemathesis.check
def problem_details_for_client_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is an RFC 9457 problem document as API.md describes it."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.split(";")[0].strip() == PROBLEM_CONTENT_TYPE, f"a {response.status_code} as {content_type!r}"
    problem = json.loads(response.content)
    assert isinstance(problem, dict), "the problem document is not an object"
    for name, kind in (("type", str), ("title", str), ("status", int), ("detail", str), ("errors", list)):
        assert isinstance(problem.get(name), kind), f"the problem's {name!r} is missing or not a {kind.__name__}"
    assert problem["status"] == response.status_code, "the problem's status is not the response's"
    for error in problem["errors"]:
        assert isinstance(error, dict) and isinstance(error.get("field"), str) and isinstance(error.get("message"), str)
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    response_headers_conformance,
    ignored_auth,
    problem_details_for_client_errors,
]


async def test_the_fuzzed_document_is_the_one_the_app_serves(client: httpx.AsyncClient) -> None:
    served = await client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
def test_every_operation_answers_every_caller_as_documented(case: Case, world: World, fuzzed_app: AppUnderTest) -> None:
    """Each generated request is sent once as each kind of caller: the cases do not depend on the caller, so they are
    generated once (generating them is half the cost of fuzzing) and the callers take turns with the same one."""
    phase = case.meta.phase.name.value if case.meta is not None else "explicit"
    ends_its_token = (case.operation.method.upper(), case.operation.path) in ENDS_ITS_TOKEN
    for role in ROLES:
        if phase == "coverage" and role not in COVERAGE_ROLES:
            continue
        world.sent[phase] += 1
        try:
            case.call_and_validate(headers=world.headers_for(role, ends_its_token=ends_its_token), checks=CHECKS)
        except Exception as failure:
            failure.add_note(f"called as the {role}")
            raise
