from collections.abc import Callable

from django.conf import settings
from django.db.models import QuerySet

from config.api.cache import CachedPart, get_or_build, versioned_key

from .models import DeviceToken, User

# Later apps count their rows for the profile (accounts must not import them): each registers
# a function `fn(user) -> int` under a usage name in its AppConfig.ready().
_usage_counters: dict[str, Callable[[User], int]] = {}
USAGE_FIELDS = ("characters_used_this_month", "voices", "books")


def register_usage_counter(name: str, counter: Callable[[User], int]) -> None:
    if name not in USAGE_FIELDS:
        raise ValueError(f"unknown usage field {name!r}")
    _usage_counters[name] = counter


def user_usage(*, user: User) -> dict[str, int]:
    return {name: (_usage_counters[name](user) if name in _usage_counters else 0) for name in USAGE_FIELDS}


def user_info_key(user: User) -> str:
    return versioned_key(f"user:info:{user.pk}", user.cache_version)


def user_info(*, user: User, render: Callable[[User, dict], dict]) -> dict:
    """The profile with usage, as rendered by `render`, cached under the user's version."""
    return get_or_build(CachedPart(user_info_key(user), settings.USER_INFO_CACHE_TTL,
                                   lambda: render(user, user_usage(user=user))))


def device_token_list(*, user: User) -> QuerySet[DeviceToken]:
    return DeviceToken.objects.filter(user=user).order_by("-created")
