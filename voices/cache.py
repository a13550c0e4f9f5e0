"""Cache keys and invalidation for voice lists.

`tts:voices:{user_id}:v{n}`: the user's own voices, versioned by `User.cache_version` (bumped in
the writer's transaction). `tts:voices:shared:v{n}`: default and approved public voices,
versioned by a Redis counter bumped after commit (a bump before commit could let a reader
store pre-commit rows under the new version). A bump that fails (Redis refusing writes) is
retried by a task until it lands; the shared part's short TTL bounds the worst case.
"""

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_redis import get_redis_connection

from accounts.cache import bump_user_cache_version
from config.api.cache import versioned_key

logger = logging.getLogger(__name__)

SHARED_VERSION_KEY = "tts:voices:shared:version"


def own_list_key(user) -> str:
    return versioned_key(f"tts:voices:{user.pk}", user.cache_version)


def shared_list_key() -> str | None:
    """None when Redis cannot be read: the shared list is then built from the database."""
    try:
        version = get_redis_connection("default").get(SHARED_VERSION_KEY)
    except (redis.RedisError, OSError):
        return None
    return versioned_key("tts:voices:shared", int(version or 0))


def _try_bump() -> bool:
    try:
        get_redis_connection("default").incr(SHARED_VERSION_KEY)
    except (redis.RedisError, OSError):
        return False
    return True


def bump_shared_version() -> None:
    """A change to the shared list reaches every list: bump now, or hand the bump to a task."""
    if _try_bump():
        return
    logger.warning("could not bump the shared voice list version; a task retries it", exc_info=True)
    from django_q.tasks import async_task

    async_task("voices.tasks.retry_shared_version_bump", timezone.now().isoformat())


def shared_version_bump_retry(*, first_failed_at: datetime) -> bool:
    """Retry a failed bump a few times; while it keeps failing, come back later. Once twice the
    shared TTL has passed, every entry written before the change has expired: stop."""
    for attempt in range(settings.SHARED_VERSION_BUMP_TRIES):
        if attempt:
            time.sleep(settings.SHARED_VERSION_BUMP_PAUSE_SECONDS)
        if _try_bump():
            logger.info("shared voice list version bumped after an earlier failure")
            return True
    if timezone.now() - first_failed_at > timedelta(seconds=2 * settings.VOICES_SHARED_CACHE_TTL):
        logger.error("gave up bumping the shared voice list version; its TTL has expired the stale entries")
        return False
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"shared-version-bump-{timezone.now().timestamp()}",
        func="voices.tasks.retry_shared_version_bump",
        args=repr((first_failed_at.isoformat(),)),
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() + timedelta(seconds=settings.SHARED_VERSION_BUMP_PAUSE_SECONDS),
        repeats=-1,
    )
    return False


def invalidate_voices(voices: Iterable, *, shared: bool | None = None) -> None:
    """Invalidate every cached list the voices appear in. Signals call it for save/delete;
    services call it after `update()` / `bulk_update()`, which send no signals."""
    voices = list(voices)
    bump_user_cache_version(v.owner_id for v in voices)
    if shared is None:
        shared = any(v.is_shared or getattr(v, "_loaded_shared", False) for v in voices)
    if shared:
        transaction.on_commit(bump_shared_version)
