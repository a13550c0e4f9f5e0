"""django-q2 entry points: take ids, call a service."""

from datetime import datetime
from uuid import UUID

from . import cache, services, sync


def sync_default_voices() -> dict:
    return services.voice_defaults_sync_all()


def retry_shared_version_bump(first_failed_at: str) -> bool:
    return cache.shared_version_bump_retry(first_failed_at=datetime.fromisoformat(first_failed_at))


def sync_pending_voices() -> dict:
    result = sync.voices_sync_pending()
    return {"checked": result.checked, "completed": len(result.completed), "failed": len(result.failed),
            "skipped": result.skipped}


def check_fresh_voices() -> int:
    return sync.voices_check_fresh()


def reconcile_pending_voices() -> int:
    return sync.voices_pending_reconcile()


def reconcile_removed_voices(provider_name: str | None = None, after: str | None = None) -> dict:
    return sync.voices_reconcile_removed(provider_name=provider_name, after=UUID(after) if after else None)
