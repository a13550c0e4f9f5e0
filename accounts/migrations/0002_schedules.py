from django.db import migrations

from config.schedules import schedule_operations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(*schedule_operations("purge-expired-tokens", "accounts.tasks.purge_expired_tokens", "D"))]
