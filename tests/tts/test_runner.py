"""The speech job runner: claiming, fencing, reuse, single flight, retries, quota settlement."""

import threading

import pytest
from django.db import connection

from tests.fakes import elevenlabs as el
from tests.voices.conftest import other_user  # noqa: F401  (fixture)
from tts import runner
from tts.limiter import ConcurrencyLimiter
from tts.models import AudioClip, QuotaMonth, SpeechJob
from tts.services import speech_job_create

pytestmark = pytest.mark.django_db


def make_job(user, **overrides) -> SpeechJob:
    fields = dict(owner=user, provider="local", provider_voice_id="local-en-us-f", text="Once upon a time.",
                  model_id="", output_format="wav_22050")
    fields.update(overrides)
    return speech_job_create(**fields)


def claim_and_run() -> tuple[SpeechJob, str]:
    job_id, token = runner.speech_job_claim_next()
    outcome = runner.speech_job_run(job_id=job_id, run_token=token)
    return SpeechJob.objects.get(pk=job_id), outcome


def reserved_and_used(user) -> tuple[int, int]:
    row = QuotaMonth.objects.get(user=user)
    return row.reserved, row.used


def test_a_local_job_renders_a_clip_with_word_timings_and_settles_its_quota(user):
    job = make_job(user)
    assert job.status == "queued" and reserved_and_used(user) == (len(job.text), 0)
    done, outcome = claim_and_run()
    assert outcome == "succeeded" and done.status == "succeeded" and done.provider_calls == 1
    clip = done.clip
    assert clip.duration_ms > 500 and clip.mime_type == "audio/wav"
    assert [w["word"] for w in clip.words] == ["Once", "upon", "a", "time"]
    assert reserved_and_used(user) == (0, len(job.text))
    with clip.file.open("rb") as f:
        assert f.read(4) == b"RIFF"


def test_the_same_request_twice_reuses_the_clip_without_a_provider_call_or_a_charge(user):
    make_job(user)
    first, _ = claim_and_run()
    make_job(user)
    second, outcome = claim_and_run()
    assert outcome == "reused" and second.clip_id == first.clip_id
    assert second.provider_calls == 0 and second.character_cost == 0
    assert AudioClip.objects.count() == 1
    assert reserved_and_used(user) == (0, len(first.text))


def test_a_stale_run_can_write_neither_a_result_nor_a_charge(user):
    make_job(user)
    job_id, stale_token = runner.speech_job_claim_next()
    # The reaper gave the job to a new run (as after a worker's death): new token.
    SpeechJob.objects.filter(pk=job_id).update(status="queued", run_token=None)
    _, fresh_token = runner.speech_job_claim_next()
    assert runner.speech_job_run(job_id=job_id, run_token=stale_token) == "stale"
    job = SpeechJob.objects.get(pk=job_id)
    assert job.status == "running" and job.clip_id is None and job.provider_calls == 0
    assert reserved_and_used(user) == (len(job.text), 0)
    assert runner.speech_job_run(job_id=job_id, run_token=fresh_token) == "succeeded"
    assert reserved_and_used(user) == (0, len(job.text))


def test_transient_errors_retry_then_succeed(user, elevenlabs_settings, settings):
    settings.TTS_BACKOFF_BASE_SECONDS = settings.TTS_BACKOFF_MAX_SECONDS = 0.01
    voice_id = elevenlabs_settings.add_voice("Mom")
    elevenlabs_settings.fail(el.TTS_TIMESTAMPS, 429, code="system_busy", times=1)
    elevenlabs_settings.fail(el.TTS_TIMESTAMPS, 503, times=1)
    make_job(user, provider="elevenlabs", provider_voice_id=voice_id, model_id="eleven_multilingual_v2",
             output_format="mp3_44100_128")
    done, outcome = claim_and_run()
    assert outcome == "succeeded" and done.provider_calls == 3
    assert elevenlabs_settings.count(el.TTS_TIMESTAMPS) == 3
    assert done.clip.mime_type == "audio/mpeg" and done.clip.words


def test_a_permanent_error_fails_at_once_and_releases_the_quota(user, elevenlabs_settings):
    make_job(user, provider="elevenlabs", provider_voice_id="no-such-voice", model_id="eleven_multilingual_v2",
             output_format="mp3_44100_128")
    done, outcome = claim_and_run()
    assert outcome == "failed" and done.error_code == "voice_not_found" and done.provider_calls == 1
    assert reserved_and_used(user) == (0, 0)


def test_transient_errors_past_the_attempts_fail_with_their_code(user, elevenlabs_settings, settings):
    settings.TTS_BACKOFF_BASE_SECONDS = settings.TTS_BACKOFF_MAX_SECONDS = 0.01
    voice_id = elevenlabs_settings.add_voice("Mom")
    elevenlabs_settings.fail(el.TTS_TIMESTAMPS, 503, times=None)
    make_job(user, provider="elevenlabs", provider_voice_id=voice_id, model_id="eleven_multilingual_v2",
             output_format="mp3_44100_128")
    done, outcome = claim_and_run()
    assert outcome == "failed" and done.error_code == "provider_unavailable"
    assert done.provider_calls == settings.TTS_CALL_ATTEMPTS


def test_no_free_slot_within_the_cap_requeues_without_using_an_attempt(user, settings):
    settings.TTS_SLOT_WAIT_SECONDS = 0.2
    limiter = ConcurrencyLimiter()
    for holder in ("a", "b", "c"):
        assert limiter.try_acquire(holder)
    make_job(user)
    done, outcome = claim_and_run()
    assert outcome == "requeued" and done.status == "queued" and done.attempts == 0 and done.provider_calls == 0


def test_runners_claim_fairly_between_owners(user, other_user):
    for i in range(3):
        make_job(user, text=f"Line {i} of a long book.")
    runner.speech_job_claim_next()  # the book's first line is running
    single = make_job(other_user, text="A single clip.")
    job_id, _ = runner.speech_job_claim_next()
    assert job_id == single.pk  # not the book's second line


@pytest.mark.django_db(transaction=True)
def test_two_identical_jobs_at_once_render_once(user, elevenlabs_settings, monkeypatch):
    from tts import services

    monkeypatch.setattr(services, "speech_jobs_wake", lambda **kwargs: None)  # the test runs them itself
    voice_id = elevenlabs_settings.add_voice("Mom")
    elevenlabs_settings.set_latency(el.TTS_TIMESTAMPS, 0.5)
    for _ in range(2):
        make_job(user, provider="elevenlabs", provider_voice_id=voice_id, model_id="eleven_multilingual_v2",
                 output_format="mp3_44100_128")
    claims = [runner.speech_job_claim_next() for _ in range(2)]
    assert None not in claims
    outcomes: list[str] = []

    def run(claim) -> None:
        try:
            outcomes.append(runner.speech_job_run(job_id=claim[0], run_token=claim[1]))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(claim,)) for claim in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["reused", "succeeded"]
    assert elevenlabs_settings.count(el.TTS_TIMESTAMPS) == 1
    assert SpeechJob.objects.filter(status="succeeded").values("clip_id").distinct().count() == 1


def test_a_render_that_finishes_just_before_this_run_takes_the_hash_is_reused(user, monkeypatch):
    """The gap between "no clip yet" and "the render key is free": the other render stored its
    clip and released the key in between, so this run must reuse that clip, not render again."""
    make_job(user, text="Told twice at once.")
    first_done, _ = claim_and_run()
    clip = first_done.clip
    make_job(user, text="Told twice at once.")
    job_id, token = runner.speech_job_claim_next()
    lookups = AudioClip.objects.filter(content_hash=clip.content_hash)
    hidden = {"until_key_taken": True}
    real_single_flight = runner._single_flight

    def clip_appears_as_the_key_frees(content_hash):
        hidden["until_key_taken"] = False  # the other render committed its clip, then freed the key
        return real_single_flight(content_hash)

    real_filter = AudioClip.objects.filter

    def filter_as_seen_before_the_commit(*args, **kwargs):
        return real_filter(pk__in=[]) if hidden["until_key_taken"] else real_filter(*args, **kwargs)

    monkeypatch.setattr(runner, "_single_flight", clip_appears_as_the_key_frees)
    monkeypatch.setattr(AudioClip.objects, "filter", filter_as_seen_before_the_commit)
    assert runner.speech_job_run(job_id=job_id, run_token=token) == "reused"
    job = SpeechJob.objects.get(pk=job_id)
    assert (job.clip_id, job.provider_calls, job.character_cost) == (clip.pk, 0, 0)
    assert lookups.count() == 1
    assert not runner.get_redis_connection("default").exists(runner.RENDER_KEY.format(hash=clip.content_hash))


def test_the_reaper_requeues_jobs_whose_worker_died_and_runs_on_the_tts_cluster(user, settings):
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="reap-speech-jobs")
    assert (schedule.func, schedule.cluster, schedule.schedule_type, schedule.minutes) == (
        "tts.tasks.reap_speech_jobs", "tts", "I", 1)

    make_job(user)
    job_id, dead_token = runner.speech_job_claim_next()
    SpeechJob.objects.filter(pk=job_id).update(
        started_at=timezone.now() - timedelta(seconds=settings.TTS_REAPER_AGE_SECONDS + 1))
    assert runner.speech_jobs_reap() == 1
    job = SpeechJob.objects.get(pk=job_id)
    assert job.status == "queued" and job.run_token is None
    _, token = runner.speech_job_claim_next()
    assert token != dead_token
    assert runner.speech_job_run(job_id=job_id, run_token=dead_token) == "stale"
    assert runner.speech_job_run(job_id=job_id, run_token=token) == "succeeded"
    assert SpeechJob.objects.get(pk=job_id).attempts == 2


def test_admin_lists_jobs_plays_clips_and_retries_and_cancels(user, client):
    from accounts.models import User

    make_job(user, text="A clip to play.")
    done, _ = claim_and_run()
    failed = make_job(user, text="This one failed.")
    SpeechJob.objects.filter(pk=failed.pk).update(status="failed", error_code="provider_unavailable")
    QuotaMonth.objects.filter(user=user).update(reserved=0)  # as the failure released it
    queued = make_job(user, text="Still queued.")

    admin = User.objects.create_superuser(email="ops@example.com", password="x-long-password-1")
    client.force_login(admin)
    listing = client.get("/admin/tts/speechjob/?status__exact=failed")
    assert listing.status_code == 200 and str(failed.pk) in listing.content.decode()
    page = client.get(f"/admin/tts/audioclip/{done.clip_id}/change/").content.decode()
    assert "<audio controls" in page and "/audio/" in page

    client.post("/admin/tts/speechjob/", {"action": "retry", "_selected_action": [str(failed.pk)]})
    assert SpeechJob.objects.get(pk=failed.pk).status == "queued"
    client.post("/admin/tts/speechjob/", {"action": "cancel", "_selected_action": [str(queued.pk)]})
    assert SpeechJob.objects.get(pk=queued.pk).status == "cancelled"
    assert QuotaMonth.objects.get(user=user).reserved == failed.characters  # the retried one only


def test_redis_down_defers_the_job_without_waking_a_runner_and_the_reaper_wakes_it(user, settings, monkeypatch):
    from datetime import timedelta

    import redis
    from django.utils import timezone

    from tts import services, tasks

    woken: list[int] = []
    monkeypatch.setattr(services, "speech_jobs_wake", lambda count=1: woken.append(count))
    make_job(user)

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(runner, "_single_flight", unreachable)
    assert tasks.run_next_speech_job() == "deferred"
    job = SpeechJob.objects.get()
    assert job.status == "queued" and job.attempts == 0 and woken == []  # no spin while Redis is down

    SpeechJob.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    tasks.reap_speech_jobs()
    assert woken == [1]


def test_settings_refuse_a_task_timeout_shorter_than_a_runs_worst_case():
    import os
    import subprocess
    import sys

    from tests.live import ROOT

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "TTS_Q_TIMEOUT": "200"}
    check = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode != 0 and "TTS_Q_TIMEOUT (200 s) must be longer" in check.stderr
    env["TTS_Q_TIMEOUT"] = "300"
    assert subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                          capture_output=True, timeout=60).returncode == 0
