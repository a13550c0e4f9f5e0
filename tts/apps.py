import os

from django.apps import AppConfig


class TtsConfig(AppConfig):
    name = "tts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.selectors import register_usage_counter
        from accounts.services import register_account_cleanup_step

        from .quota import quota_used_this_month
        from .services import speech_jobs_delete_for_account

        register_usage_counter("characters_used_this_month", lambda user: quota_used_this_month(user=user))
        register_account_cleanup_step(speech_jobs_delete_for_account)

        if os.environ.get("Q_CLUSTER_NAME") == "tts":  # `manage.py qcluster` for the tts cluster
            from .providers.registry import preload_providers

            preload_providers()
