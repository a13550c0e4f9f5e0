from django.db import migrations


def create_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="purge-idempotency-records",
        defaults={"func": "accounts.idempotency.purge_idempotency_records", "schedule_type": "H", "repeats": -1},
    )


def drop_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="purge-idempotency-records").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_idempotencyrecord"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create_schedules, drop_schedules)]
