from django.db import migrations

from config.schedules import schedule_operations


class Migration(migrations.Migration):
    dependencies = [("ops", "0001_worker_heartbeat"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(*schedule_operations("clean-storage", "ops.tasks.clean_storage", "D"))]
