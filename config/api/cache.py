"""Versioned cache entries and the cached-read helpers every hot read uses.

Keys carry a version (`user:info:{id}:v{n}`); the version is bumped where the data changes, so a
reader that raced a write stores its stale value under the old version, which nobody reads again.
`cached_list_response` adds the HTTP side: a strong ETag from the
versioned keys, `If-None-Match` parsed by Django's ETag parser (weak tags, lists, `*`) answering
304 before any cached value is read, pagination, and private cache headers.
"""

import hashlib
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response


def versioned_key(base: str, version: int) -> str:
    return f"{base}:v{version}"


def etag_for(*parts: str) -> str:
    """A strong ETag for a value stored under versioned keys: a new version is a new tag."""
    return '"' + hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest() + '"'


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


@dataclass(frozen=True)
class CachedPart:
    """One cached value: its versioned key (None: never cached, always built), TTL and builder."""

    key: str | None
    ttl: int
    build: Callable[[], Any]


def cache_enabled() -> bool:
    return settings.API_CACHE_ENABLED and not _bypass.get()


def get_or_build_many(parts: Sequence[CachedPart]) -> list[Any]:
    """Several cached values in one round trip; a missing one is built and stored."""
    use_cache = cache_enabled()
    keys = [part.key for part in parts if part.key is not None]
    found = cache.get_many(keys) if keys and use_cache else {}
    values = []
    for part in parts:
        value = found.get(part.key) if part.key is not None else None
        if value is None:
            value = part.build()
            if part.key is not None and use_cache and value is not None:  # None: nothing to keep
                cache.set(part.key, value, part.ttl)
        values.append(value)
    return values


def get_or_build(part: CachedPart) -> Any:
    return get_or_build_many([part])[0]


# --- HTTP: ETag / 304, pagination, headers ---------------------------------------------------------

def private_cache_headers(response: Response, etag: str | None) -> Response:
    if etag:
        response["ETag"] = etag
    # Per-user data: browsers and proxies may keep it but must revalidate, and never share it.
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


def _etag(request: Request, keys: Sequence[str | None] | None, extra: Sequence[str]) -> str | None:
    """None when a key cannot be known (Redis unreadable): then no 304 is ever answered."""
    if keys is None or any(key is None for key in keys):
        return None
    # The same data renders differently per path, query and format (JSON or browsable HTML).
    return etag_for(*keys, request.get_full_path(), request.accepted_renderer.format, *extra)


def _if_none_match(request: Request) -> list[str]:
    header = request.META.get("HTTP_IF_NONE_MATCH")
    return parse_etags(header) if header else []


def _not_modified(request: Request, etag: str | None, *, exists: bool = False) -> Response | None:
    """304 when If-None-Match names this ETag (weak comparison, lists), before anything is read.
    `*` means "any current representation", so it is answered only once the page is known to
    exist (`exists`): a page past the end stays a 404. Other preconditions do not apply to these
    reads and are ignored."""
    tags = _if_none_match(request)
    if etag is None or not tags:
        return None
    if tags == ["*"]:
        matched = exists
    else:
        matched = any(tag.removeprefix("W/") == etag for tag in tags)
    return private_cache_headers(Response(status=status.HTTP_304_NOT_MODIFIED), etag) if matched else None


def cached_list_response(request: Request, *, view, items: Callable[[], Sequence], keys: Sequence[str | None] | None,
                         etag_extra: Sequence[str] = (),
                         render: Callable[[list], list] | None = None) -> Response:
    """A paginated list answer. `keys` are the versioned cache keys the list is read from (None:
    not cached, e.g. a filtered list: no ETag); `items()` returns a sequence (a list, a queryset,
    or any object with len() and slicing), read only when the answer is not a 304; `render`
    turns a page of it into JSON-ready items when it holds rows rather than rendered items."""
    paginator = view.pagination_class()
    paginator.validate(request)
    etag = _etag(request, keys, etag_extra)
    if (not_modified := _not_modified(request, etag)) is not None:
        return not_modified
    page = paginator.paginate_queryset(items(), request, view=view)
    if (not_modified := _not_modified(request, etag, exists=True)) is not None:
        return not_modified  # If-None-Match: *
    data = render(list(page)) if render is not None else list(page)
    return private_cache_headers(paginator.get_paginated_response(data), etag)
