from django.db import migrations

from config.schedules import schedule_operations


class Migration(migrations.Migration):
    dependencies = [("voices", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(*schedule_operations("sync-default-voices", "voices.tasks.sync_default_voices", "D"))]
