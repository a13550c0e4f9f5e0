"""django-q2 entry points: take ids, call a service."""

from django.utils import timezone

from . import services
from .models import DeviceToken


def account_cleanup(user_id: str, attempt: int = 1) -> bool:
    return services.account_cleanup(user_id=user_id, attempt=attempt)


def purge_expired_tokens() -> int:
    deleted, _ = DeviceToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted
