from django.db import migrations


def create_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="sync-default-voices",
        defaults={"func": "voices.tasks.sync_default_voices", "schedule_type": "D", "repeats": -1},
    )


def drop_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="sync-default-voices").delete()


class Migration(migrations.Migration):
    dependencies = [("voices", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create_schedules, drop_schedules)]
