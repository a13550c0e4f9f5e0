"""Per-user cache versions: `User.cache_version` is part of every per-user cache key and is
bumped in the same transaction as any change to the user's cached data."""

from collections.abc import Iterable
from uuid import UUID

from django.db.models import F


def bump_user_cache_version(user_ids: Iterable[UUID]) -> None:
    """Invalidate every cached read of these users. Signals call it; so do bulk writes."""
    from .models import User

    ids = [uid for uid in set(user_ids) if uid is not None]
    if ids:
        User.objects.filter(pk__in=ids).update(cache_version=F("cache_version") + 1)
