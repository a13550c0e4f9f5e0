"""Data-migration helpers for django-q2 schedules, created idempotently by name."""

from collections.abc import Callable


def schedule_operations(name: str, func: str, schedule_type: str, **extra) -> tuple[Callable, Callable]:
    """RunPython forward/backward functions that create (or update) and drop one schedule.
    `extra`: more Schedule fields (`minutes` for schedule_type "I", `cluster` for the tts one)."""

    def create(apps, schema_editor) -> None:
        apps.get_model("django_q", "Schedule").objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": schedule_type, "repeats": -1, **extra}
        )

    def drop(apps, schema_editor) -> None:
        apps.get_model("django_q", "Schedule").objects.filter(name=name).delete()

    return create, drop
