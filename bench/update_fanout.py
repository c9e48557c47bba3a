"""Benchmark 6, updates that scale: a maker posts an update to a campaign of many backers; the fan-out job writes the
outbox; the send job sends it through a real SMTP server (aiosmtpd, in this process).

    python -m bench.update_fanout --backers 100000

Timed, in order:
1. the maker's request, `POST /api/v1/campaigns/{id}/updates`, against `kindling serve` (it writes the update and
   asks for the fan-out job, no mail);
2. the fan-out, `campaigns.update_mail.fan_out_update` as the worker's actor runs it (INSERT … SELECT in batches,
   one commit): the update is queued for every backer when it ends. Goal: request + fan-out under 2 s;
3. the send, `service.mail.send_update_mails`, rendering each mail and sending it over SMTP (chunks of 100 on one
   connection each). The reference, in the same run: the same number of ready-made messages sent to the same server
   over one connection with aiosmtplib alone: the SMTP server's own pace. The ratio says how close to it we send.
After the clock: every backer has exactly one mail of the update, every mail is marked sent, and the server received
as many messages, each with its List-Unsubscribe header.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text

from bench.common import (
    BACKER_ID_SQL,
    BenchServices,
    Report,
    embedded_services,
    insert_backers,
    insert_live_campaign,
    machine_description,
    ms,
    per_second,
    ratio,
    say,
    served,
    verdict,
)
from campaigns.models import Mail
from campaigns.update_mail import fan_out_update
from service.database import create_engine, create_sessionmaker
from service.devservices import free_port
from service.mail import send_update_mails

GOAL_SECONDS = 2.0


class CountingInbox:
    """aiosmtpd's handler: counts what it accepts, and the messages that carry the one-click unsubscribe headers."""

    def __init__(self) -> None:
        self.received = 0
        self.with_unsubscribe = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.received += 1
        content = bytes(envelope.content)
        if b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in content:
            self.with_unsubscribe += 1
        return "250 Message accepted for delivery"


@dataclass
class Result:
    backers: int
    request_seconds: float
    fan_out_seconds: float
    written: int
    send_seconds: float
    sent: int
    reference_seconds: float
    received: int
    with_unsubscribe: int
    mails_per_backer_ok: bool


async def reference_send(smtp_port: int, count: int) -> float:
    """`count` ready-made messages over one connection: how fast the SMTP server takes mail."""
    message = EmailMessage()
    message["From"] = "Kindling <updates@kindling.example>"
    message["To"] = "reference@bench.example"
    message["Subject"] = "Reference"
    message.set_content("A message of about an update's size.\n" * 20)
    started = time.perf_counter()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port) as smtp:
        for _ in range(count):
            await smtp.send_message(message)
    return time.perf_counter() - started


async def run(services: BenchServices, backers: int, *, batch_size: int) -> Result:
    engine = create_engine(services.settings.database_url, pool_size=5)
    sessions = create_sessionmaker(engine)
    maker_token = f"kdl_bench_{secrets.token_hex(16)}"
    async with engine.begin() as connection:
        say(f"inserting {backers} backers and their pledges")
        await insert_backers(connection, backers, tokens=False)
        campaign = await insert_live_campaign(connection, slots=backers + 10, label="fanout")
        await connection.execute(
            text(
                f"""
                INSERT INTO pledges (id, campaign_id, backer_id, tier_id, status, amount, currency,
                                     shipping_country)
                SELECT gen_random_uuid(), :campaign, {BACKER_ID_SQL.format(n="n")}, :tier, 'active', 15900,
                       'CNY', 'CN'
                FROM generate_series(1, CAST(:count AS bigint)) AS n
                """
            ),
            {"campaign": campaign.id, "tier": campaign.tier_id, "count": backers},
        )
        await connection.execute(
            text("INSERT INTO api_tokens (id, user_id, token_hash) VALUES (gen_random_uuid(), :maker, :hash)"),
            {"maker": campaign.maker_id, "hash": hashlib.sha256(maker_token.encode()).hexdigest()},
        )
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
    inbox = CountingInbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        async with served(services, workers=1) as server, httpx.AsyncClient(base_url=server.url) as client:
            say("the maker posts the update")
            started = time.perf_counter()
            posted = await client.post(
                f"/api/v1/campaigns/{campaign.id}/updates",
                json={
                    "title": "The pilot run is done",
                    "body": "Boards **tested**, cases next.",
                    "visibility": "backers",
                },
                headers={"Authorization": f"Bearer {maker_token}"},
                timeout=60,
            )
            request_seconds = time.perf_counter() - started
            if posted.status_code != 201:
                raise RuntimeError(f"posting the update answered {posted.status_code}: {posted.text}")
            update_id = posted.json()["id"]
        say("fan-out")
        started = time.perf_counter()
        async with sessions.begin() as session:
            written = await fan_out_update(
                session, update_id, base_url=services.settings.base_url, batch_size=batch_size
            )
        fan_out_seconds = time.perf_counter() - started
        say(f"sending {written} mails through aiosmtpd")
        smtp_settings = replace(services.settings, smtp_url=f"smtp://127.0.0.1:{smtp_port}")
        started = time.perf_counter()
        sent = await send_update_mails(sessions, smtp_settings, update_id)
        send_seconds = time.perf_counter() - started
        received, with_unsubscribe = inbox.received, inbox.with_unsubscribe
        say("the reference: the same number of ready-made messages")
        reference_seconds = await reference_send(smtp_port, written)
    finally:
        controller.stop()
    async with sessions() as session:
        per_backer = await session.execute(
            select(func.count(), func.count(func.distinct(Mail.user_id)), func.count(Mail.sent_at)).where(
                Mail.campaign_update_id == uuid.UUID(update_id)
            )
        )
        total, distinct, marked_sent = per_backer.one()
    await engine.dispose()
    return Result(
        backers=backers,
        request_seconds=request_seconds,
        fan_out_seconds=fan_out_seconds,
        written=written,
        send_seconds=send_seconds,
        sent=sent,
        reference_seconds=reference_seconds,
        received=received,
        with_unsubscribe=with_unsubscribe,
        mails_per_backer_ok=total == distinct == marked_sent == backers,
    )


def report(result: Result) -> str:
    out = Report(f"Update fan-out: {result.backers:,} backers")
    out.section("machine").append(("cpu", machine_description()))
    queued = result.request_seconds + result.fan_out_seconds
    timing = out.section("queued (goal: request + fan-out under 2 s)")
    timing.append(("maker's request", ms(result.request_seconds)))
    timing.append(
        (
            "fan-out (outbox written)",
            f"{ms(result.fan_out_seconds)}, {per_second(result.written, result.fan_out_seconds)}",
        )
    )
    timing.append(("request + fan-out", f"{ms(queued)}  {verdict(queued < GOAL_SECONDS)}"))
    sending = out.section("sent through aiosmtpd")
    sending.append(("send job", f"{ms(result.send_seconds)}, {per_second(result.sent, result.send_seconds)}"))
    sending.append(
        (
            "reference (SMTP alone)",
            f"{ms(result.reference_seconds)}, {per_second(result.written, result.reference_seconds)}",
        )
    )
    sending.append(("send job / reference", ratio(result.send_seconds, result.reference_seconds)))
    checks = out.section("checks")
    checks.append(("mails written", f"{result.written:,}"))
    checks.append(("one mail per backer, all sent", "yes" if result.mails_per_backer_ok else "NO"))
    checks.append(("received by the server", f"{result.received:,}"))
    checks.append(("with List-Unsubscribe-Post", f"{result.with_unsubscribe:,}"))
    return out.render()


def ok(result: Result) -> bool:
    return (
        result.mails_per_backer_ok
        and result.written == result.sent == result.received == result.with_unsubscribe == result.backers
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backers", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5_000, help="recipients per INSERT … SELECT")
    args = parser.parse_args(argv)
    with embedded_services("update_fanout") as services:
        result = asyncio.run(run(services, args.backers, batch_size=args.batch_size))
    print(report(result))
    return 0 if ok(result) else 1


if __name__ == "__main__":
    sys.exit(main())
