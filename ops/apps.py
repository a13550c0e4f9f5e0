from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, post_spawn, pre_enqueue, pre_execute

        from . import logs
        from .heartbeat import start_heartbeat

        # Each spawned django-q2 worker keeps its cluster's heartbeat row fresh.
        post_spawn.connect(start_heartbeat, dispatch_uid="ops.heartbeat")
        # A request's id goes with the tasks it queues.
        pre_enqueue.connect(logs.task_carry_request_id, dispatch_uid="ops.request_id.enqueue")
        pre_execute.connect(logs.task_set_request_id, dispatch_uid="ops.request_id.execute")
        post_execute_in_worker.connect(logs.task_reset_request_id, dispatch_uid="ops.request_id.done")
