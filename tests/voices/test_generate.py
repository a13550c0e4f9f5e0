"""POST /tts/generate and the job, quota and audio endpoints."""

import time

import pytest
from rest_framework.test import APIClient

from tests.conftest import token_client
from tests.voices.conftest import make_voice

pytestmark = pytest.mark.django_db


@pytest.fixture
def default_voice(db):
    return make_voice(None, name="English", provider="local", provider_voice_id="local-en-us-f", language="en")


def generate(client, voice, text="Once upon a time.", headers=None, **extra):
    return client.post("/api/v1/tts/generate", {"voice_id": str(voice.pk), "text": text,
                                                "output_format": "wav_22050", **extra}, headers=headers or {})


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_generate_runs_and_serves_signed_audio_with_ranges(auth_client, default_voice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # Q_SYNC: the runner runs inline
        response = generate(auth_client, default_voice)
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    job = auth_client.get(f"/api/v1/tts/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["provider_calls"] == 1 and job["characters"] == 17
    assert [w["word"] for w in job["words"]] == ["Once", "upon", "a", "time"]
    assert job["duration_ms"] > 0 and job["audio_url"] and job["error"] is None

    anonymous = APIClient()  # a player fetches it without any credentials
    whole = anonymous.get(job["audio_url"])
    body = b"".join(whole.streaming_content)
    assert whole.status_code == 200 and whole["Content-Type"] == "audio/wav" and body[:4] == b"RIFF"
    part = anonymous.get(job["audio_url"], HTTP_RANGE="bytes=4-11")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 4-11/{len(body)}"
    assert b"".join(part.streaming_content) == body[4:12]
    tail = anonymous.get(job["audio_url"], HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == body[-10:]
    assert anonymous.get(job["audio_url"], HTTP_RANGE=f"bytes={len(body) + 5}-").status_code == 416

    token = job["audio_url"].rsplit("/", 1)[1]
    tampered = job["audio_url"].replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert anonymous.get(tampered).status_code == 404
    assert auth_client.get("/api/v1/tts/quota").json()["used"] == 17


def test_an_expired_audio_url_is_refused(user, auth_client, default_voice, settings, django_capture_on_commit_callbacks):
    settings.TTS_AUDIO_URL_TTL_SECONDS = 1
    with django_capture_on_commit_callbacks(execute=True):
        job_id = generate(auth_client, default_voice).json()["id"]
    url = auth_client.get(f"/api/v1/tts/jobs/{job_id}").json()["audio_url"]
    time.sleep(2.1)
    response = APIClient().get(url)
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_only_usable_voices(auth_client, other_user, user):
    foreign = make_voice(other_user, name="theirs")
    processing = make_voice(user, name="mine", status="processing")
    blocked = make_voice(user, name="blocked", moderation_status="blocked")
    assert error_code(generate(auth_client, foreign)) == "voice_not_found"
    response = generate(auth_client, processing)
    assert response.status_code == 409 and error_code(response) == "voice_not_ready"
    response = generate(auth_client, blocked)
    assert response.status_code == 409 and error_code(response) == "voice_blocked"


def test_text_past_the_models_limit_is_text_too_long(auth_client, default_voice, settings):
    settings.LOCAL_TEXT_LIMIT = 10
    response = generate(auth_client, default_voice, text="x" * 11)
    assert response.status_code == 400 and error_code(response) == "text_too_long"
    assert response.json()["error"]["details"]["limit"] == 10


def test_an_unknown_format_is_a_validation_error(auth_client, default_voice):
    response = generate(auth_client, default_voice, output_format="flac_96000")
    assert response.status_code == 400 and error_code(response) == "validation_error"


def test_offline_clips_come_in_the_default_mp3_too(auth_client, default_voice, django_capture_on_commit_callbacks):
    from tts.audio import decode_audio
    from tts.models import AudioClip

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/v1/tts/generate", {"voice_id": str(default_voice.pk), "text": "Hello."})
    assert response.json()["output_format"] == "mp3_44100_128"
    clip = AudioClip.objects.get()
    with clip.file.open("rb") as f:
        assert decode_audio(f.read()).format == "mp3"
    assert clip.mime_type == "audio/mpeg" and clip.file.name.endswith(".mp3")


def test_an_exhausted_quota_is_429_before_any_job(auth_client, user, default_voice):
    from tts.models import SpeechJob

    user.monthly_character_quota = 10
    user.save(update_fields=["monthly_character_quota"])
    response = generate(auth_client, default_voice, text="more than ten characters")
    assert response.status_code == 429 and error_code(response) == "quota_exceeded"
    assert not SpeechJob.objects.exists()


def test_one_idempotency_key_makes_one_job(auth_client, default_voice):
    from tts.models import SpeechJob

    first = generate(auth_client, default_voice, headers={"Idempotency-Key": "k1"})
    second = generate(auth_client, default_voice, headers={"Idempotency-Key": "k1"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"] and SpeechJob.objects.count() == 1


def test_jobs_are_their_owners_and_queued_ones_can_be_cancelled(auth_client, user, other_user, default_voice):
    job_id = generate(auth_client, default_voice).json()["id"]  # not run: no commit in this test
    other = token_client(other_user)
    assert error_code(other.get(f"/api/v1/tts/jobs/{job_id}")) == "job_not_found"
    assert error_code(other.post(f"/api/v1/tts/jobs/{job_id}/cancel")) == "job_not_found"
    listed = auth_client.get("/api/v1/tts/jobs?status=queued").json()
    assert [j["id"] for j in listed["results"]] == [job_id]
    assert auth_client.get("/api/v1/tts/quota").json()["reserved"] == 17
    cancelled = auth_client.post(f"/api/v1/tts/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert auth_client.get("/api/v1/tts/quota").json()["reserved"] == 0
    again = auth_client.post(f"/api/v1/tts/jobs/{job_id}/cancel")
    assert again.status_code == 409 and error_code(again) == "job_not_cancellable"


def test_uses_are_counted_and_the_profile_shows_this_months_characters(auth_client, user, django_capture_on_commit_callbacks):
    voice = make_voice(user, name="Mom", provider="local", provider_voice_id="local-en-us-m", language="en")
    assert auth_client.get("/api/v1/user/me").json()["usage"]["characters_used_this_month"] == 0  # now cached
    with django_capture_on_commit_callbacks(execute=True):
        generate(auth_client, voice, text="One.")
        generate(auth_client, voice, text="Two words.")
    assert auth_client.get(f"/api/v1/tts/voices/{voice.pk}").json()["usage_count"] == 2
    assert auth_client.get("/api/v1/user/me").json()["usage"]["characters_used_this_month"] == 4 + 10


def test_account_cleanup_removes_jobs_and_clips_no_one_else_uses(user, other_user, default_voice,
                                                                  django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    from accounts.services import account_cleanup, user_deactivate
    from tts.models import AudioClip, SpeechJob

    mine, theirs = token_client(user), token_client(other_user)
    with django_capture_on_commit_callbacks(execute=True):
        generate(mine, default_voice, text="Only mine.")
        generate(mine, default_voice, text="Shared line.")
        generate(theirs, default_voice, text="Shared line.")
    only_mine = AudioClip.objects.get(jobs__text="Only mine.")
    shared = AudioClip.objects.filter(jobs__text="Shared line.").distinct().get()
    with django_capture_on_commit_callbacks(execute=True):
        user_deactivate(user=user)
        account_cleanup(user_id=user.pk)
    assert not SpeechJob.objects.filter(owner_id=user.pk).exists()
    assert not AudioClip.objects.filter(pk=only_mine.pk).exists() and not default_storage.exists(only_mine.file.name)
    assert AudioClip.objects.filter(pk=shared.pk).exists() and default_storage.exists(shared.file.name)


def test_a_preview_is_rendered_uncharged_and_served_as_the_voices_preview_url(auth_client, user, client,
                                                                              django_capture_on_commit_callbacks):
    from accounts.models import User

    voice = make_voice(user, name="Mom", provider="local", provider_voice_id="local-en-us-f", language="en")
    assert auth_client.get(f"/api/v1/tts/voices/{voice.pk}").json()["preview_url"] is None
    admin = User.objects.create_superuser(email="ops@example.com", password="x-long-password-1")
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/voices/voice/", {"action": "regenerate_preview", "_selected_action": [str(voice.pk)]})
    url = auth_client.get(f"/api/v1/tts/voices/{voice.pk}").json()["preview_url"]
    assert url and url.startswith("http://testserver/audio/")
    assert APIClient().get(url).status_code == 200
    assert auth_client.get("/api/v1/tts/quota").json()["used"] == 0  # the service's own preview costs the user nothing


def test_audio_urls_take_head_refuse_huge_ranges_and_lost_files(auth_client, default_voice,
                                                               django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    from tts.models import AudioClip

    with django_capture_on_commit_callbacks(execute=True):
        job_id = generate(auth_client, default_voice).json()["id"]
    url = auth_client.get(f"/api/v1/tts/jobs/{job_id}").json()["audio_url"]
    anonymous = APIClient()
    assert anonymous.head(url).status_code == 200
    assert anonymous.get(url, HTTP_RANGE="bytes=" + "9" * 5000 + "-").status_code == 200  # not a range: whole file
    clip = AudioClip.objects.get()
    default_storage.delete(clip.file.name)
    assert error_code(anonymous.get(url)) == "not_found"


def test_job_filters_are_validated(auth_client, default_voice):
    generate(auth_client, default_voice)
    assert auth_client.get("/api/v1/tts/jobs?status=sleeping").status_code == 400
    assert auth_client.get("/api/v1/tts/jobs?purpose=generate").json()["count"] == 1
    assert auth_client.get("/api/v1/tts/jobs?purpose=preview").json()["count"] == 0
