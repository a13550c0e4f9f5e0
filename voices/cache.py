"""Cache keys and invalidation for voice lists.

`tts:voices:{user_id}:v{n}`: the user's own voices, versioned by `User.cache_version` (bumped in
the writer's transaction). `tts:voices:shared:v{n}`: default and approved public voices,
versioned by a Redis counter bumped after commit (a bump before commit could let a reader
store pre-commit rows under the new version).
"""

import logging
from collections.abc import Iterable

import redis
from django.db import transaction
from django_redis import get_redis_connection

from accounts.cache import bump_user_cache_version, versioned_key

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


def bump_shared_version() -> None:
    try:
        get_redis_connection("default").incr(SHARED_VERSION_KEY)
    except (redis.RedisError, OSError):
        logger.warning("could not bump the shared voice list version", exc_info=True)


def invalidate_voices(voices: Iterable, *, shared: bool | None = None) -> None:
    """Invalidate every cached list the voices appear in. Signals call it for save/delete;
    services call it after `update()` / `bulk_update()`, which send no signals."""
    voices = list(voices)
    bump_user_cache_version(v.owner_id for v in voices)
    if shared is None:
        shared = any(v.is_shared or getattr(v, "_loaded_shared", False) for v in voices)
    if shared:
        transaction.on_commit(bump_shared_version)
