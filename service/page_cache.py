"""The public campaign page as anonymous visitors see it: rendered once per campaign and language, and forgotten the
moment PostgreSQL says the campaign changed.

Every table the page shows announces its changes on the channel kindling_campaign_changed (migration 0007): the
campaign's id, or '*' for a change that may touch many. One connection per process listens. The cache is used only
while that connection is alive; when it is lost everything kept is forgotten until a new one listens.

Exact, not "fresh enough":
- A page is served from the cache only after a round trip on the listening connection that started after the request
  came in. PostgreSQL sends a listener every notice committed before it answers, and asyncpg runs the notice
  callbacks before the answer's waiter, so a change committed before the request came in has evicted the page by then.
- A rendered page is kept only if no notice for its campaign (and no '*', and no reconnection) arrived since the
  request began, so a change committed while it was being rendered is never hidden behind it.
- Figures that move with the clock alone (days left) give the page an expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

log = logging.getLogger("kindling.page_cache")

CHANNEL = "kindling_campaign_changed"
EVERYTHING = "*"
MAX_PAGES = 5000
RETRY_SECONDS = 1.0
ROUND_TRIP_TIMEOUT = 2.0


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL (postgresql+asyncpg://user@/db?host=/socket/dir) as the libpq URL asyncpg connects with."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class CachedPage:
    body: bytes
    media_type: str
    # time.time() when a figure that moves with the clock alone changes; None: never
    expires_at: float | None = None


class PageCache:
    """Pages by key, each belonging to one campaign; `start()` begins listening, `stop()` ends it."""

    def __init__(self, database_url: str) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._pages: dict[Hashable, tuple[str, CachedPage]] = {}
        self._keys_of: dict[str, set[Hashable]] = {}
        # Every notice (and every reconnection) advances the sequence; what each campaign last heard is kept so a
        # render can tell whether its campaign changed while it ran.
        self._sequence = 0
        self._changed_at: dict[str, int] = {}
        self._everything_changed_at = 0
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._listening: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_round_trip: asyncio.Future[bool] | None = None
        self._round_trips: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._connection is not None

    @property
    def listener_pid(self) -> int | None:
        """The PostgreSQL backend that listens (tests end it to show the cache stepping aside)."""
        return self._connection.get_server_pid() if self._connection is not None else None

    def __len__(self) -> int:
        return len(self._pages)

    async def start(self) -> None:
        self._stopping = False
        self._listening = asyncio.create_task(self._keep_listening())

    async def stop(self) -> None:
        self._stopping = True
        self._lost.set()
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
        if self._round_trips is not None:
            self._round_trips.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._round_trips
        waiter, self._next_round_trip = self._next_round_trip, None
        if waiter is not None and not waiter.done():
            waiter.set_result(False)
        connection = self._connection
        self._forget_everything()
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), ROUND_TRIP_TIMEOUT)
            connection.terminate()

    # Reading and keeping pages

    def begin(self) -> int | None:
        """Call before reading what a page shows; pass the answer to `keep`. None: nothing may be kept now."""
        return self._sequence if self.enabled else None

    def keep(self, began: int | None, campaign_id: str, key: Hashable, page: CachedPage) -> None:
        """Keeps `page` unless its campaign (or everything) changed since `begin()`, or the listener was lost."""
        if began is None or not self.enabled:
            return
        if self._everything_changed_at > began or self._changed_at.get(campaign_id, 0) > began:
            return
        if key not in self._pages and len(self._pages) >= MAX_PAGES:
            oldest = next(iter(self._pages))
            self._drop(oldest)
        self._drop(key)
        self._pages[key] = (campaign_id, page)
        self._keys_of.setdefault(campaign_id, set()).add(key)

    async def fresh(self, key: Hashable) -> CachedPage | None:
        """The kept page, if there is one and nothing it shows changed before this call."""
        if not self.enabled or key not in self._pages:
            return None
        if not await self.caught_up():
            return None
        kept = self._pages.get(key)
        if kept is None:
            return None
        page = kept[1]
        if page.expires_at is not None and time.time() >= page.expires_at:
            self._drop(key)
            return None
        return page

    def _drop(self, key: Hashable) -> None:
        kept = self._pages.pop(key, None)
        if kept is not None:
            keys = self._keys_of.get(kept[0])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_of[kept[0]]

    def _forget_everything(self) -> None:
        self._sequence += 1
        self._everything_changed_at = self._sequence
        self._changed_at.clear()
        self._pages.clear()
        self._keys_of.clear()

    def _on_notice(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == EVERYTHING:
            self._forget_everything()
            return
        self._sequence += 1
        self._changed_at[payload] = self._sequence
        for key in self._keys_of.pop(payload, set()):
            self._pages.pop(key, None)

    # The round trip that proves every earlier notice has arrived

    async def caught_up(self) -> bool:
        """True once a round trip on the listening connection, begun after this call, came back."""
        if self._next_round_trip is None:
            self._next_round_trip = asyncio.get_running_loop().create_future()
            if self._round_trips is None or self._round_trips.done():
                self._round_trips = asyncio.create_task(self._run_round_trips())
        # Requests that arrive together share one round trip; one of them going away must not cancel it.
        return await asyncio.shield(self._next_round_trip)

    async def _run_round_trips(self) -> None:
        while self._next_round_trip is not None:
            waiter, self._next_round_trip = self._next_round_trip, None
            answered = False
            connection = self._connection
            try:
                if connection is not None:
                    await asyncio.wait_for(connection.execute("SELECT 1"), ROUND_TRIP_TIMEOUT)
                    answered = self._connection is connection
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("page cache: the listening connection did not answer: %s", exc)
                self._lose(connection)
            finally:
                # Even when stopped half-way: the requests waiting then render the page themselves.
                if not waiter.done():
                    waiter.set_result(answered)

    # The listening connection

    def _lose(self, connection: asyncpg.Connection) -> None:
        if self._connection is None or self._connection is not connection:
            return
        self._connection = None
        self._forget_everything()
        self._lost.set()
        connection.terminate()

    async def _keep_listening(self) -> None:
        while not self._stopping:
            try:
                connection = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("page cache off: cannot connect to listen: %s", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._lost = asyncio.Event()
            connection.add_termination_listener(lambda lost: self._lose(lost))
            try:
                await connection.add_listener(CHANNEL, self._on_notice)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("page cache off: cannot listen: %s", exc)
                connection.terminate()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            # Whatever was rendered before this moment was not watched: it may not be kept.
            self._forget_everything()
            self._connection = connection
            if connection.is_closed():  # lost before it was ours to lose
                self._lose(connection)
            await self._lost.wait()
            if not self._stopping:
                log.warning("page cache off: the listening connection was lost; reconnecting")
                await asyncio.sleep(RETRY_SECONDS)
