from django.db import migrations

from config.schedules import schedule_operations


class Migration(migrations.Migration):
    dependencies = [("tts", "0002_speech_jobs"), ("django_q", "0018_task_success_index")]
    operations = [
        migrations.RunPython(
            *schedule_operations("reap-speech-jobs", "tts.tasks.reap_speech_jobs", "I", minutes=1, cluster="tts")
        )
    ]
