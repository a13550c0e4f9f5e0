from django.db import migrations

from config.schedules import schedule_operations


class Migration(migrations.Migration):
    dependencies = [("voices", "0002_schedules"), ("django_q", "0018_task_success_index")]
    operations = [
        migrations.RunPython(*schedule_operations("sync-voice-status", "voices.tasks.sync_pending_voices", "I", minutes=1)),
        migrations.RunPython(
            *schedule_operations("reconcile-pending-voices", "voices.tasks.reconcile_pending_voices", "I", minutes=10)
        ),
        migrations.RunPython(*schedule_operations("reconcile-removed-voices", "voices.tasks.reconcile_removed_voices", "D")),
    ]
