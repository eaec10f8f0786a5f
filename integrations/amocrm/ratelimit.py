"""AmoCRM's request budget (7 per second per integration), shared by every worker.

AmoCRM counts requests as they reach it, and a request can take any time to get there
after its worker took a slot (a busy CPU, a slow network), so spacing the slots alone
cannot promise AmoCRM's count. Two rules together do:

1. one request per integration in flight at a time: the next slot is taken only after
   the answer to the previous request came back, so after AmoCRM counted it;
2. at most ``limit - 1`` slots (6) in any window a little over one second.

If AmoCRM ever counted 8 requests within one second, the 7 slots of the 2nd to the 8th
would all have been taken within that second (each after the previous request arrived,
each before its own request arrived), which rule 2 forbids. So AmoCRM never sees more
than 7 in a second, whatever the delays.

With Redis the window and the in-flight lock live in Redis, checked by one Lua script
on Redis's own clock, so workers on many hosts share them. Without Redis (the embedded
mode: one worker process) an in-process window and lock do the same job. A request
waits for its turn; it never goes out to be answered 429.
"""

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from integrations.monitoring import metrics

# Takes a window slot (KEYS[1]) and, when KEYS[2] is given, the in-flight lock with it.
# -1: another request is in flight; 0: taken; else the milliseconds until a slot frees up.
_TAKE = """
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then
    return -1
end
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local window_us = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_us - window_us)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now_us, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window_us / 1000) + 1000)
    if #KEYS > 1 then
        redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
    end
    return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil((tonumber(oldest[2]) + window_us - now_us) / 1000))
"""
# Releases the in-flight lock only if it is still ours (a lock that outlived its time
# and was taken by another request is left alone).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# How often a request waiting for the one in flight looks again.
BUSY_POLL = 0.003


def _in_flight_ttl() -> float:
    """How long a request may hold its turn: the client's timeouts and a margin, so a
    killed worker's turn frees itself."""
    connect, read = settings.AMOCRM_TIMEOUT
    return connect + read + 5.0


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
        self.take = self.redis.register_script(_TAKE)
        self.release = self.redis.register_script(_RELEASE)
        self.limit = limit
        self.window_us = int(window * 1_000_000)
        self.max_wait = max_wait
        self.prefix = settings.HUB_REDIS_PREFIX if prefix is None else prefix

    def acquire(self, key: str) -> None:
        """A window slot, whatever else is in flight."""
        self._wait_for(
            [f"{self.prefix}amocrm-rate:{key}"], [self.window_us, self.limit, uuid.uuid4().hex]
        )

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """The integration's turn: a window slot, and no other request in flight."""
        member = uuid.uuid4().hex
        keys = [f"{self.prefix}amocrm-rate:{key}", f"{self.prefix}amocrm-in-flight:{key}"]
        ttl_ms = int(_in_flight_ttl() * 1000)
        self._wait_for(keys, [self.window_us, self.limit, member, ttl_ms])
        try:
            yield
        finally:
            self.release(keys=keys[1:], args=[member])

    def _wait_for(self, keys: list[str], args: list) -> None:
        started = time.monotonic()
        deadline = started + self.max_wait
        while True:
            wait_ms = self.take(keys=keys, args=args)
            if wait_ms == 0:
                metrics.rate_wait_observed(time.monotonic() - started)
                return
            wait = BUSY_POLL if wait_ms < 0 else wait_ms / 1000
            if time.monotonic() + wait > deadline:
                raise SlotTimeout(f"no AmoCRM request slot within {self.max_wait:.0f}s")
            time.sleep(wait)


class LocalRateLimiter:
    """The same window inside one process (threads share it)."""

    def __init__(self, *, limit: int, window: float, max_wait: float = 120.0):
        self.limit = limit
        self.window = window
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._sent: dict[str, deque] = {}
        self._in_flight: dict[str, threading.Lock] = {}

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

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """The integration's turn: a window slot, and no other request in flight."""
        started = time.monotonic()
        with self._lock:
            in_flight = self._in_flight.setdefault(key, threading.Lock())
        if not in_flight.acquire(timeout=self.max_wait):
            raise SlotTimeout(f"no AmoCRM request slot within {self.max_wait:.0f}s")
        try:
            self.acquire(key)
            metrics.rate_wait_observed(time.monotonic() - started)
            yield
        finally:
            in_flight.release()


_limiter = None
_limiter_lock = threading.Lock()


def limiter_get():
    """The process's limiter: Redis-backed when AMOCRM_RATE_REDIS_URL is set."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            window = settings.AMOCRM_RATE_WINDOW
            # One slot fewer than AmoCRM's limit: see the module's docstring.
            limit = max(1, settings.AMOCRM_RATE_LIMIT - 1)
            if settings.AMOCRM_RATE_REDIS_URL:
                _limiter = RedisRateLimiter(
                    settings.AMOCRM_RATE_REDIS_URL, limit=limit, window=window
                )
            else:
                _limiter = LocalRateLimiter(limit=limit, window=window)
        return _limiter


def limiter_reset() -> None:
    """Forgets the process's limiter so the next use reads the settings again (tests)."""
    global _limiter
    with _limiter_lock:
        _limiter = None
