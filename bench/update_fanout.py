"""Benchmark 6, updates that scale: a maker posts an update to a campaign of many backers; the fan-out job writes the
outbox; the send job sends it through a real SMTP server (aiosmtpd, in a process of its own).

    python -m bench.update_fanout --backers 100000

Timed, in order:
1. the maker's request, `POST /api/v1/campaigns/{id}/updates`, against `kindling serve` (it writes the update and
   asks for the fan-out job, no mail);
2. the fan-out, `campaigns.update_mail.fan_out_update` as the worker's actor runs it (INSERT … SELECT in batches,
   one commit): the update is queued for every backer when it ends. Goal: request + fan-out under 2 s;
3. the send, `service.mail.send_update_mails`, rendering each mail and sending it over SMTP (chunks of 100, each on
   one connection, --connections at once). The reference, in the same run: copies of one of the messages it sent (the
   same bytes and envelope; as many, up to --reference-mails), ready-made, sent to the same server over one connection
   with aiosmtplib alone: the SMTP server's own pace. The ratio of time per mail says how close to it we send; the
   sender's CPU per mail says what the send job costs beyond SMTP, steadier than the clock on a loaded machine.
After the clock: every backer has exactly one mail of the update, every mail is marked sent, and the server received
as many messages, each with its List-Unsubscribe header.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, replace
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
from service.mail import UPDATE_MAIL_CONNECTIONS, send_update_mails

GOAL_SECONDS = 2.0


class CountingInbox:
    """aiosmtpd's handler: counts what it accepts, and the messages that carry the one-click unsubscribe headers;
    keeps the first message as it arrived (with its envelope), for the reference to send again."""

    def __init__(self, received: Any, with_unsubscribe: Any, samples: Any) -> None:
        self.received = received
        self.with_unsubscribe = with_unsubscribe
        self.samples = samples

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        content = bytes(envelope.content)
        if self.received.value == 0:
            self.samples.put((envelope.mail_from, envelope.rcpt_tos[0], content))
        self.received.value += 1
        if b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in content:
            self.with_unsubscribe.value += 1
        return "250 Message accepted for delivery"


def serve_inbox(port: int, received: Any, with_unsubscribe: Any, samples: Any, ready: Any, stop: Any) -> None:
    """The SMTP server, in its own process as a mail server is: it does not share the sender's interpreter."""
    controller = Controller(CountingInbox(received, with_unsubscribe, samples), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class InboxProcess:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        # Written by the server's one event loop thread only: no lock needed.
        self.received = context.Value("q", 0, lock=False)
        self.with_unsubscribe = context.Value("q", 0, lock=False)
        self.samples = context.Queue()
        self.ready, self.stop = context.Event(), context.Event()
        self.process = context.Process(
            target=serve_inbox,
            args=(self.port, self.received, self.with_unsubscribe, self.samples, self.ready, self.stop),
            daemon=True,
        )

    def __enter__(self) -> InboxProcess:
        self.process.start()
        if not self.ready.wait(60):
            raise RuntimeError("the SMTP server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.process.join(30)


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
    connections: int
    send_cpu: float
    reference_cpu: float
    reference_count: int


async def reference_send(smtp_port: int, count: int, sample: tuple[str, str, bytes]) -> float:
    """`count` copies of a message the send job sent (the same bytes, the same envelope), ready-made, over one
    connection: how fast the SMTP server takes these mails."""
    sender, recipient, content = sample
    started = time.perf_counter()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port) as smtp:
        for _ in range(count):
            await smtp.sendmail(sender, [recipient], content)
    return time.perf_counter() - started


async def run(
    services: BenchServices, backers: int, *, batch_size: int, connections: int, reference_mails: int
) -> Result:
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
    with InboxProcess() as inbox:
        smtp_port = inbox.port
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
        started, cpu_started = time.perf_counter(), time.process_time()
        sent = await send_update_mails(sessions, smtp_settings, update_id, connections=connections)
        send_seconds, send_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        received, with_unsubscribe = inbox.received.value, inbox.with_unsubscribe.value
        say("the reference: the same number of ready-made messages")
        sample = inbox.samples.get(timeout=60)
        cpu_started = time.process_time()
        reference_count = min(written, reference_mails)
        reference_seconds = await reference_send(smtp_port, reference_count, sample)
        reference_cpu = time.process_time() - cpu_started
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
        connections=connections,
        send_cpu=send_cpu,
        reference_cpu=reference_cpu,
        reference_count=reference_count,
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
    sending = out.section("sent through aiosmtpd (its own process)")
    sending.append(
        (
            f"send job ({result.connections} connections)",
            f"{ms(result.send_seconds)}, {per_second(result.sent, result.send_seconds)}",
        )
    )
    sending.append(
        (
            f"reference (SMTP alone, {result.reference_count:,} mails)",
            f"{ms(result.reference_seconds)}, {per_second(result.reference_count, result.reference_seconds)}",
        )
    )
    per_mail = result.send_seconds / max(result.sent, 1)
    sending.append(("send job / reference", ratio(per_mail, result.reference_seconds / max(result.reference_count, 1))))
    # CPU time of this process (the sender: PostgreSQL and the SMTP server run elsewhere): what the sender spends on
    # each mail, far steadier than the wall clock on a loaded machine.
    cpu = out.section("the sender's CPU per mail")
    cpu.append(("send job", f"{result.send_cpu / max(result.sent, 1) * 1000:.2f} ms"))
    cpu.append(("reference (SMTP alone)", f"{result.reference_cpu / max(result.reference_count, 1) * 1000:.2f} ms"))
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
    parser.add_argument(
        "--reference-mails", type=int, default=10_000, help="at most this many mails for the SMTP-alone reference"
    )
    parser.add_argument(
        "--connections", type=int, default=UPDATE_MAIL_CONNECTIONS, help="SMTP connections the send job uses at once"
    )
    args = parser.parse_args(argv)
    with embedded_services("update_fanout") as services:
        result = asyncio.run(
            run(
                services,
                args.backers,
                batch_size=args.batch_size,
                connections=args.connections,
                reference_mails=args.reference_mails,
            )
        )
    print(report(result))
    return 0 if ok(result) else 1


if __name__ == "__main__":
    sys.exit(main())
