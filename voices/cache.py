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

from .models import VoiceShare

logger = logging.getLogger(__name__)

SHARED_VERSION_KEY = "tts:voices:shared:version"


def own_list_key(user) -> str:
    return versioned_key(f"tts:voices:{user.pk}", user.cache_version)


def shared_list_key() -> str | None:
    """None when Redis cannot be read: the shared list is then built from the database.

    A missing counter (Redis restarted; it keeps nothing on disk) starts again from the clock,
    never from 0, so a version, and the ETag built from it, is never handed out twice."""
    try:
        conn = get_redis_connection("default")
        version = conn.get(SHARED_VERSION_KEY)
        if version is None:
            conn.set(SHARED_VERSION_KEY, time.time_ns(), nx=True)
            version = conn.get(SHARED_VERSION_KEY)
    except (redis.RedisError, OSError):
        return None
    if version is None:
        return None
    # "f2": the part holds {"items", "total"}; a different shape gets a different key.
    return versioned_key("tts:voices:shared:f2", int(version))


def _try_bump() -> Exception | None:
    """None when the bump landed, else the error."""
    try:
        get_redis_connection("default").incr(SHARED_VERSION_KEY)
    except (redis.RedisError, OSError) as exc:
        return exc
    return None


def bump_shared_version() -> None:
    """A change to the shared list reaches every list: bump now, or hand the bump to a task."""
    if (error := _try_bump()) is None:
        return
    logger.warning("could not bump the shared voice list version (%s); a task retries it", error)
    from django_q.tasks import async_task

    async_task("voices.tasks.retry_shared_version_bump", timezone.now().isoformat())


def shared_version_bump_retry(*, first_failed_at: datetime) -> bool:
    """Retry a failed bump a few times; while it keeps failing, come back later, until it lands
    (the shared part's TTL bounds what readers see meanwhile)."""
    error = None
    for attempt in range(settings.SHARED_VERSION_BUMP_TRIES):
        if attempt:
            time.sleep(settings.SHARED_VERSION_BUMP_PAUSE_SECONDS)
        if (error := _try_bump()) is None:
            logger.info("shared voice list version bumped, %s after the first failure",
                        timezone.now() - first_failed_at)
            return True
    waited = (timezone.now() - first_failed_at).total_seconds()
    logger.error("the shared voice list version still cannot be bumped after %.0f s (%s); retrying", waited, error)
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"shared-version-bump-{timezone.now().timestamp()}",
        func="voices.tasks.retry_shared_version_bump",
        args=repr((first_failed_at.isoformat(),)),
        schedule_type=Schedule.ONCE,
        # Back off with the outage, but never wait longer than the shared part lives.
        next_run=timezone.now() + timedelta(seconds=min(max(waited, settings.SHARED_VERSION_BUMP_PAUSE_SECONDS),
                                                        settings.VOICES_SHARED_CACHE_TTL)),
        repeats=-1,
    )
    return False


def invalidate_voices(voices: Iterable, *, shared: bool | None = None) -> None:
    """Invalidate every cached list the voices appear in. Signals call it for save/delete;
    services call it after `update()` / `bulk_update()`, which send no signals."""
    voices = list(voices)
    # The owners' lists, and the lists of everyone a voice is shared with.
    recipients = VoiceShare.objects.filter(voice__in=voices, user__isnull=False).values_list("user_id", flat=True)
    bump_user_cache_version([*(v.owner_id for v in voices), *recipients])
    if shared is None:
        shared = any(v.is_shared or getattr(v, "_loaded_shared", False) for v in voices)
    if shared:
        transaction.on_commit(bump_shared_version)
