"""Cache invalidation only."""

from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver

from django.conf import settings
from django.db import transaction

from accounts.cache import bump_user_cache_version

from .cache import bump_shared_version, invalidate_voices
from .models import Voice, VoiceShare


@receiver(post_init, sender=Voice, dispatch_uid="voice_remember_shared")
def voice_loaded(sender, instance: Voice, **kwargs) -> None:
    # A voice that stops being shared (made private, rejected, deleted) must still bump the
    # shared list it is leaving.
    instance._loaded_shared = instance.is_shared


@receiver(post_save, sender=Voice, dispatch_uid="voice_saved_invalidate")
@receiver(post_delete, sender=Voice, dispatch_uid="voice_deleted_invalidate")
def voice_changed(sender, instance: Voice, **kwargs) -> None:
    invalidate_voices([instance])
    instance._loaded_shared = instance.is_shared


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="voice_owner_activity_invalidate")
def owner_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    # Shared voices are listed only while their owner is active.
    if created or (update_fields is not None and "is_active" not in update_fields):
        return
    if Voice.objects.filter(owner=instance, visibility=Voice.Visibility.PUBLIC).exists():
        transaction.on_commit(bump_shared_version)
    # Voices shared with others are listed for them only while their owner is active too.
    bump_user_cache_version(VoiceShare.objects.filter(voice__owner=instance, user__isnull=False)
                            .values_list("user_id", flat=True))
