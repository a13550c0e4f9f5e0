from django.db import migrations

from config.schedules import schedule_operations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_idempotencyrecord"), ("django_q", "0018_task_success_index")]
    operations = [
        migrations.RunPython(
            *schedule_operations("purge-idempotency-records", "accounts.tasks.purge_idempotency_records", "H")
        )
    ]
