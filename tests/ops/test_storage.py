"""Storage hygiene: orphaned files, expired failed jobs and deleted voices' samples are found by
`storage_report` and removed by the daily task; nothing a row points to, nothing fresh, nothing
outside the project's folders is touched."""

import os
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from ops import tasks
from tts.models import AudioClip, SpeechJob
from tests.factories import UserFactory
from tests.voices.conftest import make_voice
from voices.models import VoiceSample

pytestmark = pytest.mark.django_db


def stored(name: str, *, age_hours: float = 48, data: bytes = b"x" * 10) -> str:
    name = default_storage.save(name, ContentFile(data))
    then = time.time() - age_hours * 3600
    os.utime(default_storage.path(name), (then, then))
    return name


def clip_row(name: str) -> AudioClip:
    return AudioClip.objects.create(content_hash=name.rsplit("/", 1)[-1], file=name, mime_type="audio/mpeg",
                                    output_format="mp3_44100_128", duration_ms=1000, size_bytes=10,
                                    provider="local", provider_voice_id="v")


def job_row(user, *, status: str, finished_days_ago: float | None) -> SpeechJob:
    finished = timezone.now() - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    return SpeechJob.objects.create(owner=user, provider="local", provider_voice_id="v", text="Once upon a time",
                                    model_id="m", output_format="mp3_44100_128", content_hash="h", characters=16,
                                    status=status, finished_at=finished)


@pytest.fixture
def scene():
    user = UserFactory()
    kept_clip = stored("tts-clips/ab/kept.mp3")
    clip_row(kept_clip)
    live_voice, gone_voice = make_voice(user, name="live"), make_voice(user, name="gone", deleted_at=timezone.now())
    live_sample = VoiceSample.objects.create(voice=live_voice, file=stored("voice-samples/u/live.wav"),
                                             original_name="live.wav", size_bytes=10, duration_seconds=5)
    gone_file = stored("voice-samples/u/gone.wav", age_hours=0)  # fresh: removed anyway, its voice is deleted
    gone_sample = VoiceSample.objects.create(voice=gone_voice, file=gone_file, original_name="gone.wav",
                                             size_bytes=10, duration_seconds=5)
    return {
        "user": user,
        "kept": [kept_clip, live_sample.file.name],
        "orphans": [stored("tts-clips/cd/crashed.mp3"), stored("voice-samples/u/left.wav"),
                    stored("book-exports/b1/f/book.m4b"), stored("book-images/b1/replaced-cover.png"), stored("book-audio/ab/old-book.mp3")],
        "fresh_orphan": stored("tts-clips/ef/being-written.mp3", age_hours=0.5),
        "outside": stored("elsewhere/keep-me.txt"),
        "gone_sample": gone_sample, "gone_file": gone_file, "live_sample": live_sample,
        "old_failed": job_row(user, status=SpeechJob.Status.FAILED, finished_days_ago=31),
        "new_failed": job_row(user, status=SpeechJob.Status.FAILED, finished_days_ago=29),
        "old_done": job_row(user, status=SpeechJob.Status.SUCCEEDED, finished_days_ago=90),
    }


def report(*args: str) -> str:
    out = StringIO()
    call_command("storage_report", *args, stdout=out)
    return out.getvalue()


def test_the_report_names_what_would_go_and_removes_nothing(scene):
    text = report("--list")
    assert "orphaned files: 5 (50 bytes)" in text
    for name in scene["orphans"]:
        assert name in text
    assert scene["fresh_orphan"] not in text and "elsewhere" not in text
    assert all(name not in text for name in scene["kept"])
    assert "failed speech jobs past retention: 1" in text and str(scene["old_failed"].pk) in text
    assert "samples of deleted voices: 1" in text and scene["gone_file"] in text
    assert "nothing removed" in text
    assert all(default_storage.exists(name) for name in scene["orphans"])
    assert SpeechJob.objects.count() == 3 and VoiceSample.objects.count() == 2


def test_the_daily_task_removes_exactly_that(scene, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        removed = tasks.clean_storage()
    assert removed == {"orphaned_files": 5, "failed_jobs": 1, "deleted_voice_samples": 1}
    assert not any(default_storage.exists(name) for name in scene["orphans"])
    assert not default_storage.exists(scene["gone_file"])
    for name in [*scene["kept"], scene["fresh_orphan"], scene["outside"]]:
        assert default_storage.exists(name), name
    assert set(SpeechJob.objects.values_list("pk", flat=True)) == {scene["new_failed"].pk, scene["old_done"].pk}
    assert list(VoiceSample.objects.values_list("pk", flat=True)) == [scene["live_sample"].pk]
    # A second run finds nothing left.
    assert "orphaned files: 0 (0 bytes)" in report()


def test_a_file_a_row_points_to_after_the_plan_was_read_is_kept(scene):
    from ops.storage import storage_clean, storage_plan

    plan = storage_plan()
    adopted = scene["orphans"][0]
    clip_row(adopted)  # e.g. a job that finished between the report and the removal
    storage_clean(plan=plan)
    assert default_storage.exists(adopted)
    assert not default_storage.exists(scene["orphans"][1])


def test_apply_from_the_command(scene, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        text = report("--apply")
    assert "removed 5 files, 1 jobs, 1 samples" in text


def test_the_task_is_scheduled_daily():
    schedule = Schedule.objects.get(name="clean-storage")
    assert (schedule.func, schedule.schedule_type) == ("ops.tasks.clean_storage", Schedule.DAILY)
