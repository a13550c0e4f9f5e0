"""Per-user versioned cache entries (django-redis).

Keys carry a version (`user:info:{id}:v{n}`); `User.cache_version` is bumped in the same
transaction as any change to the user's cached data. A reader that raced a write stores its
stale value under the old version, which nobody reads again, so a read after a write is never stale.
"""

import hashlib
from contextvars import ContextVar
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db.models import F


def versioned_key(base: str, version: int) -> str:
    return f"{base}:v{version}"


def etag_for(*keys: str) -> str:
    """A strong ETag for a value stored under versioned keys: a new version is a new tag."""
    return '"' + hashlib.blake2b("|".join(keys).encode(), digest_size=12).hexdigest() + '"'


_bypass: ContextVar[bool] = ContextVar("api_cache_bypass", default=False)


class CacheBypassMiddleware:
    """Benchmarks only (API_CACHE_ALLOW_BYPASS): `X-Cache-Bypass: 1` reads from the database."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        token = _bypass.set(request.headers.get("X-Cache-Bypass") == "1")
        try:
            return self.get_response(request)
        finally:
            _bypass.reset(token)


def get_or_build(key: str, ttl: int, build: Callable[[], Any]) -> Any:
    return get_or_build_many([(key, ttl, build)])[0]


def get_or_build_many(parts: list[tuple[str | None, int, Callable[[], Any]]]) -> list[Any]:
    """Several cached values in one round trip; a part whose key is None is always built."""
    use_cache = settings.API_CACHE_ENABLED and not _bypass.get()
    keys = [key for key, _, _ in parts if key is not None]
    found = cache.get_many(keys) if keys and use_cache else {}
    values = []
    for key, ttl, build in parts:
        value = found.get(key) if key is not None else None
        if value is None:
            value = build()
            if key is not None and use_cache:
                cache.set(key, value, ttl)
        values.append(value)
    return values


def bump_user_cache_version(user_ids: Iterable[UUID]) -> None:
    """Invalidate every cached read of these users. Signals call it; so do bulk writes."""
    from .models import User

    ids = [uid for uid in set(user_ids) if uid is not None]
    if ids:
        User.objects.filter(pk__in=ids).update(cache_version=F("cache_version") + 1)
