from django.db import migrations


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Idempotent: keyed by name, so re-running the migration or restoring a dump is harmless.
    Schedule.objects.update_or_create(
        name="purge-expired-tokens",
        defaults={"func": "accounts.tasks.purge_expired_tokens", "schedule_type": "D", "repeats": -1},
    )


def drop_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="purge-expired-tokens").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create_schedules, drop_schedules)]
