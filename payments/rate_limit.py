"""How fast every worker process together may call Stripe: one token bucket in Redis, shared by all of them.

The bucket holds at most `rate` tokens (one second's worth of calls, the burst Stripe tolerates) and refills at `rate`
tokens a second. Taking a token is one Lua script run atomically by Redis on Redis's own clock, so processes on
machines whose clocks disagree still share one rate. A caller that finds the bucket empty reserves the next token
anyway and is told how long to wait for it: callers queue up in arrival order instead of polling.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

log = logging.getLogger("kindling.payments")

BUCKET_KEY = "kindling:stripe:rate"

# KEYS[1]: the bucket. ARGV[1]: tokens per second; ARGV[2]: capacity. Returns the milliseconds to wait.
_TAKE_TOKEN = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
    tokens = capacity
    at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
if tokens >= 0 then
    return 0
end
return math.ceil(-tokens / rate * 1000)
"""


class StripeRateLimit:
    """`await limit.acquire()` before each call to Stripe that the charging and refund jobs make."""

    def __init__(self, redis: Redis, *, rate: float, key: str = BUCKET_KEY) -> None:
        if rate <= 0:
            raise ValueError(f"the rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._redis = redis
        self._key = key
        self._script = redis.register_script(_TAKE_TOKEN)

    async def acquire(self) -> float:
        """Take one token, waiting as long as the bucket says; returns the seconds waited."""
        wait_ms = int(await self._script(keys=[self._key], args=[self.rate, self.capacity]))
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
        return wait_ms / 1000

    async def aclose(self) -> None:
        await self._redis.aclose()
