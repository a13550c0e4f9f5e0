"""django-q2 entry points: take ids, call a service."""

from datetime import datetime

from . import cache, services


def sync_default_voices() -> dict:
    return services.voice_defaults_sync_all()


def retry_shared_version_bump(first_failed_at: str) -> bool:
    return cache.shared_version_bump_retry(first_failed_at=datetime.fromisoformat(first_failed_at))
