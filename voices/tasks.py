"""django-q2 entry points: take ids, call a service."""

from . import services


def sync_default_voices() -> dict:
    return services.default_voices_sync_all()
