"""AmoCRM's request budget (7 per second per integration), shared by every worker.

With Redis the budget is a sliding window kept in Redis and checked by one Lua script on
Redis's own clock, so workers on many hosts share it exactly. Without Redis (the
embedded mode: one worker process) an in-process window does the same job. A request
waits for a free slot; it never goes out to be answered 429.
"""

import threading
import time
import uuid
from collections import deque

from django.conf import settings

# Returns 0 when the slot was taken, else how many milliseconds until one frees up.
_SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local window_us = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_us - window_us)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now_us, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window_us / 1000) + 1000)
    return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil((tonumber(oldest[2]) + window_us - now_us) / 1000))
"""


class SlotTimeout(Exception):
    """No slot came free within the caller's patience; try again later."""


class RedisRateLimiter:
    """At most ``limit`` acquisitions per ``window`` seconds per key, across all hosts."""

    def __init__(
        self,
        url: str,
        *,
        limit: int,
        window: float,
        max_wait: float = 120.0,
        prefix: str | None = None,
    ):
        import redis

        # Without a socket timeout a Redis that stops answering would hang every worker.
        timeout = settings.HUB_REDIS_SOCKET_TIMEOUT
        self.redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.script = self.redis.register_script(_SLIDING_WINDOW)
        self.limit = limit
        self.window_us = int(window * 1_000_000)
        self.max_wait = max_wait
        self.prefix = settings.HUB_REDIS_PREFIX if prefix is None else prefix

    def acquire(self, key: str) -> None:
        deadline = time.monotonic() + self.max_wait
        while True:
            wait_ms = self.script(
                keys=[f"{self.prefix}amocrm-rate:{key}"],
                args=[self.window_us, self.limit, uuid.uuid4().hex],
            )
            if wait_ms == 0:
                return
            if time.monotonic() + wait_ms / 1000 > deadline:
                raise SlotTimeout(f"no AmoCRM request slot within {self.max_wait:.0f}s")
            time.sleep(wait_ms / 1000)


class LocalRateLimiter:
    """The same window inside one process (threads share it)."""

    def __init__(self, *, limit: int, window: float, max_wait: float = 120.0):
        self.limit = limit
        self.window = window
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._sent: dict[str, deque] = {}

    def acquire(self, key: str) -> None:
        deadline = time.monotonic() + self.max_wait
        while True:
            with self._lock:
                now = time.monotonic()
                sent = self._sent.setdefault(key, deque())
                while sent and sent[0] <= now - self.window:
                    sent.popleft()
                if len(sent) < self.limit:
                    sent.append(now)
                    return
                wait = sent[0] + self.window - now
            if time.monotonic() + wait > deadline:
                raise SlotTimeout(f"no AmoCRM request slot within {self.max_wait:.0f}s")
            time.sleep(wait)


_limiter = None
_limiter_lock = threading.Lock()


def limiter_get():
    """The process's limiter: Redis-backed when AMOCRM_RATE_REDIS_URL is set."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            window = settings.AMOCRM_RATE_WINDOW
            if settings.AMOCRM_RATE_REDIS_URL:
                _limiter = RedisRateLimiter(
                    settings.AMOCRM_RATE_REDIS_URL,
                    limit=settings.AMOCRM_RATE_LIMIT,
                    window=window,
                )
            else:
                _limiter = LocalRateLimiter(limit=settings.AMOCRM_RATE_LIMIT, window=window)
        return _limiter


def limiter_reset() -> None:
    """Forgets the process's limiter so the next use reads the settings again (tests)."""
    global _limiter
    with _limiter_lock:
        _limiter = None
