"""Cache invalidation only: bump the user's cache version in the writer's transaction."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from .cache import bump_user_cache_version
from .models import User

# Fields whose change does not touch any cached read of the user.
_UNCACHED_FIELDS = frozenset({"last_login", "cache_version", "password"})


@receiver(post_save, sender=User, dispatch_uid="user_cache_invalidate")
def user_saved(sender, instance: User, created: bool, update_fields=None, **kwargs) -> None:
    if created:
        return
    if update_fields is not None and set(update_fields) <= _UNCACHED_FIELDS:
        return
    bump_user_cache_version([instance.pk])
    instance.cache_version += 1
