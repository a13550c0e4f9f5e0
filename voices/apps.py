from django.apps import AppConfig


class VoicesConfig(AppConfig):
    name = "voices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.selectors import register_usage_counter
        from accounts.services import register_account_cleanup_step

        from . import signals  # noqa: F401  (cache invalidation)
        from .models import Voice
        from .services import voice_delete_all_for_account

        register_usage_counter("voices", lambda user: Voice.objects.filter(owner=user, deleted_at__isnull=True).count())
        register_account_cleanup_step(voice_delete_all_for_account)

        from tts.runner import register_success_hook

        from .services import voice_count_use

        register_success_hook(voice_count_use)
