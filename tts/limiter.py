"""The global limit on concurrent provider calls: a lease semaphore in Redis.

Each holder has a lease (a member of one sorted set, scored by its expiry on the Redis server's
clock), renewed while its call runs. Acquiring first drops expired leases, so a slot held by a
killed worker frees itself within one lease, on any host and in any number of clusters. The raw
client is used on purpose: django-redis's IGNORE_EXCEPTIONS would turn a Redis error into "a
free slot".
"""

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django_redis import get_redis_connection

SLOTS_KEY = "tts:provider:slots"
# A release pushes here, so a waiter wakes at once instead of at its next poll.
FREED_SUFFIX = ":freed"

# KEYS[1] the set; ARGV: lease id, limit, lease length (ms). Time comes from the Redis server,
# so hosts with skewed clocks still agree on what has expired.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
"""

# Extends a lease that is still held; 0 when it expired (and may be someone else's slot now).
_RENEW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not expiry) or tonumber(expiry) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""


class SlotWaitExceeded(Exception):
    """No slot came free within the wait cap (the caller requeues the job without an attempt)."""


class ConcurrencyLimiter:
    def __init__(self, *, limit: int | None = None, lease_seconds: float | None = None,
                 key: str = SLOTS_KEY) -> None:
        self.limit = limit if limit is not None else settings.TTS_MAX_CONCURRENCY
        self.lease_ms = int(1000 * (lease_seconds if lease_seconds is not None else settings.TTS_SLOT_LEASE_SECONDS))
        self.key = key
        self.freed_key = key + FREED_SUFFIX
        self._redis = get_redis_connection("default")
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)

    def try_acquire(self, lease_id: str) -> bool:
        return bool(self._acquire(keys=[self.key], args=[lease_id, self.limit, self.lease_ms]))

    def renew(self, lease_id: str) -> bool:
        return bool(self._renew(keys=[self.key], args=[lease_id, self.lease_ms]))

    def release(self, lease_id: str) -> None:
        pipe = self._redis.pipeline()
        pipe.zrem(self.key, lease_id)
        pipe.lpush(self.freed_key, 1)
        pipe.ltrim(self.freed_key, 0, self.limit - 1)  # no more wake-ups than slots pile up
        pipe.pexpire(self.freed_key, self.lease_ms)
        pipe.execute()

    def held(self) -> int:
        """Leases not yet expired (for tests and the admin; acquiring is what cleans up)."""
        seconds, micros = self._redis.time()
        return self._redis.zcount(self.key, seconds * 1000 + micros // 1000 + 1, "+inf")

    @contextmanager
    def slot(self, *, wait_seconds: float, poll_seconds: float = 0.1) -> Iterator[str]:
        """Hold one slot for the duration of the block, renewing the lease in the background.

        Raises SlotWaitExceeded when none came free within `wait_seconds`."""
        lease_id = uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        while not self.try_acquire(lease_id):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SlotWaitExceeded(f"no provider slot free within {wait_seconds:g} s")
            # Woken by a release; the timeout catches a lease that expired (its holder was killed).
            # (At least 10 ms: Redis reads a timeout that rounds to 0 ms as "block forever".)
            self._redis.blpop([self.freed_key], timeout=max(0.01, min(poll_seconds, remaining)))
        stop = threading.Event()
        renewer = threading.Thread(target=self._keep_renewing, args=(lease_id, stop), daemon=True,
                                   name="tts-slot-lease")
        renewer.start()
        try:
            yield lease_id
        finally:
            stop.set()
            renewer.join(timeout=self.lease_ms / 1000)
            self.release(lease_id)

    def _keep_renewing(self, lease_id: str, stop: threading.Event) -> None:
        # A third of the lease between renewals: two can fail (a Redis blip) before it lapses.
        interval = self.lease_ms / 3000
        while not stop.wait(interval):
            try:
                if not self.renew(lease_id):
                    return  # lapsed: the slot may be someone else's; the call finishes regardless
            except Exception:  # noqa: BLE001 - keep trying while the call runs
                continue
