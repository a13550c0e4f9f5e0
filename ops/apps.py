from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from .heartbeat import start_heartbeat

        # Each spawned django-q2 worker keeps its cluster's heartbeat row fresh.
        post_spawn.connect(start_heartbeat, dispatch_uid="ops.heartbeat")
