"""Cloning: upload validation, slots, idempotency, provider failures (real SDK + emulator,
and the offline provider for real)."""

import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django_redis import get_redis_connection

from tests.audio_samples import lying_wav_bytes, speech_wav_bytes
from tests.conftest import token_client
from tests.voices.conftest import clone, sample
from tts.models import LocalProviderVoice
from voices.models import Voice, VoiceSample, VoiceSlotReservation
from voices.services import PENDING_SET

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.mark.smoke
def test_clone_with_the_local_provider(auth_client, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = clone(auth_client, name="Grandma", gender="female", description="bedtime")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["visibility"], body["is_mine"], body["provider"]) == (
        "processing", "private", True, "local")
    [stored] = body["samples"]
    # The gate's measure of speech: nearly all of 3 s of eSpeak (exact tenths vary with the engine's state).
    speech = stored.pop("speech_seconds")
    assert 2.5 <= speech <= 3.0
    assert stored == {"original_name": "sample.wav", "format": "wav", "duration_seconds": 3.0,
                      "size_bytes": len(speech_wav_bytes())}
    # 3 s of speech passes the gate, with the advice that a minute or two clones better.
    assert [w["code"] for w in body["warnings"]] == ["little_speech"]
    assert body["warnings"][0]["speech_seconds"] == speech
    voice = Voice.objects.get(pk=body["id"])
    assert voice.owner == user and voice.consent_attested_by == user and voice.consent_attested_at
    assert voice.sync_deadline > voice.created_at
    assert LocalProviderVoice.objects.filter(provider_voice_id=voice.provider_voice_id).exists()
    assert default_storage.exists(voice.samples.get().file.name)
    assert get_redis_connection("default").sismember(PENDING_SET, str(voice.pk))
    assert not VoiceSlotReservation.objects.exists()


def test_clone_with_elevenlabs(auth_client, elevenlabs_settings):
    response = clone(auth_client, samples=[sample("a.wav"), sample("b.wav", speech_wav_bytes(3.0))], language="ko")
    assert response.status_code == 202, response.content
    voice = Voice.objects.get(pk=response.json()["id"])
    assert voice.provider == "elevenlabs"
    remote = elevenlabs_settings.voice(voice.provider_voice_id)
    assert remote is not None and remote["name"] == "Mom"
    assert elevenlabs_settings.count("add_voice") == 1


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"Once upon a time there was a text file renamed to .wav\n" * 50, "not decodable"),
        (lying_wav_bytes(), "WAV header declares"),
    ],
    ids=["empty", "renamed-text", "lying-header"],
)
def test_bad_audio_is_invalid_audio_and_nothing_is_created(auth_client, elevenlabs_settings, data, reason):
    error = assert_error(clone(auth_client, samples=[sample("voice.wav", data)]), 400, "invalid_audio")
    assert reason in error["message"]
    assert error["details"]["file"] == "voice.wav"
    assert {"wav", "mp3", "m4a", "ogg", "flac"} <= set(error["details"]["accepted_formats"])
    assert not Voice.objects.exists() and elevenlabs_settings.count("add_voice") == 0


def test_too_short_sample_is_invalid_audio(auth_client):
    assert_error(clone(auth_client, samples=[sample(data=speech_wav_bytes(0.3))]), 400, "invalid_audio")


def test_oversized_file_is_413(auth_client, settings):
    settings.VOICE_SAMPLE_MAX_BYTES = 10_000
    error = assert_error(clone(auth_client), 413, "request_too_large")
    assert error["details"]["max_bytes"] == 10_000


def test_too_many_files_is_validation_error(auth_client, settings):
    settings.VOICE_SAMPLE_MAX_COUNT = 2
    error = assert_error(clone(auth_client, samples=[sample(f"{i}.wav") for i in range(3)]), 400, "validation_error")
    assert "samples" in error["details"]["fields"]


def test_missing_consent_is_validation_error(auth_client):
    data = {"name": "Mom", "samples": [sample()]}
    response = auth_client.post("/api/v1/tts/voices/clone", data, format="multipart")
    error = assert_error(response, 400, "validation_error")
    assert "consent" in error["details"]["fields"]
    assert not Voice.objects.exists()


def test_missing_samples_is_validation_error(auth_client):
    response = auth_client.post("/api/v1/tts/voices/clone", {"name": "Mom", "consent": "true"}, format="multipart")
    assert "samples" in assert_error(response, 400, "validation_error")["details"]["fields"]


def test_per_user_cap_is_409(auth_client, settings):
    settings.VOICE_MAX_PER_USER = 2
    assert clone(auth_client).status_code == 202
    assert clone(auth_client).status_code == 202
    error = assert_error(clone(auth_client), 409, "voice_limit_reached")
    assert error["details"]["limit"] == 2
    # A failed voice does not hold a slot.
    Voice.objects.filter(pk=Voice.objects.first().pk).update(status="failed")
    assert clone(auth_client).status_code == 202


def test_provider_account_voice_limit_is_409_and_frees_the_reservation(auth_client, elevenlabs_settings):
    elevenlabs_settings.fail("add_voice", 400, code="voice_limit_reached", times=1)
    assert_error(clone(auth_client), 409, "voice_limit_reached")
    assert not VoiceSlotReservation.objects.exists() and not Voice.objects.exists()
    assert clone(auth_client).status_code == 202


@pytest.mark.parametrize(
    "status, code, ours, http",
    [
        (401, "invalid_api_key", "invalid_api_key", 503),
        (401, "quota_exceeded", "provider_quota_exceeded", 503),
        (503, None, "provider_unavailable", 503),
        (429, "system_busy", "rate_limited", 429),
        (400, "can_not_use_instant_voice_cloning", "provider_rejected", 502),
    ],
)
def test_provider_failures_map_to_the_error_table(auth_client, elevenlabs_settings, status, code, ours, http):
    elevenlabs_settings.fail("add_voice", status, code=code, times=1)
    assert_error(clone(auth_client), http, ours)
    assert elevenlabs_settings.count("add_voice") == 1  # no retries inside one request
    assert not Voice.objects.exists() and not VoiceSlotReservation.objects.exists()


def _stored_samples(settings) -> list:
    root = settings.MEDIA_ROOT / "voice-samples"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_failed_save_deletes_the_provider_voice_again(auth_client, elevenlabs_settings, monkeypatch, settings):
    def broken_bulk_create(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(VoiceSample.objects, "bulk_create", broken_bulk_create)
    with pytest.raises(RuntimeError):
        clone(auth_client)
    assert elevenlabs_settings.count("add_voice") == 1
    assert elevenlabs_settings.count("delete_voice") == 1
    assert elevenlabs_settings.voice_ids(category="cloned") == []
    assert not Voice.objects.exists() and not VoiceSlotReservation.objects.exists()
    assert _stored_samples(settings) == []  # the sample files went too


def test_account_deleted_during_the_provider_call_gets_no_voice(auth_client, user, elevenlabs_settings, monkeypatch,
                                                              settings):
    from accounts.models import User
    from tts.providers.elevenlabs import ElevenLabsProvider

    real_clone = ElevenLabsProvider.clone_voice

    def clone_then_account_deleted(self, **kwargs):
        result = real_clone(self, **kwargs)  # the real SDK call against the emulator
        User.objects.filter(pk=user.pk).update(is_active=False)  # meanwhile, DELETE /user/me
        return result

    monkeypatch.setattr(ElevenLabsProvider, "clone_voice", clone_then_account_deleted)
    assert_error(clone(auth_client), 401, "not_authenticated")
    assert not Voice.objects.exists() and not VoiceSlotReservation.objects.exists()
    assert elevenlabs_settings.voice_ids(category="cloned") == []  # deleted again at the provider
    assert _stored_samples(settings) == []


def test_sample_over_the_duration_cap_is_refused_without_decoding_it_all(auth_client, settings):
    settings.VOICE_SAMPLE_MAX_SECONDS = 2.5
    error = assert_error(clone(auth_client, samples=[sample(data=speech_wav_bytes(6.0))]), 400, "invalid_audio")
    assert "longer than 2.5 s" in error["message"]


def test_a_key_left_by_a_request_that_died_can_be_retried(auth_client, user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import IdempotencyRecord

    assert clone(auth_client, headers={"Idempotency-Key": "died"}).status_code == 202
    # As if that request had died before storing its answer, long ago.
    IdempotencyRecord.objects.filter(key="died").update(
        state="in_progress", response_status=None, response_body=None,
        created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS + 1))
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    retried = clone(auth_client, headers={"Idempotency-Key": "died"})
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried
    assert Voice.objects.count() == 2


def test_a_key_still_in_progress_is_409_after_the_wait(auth_client, user, settings):
    from accounts.models import IdempotencyRecord

    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    response = clone(auth_client, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 202
    IdempotencyRecord.objects.filter(key="busy").update(state="in_progress")
    again = clone(auth_client, headers={"Idempotency-Key": "busy"})
    error = assert_error(again, 409, "request_in_progress")
    assert again["Retry-After"] == "1" and error["message"]


def test_idempotency_key_returns_the_first_answer(auth_client, elevenlabs_settings):
    first = clone(auth_client, headers={"Idempotency-Key": "clone-1"})
    again = clone(auth_client, headers={"Idempotency-Key": "clone-1"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert elevenlabs_settings.count("add_voice") == 1 and Voice.objects.count() == 1
    different = clone(auth_client, name="Dad", headers={"Idempotency-Key": "clone-1"})
    assert_error(different, 422, "idempotency_key_reused")


def test_idempotency_key_replays_a_validation_error(auth_client):
    data = {"name": "Mom", "samples": [sample(data=b"")], "consent": "true"}
    first = auth_client.post("/api/v1/tts/voices/clone", data, format="multipart", headers={"Idempotency-Key": "k"})
    data["samples"] = [sample(data=b"")]
    again = auth_client.post("/api/v1/tts/voices/clone", data, format="multipart", headers={"Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


def test_transient_provider_failure_releases_the_idempotency_key(auth_client, elevenlabs_settings):
    elevenlabs_settings.fail("add_voice", 503, times=1)
    assert clone(auth_client, headers={"Idempotency-Key": "k2"}).status_code == 503
    assert clone(auth_client, headers={"Idempotency-Key": "k2"}).status_code == 202


def _run_concurrently(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_clones_against_a_cap_of_five_create_five(user, settings, elevenlabs_settings):
    settings.VOICE_MAX_PER_USER = 5
    elevenlabs_settings.set_latency("add_voice", 0.2)  # keep the provider calls overlapping
    clients = [token_client(user, f"device {i}") for i in range(20)]
    responses = _run_concurrently(20, lambda i: clone(clients[i], name=f"Voice {i}"))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 5 and codes.count(409) == 15
    assert Voice.objects.filter(owner=user).count() == 5
    assert elevenlabs_settings.count("add_voice") == 5
    assert not VoiceSlotReservation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_idempotency_key_clone_once(user, elevenlabs_settings):
    elevenlabs_settings.set_latency("add_voice", 0.3)
    clients = [token_client(user, f"device {i}") for i in range(5)]
    responses = _run_concurrently(5, lambda i: clone(clients[i], headers={"Idempotency-Key": "same"}))
    assert [r.status_code for r in responses] == [202] * 5
    assert len({r.json()["id"] for r in responses}) == 1
    assert elevenlabs_settings.count("add_voice") == 1 and Voice.objects.count() == 1


def test_a_language_the_provider_cannot_speak_is_the_callers_error(auth_client):
    error = assert_error(clone(auth_client, language="xx"), 400, "validation_error")
    assert "xx" in error["message"]
    assert not Voice.objects.exists() and not VoiceSlotReservation.objects.exists()
