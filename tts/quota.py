"""The monthly character quota: reserve when a job is created, settle from the provider's
character cost when it succeeds, release when it fails or is cancelled.

Reservations lock the user's month row, so concurrent requests cannot overrun the quota; a job
remembers the month it reserved in and is settled there, even when it finishes a month later."""

from datetime import date

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.cache import bump_user_cache_version
from config.api.errors import QuotaExceeded

from .models import QuotaMonth


def current_month() -> date:
    return timezone.now().date().replace(day=1)


def _locked_month(*, user, month: date) -> QuotaMonth:
    QuotaMonth.objects.get_or_create(user=user, month=month)
    return QuotaMonth.objects.select_for_update().get(user=user, month=month)


@transaction.atomic
def quota_reserve(*, user, characters: int) -> date:
    """Reserve `characters` of this month's quota; 429 `quota_exceeded` when they do not fit.
    Returns the month reserved in (store it on the job)."""
    month = current_month()
    row = _locked_month(user=user, month=month)
    limit = user.monthly_character_quota
    remaining = limit - row.used - row.reserved
    if characters > remaining:
        raise QuotaExceeded(
            f"This needs {characters} characters; {max(0, remaining)} of {limit} are left this month.",
            details={"limit": limit, "used": row.used, "reserved": row.reserved, "remaining": max(0, remaining),
                     "requested": characters, "month": month.isoformat()},
        )
    QuotaMonth.objects.filter(pk=row.pk).update(reserved=F("reserved") + characters)
    return month


def quota_settle(*, user_id, month: date | None, reserved: int, cost: int) -> None:
    """A job succeeded: its reservation becomes what the provider charged (0 for a reused clip).
    The profile shows the characters used, so its cache version moves with them. A job that
    reserved nothing (month None) charges nothing."""
    if month is None:
        return
    QuotaMonth.objects.filter(user_id=user_id, month=month).update(
        reserved=F("reserved") - reserved, used=F("used") + cost)
    if cost:
        bump_user_cache_version([user_id])


def quota_release(*, user_id, month: date | None, reserved: int) -> None:
    """A job failed or was cancelled: its reservation goes back."""
    if month is None:
        return
    QuotaMonth.objects.filter(user_id=user_id, month=month).update(reserved=F("reserved") - reserved)


def quota_used_this_month(*, user) -> int:
    return QuotaMonth.objects.filter(user=user, month=current_month()).values_list("used", flat=True).first() or 0


def quota_summary(*, user) -> dict:
    """GET /tts/quota: {"month", "limit", "used", "reserved", "remaining"} for this month."""
    month = current_month()
    row = QuotaMonth.objects.filter(user=user, month=month).first()
    used, reserved = (row.used, row.reserved) if row else (0, 0)
    limit = user.monthly_character_quota
    return {"month": month.strftime("%Y-%m"), "limit": limit, "used": used, "reserved": reserved,
            "remaining": max(0, limit - used - reserved)}
