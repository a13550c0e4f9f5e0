"""The global provider-call limit: a Redis lease semaphore shared by every process."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.live import ROOT
from tts.limiter import ConcurrencyLimiter, SlotWaitExceeded


def _peak_concurrency(n: int, hold: float, limiter: ConcurrencyLimiter | None) -> int:
    lock, running, peak = threading.Lock(), [0], [0]
    barrier = threading.Barrier(n)

    def work() -> None:
        barrier.wait()
        if limiter is None:
            _call()
            return
        with limiter.slot(wait_seconds=30):
            _call()

    def _call() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(hold)
        with lock:
            running[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return peak[0]


def test_never_more_than_the_limit_at_once():
    assert _peak_concurrency(12, 0.1, ConcurrencyLimiter(limit=3, lease_seconds=5)) == 3
    # The same load without the limiter goes past 3, so this test can fail.
    assert _peak_concurrency(12, 0.1, None) > 3


def test_a_lease_is_renewed_while_its_holder_works():
    limiter = ConcurrencyLimiter(limit=1, lease_seconds=0.3)
    with limiter.slot(wait_seconds=1):
        time.sleep(1.0)  # three leases long
        assert not limiter.try_acquire("other")
    assert limiter.try_acquire("other")


def test_waiting_past_the_cap_raises():
    limiter = ConcurrencyLimiter(limit=1, lease_seconds=5)
    assert limiter.try_acquire("holder")
    started = time.monotonic()
    with pytest.raises(SlotWaitExceeded):
        with limiter.slot(wait_seconds=0.3):
            pass
    assert 0.3 <= time.monotonic() - started < 2


def test_a_release_wakes_a_waiter_without_waiting_for_its_next_poll():
    limiter = ConcurrencyLimiter(limit=1, lease_seconds=30)
    assert limiter.try_acquire("holder")
    threading.Timer(0.2, limiter.release, args=("holder",)).start()
    started = time.monotonic()
    with limiter.slot(wait_seconds=30, poll_seconds=10):
        waited = time.monotonic() - started
    assert waited < 5  # woken by the release: polling alone would wait 10 s


HOLDER = """
import os, sys, time
import django
django.setup()
from tts.limiter import ConcurrencyLimiter
limiter = ConcurrencyLimiter(limit=1, lease_seconds=float(sys.argv[1]))
with limiter.slot(wait_seconds=5):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_killed_holders_slot_frees_itself_within_one_lease():
    lease = 1.0
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lease)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        limiter = ConcurrencyLimiter(limit=1, lease_seconds=lease)
        time.sleep(lease * 1.5)
        assert not limiter.try_acquire("me")  # renewed by the live holder past its first lease
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        killed_at = time.monotonic()
        while not limiter.try_acquire("me"):
            assert time.monotonic() - killed_at < lease + 0.5
            time.sleep(0.05)
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_redis_error_is_never_a_free_slot(settings):
    import redis

    limiter = ConcurrencyLimiter(limit=3, lease_seconds=5)
    limiter._redis.config_set("min-replicas-to-write", 1)  # the real Redis refuses writes
    try:
        with pytest.raises(redis.RedisError):
            limiter.try_acquire("me")
    finally:
        limiter._redis.config_set("min-replicas-to-write", 0)
