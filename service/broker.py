"""Dramatiq on Redis, and the sender that hands committed jobs to it."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from campaigns.jobs import Job
from campaigns.notifications import DELIVER_MAIL
from service.database import JobSender

log = logging.getLogger("kindling.jobs")

QUEUE = "default"
# Mail has a queue of its own, so that the thousands of mails a campaign's close sends never wait in front of its
# charges (or the other way round): a worker takes from both queues at once.
MAIL_QUEUE = "mail"
QUEUES = (QUEUE, MAIL_QUEUE)


def queue_of(actor_name: str) -> str:
    return MAIL_QUEUE if actor_name == DELIVER_MAIL else QUEUE


def create_broker(redis_url: str) -> RedisBroker:
    broker = RedisBroker(url=redis_url, socket_timeout=5, socket_connect_timeout=2)  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    return broker


class DramatiqSender(JobSender):
    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def send(self, jobs: list[Job]) -> None:
        for job in jobs:
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=queue_of(job.actor_name),
                actor_name=job.actor_name,
                args=job.args,
                kwargs=job.kwargs,
                options={},
            )
            try:
                self.broker.enqueue(message, delay=job.delay_ms)
            except Exception as exc:
                # The database already holds the work; the periodic sweep finds it when the broker is back.
                log.warning("could not enqueue %s%s (%s); the sweep will pick it up", job.actor_name, job.args, exc)


class ListSender(JobSender):
    """Keeps jobs in a list: for tests that run actors by hand."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def send(self, jobs: list[Job]) -> None:
        self.jobs.extend(jobs)
